// Key hashing. FORMAT.md §2.

/**
 * 32-bit FNV-1 as NetSurf's nsurl computes it: multiply, then XOR the byte,
 * with bytes taken as signed chars (0x80..0xff sign-extended before the XOR).
 */
export function fnv1_signed(ptr: usize, len: usize): u32 {
  let h: u32 = 0x811c9dc5;
  const end = ptr + len;
  for (let p = ptr; p < end; p++) {
    h = (h * 0x01000193) ^ <u32>load<i8>(p);
  }
  return h;
}

/**
 * nsurl_hash: the XOR of fnv1_signed over each present component. The
 * components are laid out at `ptr` as `count` records of a u32 length
 * followed by that many bytes (no padding).
 */
export function nsurl_hash(ptr: usize, count: u32): u32 {
  let h: u32 = 0;
  let p = ptr;
  for (let i: u32 = 0; i < count; i++) {
    const len = load<u32>(p);
    h ^= fnv1_signed(p + 4, len);
    p += 4 + len;
  }
  return h;
}


/**
 * SipHash-1-3 (one compression round, three finalisation rounds) of `len`
 * bytes at `ptr` with the 16-byte key at `key`; the 64-bit result is
 * written little-endian to `out`.
 */
export function siphash13(ptr: usize, len: usize, key: usize, out: usize): void {
  const k0 = load<u64>(key);
  const k1 = load<u64>(key, 8);
  let v0: u64 = k0 ^ 0x736f6d6570736575;
  let v1: u64 = k1 ^ 0x646f72616e646f6d;
  let v2: u64 = k0 ^ 0x6c7967656e657261;
  let v3: u64 = k1 ^ 0x7465646279746573;
  const end = ptr + (len & ~(<usize>7));
  let p = ptr;
  while (p < end) {
    const m = load<u64>(p);
    v3 ^= m;
    // one compression round
    v0 += v1; v1 = rotl<u64>(v1, 13); v1 ^= v0; v0 = rotl<u64>(v0, 32);
    v2 += v3; v3 = rotl<u64>(v3, 16); v3 ^= v2;
    v0 += v3; v3 = rotl<u64>(v3, 21); v3 ^= v0;
    v2 += v1; v1 = rotl<u64>(v1, 17); v1 ^= v2; v2 = rotl<u64>(v2, 32);
    v0 ^= m;
    p += 8;
  }
  let b: u64 = (<u64>len) << 56;
  const left = len & 7;
  for (let i: usize = 0; i < left; i++) {
    b |= (<u64>load<u8>(p + i)) << (<u64>(i << 3));
  }
  v3 ^= b;
  v0 += v1; v1 = rotl<u64>(v1, 13); v1 ^= v0; v0 = rotl<u64>(v0, 32);
  v2 += v3; v3 = rotl<u64>(v3, 16); v3 ^= v2;
  v0 += v3; v3 = rotl<u64>(v3, 21); v3 ^= v0;
  v2 += v1; v1 = rotl<u64>(v1, 17); v1 ^= v2; v2 = rotl<u64>(v2, 32);
  v0 ^= b;
  v2 ^= 0xff;
  for (let r = 0; r < 3; r++) {
    v0 += v1; v1 = rotl<u64>(v1, 13); v1 ^= v0; v0 = rotl<u64>(v0, 32);
    v2 += v3; v3 = rotl<u64>(v3, 16); v3 ^= v2;
    v0 += v3; v3 = rotl<u64>(v3, 21); v3 ^= v0;
    v2 += v1; v1 = rotl<u64>(v1, 17); v1 ^= v2; v2 = rotl<u64>(v2, 32);
  }
  store<u64>(out, v0 ^ v1 ^ v2 ^ v3);
}
