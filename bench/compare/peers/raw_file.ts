/**
 * One append-only file written and read with positional synchronous
 * `node:fs` calls, indexed by an in-memory `Map`: no checksums, no crash
 * safety, one syscall per small put or get. It is the practical ceiling of
 * this I/O layer, not a cache anyone should ship.
 *
 * Record: u32 keyLen, u32 metaLen, u32 bodyLen (0xFFFFFFFF = tombstone),
 * all little-endian, then key, meta, body. Open rebuilds the index by
 * walking the record headers.
 *
 * With a limit the file becomes a ring of `limit` bytes: writes wrap to
 * offset 0 and overwrite the oldest records (FIFO eviction, which equals
 * LRU for the put-only eviction phase).
 *
 * @module
 */

import fs from "node:fs";
import { join } from "node:path";
import type { OpenOptions, Peer, PeerFactory } from "./types.ts";

const HEADER = 12;
const TOMBSTONE = 0xFFFFFFFF;
/** Records up to this size go out in one write; larger ones in two. */
const SCRATCH = 64 * 1024;

interface Location {
  off: number;
  keyLen: number;
  metaLen: number;
  bodyLen: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

class RawFile implements Peer {
  readonly #fd: number;
  readonly #index = new Map<string, Location>();
  readonly #scratch = new Uint8Array(SCRATCH);
  readonly #view = new DataView(this.#scratch.buffer);
  readonly #capacity: number;
  /** Ring mode only: records in write order, oldest at #head. */
  #ring: { key: string; off: number }[] = [];
  #head = 0;
  #end = 0;

  constructor(path: string, capacity: number | undefined) {
    this.#fd = fs.openSync(
      path,
      fs.constants.O_RDWR | fs.constants.O_CREAT,
      0o644,
    );
    this.#capacity = capacity ?? Infinity;
    if (capacity === undefined) this.#scan();
  }

  put(key: string, meta: Uint8Array, body: Uint8Array): Promise<void> {
    const keyLen =
      encoder.encodeInto(key, this.#scratch.subarray(HEADER)).written;
    const headLen = HEADER + keyLen + meta.length;
    const total = headLen + body.length;
    const off = this.#reserve(total);
    this.#view.setUint32(0, keyLen, true);
    this.#view.setUint32(4, meta.length, true);
    this.#view.setUint32(8, body.length, true);
    this.#scratch.set(meta, HEADER + keyLen);
    if (total <= SCRATCH) {
      this.#scratch.set(body, headLen);
      fs.writeSync(this.#fd, this.#scratch, 0, total, off);
    } else {
      fs.writeSync(this.#fd, this.#scratch, 0, headLen, off);
      fs.writeSync(this.#fd, body, 0, body.length, off + headLen);
    }
    this.#index.set(key, {
      off,
      keyLen,
      metaLen: meta.length,
      bodyLen: body.length,
    });
    if (this.#capacity !== Infinity) this.#ring.push({ key, off });
    return Promise.resolve();
  }

  get(key: string) {
    const loc = this.#index.get(key);
    if (!loc) return Promise.resolve(undefined);
    const buf = new Uint8Array(loc.metaLen + loc.bodyLen);
    fs.readSync(this.#fd, buf, 0, buf.length, loc.off + HEADER + loc.keyLen);
    return Promise.resolve({
      meta: buf.subarray(0, loc.metaLen),
      body: buf.subarray(loc.metaLen),
    });
  }

  invalidate(key: string): Promise<boolean> {
    if (!this.#index.delete(key)) return Promise.resolve(false);
    if (this.#capacity === Infinity) {
      const keyLen =
        encoder.encodeInto(key, this.#scratch.subarray(HEADER)).written;
      this.#view.setUint32(0, keyLen, true);
      this.#view.setUint32(4, 0, true);
      this.#view.setUint32(8, TOMBSTONE, true);
      fs.writeSync(
        this.#fd,
        this.#scratch,
        0,
        HEADER + keyLen,
        this.#reserve(HEADER + keyLen),
      );
    }
    return Promise.resolve(true);
  }

  close(): Promise<void> {
    fs.closeSync(this.#fd);
    return Promise.resolve();
  }

  /** Returns where `total` bytes go, evicting what they overwrite. */
  #reserve(total: number): number {
    if (total > this.#capacity) {
      throw new RangeError(`Cannot store: ${total} bytes exceed the ring`);
    }
    let off = this.#end;
    if (off + total > this.#capacity) {
      // Wrapping abandons the tail: everything still there is the oldest.
      while (
        this.#head < this.#ring.length && this.#ring[this.#head]!.off >= off
      ) this.#evictHead();
      off = 0;
    }
    while (this.#head < this.#ring.length) {
      const oldest = this.#ring[this.#head]!;
      // Invariant: only the previous lap's records lie at or after `off`.
      if (oldest.off < off || oldest.off >= off + total) break;
      this.#evictHead();
    }
    this.#end = off + total;
    return off;
  }

  #evictHead(): void {
    const { key, off } = this.#ring[this.#head++]!;
    if (this.#index.get(key)?.off === off) this.#index.delete(key);
    if (this.#head > 65_536 && this.#head * 2 > this.#ring.length) {
      this.#ring = this.#ring.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Rebuilds the index from record headers, one read per 64 KiB window. */
  #scan(): void {
    const size = fs.fstatSync(this.#fd).size;
    const win = new Uint8Array(SCRATCH);
    const view = new DataView(win.buffer);
    let winOff = 0;
    let winLen = 0;
    let pos = 0;
    while (pos + HEADER <= size) {
      if (pos + HEADER > winOff + winLen || pos < winOff) {
        winOff = pos;
        winLen = fs.readSync(this.#fd, win, 0, win.length, pos);
      }
      const at = pos - winOff;
      const keyLen = view.getUint32(at, true);
      if (at + HEADER + keyLen > winLen) {
        if (winOff === pos) break; // a key longer than the window: corrupt
        winOff = pos;
        winLen = fs.readSync(this.#fd, win, 0, win.length, pos);
        continue;
      }
      const metaLen = view.getUint32(at + 4, true);
      const bodyLen = view.getUint32(at + 8, true);
      const key = decoder.decode(
        win.subarray(at + HEADER, at + HEADER + keyLen),
      );
      if (bodyLen === TOMBSTONE) {
        this.#index.delete(key);
        pos += HEADER + keyLen;
        continue;
      }
      const total = HEADER + keyLen + metaLen + bodyLen;
      if (pos + total > size) break; // torn last record
      this.#index.set(key, { off: pos, keyLen, metaLen, bodyLen });
      pos += total;
    }
    this.#end = pos;
  }
}

const factory: PeerFactory = {
  name: "raw file",
  eviction: "ring",
  open(dir: string, options: OpenOptions) {
    return Promise.resolve(new RawFile(join(dir, "raw.bin"), options.limit));
  },
};
export default factory;
