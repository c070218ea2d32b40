// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as zlib and gvfs
// compute it. FORMAT.md §1.
//
// Two methods, both bit-exact with zlib (tests/kernels_crc32_test.ts):
//
// - Slicing-by-16 for short inputs and tails: table k maps a byte to the CRC
//   of that byte followed by k zero bytes, so 16 bytes cost 16 independent
//   lookups instead of a 16-step chain.
// - A sparse-multiple fold for long inputs (the idea of Russell's "Chorba",
//   arXiv:2412.16398). With y = x^128, the polynomial
//       Q(y) = 1 + y^89 + y^117 + y^155 + y^300
//   is a multiple of the CRC-32 polynomial P (found by a meet-in-the-middle
//   search over y^k mod P; tests/kernels_crc32_test.ts re-checks it). So
//   y^300 = y^155 + y^117 + y^89 + 1 (mod P), and a 16-byte block that
//   has at least 300 blocks after it can be dropped once it is XORed into
//   the blocks 145, 183, 211 and 300 places later, without changing the
//   message modulo P, hence the CRC. That is whole-block XORs, 16 bytes at
//   a time in SIMD, instead of table lookups per byte; only the last 300
//   blocks then go through slicing. WASM SIMD has no carry-less multiply,
//   so the folding native code uses is not available.

const SLICES = 16;
const TABLES = memory.data(SLICES * 256 * 4, 64);
let ready = false;

function init(): void {
  for (let n: u32 = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    store<u32>(TABLES + (<usize>n << 2), c);
  }
  for (let n: u32 = 0; n < 256; n++) {
    let c = load<u32>(TABLES + (<usize>n << 2));
    for (let k = 1; k < SLICES; k++) {
      c = load<u32>(TABLES + (<usize>(c & 0xff) << 2)) ^ (c >>> 8);
      store<u32>(TABLES + (<usize>(k * 256 + n) << 2), c);
    }
  }
  ready = true;
}

// Table lookups take the byte already scaled by 4 (`(w >>> 6) & 0x3fc` is
// byte 1 of w, times 4) and the table's address as the load's immediate
// offset, which saves two instructions per byte.

/** CRC-32 of `len` bytes at `ptr`, continuing from `crc` (0 to start). */
export function crc32(ptr: usize, len: usize, crc: u32): u32 {
  if (!ready) init();
  return len >= FOLD_MIN ? fold(ptr, len, crc) : slice(ptr, len, crc);
}

/** Blocks between a block and the farthest one it is folded into. */
const SPAN: usize = 300;
/** Blocks folded per pass over the pending buffer. */
const CHUNK: usize = 4096;
/** Shortest input that is folded: below it slicing is as fast. */
const FOLD_MIN: usize = 4 * SPAN * 16;
// Pending XORs for the blocks ahead: slot k belongs to the k-th block
// after the current pass's first. Its first write is a store (from block
// k - SPAN), so only the first SPAN slots need clearing.
const PENDING = memory.data(<i32>((CHUNK + SPAN) * 16), 16);

function fold(ptr: usize, len: usize, crc: u32): u32 {
  memory.fill(PENDING, 0, SPAN * 16);
  // The initial register value is XORed into the first four bytes.
  store<u32>(PENDING, ~crc);
  let p = ptr;
  let left = (len >>> 4) - SPAN;
  while (left > 0) {
    const n = left < CHUNK ? left : CHUNK;
    const end = PENDING + n * 16;
    for (let q = PENDING; q < end; q += 16, p += 16) {
      const v = v128.xor(v128.load(p), v128.load(q));
      v128.store(q, v, SPAN * 16);
      v128.store(q, v128.xor(v128.load(q, (SPAN - 155) * 16), v), (SPAN - 155) * 16);
      v128.store(q, v128.xor(v128.load(q, (SPAN - 117) * 16), v), (SPAN - 117) * 16);
      v128.store(q, v128.xor(v128.load(q, (SPAN - 89) * 16), v), (SPAN - 89) * 16);
    }
    memory.copy(PENDING, end, SPAN * 16);
    left -= n;
  }
  // The last SPAN blocks with everything folded into them: an ordinary
  // CRC from a zero register (crc ~0), then the bytes after the last block.
  for (let q = PENDING; q < PENDING + SPAN * 16; q += 16, p += 16) {
    v128.store(q, v128.xor(v128.load(p), v128.load(q)));
  }
  return slice(p, len & 15, slice(PENDING, SPAN * 16, 0xffffffff));
}

function slice(ptr: usize, len: usize, crc: u32): u32 {
  let c = ~crc;
  let p = ptr;
  const end = ptr + len;
  while (end - p >= 16) {
    // Only the first word depends on the running CRC: XOR the other twelve
    // lookups first and in pairs, so the loop-carried path is one lookup
    // and two XORs rather than a chain of sixteen.
    const b = load<u32>(p, 4);
    const d = load<u32>(p, 8);
    const e = load<u32>(p, 12);
    const rest =
      (((load<u32>((b << 2) & 0x3fc, TABLES + 11264) ^ load<u32>((b >>> 6) & 0x3fc, TABLES + 10240)) ^
        (load<u32>((b >>> 14) & 0x3fc, TABLES + 9216) ^ load<u32>((b >>> 22) & 0x3fc, TABLES + 8192))) ^
        ((load<u32>((d << 2) & 0x3fc, TABLES + 7168) ^ load<u32>((d >>> 6) & 0x3fc, TABLES + 6144)) ^
        (load<u32>((d >>> 14) & 0x3fc, TABLES + 5120) ^ load<u32>((d >>> 22) & 0x3fc, TABLES + 4096)))) ^
      ((load<u32>((e << 2) & 0x3fc, TABLES + 3072) ^ load<u32>((e >>> 6) & 0x3fc, TABLES + 2048)) ^
        (load<u32>((e >>> 14) & 0x3fc, TABLES + 1024) ^ load<u32>((e >>> 22) & 0x3fc, TABLES + 0)));
    const a = load<u32>(p) ^ c;
    c = rest ^ ((load<u32>((a << 2) & 0x3fc, TABLES + 15360) ^ load<u32>((a >>> 6) & 0x3fc, TABLES + 14336)) ^
        (load<u32>((a >>> 14) & 0x3fc, TABLES + 13312) ^ load<u32>((a >>> 22) & 0x3fc, TABLES + 12288)));
    p += 16;
  }
  while (p < end) {
    c = load<u32>(<usize>((c ^ load<u8>(p)) & 0xff) << 2, TABLES) ^ (c >>> 8);
    p++;
  }
  return ~c;
}
