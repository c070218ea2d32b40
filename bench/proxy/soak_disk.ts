/**
 * The soak's disk measures: a store directory's allocated bytes (what `du`
 * counts by default: a sparse block file's holes take nothing) next to its
 * apparent size (`du -b`, which counts them), and the bound the README's
 * "Disk use" and FORMAT.md §5.4 document for it.
 *
 * @module
 */
import { defaultJournalBytes } from "../../src/journal.ts";
import { DEFAULT_ENTRY_BITS } from "../../src/options.ts";
import { copyOverhead, fixedOverhead } from "../../tests/_disk_bound.ts";

/**
 * Allocated and apparent bytes of every file and directory under `path`,
 * and whether a block file's copy (`dblk/*.tmp`, `mblk/*.tmp`) was there.
 */
export function diskUse(
  path: string,
): { allocated: number; apparent: number; copying: boolean } {
  let allocated = 0;
  let apparent = 0;
  let copying = false;
  const walk = (p: string) => {
    let st: Deno.FileInfo;
    try {
      st = Deno.lstatSync(p);
    } catch {
      return; // removed meanwhile (an evicted large file)
    }
    allocated += (st.blocks ?? 0) * 512;
    apparent += st.size;
    if (/\/[dm]blk\/[^/]*\.tmp$/.test(p)) copying = true;
    if (!st.isDirectory) return;
    try {
      for (const e of Deno.readDirSync(p)) walk(`${p}/${e.name}`);
    } catch { /* removed meanwhile */ }
  };
  walk(path);
  return { allocated, apparent, copying };
}

/**
 * The most a store of `limit` (default entryBits and journal, as
 * `deno task serve` opens it) may allocate (FORMAT.md §5.4): `idle`, the
 * limit + 10% + the fixed overhead; `copying`, that + one block file while
 * a block file is copied without its free slots.
 */
export function diskBound(limit: number): { idle: number; copying: number } {
  const o = {
    limit,
    entryBits: DEFAULT_ENTRY_BITS,
    journalBytes: defaultJournalBytes(DEFAULT_ENTRY_BITS),
  };
  const idle = limit * 1.1 + fixedOverhead(o);
  return { idle, copying: idle + copyOverhead(o) };
}
