/**
 * Byte-array helpers shared by the store and the HTTP layer.
 *
 * @module
 */

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
