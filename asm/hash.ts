// Key hashing (FORMAT.md §3 names the hash, §4 stores it as the ident).
// Both results are persisted, so tests/kernels_hash_test.ts freezes them
// with known answers.

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

// @ts-ignore: decorator
@inline const FNV_BASIS: u32 = 0x811c9dc5;
// @ts-ignore: decorator
@inline const FNV_PRIME: u32 = 0x01000193;

// FNV-1 (signed chars) of `len` bytes at `p`, continuing from `h`.
// @ts-ignore: decorator
@inline function fnvFrom(h: u32, p: usize, len: usize): u32 {
  const end = p + len;
  for (; p < end; p++) h = (h * FNV_PRIME) ^ <u32>load<i8>(p);
  return h;
}

// Total byte length of the key whose lens record is at `l`.
// @ts-ignore: decorator
@inline function keyBytes(l: usize): usize {
  const count = load<u32>(l);
  let total: usize = 0;
  for (let c: u32 = 1; c <= count; c++) total += load<u32>(l + (<usize>c << 2));
  return total;
}

/**
 * nsurl_hash of `n` keys in one call. The components of all keys are
 * packed back to back at `bytes`; `lens` holds, per key, its component
 * count and then each component's length (u32s). Writes one u32 per key
 * to `out`.
 *
 * FNV-1 is a chain of one multiply per byte, so one stream runs at the
 * multiply's latency. Keys are taken four at a time and their j-th
 * components (scheme with scheme, host with host, ...) hashed in lockstep
 * over their common length: four independent chains.
 */
export function nsurl_hash_many(bytes: usize, lens: usize, n: u32, out: usize): void {
  let p = bytes;
  let l = lens;
  let i: u32 = 0;
  for (; i + 4 <= n; i += 4) {
    const l0 = l;
    const l1 = l0 + ((<usize>load<u32>(l0) + 1) << 2);
    const l2 = l1 + ((<usize>load<u32>(l1) + 1) << 2);
    const l3 = l2 + ((<usize>load<u32>(l2) + 1) << 2);
    l = l3 + ((<usize>load<u32>(l3) + 1) << 2);
    let q0 = p;
    let q1 = q0 + keyBytes(l0);
    let q2 = q1 + keyBytes(l1);
    let q3 = q2 + keyBytes(l2);
    p = q3 + keyBytes(l3);
    const c0 = load<u32>(l0);
    const c1 = load<u32>(l1);
    const c2 = load<u32>(l2);
    const c3 = load<u32>(l3);
    let x0: u32 = 0;
    let x1: u32 = 0;
    let x2: u32 = 0;
    let x3: u32 = 0;
    let cmax = c0 > c1 ? c0 : c1;
    if (c2 > cmax) cmax = c2;
    if (c3 > cmax) cmax = c3;
    for (let j: u32 = 0; j < cmax; j++) {
      const at = (<usize>j + 1) << 2;
      // A key without a j-th component joins in with length 0 and does
      // not XOR in (an empty component would: it hashes to the basis).
      const n0: usize = j < c0 ? load<u32>(l0 + at) : 0;
      const n1: usize = j < c1 ? load<u32>(l1 + at) : 0;
      const n2: usize = j < c2 ? load<u32>(l2 + at) : 0;
      const n3: usize = j < c3 ? load<u32>(l3 + at) : 0;
      let m = n0 < n1 ? n0 : n1;
      if (n2 < m) m = n2;
      if (n3 < m) m = n3;
      let h0 = FNV_BASIS;
      let h1 = FNV_BASIS;
      let h2 = FNV_BASIS;
      let h3 = FNV_BASIS;
      for (let t: usize = 0; t < m; t++) {
        h0 = (h0 * FNV_PRIME) ^ <u32>load<i8>(q0 + t);
        h1 = (h1 * FNV_PRIME) ^ <u32>load<i8>(q1 + t);
        h2 = (h2 * FNV_PRIME) ^ <u32>load<i8>(q2 + t);
        h3 = (h3 * FNV_PRIME) ^ <u32>load<i8>(q3 + t);
      }
      if (j < c0) x0 ^= fnvFrom(h0, q0 + m, n0 - m);
      if (j < c1) x1 ^= fnvFrom(h1, q1 + m, n1 - m);
      if (j < c2) x2 ^= fnvFrom(h2, q2 + m, n2 - m);
      if (j < c3) x3 ^= fnvFrom(h3, q3 + m, n3 - m);
      q0 += n0;
      q1 += n1;
      q2 += n2;
      q3 += n3;
    }
    const o = out + (<usize>i << 2);
    store<u32>(o, x0);
    store<u32>(o, x1, 4);
    store<u32>(o, x2, 8);
    store<u32>(o, x3, 12);
  }
  for (; i < n; i++) {
    const count = load<u32>(l);
    l += 4;
    let h: u32 = 0;
    for (let c: u32 = 0; c < count; c++) {
      const len = <usize>load<u32>(l);
      h ^= fnvFrom(FNV_BASIS, p, len);
      p += len;
      l += 4;
    }
    store<u32>(out + (<usize>i << 2), h);
  }
}

// @ts-ignore: decorator
@inline const C0: u64 = 0x736f6d6570736575;
// @ts-ignore: decorator
@inline const C1: u64 = 0x646f72616e646f6d;
// @ts-ignore: decorator
@inline const C2: u64 = 0x6c7967656e657261;
// @ts-ignore: decorator
@inline const C3: u64 = 0x7465646279746573;

/**
 * SipHash-1-3 (one compression round, three finalisation rounds) of `len`
 * bytes at `ptr` with key words k0, k1.
 */
// @ts-ignore: decorator
@inline function sip13(ptr: usize, len: usize, k0: u64, k1: u64): u64 {
  let v0: u64 = k0 ^ C0;
  let v1: u64 = k1 ^ C1;
  let v2: u64 = k0 ^ C2;
  let v3: u64 = k1 ^ C3;
  const end = ptr + (len & ~(<usize>7));
  let p = ptr;
  while (p < end) {
    const m = load<u64>(p);
    v3 ^= m;
    v0 += v1; v1 = rotl<u64>(v1, 13); v1 ^= v0; v0 = rotl<u64>(v0, 32);
    v2 += v3; v3 = rotl<u64>(v3, 16); v3 ^= v2;
    v0 += v3; v3 = rotl<u64>(v3, 21); v3 ^= v0;
    v2 += v1; v1 = rotl<u64>(v1, 17); v1 ^= v2; v2 = rotl<u64>(v2, 32);
    v0 ^= m;
    p += 8;
  }
  // Last block: the 0..7 remaining bytes, length in the top byte.
  let b: u64 = (<u64>len) << 56;
  const left = len & 7;
  if (left >= 4) {
    b |= <u64>load<u32>(p) | (<u64>tail(p + 4, left - 4) << 32);
  } else {
    b |= <u64>tail(p, left);
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
  return v0 ^ v1 ^ v2 ^ v3;
}

// The 0..3 bytes at p as a little-endian u32, without reading past them.
// @ts-ignore: decorator
@inline function tail(p: usize, n: usize): u32 {
  if (n == 0) return 0;
  let t = <u32>load<u8>(p);
  if (n > 1) t |= <u32>load<u8>(p, 1) << 8;
  if (n > 2) t |= <u32>load<u8>(p, 2) << 16;
  return t;
}

/**
 * SipHash-1-3 of `len` bytes at `ptr` with the 16-byte key at `key`; the
 * 64-bit result is written little-endian to `out`.
 */
export function siphash13(ptr: usize, len: usize, key: usize, out: usize): void {
  store<u64>(out, sip13(ptr, len, load<u64>(key), load<u64>(key, 8)));
}

/**
 * SipHash-1-3 of `n` keys in one call. Key i is the bytes
 * [ends[i-1], ends[i]) from `bytes` (ends[-1] = 0; `ends` holds u32s).
 * Writes one u64 per key to `out`.
 */
export function siphash13_many(bytes: usize, ends: usize, n: u32, key: usize, out: usize): void {
  const k0 = load<u64>(key);
  const k1 = load<u64>(key, 8);
  let start: usize = 0;
  for (let i: u32 = 0; i < n; i++) {
    const end = <usize>load<u32>(ends + (<usize>i << 2));
    store<u64>(out + (<usize>i << 3), sip13(bytes + start, end - start, k0, k1));
    start = end;
  }
}
