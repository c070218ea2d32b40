import {
  E_DATA_SIZE, E_DATA_SLOTS, E_FLAGS, E_META_SIZE, F_HAS, F_IN_FILE,
  F_META_WITH_DATA,
} from "./layout";

// Run codes and the disk bytes an entry's elements take, shared by the
// bitmap, eviction and load kernels (not exported from the module). FORMAT.md
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

/**
 * Disk bytes of the record at `e`, as the byte limit counts them (FORMAT.md
 * §5.4): what evicting it frees. Its data's run of slots or large file,
 * its metadata's slot or large file (nothing when stored after the data).
 */
// @ts-ignore: decorator
@inline export function recordDisk(e: usize): u64 {
  const flags = load<u8>(e, E_FLAGS);
  let s: u64 = 0;
  if (flags & F_HAS) {
    s += flags & F_IN_FILE
      ? fileDisk(load<u32>(e, E_DATA_SIZE))
      : <u64>runSlots(<u32>load<u8>(e, E_DATA_SLOTS)) * DATA_SLOT_BYTES;
  }
  if (flags & (F_HAS << 1)) {
    if (flags & (F_IN_FILE << 1)) s += fileDisk(load<u32>(e, E_META_SIZE));
    else if ((flags & F_META_WITH_DATA) == 0) s += META_SLOT_BYTES;
  }
  return s;
}
