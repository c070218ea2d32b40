/**
 * Read buffers for element reads: small and middling ones carved from
 * shared pools, large ones allocated without zero-filling.
 *
 * @module
 */
import { Buffer } from "node:buffer";

/** Reads up to this size come from the small pool. */
const SMALL_READ_MAX = 16 * 1024;
/** Size of each small read pool. */
const SMALL_POOL_BYTES = 128 * 1024;
/** Reads up to this size (above SMALL_READ_MAX) come from the middle pool. */
const MIDDLE_READ_MAX = 64 * 1024;
/** Size of each middle read pool: sixteen 32 KiB reads. */
const MIDDLE_POOL_BYTES = 512 * 1024;

/** One pool: a buffer read buffers are carved from until it is used up. */
class Pool {
  #buf: Uint8Array = new Uint8Array(0);
  #at = 0;
  /** Where the last buffer taken starts. */
  #last = 0;

  constructor(
    readonly size: number,
    readonly alloc: (n: number) => Uint8Array,
  ) {}

  take(n: number): Uint8Array {
    if (this.#at + n > this.#buf.length) {
      this.#buf = this.alloc(this.size);
      this.#at = 0;
    }
    const b = this.#buf.subarray(this.#at, this.#at + n);
    this.#last = this.#at;
    this.#at = (this.#at + n + 7) & ~7;
    return b;
  }

  /**
   * Takes back the last buffer taken when `view` lies within it, so the
   * next read reuses its bytes; false when it does not (another buffer,
   * or one taken before the last).
   */
  giveBack(view: Uint8Array): boolean {
    const buf = this.#buf;
    if (view.buffer !== buf.buffer) return false;
    const from = view.byteOffset - buf.byteOffset;
    if (from < this.#last || from + view.length > this.#at) return false;
    this.#at = this.#last;
    return true;
  }
}

/**
 * A buffer of `n` bytes that is not zero-filled (35-45% of the allocation
 * at 64 KiB - 1 MiB): every read overwrites it, and callers only ever get
 * the bytes read. A plain Uint8Array view, never a Buffer.
 */
function unfilled(n: number): Uint8Array {
  const b = Buffer.allocUnsafeSlow(n);
  return new Uint8Array(b.buffer, b.byteOffset, n);
}

/**
 * Reads up to 64 KiB are carved from shared pools: a fresh ArrayBuffer
 * costs about 1 µs at 1 KiB and 6-7 µs at 32 KiB (its allocation and the
 * GC work it brings), more than the read itself (as Node's Buffer pool
 * does; a returned element may thus be a view into a larger buffer, which
 * it keeps alive). Two pools, so that a small element kept keeps at most
 * 128 KiB alive. Larger reads get their own buffer.
 */
export class ReadPool {
  #small = new Pool(SMALL_POOL_BYTES, (n) => new Uint8Array(n));
  #middle = new Pool(MIDDLE_POOL_BYTES, unfilled);

  /** A buffer of `n` bytes for one read (its contents are unspecified). */
  take(n: number): Uint8Array {
    if (n <= SMALL_READ_MAX) return this.#small.take(n);
    if (n <= MIDDLE_READ_MAX) return this.#middle.take(n);
    return unfilled(n);
  }

  /**
   * Takes back the buffer `view` lies in when it is the last one its pool
   * handed out, for the next read to overwrite. Only for bytes no one
   * holds any more (not even `view`'s holder, once it returns): a
   * verified read answered at once, its bytes copied where they go.
   *
   * @returns Whether the buffer was taken back.
   */
  giveBack(view: Uint8Array): boolean {
    return this.#small.giveBack(view) || this.#middle.giveBack(view);
  }
}
