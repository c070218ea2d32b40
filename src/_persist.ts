/**
 * The index on disk: reading the `entries` snapshot together with the
 * journal that continues it, and rotation (a new snapshot and an empty
 * journal), following gvfs's update steps (FORMAT.md §10.3).
 *
 * @module
 */
import { CorruptError, ForeignFileError } from "./errors.ts";
import { readRootFile } from "./_foreign.ts";
import { encodeBlocksHeader, encodeEntriesHeader } from "./format.ts";
import { DATA, type IndexMemory, META } from "./index_memory.ts";
import { KINDS, perKind } from "./kinds.ts";
import { type FileIO, readWhole, replaceFile } from "./io.ts";
import {
  decodeJournalHeader,
  Journal,
  JOURNAL_HEADER,
  JOURNAL_VERSION,
  journalName,
  type RawEntry,
  readEntries,
} from "./journal.ts";
import type { StoreState } from "./_open.ts";

/** How often a reader retries when a rotation raced it. */
const MAX_ROTATION_RETRIES = 8;

/** A snapshot and the journal that continues it, as read from disk. */
export interface IndexImage {
  /** The raw `entries` file, if there is one. */
  snapshot: Uint8Array | undefined;
  /** The journal tag named by the snapshot header. */
  journalTag: number | undefined;
  /**
   * The journal's valid entries; `pristine` when it is empty and zeroed.
   * `appendAt`, for an undamaged journal of the current version, is where
   * its valid entries end, and `tail` the bytes after them (zeros, or a
   * torn entry): a store that cannot rotate (a full disk) appends there.
   */
  journal:
    | {
      entries: RawEntry[];
      pristine: boolean;
      appendAt: number | undefined;
      tail: Uint8Array;
    }
    | undefined;
  /**
   * Why the journal could not be used, or (with `journal` set) what was
   * wrong with it although its entries could be read.
   */
  journalError: string | undefined;
}

function tagOf(snapshot: Uint8Array): number | undefined {
  if (snapshot.length < 28) return undefined;
  return new DataView(snapshot.buffer, snapshot.byteOffset).getUint32(24, true);
}

function allZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** One past the last non-zero byte of `b`, or 0. */
export function nonZeroEnd(b: Uint8Array): number {
  for (let i = b.length - 1; i >= 0; i--) if (b[i] !== 0) return i + 1;
  return 0;
}

/**
 * Reads the snapshot and its journal as one consistent pair. A journal
 * marked rotated while the snapshot changed, or gone while it changed,
 * means a writer rotated between our reads: read both again (at most 8
 * times, so two processes rotating in step cannot loop a reader forever).
 * A journal marked rotated that the snapshot still names, or whose length
 * disagrees with its header, is damaged: its valid entries are returned
 * with `journalError` saying what was wrong.
 */
export function readIndexImage(io: FileIO, dir: string): IndexImage {
  for (let attempt = 0; attempt < MAX_ROTATION_RETRIES; attempt++) {
    const snapshot = readRootFile(io, dir, "entries");
    if (snapshot === undefined) {
      return {
        snapshot,
        journalTag: undefined,
        journal: undefined,
        journalError: undefined,
      };
    }
    const tag = tagOf(snapshot);
    if (tag === undefined) {
      return {
        snapshot,
        journalTag: tag,
        journal: undefined,
        journalError: "short snapshot",
      };
    }
    let bytes: Uint8Array | undefined;
    try {
      bytes = readWhole(io, `${dir}/${journalName(tag)}`);
    } catch (err) {
      // Not a regular file (a FIFO, a directory): damaged. A new journal
      // under a new tag replaces it; the object itself is left alone.
      if (!(err instanceof ForeignFileError)) throw err;
      return {
        snapshot,
        journalTag: tag,
        journal: undefined,
        journalError: err.message,
      };
    }
    if (bytes === undefined) {
      const again = readRootFile(io, dir, "entries");
      if (again !== undefined && tagOf(again) !== tag) continue; // rotated meanwhile
      return {
        snapshot,
        journalTag: tag,
        journal: undefined,
        journalError: "journal missing",
      };
    }
    let rotated: boolean;
    let size: number;
    let current: boolean;
    try {
      const h = decodeJournalHeader(bytes);
      if (h.tag !== tag) {
        return {
          snapshot,
          journalTag: tag,
          journal: undefined,
          journalError: "journal header names another snapshot",
        };
      }
      rotated = h.rotated;
      size = h.size;
      current = h.version === JOURNAL_VERSION;
    } catch (err) {
      if (!(err instanceof CorruptError)) throw err;
      return {
        snapshot,
        journalTag: tag,
        journal: undefined,
        journalError: err.message,
      };
    }
    let damage: string | undefined;
    if (rotated) {
      const again = readRootFile(io, dir, "entries");
      if (again === undefined || tagOf(again) !== tag) continue; // rotated meanwhile
      // The snapshot still names it, so no rotation got as far as its
      // rename (a rotation marks the old journal only after that): the word
      // is damaged. The entries are whole and continue this snapshot.
      damage = "journal marked rotated but still current";
    }
    if (size !== bytes.length) {
      // Truncated, or grown by garbage: the entries within both lengths
      // are checked one by one like any others.
      damage = "journal length disagrees with its header";
    }
    const usable = bytes.subarray(0, Math.min(size, bytes.length));
    const { entries, end } = readEntries(usable);
    // An older version's journal is replaced, never appended to (its
    // readers would stop at the newer operations).
    const pristine = damage === undefined && current &&
      end === JOURNAL_HEADER &&
      allZero(usable.subarray(JOURNAL_HEADER));
    const appendable = damage === undefined && current;
    return {
      snapshot,
      journalTag: tag,
      journal: {
        entries,
        pristine,
        appendAt: appendable ? end : undefined,
        tail: usable.subarray(end),
      },
      journalError: damage,
    };
  }
  throw new CorruptError(
    `Cannot read index: the journal was rotated ${MAX_ROTATION_RETRIES} times while reading`,
  );
}

/**
 * Makes the slots queued in `s.slotFrees` reusable; call it once the
 * journal entry (or snapshot) that stopped referring to them is durable.
 */
export function releaseSlotFrees(s: StoreState): void {
  if (s.slotFrees.every((slots) => slots.length === 0)) return;
  for (const kind of KINDS) {
    for (const slot of s.slotFrees[kind]) {
      s.mem.freeSlot(kind, slot);
      s.files.slotFreed(kind, slot);
    }
  }
  s.slotFrees = perKind(() => []);
  s.blocksDirty = true;
  s.files.trimFreeTails((kind) => s.mem.useMap(kind));
}

/** A random journal tag different from `old`. */
export function newTag(old: number | undefined): number {
  for (;;) {
    const t = crypto.getRandomValues(new Uint32Array(1))[0]!;
    if (t !== old) return t;
  }
}

/**
 * Step 2 of a rotation: the table as `entries.tmp`, naming the journal
 * `tag`, fsynced. Returns its path; the caller renames it over `entries`
 * once that journal exists.
 */
export function writeSnapshotTemp(
  io: FileIO,
  dir: string,
  mem: IndexMemory,
  nextFileId: number,
  tag: number,
): string {
  const records = mem.records();
  const header = encodeEntriesHeader({
    count: mem.count,
    nextFileId,
    journalTag: tag,
  }, records);
  const tmp = `${dir}/entries.tmp`;
  const fd = io.create(tmp);
  try {
    io.pwrite(fd, header, 0);
    io.pwrite(fd, records, header.length);
    io.fsync(fd);
  } catch (err) {
    // A partial snapshot would only take space (a full disk): remove it.
    try {
      io.close(fd);
      io.unlink(tmp);
    } catch { /* the write failure is the one to report */ }
    throw err;
  }
  io.close(fd);
  return tmp;
}

/**
 * Writes a new snapshot of the table and switches to a new empty journal:
 * 1 element bytes synced, 2 snapshot to `entries.tmp` with fsync, 3 new
 * journal created (named from a new random tag) and synced, 4 rename over
 * `entries` and sync the directory (the commit point), 5-6 old journal
 * marked rotated through its open file and synced, 7 old journal removed.
 * A crash at any step leaves the old pair or the new one; so does a failure
 * (a failed directory sync after the rename leaves the old journal whole).
 */
export function rotate(io: FileIO, dir: string, s: StoreState): void {
  // Everything below goes by path: never into another directory.
  s.checkDir("write index");
  s.files.syncPending();
  const old = s.journal;
  const tag = newTag(old?.tag);
  const tmp = writeSnapshotTemp(io, dir, s.mem, s.nextFileId, tag);
  let journal: Journal;
  try {
    journal = Journal.create(io, dir, tag, s.journalBytes);
  } catch (err) {
    try {
      io.unlink(tmp);
    } catch { /* the create failure is the one to report */ }
    throw err;
  }
  try {
    io.rename(tmp, `${dir}/entries`);
  } catch (err) {
    journal.close();
    io.unlink(`${dir}/${journalName(tag)}`);
    throw err;
  }
  // The rename happened: `entries` names the new journal now, so every
  // later change goes there, whatever fails next.
  s.journal = journal;
  try {
    io.syncDir(dir);
  } catch (err) {
    // The rename may not be durable, and a power loss could bring back the
    // old pair: leave the old journal whole (not marked, not removed; the
    // next open removes it), and sync the directory again before anything
    // else is made durable.
    s.files.syncDirLater(dir);
    try {
      old?.close();
    } catch { /* the sync failure is the one to report */ }
    throw err;
  }
  // The new snapshot is durable: the files and slots it no longer refers
  // to can go.
  s.files.commitRemovals();
  releaseSlotFrees(s);
  if (old !== undefined) {
    try {
      old.markRotated();
    } finally {
      old.close();
      io.unlink(`${dir}/${journalName(old.tag)}`);
    }
  }
  if (s.blocksDirty) {
    const data = s.mem.useMap(DATA);
    const meta = s.mem.useMap(META);
    replaceFile(io, dir, "blocks", [
      encodeBlocksHeader(s.files.slotCounts, data, meta),
      data,
      meta,
    ]);
    s.blocksDirty = false;
  }
}
