/**
 * A small seeded generator (mulberry32) so that random-input tests are
 * reproducible: a failure names its seed.
 * @module
 */

/** Returns a function yielding uniform integers in [0, n). */
export function rng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n: number) => {
    s = (s + 0x6d2b79f5) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return Math.floor(((z ^ (z >>> 14)) >>> 0) / 4294967296 * n);
  };
}

/** `len` bytes from `rand`. */
export function randomBytes(
  rand: (n: number) => number,
  len: number,
): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = rand(256);
  return out;
}
