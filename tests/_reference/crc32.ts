/**
 * Reference CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, as zlib),
 * used only by tests and benches.
 * @module
 */

/** Bit at a time, straight from the definition. */
export function crc32Bitwise(bytes: Uint8Array, crc = 0): number {
  let c = ~crc;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return ~c >>> 0;
}

const TABLES: Uint32Array[] = [];
{
  const t0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t0[n] = c >>> 0;
  }
  TABLES.push(t0);
  for (let k = 1; k < 8; k++) {
    const prev = TABLES[k - 1]!;
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      t[n] = (t0[prev[n]! & 0xff]! ^ (prev[n]! >>> 8)) >>> 0;
    }
    TABLES.push(t);
  }
}

/**
 * Slicing-by-8 in plain JavaScript: the fastest pure-JS CRC we know of,
 * the "JS" column of the benches.
 */
export function crc32Slicing8(bytes: Uint8Array, crc = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES as [
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
  ];
  let c = ~crc;
  let i = 0;
  const n = bytes.length;
  for (; i + 8 <= n; i += 8) {
    const a = c ^
      (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) |
        (bytes[i + 3]! << 24));
    c = t7[a & 0xff]! ^ t6[(a >>> 8) & 0xff]! ^ t5[(a >>> 16) & 0xff]! ^
      t4[a >>> 24]! ^
      t3[bytes[i + 4]!]! ^ t2[bytes[i + 5]!]! ^ t1[bytes[i + 6]!]! ^
      t0[bytes[i + 7]!]!;
  }
  for (; i < n; i++) c = t0[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * x^(8·n·k) mod P for k = 0..count-1, in GF(2) with the CRC-32 polynomial
 * P = 0x104C11DB7 (normal bit order): what the WASM fold's sparse
 * multiple is checked with.
 */
export function powersOfX(stepBits: number, count: number): Uint32Array {
  const out = new Uint32Array(count);
  let v = 1;
  for (let k = 0; k < count; k++) {
    out[k] = v;
    for (let i = 0; i < stepBits; i++) {
      const top = v >>> 31;
      v = (v << 1) >>> 0;
      if (top) v = (v ^ 0x04c11db7) >>> 0;
    }
  }
  return out;
}
