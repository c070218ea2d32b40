// Run codes and the disk bytes an entry's elements take, shared by the
// bitmap and eviction kernels (not exported from the module). FORMAT.md
// §4 (run code), §5.4 (what the byte limit counts); src/format.ts has the
// same functions (runSlotsOf, diskBytes).

/** Bytes of a data slot (FORMAT.md §5.2). */
export const DATA_SLOT_BYTES: u64 = 64;
/** Bytes of a metadata slot (FORMAT.md §5.2). */
export const META_SLOT_BYTES: u64 = 1024;

/** Data slots run code `code` (entry byte 15) stands for. */
// @ts-ignore: decorator
@inline export function runSlots(code: u32): u32 {
  return code < 128 ? code + 1 : (17 + (code & 15)) << (((code - 128) >> 4) + 3);
}

/** Disk bytes a large file of `size` element bytes is counted as. */
// @ts-ignore: decorator
@inline export function fileDisk(size: u32): u64 {
  return ((<u64>size + 32 + 4095) & ~(<u64>4095)) + 4096;
}
