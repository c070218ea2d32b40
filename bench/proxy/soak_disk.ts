/**
 * The soak's disk measures: a store directory's allocated bytes (what `du`
 * counts by default: a sparse block file's holes take nothing) next to its
 * apparent size (`du -b`, which counts them), and the bound the README's
 * "Disk use" and FORMAT.md §5.4 document for it.
 *
 * @module
 */
import { dataSlotBitsFor } from "../../src/format.ts";
import { defaultJournalBytes } from "../../src/journal.ts";
import { DEFAULT_ENTRY_BITS } from "../../src/options.ts";

/** Allocated and apparent bytes of every file and directory under `path`. */
export function diskUse(path: string): { allocated: number; apparent: number } {
  let allocated = 0;
  let apparent = 0;
  const walk = (p: string) => {
    let st: Deno.FileInfo;
    try {
      st = Deno.lstatSync(p);
    } catch {
      return; // removed meanwhile (an evicted large file)
    }
    allocated += (st.blocks ?? 0) * 512;
    apparent += st.size;
    if (!st.isDirectory) return;
    try {
      for (const e of Deno.readDirSync(p)) walk(`${p}/${e.name}`);
    } catch { /* removed meanwhile */ }
  };
  walk(path);
  return { allocated, apparent };
}

/**
 * The most a store of `limit` (default entryBits and journal, as
 * `deno task serve` opens it) may allocate: the limit + 10% + the fixed
 * overhead of FORMAT.md §5.4 (two journals during a rotation, `entries`
 * at 40 bytes an entry of a full table, `blocks`, a 4 KiB header a block
 * file, 64 KiB for control files and directories).
 */
export function diskBound(limit: number): number {
  const entryBits = DEFAULT_ENTRY_BITS;
  const dataSlotBits = dataSlotBitsFor(entryBits, limit);
  const blockFiles = Math.ceil(2 ** dataSlotBits / 2 ** 19) +
    Math.ceil(2 ** entryBits / 4096);
  return limit * 1.1 + 2 * defaultJournalBytes(entryBits) +
    64 + 40 * 2 ** entryBits +
    32 + 2 ** dataSlotBits / 8 + 2 ** entryBits / 8 +
    4096 * blockFiles + 64 * 1024;
}
