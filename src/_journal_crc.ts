/**
 * The checksum open verifies journal entries with: the WASM CRC-32 kernel
 * over windows of the journal copied into the index's stage, instead of
 * one zlib call per entry (a kept journal holds thousands of small
 * entries, and each zlib call costs far more than its bytes).
 *
 * @module
 */
import { type EntryChecksum, zlibChecksum } from "./journal.ts";
import type { IndexMemory } from "./index_memory.ts";

/**
 * Bytes of the journal copied into the stage at a time: its initial size
 * (STAGE_BYTES), so the stage never grows for it. An entry longer than a
 * window is checksummed by zlib.
 */
const WINDOW = 1 << 20;

/**
 * An EntryChecksum through `mem`'s stage (which it clobbers). Valid while
 * nothing else uses the stage or grows the memory: for one `readEntries`.
 */
export function stagedChecksum(mem: IndexMemory): EntryChecksum {
  let src: Uint8Array | undefined;
  let from = 0;
  let to = 0;
  return (file, at, end) => {
    if (file !== src || at < from || end > to) {
      const n = Math.min(file.length - at, WINDOW);
      if (end - at > n) return zlibChecksum(file, at, end);
      mem.stage(n).set(file.subarray(at, at + n));
      src = file;
      from = at;
      to = at + n;
    }
    return mem.crc32StageAt(at - from, end - at);
  };
}
