// The documented bound on a store's directory (FORMAT.md §5.4), shared by
// the disk-bound tests.
import { dataSlotBitsFor } from "../src/format.ts";

/** The fixed overhead FORMAT.md §5.4 names, for a store of these options. */
export function fixedOverhead(
  o: { limit: number; entryBits: number; journalBytes: number },
): number {
  const dataSlotBits = dataSlotBitsFor(o.entryBits, o.limit);
  const dataFiles = Math.ceil(2 ** dataSlotBits / 2 ** 19);
  const metaFiles = Math.ceil(2 ** o.entryBits / 4096);
  return 2 * o.journalBytes + // the journal, two during a rotation
    64 + 40 * 2 ** o.entryBits + // entries
    32 + 2 ** dataSlotBits / 8 + 2 ** o.entryBits / 8 + 8192 + // blocks
    4096 * (dataFiles + metaFiles) + // block file headers
    64 * 1024; // control, control.bak, CACHEDIR.TAG, lock, directories
}

/**
 * The most a block file's copy without its free slots adds while it is
 * under way (FORMAT.md §5.4): the length of the longest block file of a
 * store of these options, its header and slots.
 */
export function copyOverhead(
  o: { limit: number; entryBits: number },
): number {
  const dataSlots = Math.min(
    2 ** 19,
    2 ** dataSlotBitsFor(o.entryBits, o.limit),
  );
  const metaSlots = Math.min(4096, 2 ** o.entryBits);
  return 4096 + Math.max(64 * dataSlots, 1024 * metaSlots);
}
