/**
 * Entry readers: what `openEntry` returns. A reader pins an entry's data
 * element like a hit and serves its bytes in ranges or as a stream,
 * never handing out a byte it has not verified (FORMAT.md §6.2).
 *
 * @module
 */
import { crc32 } from "node:zlib";
import { ClosedError, CorruptError } from "./errors.ts";
import type { ElementFiles } from "./elements.ts";
import type { Pin, PinTable } from "./pins.ts";
import type { OpenedData } from "./_reads.ts";

/** Bytes a stream delivers at a time, and the unit a large file is verified in. */
export const READ_CHUNK = 64 * 1024;

/**
 * An entry opened for reading by `BackingStore.openEntry`. It keeps
 * serving the bytes it pinned even if the entry is replaced, invalidated
 * or evicted meanwhile; their storage is freed at the last release.
 * Release it (or `using` it) when done: it holds the element's file open.
 *
 * @example
 * ```ts
 * import { BackingStore } from "@larder/larder";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const store = await BackingStore.open(dir);
 * await store.store("k", new Uint8Array([1, 2, 3, 4]));
 * const reader = (await store.openEntry("k"))!;
 * await store.invalidate("k"); // the reader keeps its bytes
 * assert.deepEqual(await reader.read(1, 2), new Uint8Array([2, 3]));
 * assert.throws(() => reader.stream(3, 2), RangeError); // refused, not clamped
 * await assert.rejects(reader.read(3, 2), RangeError); // never short
 * reader.release();
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface EntryReader extends Disposable {
  /** The canonical key. */
  readonly key: string;
  /** Length of the data element in bytes. */
  readonly size: number;
  /** The metadata element, whole, or undefined when the entry has none. */
  readonly meta: Uint8Array | undefined;
  /**
   * The data bytes in `[start, end)` as a stream of chunks (64 KiB), each
   * verified before it is delivered.
   *
   * @param start First byte (default 0); an integer, 0 ≤ start ≤ end.
   * @param end Byte after the last (default `size`); an integer ≤ size.
   * @returns a stream that errors with `CorruptError` (code `CORRUPT`) on
   *   damage, or `ClosedError` once the reader is released.
   * @throws {RangeError} for a range outside `[0, size]` or start > end
   *   (ranges are refused, never clamped).
   */
  stream(start?: number, end?: number): ReadableStream<Uint8Array>;
  /**
   * Exactly the `length` data bytes from `offset`, verified, in a new
   * array the caller owns.
   *
   * @throws {RangeError} (as a rejection) when `offset + length` passes
   *   `size`: a read is never short.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Ends this reference (idempotent); closes the element's file. */
  release(): void;
}

/** Large files whose chunk CRC-32s are kept for later readers. */
const VERIFIED_MAX = 64;

/**
 * Chunk CRC-32s of large files verified whole, by file id, length and
 * CRC-32, so that a later reader of the same element checks each chunk
 * against them without a whole pass of its own. (A file id is reused only
 * once ids wrap; an element there with the same length and CRC-32 but
 * other bytes would fail its chunk checks, a miss, never wrong bytes.)
 */
class VerifiedChunks {
  #tables = new Map<string, Uint32Array>();

  get(id: number, size: number, crc: number): Uint32Array | undefined {
    const name = `${id}:${size}:${crc}`;
    const t = this.#tables.get(name);
    if (t !== undefined) { // most recently used last
      this.#tables.delete(name);
      this.#tables.set(name, t);
    }
    return t;
  }

  set(id: number, size: number, crc: number, table: Uint32Array): void {
    this.#tables.set(`${id}:${size}:${crc}`, table);
    if (this.#tables.size > VERIFIED_MAX) {
      this.#tables.delete(this.#tables.keys().next().value!);
    }
  }

  drop(id: number, size: number, crc: number): void {
    this.#tables.delete(`${id}:${size}:${crc}`);
  }
}

/** What a reader asks of its store. */
export interface ReaderHooks {
  /** The element pinned by `pin` failed verification: drop it if current. */
  damaged(pin: Pin): void;
  /** `n` bytes of a large file's data element were read from disk. */
  fileBytesRead(n: number): void;
}

/** What a reader's finalizer ends if it is dropped unreleased. */
interface ReaderToken {
  pins: Pin[];
  fd: number | undefined;
  released: boolean;
}

function checkIndex(value: unknown, name: string, max: number): number {
  if (typeof value !== "number") {
    throw new TypeError(`Cannot read entry: ${name} must be a number`);
  }
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new RangeError(
      `Cannot read entry: ${name} ${value} is not an integer in [0, ${max}]`,
    );
  }
  return value;
}

/**
 * Makes the entry readers of one store (`BackingStore.openEntry` has the
 * example); a reader garbage-collected unreleased closes its file and
 * ends its pins.
 */
export class EntryReaders {
  #files: ElementFiles;
  #pins: PinTable;
  #hooks: ReaderHooks;
  #verified = new VerifiedChunks();
  #finalizer: FinalizationRegistry<ReaderToken>;

  constructor(files: ElementFiles, pins: PinTable, hooks: ReaderHooks) {
    this.#files = files;
    this.#pins = pins;
    this.#hooks = hooks;
    this.#finalizer = new FinalizationRegistry((token) => {
      if (!token.released) this.#end(token);
    });
  }

  #end(token: ReaderToken): void {
    token.released = true;
    if (token.fd !== undefined) {
      const fd = token.fd;
      token.fd = undefined;
      try {
        this.#files.closeFile(fd);
      } catch { /* nothing to report it to */ }
    }
    for (const pin of token.pins) this.#pins.release(pin);
  }

  /** A reader holding `data` (and the metadata pin `meta`). */
  open(key: string, data: OpenedData, meta: Pin | undefined): EntryReader {
    const token: ReaderToken = {
      pins: meta === undefined ? [data.pin] : [data.pin, meta],
      fd: data.file?.fd,
      released: false,
    };
    const source = new Source(
      key,
      data,
      this.#files,
      token,
      this.#verified,
      this.#hooks,
    );
    const release = () => {
      if (token.released) return;
      this.#finalizer.unregister(token);
      this.#end(token);
    };
    const reader: EntryReader = {
      key,
      size: source.size,
      meta: meta?.bytes,
      stream: (start?: number, end?: number) => source.stream(start, end),
      read: (offset: number, length: number) => {
        try {
          return Promise.resolve(source.read(offset, length));
        } catch (err) {
          return Promise.reject(err);
        }
      },
      release,
      [Symbol.dispose]: release,
    };
    this.#finalizer.register(reader, token, token);
    return reader;
  }
}

/**
 * The verified bytes of one reader: from the pinned bytes (a slot element
 * verified whole when opened, or at its first use when its pin was taken
 * unread), or from its large file chunk by chunk.
 */
class Source {
  readonly size: number;
  #key: string;
  #pin: Pin;
  #file: OpenedData["file"];
  #files: ElementFiles;
  #token: ReaderToken;
  #verified: VerifiedChunks;
  #hooks: ReaderHooks;
  /** CRC-32 of each READ_CHUNK of the large file, once verified whole. */
  #chunkCrcs: Uint32Array | undefined;
  #failure: CorruptError | undefined;

  constructor(
    key: string,
    data: OpenedData,
    files: ElementFiles,
    token: ReaderToken,
    verified: VerifiedChunks,
    hooks: ReaderHooks,
  ) {
    this.#verified = verified;
    this.#key = key;
    this.#pin = data.pin;
    // A large file is read from its own descriptor even when a fetch
    // has filled the pin's bytes since: they are the same verified bytes.
    this.#file = data.pin.bytes === undefined ? data.file : undefined;
    this.size = data.pin.bytes?.length ?? data.file?.size ?? data.size!;
    this.#files = files;
    this.#token = token;
    this.#hooks = hooks;
  }

  /**
   * The bytes of a slot element, read and verified at the first use when
   * its pin was taken unread. A pin that ended unread (its last read at
   * expiry or close found damage, or failed) has nothing to offer: its
   * slot may hold another element by now.
   */
  #slotBytes(): Uint8Array {
    const pin = this.#pin;
    if (pin.bytes !== undefined) return pin.bytes;
    if (this.#failure !== undefined) throw this.#failure;
    if (!pin.done && pin.fill?.() === true) return pin.bytes!;
    this.#fail();
  }

  #fd(): number {
    if (this.#token.released || this.#token.fd === undefined) {
      throw new ClosedError("Cannot read entry: the reader is released");
    }
    return this.#token.fd;
  }

  #fail(): never {
    if (this.#failure === undefined) {
      const f = this.#file;
      if (f !== undefined) this.#verified.drop(f.id, f.size, f.crc);
      this.#failure = new CorruptError(
        `Cannot read entry ${this.#key}: its data element is damaged`,
      );
      this.#hooks.damaged(this.#pin);
    }
    throw this.#failure;
  }

  /**
   * Verifies the large file whole against the index's CRC-32, in chunks
   * (bounded memory), keeping each chunk's CRC-32: from then on each
   * chunk read is checked against its own before it is delivered. A file
   * an earlier reader verified is not passed over again.
   */
  #verify(): Uint32Array {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#chunkCrcs !== undefined) return this.#chunkCrcs;
    const file = this.#file!;
    const known = this.#verified.get(file.id, file.size, file.crc);
    if (known !== undefined) return this.#chunkCrcs = known;
    const fd = this.#fd();
    const n = Math.ceil(this.size / READ_CHUNK);
    const crcs = new Uint32Array(n);
    const buf = new Uint8Array(Math.min(READ_CHUNK, this.size));
    this.#hooks.fileBytesRead(this.size);
    let whole = 0;
    for (let c = 0; c < n; c++) {
      const len = Math.min(READ_CHUNK, this.size - c * READ_CHUNK);
      const b = buf.subarray(0, len);
      if (this.#files.readAt(fd, b, file.start + c * READ_CHUNK) !== len) {
        this.#fail();
      }
      crcs[c] = crc32(b);
      whole = crc32(b, whole);
    }
    if (whole !== file.crc) this.#fail();
    this.#chunkCrcs = crcs;
    this.#verified.set(file.id, file.size, file.crc, crcs);
    return crcs;
  }

  /** Chunk `c`, read and checked; a new array. */
  #chunk(c: number): Uint8Array {
    if (this.#file === undefined) {
      return this.#slotBytes().slice(
        c * READ_CHUNK,
        Math.min(this.size, (c + 1) * READ_CHUNK),
      );
    }
    const crcs = this.#verify();
    const len = Math.min(READ_CHUNK, this.size - c * READ_CHUNK);
    const b = new Uint8Array(len);
    const fd = this.#fd();
    this.#hooks.fileBytesRead(len);
    if (
      this.#files.readAt(fd, b, this.#file!.start + c * READ_CHUNK) !== len ||
      crc32(b) !== crcs[c]
    ) {
      this.#fail();
    }
    return b;
  }

  read(offset: number, length: number): Uint8Array {
    checkIndex(offset, "offset", this.size);
    checkIndex(length, "length", this.size - offset);
    if (this.#token.released) {
      throw new ClosedError("Cannot read entry: the reader is released");
    }
    if (this.#file === undefined) {
      return this.#slotBytes().slice(offset, offset + length);
    }
    const out = new Uint8Array(length);
    const end = offset + length;
    for (let at = offset; at < end;) {
      const c = Math.floor(at / READ_CHUNK);
      const chunk = this.#chunk(c);
      const from = at - c * READ_CHUNK;
      const take = Math.min(chunk.length - from, end - at);
      out.set(chunk.subarray(from, from + take), at - offset);
      at += take;
    }
    return out;
  }

  stream(start?: number, end?: number): ReadableStream<Uint8Array> {
    const to = end === undefined
      ? this.size
      : checkIndex(end, "end", this.size);
    const from = start === undefined ? 0 : checkIndex(start, "start", to);
    let at = from;
    return new ReadableStream<Uint8Array>({
      pull: (controller) => {
        if (at >= to) {
          controller.close();
          return;
        }
        if (this.#token.released) {
          throw new ClosedError("Cannot read entry: the reader is released");
        }
        const c = Math.floor(at / READ_CHUNK);
        const chunk = this.#chunk(c);
        const off = at - c * READ_CHUNK;
        const take = Math.min(chunk.length - off, to - at);
        controller.enqueue(
          off === 0 && take === chunk.length
            ? chunk
            : chunk.subarray(off, off + take),
        );
        at += take;
        if (at >= to) controller.close();
      },
    }, { highWaterMark: 0 });
  }
}
