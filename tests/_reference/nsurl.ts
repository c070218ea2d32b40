/**
 * Reference nsurl hash as NetSurf computes it, used only by tests and
 * benches.
 * @module
 */

/** 32-bit FNV-1 (multiply, then XOR) over bytes read as signed chars. */
export function fnv1Signed(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of bytes) {
    h = (Math.imul(h, 0x01000193) ^ ((b << 24) >> 24)) >>> 0;
  }
  return h;
}

/** XOR of fnv1Signed over the UTF-8 of each component. */
export function nsurlHash(components: readonly string[]): number {
  const enc = new TextEncoder();
  let h = 0;
  for (const c of components) h ^= fnv1Signed(enc.encode(c));
  return h >>> 0;
}

/**
 * 32-bit FNV-1a over UTF-16 code units: the obvious pure-JS string hash,
 * the "JS" figure the hash benches compare with.
 */
export function fnv1aString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  }
  return h >>> 0;
}
