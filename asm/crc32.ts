// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as zlib and gvfs
// compute it. FORMAT.md §1.

const TABLE = memory.data(256 * 4, 4);
let ready = false;

function init(): void {
  for (let n: u32 = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    store<u32>(TABLE + (<usize>n << 2), c);
  }
  ready = true;
}

/** CRC-32 of `len` bytes at `ptr`, continuing from `crc` (0 to start). */
export function crc32(ptr: usize, len: usize, crc: u32): u32 {
  if (!ready) init();
  let c = ~crc;
  const end = ptr + len;
  for (let p = ptr; p < end; p++) {
    c = load<u32>(TABLE + (<usize>((c ^ load<u8>(p)) & 0xff) << 2)) ^ (c >>> 8);
  }
  return ~c;
}
