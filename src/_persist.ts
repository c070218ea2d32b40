/**
 * The index on disk: reading the `entries` snapshot together with the
 * journal that continues it, and writing a snapshot for a rotation
 * (StoreState.rotate, after gvfs's update steps; FORMAT.md §10.3).
 *
 * @module
 */
import { decodeAttrSection, encodeAttrSection } from "./_attrs.ts";
import { CorruptError, ForeignFileError } from "./errors.ts";
import { readRootFile } from "./_foreign.ts";
import { encodeEntriesHeader } from "./format.ts";
import type { IndexMemory } from "./index_memory.ts";
import { type FileIO, readWhole } from "./io.ts";
import {
  decodeJournalHeader,
  JOURNAL_HEADER,
  JOURNAL_VERSION,
  journalName,
  type RawEntry,
  readEntries,
} from "./journal.ts";

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
  const tmp = `${dir}/entries.tmp`;
  const attrs = attrSection(mem);
  const fd = io.create(tmp);
  try {
    mem.withRecords((records) => {
      const header = encodeEntriesHeader(
        {
          count: mem.count,
          nextFileId,
          journalTag: tag,
        },
        records,
        attrs,
      );
      io.pwrite(fd, header, 0);
      io.pwrite(fd, records, header.length);
      if (attrs.length > 0) {
        io.pwrite(fd, attrs, header.length + records.length);
      }
    });
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

/** The attribute section (FORMAT.md §4.1) of the table in `mem`. */
export function attrSection(mem: IndexMemory): Uint8Array {
  return encodeAttrSection(mem.count, (i) => {
    const set = mem.attrs(i);
    return set && { set, lo: mem.hashLo(i), hi: mem.hashHi(i) };
  });
}

/**
 * Gives the entries of `mem` (just loaded) the attribute sets of a
 * snapshot's section; returns how many sets named no matching entry or
 * could not be read (dropped: damage).
 */
export function loadAttrSection(mem: IndexMemory, section: Uint8Array): number {
  if (section.length === 0) return 0;
  const items = decodeAttrSection(section);
  if (items === undefined) return 1;
  let dropped = 0;
  for (const it of items) {
    if (
      it.index < mem.count && mem.hashLo(it.index) === it.hashLo &&
      mem.hashHi(it.index) === it.hashHi && mem.attrs(it.index) === undefined
    ) {
      mem.setAttrs(it.index, it.set);
    } else dropped++;
  }
  return dropped;
}
