/**
 * The soak's bodies (bench/proxy/soak.ts): every byte a function of the
 * request path (and, for Vary endpoints, the request's language), so the
 * checker can verify a body, a range of it or its length without asking
 * the origin.
 *
 * @module
 */

/** Bytes in the pool a body is a slice of; the largest body is 2 MiB. */
const POOL_SIZE = 4 * 2 ** 20;
/** The largest body an endpoint answers with. */
export const MAX_BODY = 2 * 2 ** 20;

let pool: Uint8Array<ArrayBuffer> | undefined;

/** The pool: xorshift32 from a fixed seed, the same in every process. */
function bodyPool(): Uint8Array<ArrayBuffer> {
  if (pool) return pool;
  pool = new Uint8Array(POOL_SIZE);
  const words = new Uint32Array(pool.buffer);
  let x = 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return pool;
}

/** FNV-1a of a string's UTF-16 code units. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * The body for a path of the form `/<kind>/<size>/<id>` (and a language
 * for the Vary endpoints): `size` bytes of the pool from an offset the
 * path's hash picks. A view, not a copy.
 *
 * @param path The request path.
 * @param variant The Vary variant (`Accept-Language`), or "".
 * @returns The body; its length is the path's size.
 */
export function bodyFor(path: string, variant = ""): Uint8Array<ArrayBuffer> {
  const size = sizeOf(path);
  const offset = fnv1a(`${path}|${variant}`) % (POOL_SIZE - size + 1);
  return bodyPool().subarray(offset, offset + size);
}

/** The size a path names (its second segment), 0 when none. */
export function sizeOf(path: string): number {
  const n = Number(path.split("/")[2]);
  return Number.isInteger(n) && n >= 0 && n <= MAX_BODY ? n : 0;
}

/** The ETag the origin gives a path's body (strong, stable). */
export function etagFor(path: string, variant = ""): string {
  return `"${fnv1a(`${path}|${variant}`).toString(16)}"`;
}

/**
 * How many bytes of `got` differ from `want` (a length difference counts
 * every missing or extra byte).
 */
export function wrongBytes(got: Uint8Array, want: Uint8Array): number {
  let wrong = Math.abs(got.length - want.length);
  const n = Math.min(got.length, want.length);
  for (let i = 0; i < n; i++) if (got[i] !== want[i]) wrong++;
  return wrong;
}
