/**
 * Byte-array helpers shared by the store and the HTTP layer.
 *
 * @module
 */
import { Buffer } from "node:buffer";

/**
 * `parts` copied end to end into one new array of `total` bytes (their
 * summed length).
 *
 * ```ts ignore
 * concatBytes([new Uint8Array([1]), new Uint8Array([2, 3])], 3); // [1, 2, 3]
 * ```
 */
export function concatBytes(
  parts: readonly Uint8Array[],
  total: number,
): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Arrays this long and longer are compared natively. */
const NATIVE_COMPARE = 64;

/**
 * True when `a` and `b` hold the same bytes: short ones (keys) compared in
 * a loop, longer ones (records, use maps) by a native compare.
 *
 * ```ts ignore
 * sameBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2])); // true
 * ```
 */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  const n = a.length;
  if (n !== b.length) return false;
  if (n >= NATIVE_COMPARE) {
    return Buffer.from(a.buffer, a.byteOffset, n).equals(
      Buffer.from(b.buffer, b.byteOffset, n),
    );
  }
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}
