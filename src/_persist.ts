/**
 * The index on disk: reading the `entries` snapshot together with the
 * journal that continues it, and writing a snapshot for a rotation
 * (StoreState.rotate, after gvfs's update steps; FORMAT.md §10.3).
 *
 * @module
 */
import { decodeAttrSection, encodeAttrSection } from "./_attrs.ts";
import { decodeOriginSection, encodeOriginSection } from "./_origins.ts";
import { CorruptError, ForeignFileError } from "./errors.ts";
import { moveAside } from "./_foreign.ts";
import { packRecords, unpackInPlace } from "./_entry_pack.ts";
import {
  checkEntriesAttrs,
  checkEntriesOrigins,
  checkEntriesRecords,
  decodeEntriesHeader,
  encodeEntriesHeader,
  ENTRIES_HEADER,
  type EntriesHeader,
} from "./format.ts";
import type { IndexMemory } from "./index_memory.ts";
import { stagedChecksum } from "./_journal_crc.ts";
import { Buffer } from "node:buffer";
import { type FileIO, readPrefix } from "./io.ts";
import {
  decodeJournalHeader,
  JOURNAL_HEADER,
  JOURNAL_VERSION,
  journalName,
  MIN_ENTRY,
  type RawEntry,
  readEntries,
} from "./journal.ts";

/** How often a reader retries when a rotation raced it. */
const MAX_ROTATION_RETRIES = 8;

/** A snapshot and the journal that continues it, as read from disk. */
export interface IndexImage {
  /**
   * The `entries` file, if there is one: its header, its records loaded
   * into the index memory; or the damage that kept them from it.
   */
  snapshot: Snapshot | undefined;
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

/** What a snapshot held, as {@linkcode readIndexImage} loaded it. */
export type Snapshot =
  | {
    header: EntriesHeader;
    attrs: Uint8Array;
    origins: Uint8Array;
    damage: undefined;
  }
  | {
    header: undefined;
    attrs: undefined;
    origins: undefined;
    damage: CorruptError;
  };

/** A snapshot read, with the journal tag its first bytes name. */
interface SnapshotRead {
  snapshot: Snapshot;
  tag: number | undefined;
}

/**
 * Reads `entries` (undefined when missing, or a foreign object moved
 * aside), its records straight into `mem` (FORMAT.md §4): no copy of the
 * file is made, the checksum is taken where they lie.
 */
function readSnapshot(
  io: FileIO,
  dir: string,
  mem: IndexMemory,
): SnapshotRead | undefined {
  const path = `${dir}/entries`;
  if (io.kind(path) === "missing") return undefined;
  let fd: number;
  try {
    fd = io.openR(path);
  } catch (err) {
    if (!(err instanceof ForeignFileError)) throw err;
    moveAside(io, dir, "entries");
    return undefined;
  }
  try {
    const length = io.size(fd);
    const head = new Uint8Array(Math.min(length, ENTRIES_HEADER));
    const h = head.subarray(0, io.pread(fd, head, 0));
    const tag = tagOf(h);
    try {
      const {
        header,
        version,
        recordsLength,
        recordsCrc,
        attrLength,
        attrsCrc,
        originLength,
        originsCrc,
      } = decodeEntriesHeader(h, length);
      if (header.count > mem.capacity) {
        throw new CorruptError("Cannot read entries: more than capacity");
      }
      mem.loadRecordsWith(header.count, (dest) => {
        // Packed records (version 6) go to the table's tail and are
        // expanded in place (`_entry_pack.ts`); version 5's are the table.
        const packed = dest.subarray(dest.length - recordsLength);
        if (io.pread(fd, packed, ENTRIES_HEADER) !== packed.length) {
          throw new CorruptError("Cannot read entries: truncated records");
        }
        checkEntriesRecords(packed, recordsCrc);
        if (version !== 5) {
          unpackInPlace(
            dest,
            header.count,
            recordsLength,
            (n, len) => mem.expandRecordsLoading(n, len),
          );
        }
      });
      // The attribute section after the records (FORMAT.md §4.2).
      const attrs = new Uint8Array(attrLength);
      const at = ENTRIES_HEADER + recordsLength;
      if (io.pread(fd, attrs, at) !== attrLength) {
        throw new CorruptError("Cannot read entries: truncated attributes");
      }
      checkEntriesAttrs(attrs, attrsCrc);
      // The origin section after it (FORMAT.md §4.3).
      const origins = new Uint8Array(originLength);
      if (io.pread(fd, origins, at + attrLength) !== originLength) {
        throw new CorruptError("Cannot read entries: truncated origins");
      }
      checkEntriesOrigins(origins, originsCrc);
      return {
        snapshot: { header, attrs, origins, damage: undefined },
        tag,
      };
    } catch (err) {
      if (!(err instanceof CorruptError)) throw err;
      return {
        snapshot: {
          header: undefined,
          attrs: undefined,
          origins: undefined,
          damage: err,
        },
        tag,
      };
    }
  } finally {
    io.close(fd);
  }
}

/**
 * The journal tag `entries` names now (undefined when it is too short to
 * name one), or "missing": for a reader that lost a race with a rotation.
 */
function currentTag(io: FileIO, dir: string): number | undefined | "missing" {
  const path = `${dir}/entries`;
  if (io.kind(path) === "missing") return "missing";
  return tagOf(readPrefix(io, path, 28));
}

function tagOf(snapshot: Uint8Array): number | undefined {
  if (snapshot.length < 28) return undefined;
  return new DataView(snapshot.buffer, snapshot.byteOffset).getUint32(24, true);
}

/** Bytes of a journal read before looking at the rest (a pristine one's). */
const JOURNAL_HEAD_READ = 64 * 1024;
/** Bytes compared at a time when checking that a journal's tail is zeros. */
const ZERO_SCAN = 256 * 1024;
/** Never written: what a zero tail is compared with. */
const ZEROS = new Uint8Array(ZERO_SCAN);
/** The zero check's read buffer, reused by every open of the process. */
let scanBuffer: Uint8Array | undefined;

/** True when every byte of `b` is 0 (a native compare, a chunk at a time). */
export function allZero(b: Uint8Array): boolean {
  for (let at = 0; at < b.length; at += ZERO_SCAN) {
    const n = Math.min(ZERO_SCAN, b.length - at);
    const part = Buffer.from(b.buffer, b.byteOffset + at, n);
    if (!part.equals(Buffer.from(ZEROS.buffer, 0, n))) return false;
  }
  return true;
}

/**
 * A journal file as open reads it: `bytes` are its first bytes, and every
 * byte from there to `length` (the bytes read in all) is known to be 0.
 */
interface JournalFile {
  bytes: Uint8Array;
  length: number;
}

/**
 * Where a walk over the framing of `b` (sizes only, no checksums) stops,
 * and whether the entry there may run on past `b` within a file of
 * `fileSize` bytes (then the caller reads more). Every entry `readEntries`
 * would keep in the whole file lies before that point: the entry there
 * fails in `b` as it would in the file (its size, its trailing copy, or
 * running past the file), unless `more`.
 */
function framingEnd(
  b: Uint8Array,
  fileSize: number,
): { at: number; more: boolean } {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let at = JOURNAL_HEADER;
  for (;;) {
    if (at + MIN_ENTRY > b.length) return { at, more: b.length < fileSize };
    const size = v.getUint32(at, true);
    if (size < MIN_ENTRY || (size & 3) !== 0 || at + size > fileSize) {
      return { at, more: false };
    }
    if (at + size > b.length) return { at: at + size, more: true };
    if (v.getUint32(at + size - 4, true) !== size) return { at, more: false };
    at += size;
  }
}

/**
 * Reads the journal at `path` (undefined when missing): its first bytes,
 * as far as its entries' framing goes (64 KiB at least), then checks the
 * rest to be zeros through one small reused buffer rather than reading it
 * whole (8 MiB or more by default, mostly zeros after a close). A journal
 * with anything but zeros after its entries is read whole.
 * @throws {ForeignFileError} when something other than a regular file is
 * there.
 */
function readJournalFile(io: FileIO, path: string): JournalFile | undefined {
  if (io.kind(path) === "missing") return undefined;
  const fd = io.openR(path);
  try {
    const size = io.size(fd);
    let bytes = new Uint8Array(Math.min(size, JOURNAL_HEAD_READ));
    let got = io.pread(fd, bytes, 0);
    if (got < bytes.length) {
      return { bytes: bytes.subarray(0, got), length: got };
    }
    for (;;) {
      const walk = framingEnd(bytes, size);
      if (!walk.more) break;
      // An entry runs on past what was read: read at least that far.
      const grown = new Uint8Array(
        Math.min(size, Math.max(2 * bytes.length, walk.at + JOURNAL_HEAD_READ)),
      );
      grown.set(bytes);
      const n = io.pread(fd, grown.subarray(bytes.length), bytes.length);
      if (n < grown.length - bytes.length) {
        // Shorter than its size said: what there is, as it is.
        return {
          bytes: grown.subarray(0, bytes.length + n),
          length: bytes.length + n,
        };
      }
      bytes = grown;
    }
    let length = bytes.length;
    let zeroTail = true;
    const buf = scanBuffer ??= new Uint8Array(ZERO_SCAN);
    while (length < size) {
      const part = buf.subarray(0, Math.min(ZERO_SCAN, size - length));
      const n = io.pread(fd, part, length);
      if (!allZero(part.subarray(0, n))) {
        zeroTail = false;
        break;
      }
      length += n;
      if (n < part.length) break; // shorter than its size said
    }
    if (zeroTail) return { bytes, length };
    // Damage, or a torn entry, after the entries: the whole file, as it is.
    const whole = new Uint8Array(size);
    whole.set(bytes);
    got = io.pread(fd, whole.subarray(bytes.length), bytes.length);
    const total = bytes.length + got;
    return { bytes: whole.subarray(0, total), length: total };
  } finally {
    io.close(fd);
  }
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
export function readIndexImage(
  io: FileIO,
  dir: string,
  mem: IndexMemory,
): IndexImage {
  for (let attempt = 0; attempt < MAX_ROTATION_RETRIES; attempt++) {
    const read = readSnapshot(io, dir, mem);
    if (read === undefined) {
      return {
        snapshot: undefined,
        journalTag: undefined,
        journal: undefined,
        journalError: undefined,
      };
    }
    const { snapshot, tag } = read;
    if (tag === undefined) {
      return {
        snapshot,
        journalTag: tag,
        journal: undefined,
        journalError: "short snapshot",
      };
    }
    let file: JournalFile | undefined;
    try {
      file = readJournalFile(io, `${dir}/${journalName(tag)}`);
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
    if (file === undefined) {
      const again = currentTag(io, dir);
      if (again !== "missing" && again !== tag) continue; // rotated meanwhile
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
      const h = decodeJournalHeader(file.bytes);
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
      if (currentTag(io, dir) !== tag) continue; // rotated meanwhile
      // The snapshot still names it, so no rotation got as far as its
      // rename (a rotation marks the old journal only after that): the word
      // is damaged. The entries are whole and continue this snapshot.
      damage = "journal marked rotated but still current";
    }
    if (size !== file.length) {
      // Truncated, or grown by garbage: the entries within both lengths
      // are checked one by one like any others.
      damage = "journal length disagrees with its header";
    }
    // Only the zeros of a pristine journal's tail are left out of `bytes`.
    const usable = file.bytes.subarray(0, Math.min(size, file.length));
    const { entries, end } = readEntries(usable, stagedChecksum(mem));
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
  const origins = originSection(mem);
  const fd = io.create(tmp);
  try {
    mem.withRecords((records) => {
      // The records packed a chunk at a time after the header's place
      // (FORMAT.md §4), then the sections, then the header with their
      // length and CRC-32.
      let at = ENTRIES_HEADER;
      const packed = packRecords(records, mem.count, (chunk) => {
        io.pwrite(fd, chunk, at);
        at += chunk.length;
      });
      if (attrs.length > 0) io.pwrite(fd, attrs, at);
      if (origins.length > 0) io.pwrite(fd, origins, at + attrs.length);
      const header = encodeEntriesHeader(
        { count: mem.count, nextFileId, journalTag: tag },
        packed,
        attrs,
        origins,
      );
      io.pwrite(fd, header, 0);
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

/** The origin section (FORMAT.md §4.3) of the table in `mem`. */
export function originSection(mem: IndexMemory): Uint8Array {
  if (!mem.anyOrigins()) return new Uint8Array(0);
  return encodeOriginSection(mem.count, (i) => {
    const o = mem.origins(i);
    return o && { o, lo: mem.hashLo(i), hi: mem.hashHi(i) };
  });
}

/**
 * Gives the entries of `mem` (just loaded) the element origins of a
 * snapshot's section; returns how many items named no matching entry or
 * could not be read (dropped: damage; the reads of those elements then
 * miss, and open's record check drops claims that no longer agree).
 */
export function loadOriginSection(
  mem: IndexMemory,
  section: Uint8Array,
): number {
  if (section.length === 0) return 0;
  const items = decodeOriginSection(section);
  if (items === undefined) return 1;
  let dropped = 0;
  for (const it of items) {
    if (
      it.index < mem.count && mem.hashLo(it.index) === it.hashLo &&
      mem.hashHi(it.index) === it.hashHi &&
      mem.origins(it.index) === undefined
    ) {
      mem.setOrigins(it.index, it.origins);
    } else dropped++;
  }
  return dropped;
}
