/**
 * The key region and key hashing: encoding a key into WASM memory, the
 * SipHash-1-3 and nsurl hashes of one key, and batch hashing of many keys
 * staged in few kernel calls.
 *
 * @module
 */
import type { IndexWasm } from "./_index_wasm.ts";
import {
  BATCH_KEYS,
  MAX_COMPONENTS,
  MAX_KEY_BYTES,
  type Regions,
  STAGE_BYTES,
} from "./_index_layout.ts";

const encoder = new TextEncoder();

function tooLong(i: number): RangeError {
  return new RangeError(
    `Cannot hash key ${i}: longer than ${MAX_KEY_BYTES} UTF-8 bytes`,
  );
}

/** Key encoding and hashing in one index's memory. */
export class KeyHashing {
  #w: IndexWasm;
  #r: Regions;

  /**
   * @param w The instance and its views.
   * @param r Its regions.
   */
  constructor(w: IndexWasm, r: Regions) {
    this.#w = w;
    this.#r = r;
  }

  /**
   * Encodes `key` as UTF-8 into the key region.
   * @returns its length in bytes, or -1 when it exceeds MAX_KEY_BYTES.
   */
  encodeKey(key: string): number {
    // ASCII (most keys) is copied code unit by code unit: the encoder's
    // call, view and result object cost ~3x that for a URL.
    const n = key.length;
    if (n <= MAX_KEY_BYTES) {
      const u8 = this.#w.u8;
      const p = this.#r.keyPtr;
      let i = 0;
      for (; i < n; i++) {
        const c = key.charCodeAt(i);
        if (c >= 0x80) break;
        u8[p + i] = c;
      }
      if (i === n) return n;
    }
    const dest = this.#w.u8.subarray(
      this.#r.keyPtr,
      this.#r.keyPtr + MAX_KEY_BYTES,
    );
    const { read, written } = encoder.encodeInto(key, dest);
    return read === key.length ? written : -1;
  }

  /** A copy of the key region's first `len` bytes (the encoded key). */
  keyBytes(len: number): Uint8Array {
    return this.#w.u8.slice(this.#r.keyPtr, this.#r.keyPtr + len);
  }

  /**
   * Copies the key region's first `len` bytes into the caller's `dest`
   * (at least `len` bytes) and returns that prefix of it: the hot paths'
   * way to the encoded key without allocating.
   */
  keyInto(len: number, dest: Uint8Array): Uint8Array {
    dest.set(this.#w.u8.subarray(this.#r.keyPtr, this.#r.keyPtr + len));
    return dest.subarray(0, len);
  }

  /** Puts raw `bytes` (not necessarily UTF-8) in the key region. */
  loadKey(bytes: Uint8Array): void {
    if (bytes.length > MAX_KEY_BYTES) {
      throw new RangeError(`Cannot load key: over ${MAX_KEY_BYTES} bytes`);
    }
    this.#w.u8.set(bytes, this.#r.keyPtr);
  }

  /** Sets the 16-byte SipHash key used by {@linkcode hashSip}. */
  setSipKey(key: Uint8Array): void {
    if (key.length !== 16) {
      throw new RangeError("Cannot set SipHash key: need 16 bytes");
    }
    this.#w.u8.set(key, this.#r.sipKeyPtr);
  }

  /** SipHash-1-3 of the first `len` key-region bytes: [low, high] words. */
  hashSip(len: number): [number, number] {
    this.#w.k.siphash13(this.#r.keyPtr, len, this.#r.sipKeyPtr, this.#r.outPtr);
    const o = this.#r.outPtr >>> 2;
    return [this.#w.u32[o]!, this.#w.u32[o + 1]!];
  }

  /**
   * NetSurf's nsurl hash over URL components (already normalised, present
   * ones only). Components are written into the key region, so this
   * clobbers an encoded key.
   */
  hashNsurl(components: readonly string[]): number {
    const enc = encoder;
    const end = this.#r.keyPtr + MAX_KEY_BYTES;
    let p = this.#r.keyPtr;
    for (const c of components) {
      const { read, written } = enc.encodeInto(
        c,
        this.#w.u8.subarray(p + 4, end),
      );
      if (read !== c.length) {
        throw new RangeError("Cannot hash key: longer than MAX_KEY_BYTES");
      }
      // Records are packed back to back, so lengths may be unaligned:
      // write them byte by byte, little-endian (WASM loads allow this).
      for (let b = 0; b < 4; b++) {
        this.#w.u8[p + b] = (written >>> (8 * b)) & 0xff;
      }
      p += 4 + written;
    }
    return this.#w.k.nsurl_hash(this.#r.keyPtr, components.length) >>> 0;
  }

  /**
   * SipHash-1-3 of many keys in few kernel calls (open, check-store): the
   * same results as {@linkcode encodeKey} then {@linkcode hashSip} per key.
   *
   * @param keys Key texts; each at most MAX_KEY_BYTES in UTF-8.
   * @param out Receives [low, high] words per key; allocated if omitted.
   * @returns `out`.
   * @throws {RangeError} when a key is longer than MAX_KEY_BYTES or `out`
   * is too short.
   */
  hashSipMany(
    keys: readonly string[],
    out: Uint32Array = new Uint32Array(keys.length * 2),
  ): Uint32Array {
    if (out.length < keys.length * 2) {
      throw new RangeError(
        "Cannot hash keys: output holds fewer than 2 words a key",
      );
    }
    for (let i = 0; i < keys.length;) {
      const n = this.#stageKeys(keys, i);
      this.#w.k.siphash13_many(
        this.#r.stage,
        this.#r.lens,
        n,
        this.#r.sipKeyPtr,
        this.#r.hashes,
      );
      const h = this.#r.hashes >>> 2;
      out.set(this.#w.u32.subarray(h, h + 2 * n), 2 * i);
      i += n;
    }
    return out;
  }

  // Copies UTF-8 of keys[from..] to the stage and their end offsets to
  // lens, as many as fit; returns how many. ASCII batches (the usual URL)
  // take one join and one encodeInto; others are encoded key by key.
  #stageKeys(keys: readonly string[], from: number): number {
    let n = 0;
    let chars = 0;
    const max = Math.min(keys.length - from, BATCH_KEYS);
    while (n < max) {
      const len = keys[from + n]!.length;
      if (len > MAX_KEY_BYTES) throw tooLong(from + n);
      if (chars + len > STAGE_BYTES) break;
      chars += len;
      n++;
    }
    const text = n === keys.length
      ? keys.join("")
      : keys.slice(from, from + n).join("");
    const stage = this.#w.u8.subarray(
      this.#r.stage,
      this.#r.stage + STAGE_BYTES,
    );
    const lens = this.#r.lens >>> 2;
    if (encoder.encodeInto(text, stage).written === text.length) {
      let end = 0;
      for (let j = 0; j < n; j++) {
        end += keys[from + j]!.length;
        this.#w.u32[lens + j] = end;
      }
      return n;
    }
    let end = 0;
    for (let j = 0; j < n; j++) {
      const key = keys[from + j]!;
      const { read, written } = encoder.encodeInto(key, stage.subarray(end));
      if (read < key.length) return j; // the stage is full: the rest next time
      if (written > MAX_KEY_BYTES) throw tooLong(from + j);
      end += written;
      this.#w.u32[lens + j] = end;
    }
    return n;
  }

  /**
   * NetSurf's nsurl hash of many keys in few kernel calls: the same results
   * as {@linkcode hashNsurl} per key.
   *
   * @param keys Per key, its present normalised components (at most 7).
   * @param out Receives one word per key; allocated if omitted.
   * @returns `out`.
   * @throws {RangeError} when a key has more than 7 components or more
   * than MAX_KEY_BYTES of them, or `out` is too short.
   */
  hashNsurlMany(
    keys: readonly (readonly string[])[],
    out: Uint32Array = new Uint32Array(keys.length),
  ): Uint32Array {
    if (out.length < keys.length) {
      throw new RangeError(
        "Cannot hash keys: output holds fewer than 1 word a key",
      );
    }
    for (let i = 0; i < keys.length;) {
      const n = this.#stageComponents(keys, i);
      this.#w.k.nsurl_hash_many(this.#r.stage, this.#r.lens, n, this.#r.hashes);
      const h = this.#r.hashes >>> 2;
      out.set(this.#w.u32.subarray(h, h + n), i);
      i += n;
    }
    return out;
  }

  // As #stageKeys, for component lists: lens gets per key its component
  // count, then each component's byte length.
  #stageComponents(keys: readonly (readonly string[])[], from: number): number {
    const u32 = this.#w.u32;
    const lens = this.#r.lens >>> 2;
    const max = Math.min(keys.length - from, BATCH_KEYS);
    // Concatenation (a rope, flattened once by encodeInto) is cheaper here
    // than collecting the components in an array to join.
    let text = "";
    let chars = 0;
    let n = 0;
    let l = lens;
    for (; n < max; n++) {
      const comps = keys[from + n]!;
      const count = comps.length;
      if (count > MAX_COMPONENTS) {
        throw new RangeError(
          `Cannot hash key ${from + n}: more than ${MAX_COMPONENTS} components`,
        );
      }
      let len = 0;
      for (let c = 0; c < count; c++) len += comps[c]!.length;
      if (len > MAX_KEY_BYTES) throw tooLong(from + n);
      if (chars + len > STAGE_BYTES) break;
      chars += len;
      u32[l++] = count;
      for (let c = 0; c < count; c++) {
        const s = comps[c]!;
        u32[l++] = s.length;
        text += s;
      }
    }
    const stage = this.#w.u8.subarray(
      this.#r.stage,
      this.#r.stage + STAGE_BYTES,
    );
    if (encoder.encodeInto(text, stage).written === text.length) return n;
    // Not ASCII: encode component by component for their byte lengths.
    let end = 0;
    l = lens;
    for (let j = 0; j < n; j++) {
      const comps = keys[from + j]!;
      const start = end;
      u32[l++] = comps.length;
      for (const c of comps) {
        const { read, written } = encoder.encodeInto(c, stage.subarray(end));
        if (read < c.length) return j; // the stage is full: the rest next time
        u32[l++] = written;
        end += written;
      }
      if (end - start > MAX_KEY_BYTES) throw tooLong(from + j);
    }
    return n;
  }
}
