/**
 * The journal file (FORMAT.md §10), after gvfs's metadata journal: a
 * fixed-size file of framed, checksummed entries that continues the
 * `entries` snapshot whose header names it. This module holds the file
 * header, the framing of entries (size at both ends, CRC-32) and the
 * appender; what an entry's body means (an index operation, its encoding
 * and how it is applied) is ops.ts's (FORMAT.md §11).
 *
 * @module
 */
import { crc32 } from "node:zlib";
import { CorruptError } from "./errors.ts";
import { checkVersion, VERSION, VERSION_MIN, versionsRead } from "./format.ts";
import type { FileIO } from "./io.ts";

const enc = new TextEncoder();
/** Journal magic (FORMAT.md §10.1). */
export const JOURNAL_MAGIC: Uint8Array = enc.encode("LARDERJL");
/** Journal format version written (FORMAT.md §10.1; see VERSION). */
export const JOURNAL_VERSION: number = VERSION.journal;
/**
 * Oldest journal version still read: earlier ones belong to stores of
 * 8 KiB data slots, which control refuses (FORMAT.md §3).
 */
export const JOURNAL_VERSION_MIN: number = VERSION_MIN.journal;
/** The journal versions read, for messages. */
export const JOURNAL_VERSIONS_READ: string = versionsRead(
  JOURNAL_VERSION,
  JOURNAL_VERSION_MIN,
);
/** Bytes of the journal header; entries start here. */
export const JOURNAL_HEADER = 32;
/** Offset of the `rotated` word, changed in place through the open file. */
export const ROTATED_OFFSET = 20;

/**
 * Default journal size of a table of up to 2^20 entries: 8 MiB (about
 * 70,000 store operations).
 */
export const DEFAULT_JOURNAL_BYTES = 8 * 2 ** 20;

/**
 * Default journal size for a table of 2^entryBits entries: 8 MiB up to
 * 2^20 entries, then doubling with the table (128 MiB at 2^24), so that
 * each rotation, which rewrites the whole `entries` snapshot (40 bytes a
 * table slot), comes once per as many operations per snapshot byte as in
 * a 1M-entry store.
 */
export function defaultJournalBytes(entryBits: number): number {
  return DEFAULT_JOURNAL_BYTES * 2 ** Math.max(0, entryBits - 20);
}

/** Zeros written per call when a journal is created. */
const ZERO_CHUNK = 2 ** 20;

/** File name of the journal with `tag`. */
export function journalName(tag: number): string {
  return `journal-${(tag >>> 0).toString(16).padStart(8, "0").toUpperCase()}`;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** Encodes a journal header (the rotated word 0). */
export function encodeJournalHeader(tag: number, size: number): Uint8Array {
  const b = new Uint8Array(JOURNAL_HEADER);
  const v = view(b);
  b.set(JOURNAL_MAGIC, 0);
  v.setUint32(8, JOURNAL_VERSION, true);
  v.setUint32(12, tag, true);
  v.setUint32(16, size, true);
  v.setUint32(ROTATED_OFFSET, 0, true);
  v.setUint32(24, crc32(b.subarray(0, 20)), true);
  return b;
}

/** A parsed journal header. */
export interface JournalHeader {
  /** Format version (an older one is read, never appended to). */
  version: number;
  tag: number;
  size: number;
  rotated: boolean;
}

/**
 * Parses a journal header.
 * @throws {VersionMismatchError} for another version.
 * @throws {CorruptError} for anything else that does not check out.
 */
export function decodeJournalHeader(b: Uint8Array): JournalHeader {
  if (b.length < JOURNAL_HEADER || JOURNAL_MAGIC.some((m, i) => b[i] !== m)) {
    throw new CorruptError(
      "Cannot read journal: bad magic or truncated header",
    );
  }
  const v = view(b);
  const version = v.getUint32(8, true);
  checkVersion("journal", version, JOURNAL_VERSION, JOURNAL_VERSION_MIN);
  if (v.getUint32(24, true) !== crc32(b.subarray(0, 20))) {
    throw new CorruptError("Cannot read journal: header checksum mismatch");
  }
  return {
    version,
    tag: v.getUint32(12, true),
    size: v.getUint32(16, true),
    rotated: v.getUint32(ROTATED_OFFSET, true) !== 0,
  };
}

// ---- entry framing ----------------------------------------------------------

/**
 * Offset of an entry's body: after its size and checksum (FORMAT.md
 * §10.2). The body is an encoded operation (ops.ts); framing does not
 * look inside it.
 */
export const BODY_AT = 8;
/** Bytes framing adds to a body: size, checksum, trailing size. */
export const FRAME_BYTES = 12;
/** Smallest valid entry (a body of at least 8 bytes). */
export const MIN_ENTRY = 20;

// Small entries (every store) are framed here rather than in a fresh
// buffer, which costs about as much as the journal write itself.
const SCRATCH = new Uint8Array(1024);
const SCRATCH_VIEW = new DataView(SCRATCH.buffer);

/**
 * A zeroed entry with room for a body of `bodyLen` bytes at BODY_AT; the
 * caller writes the body, then seals it. An entry that fits is framed in
 * a shared buffer: it is valid only until the next `frame`.
 */
export function frame(bodyLen: number): { b: Uint8Array; v: DataView } {
  const size = (bodyLen + FRAME_BYTES + 3) & ~3;
  if (size <= SCRATCH.length) {
    const b = SCRATCH.subarray(0, size);
    b.fill(0); // reserved bytes and padding are zero
    return { b, v: SCRATCH_VIEW };
  }
  const b = new Uint8Array(size);
  return { b, v: new DataView(b.buffer) };
}

/** Writes the sizes and the checksum of a framed entry. */
export function seal(b: Uint8Array, v: DataView): Uint8Array {
  v.setUint32(0, b.length, true);
  v.setUint32(b.length - 4, b.length, true);
  v.setUint32(4, crc32(b.subarray(BODY_AT)), true);
  return b;
}

/**
 * A checked journal entry: where it is, and its body (an encoded
 * operation, padding included) as bytes [bodyAt, bodyAt + bodyLen) of
 * `view`, a view of the whole image shared by its entries (a view per
 * entry costs more than checking it).
 */
export class RawEntry {
  /**
   * @param view The journal image.
   * @param offset Offset of the entry in the file.
   * @param size The entry's size, framing included.
   */
  constructor(
    readonly view: DataView,
    readonly offset: number,
    readonly size: number,
  ) {}

  /** Offset of the body in `view`. */
  get bodyAt(): number {
    return this.offset + BODY_AT;
  }

  /** Bytes of the body. */
  get bodyLen(): number {
    return this.size - FRAME_BYTES;
  }

  /** A view of the body alone. */
  get body(): DataView {
    const v = this.view;
    return new DataView(v.buffer, v.byteOffset + this.bodyAt, this.bodyLen);
  }
}

/**
 * How `readEntries` computes the CRC-32 of bytes [at, end) of `file` (an
 * entry's body): zlib's by default; open passes the WASM kernel's
 * (_journal_crc.ts), which is bit-exact and cheaper per call.
 */
export type EntryChecksum = (
  file: Uint8Array,
  at: number,
  end: number,
) => number;

/** zlib's CRC-32 of bytes [at, end) of `file`. */
export const zlibChecksum: EntryChecksum = (file, at, end) =>
  crc32(file.subarray(at, end));

/**
 * The valid entries of a journal image, in order, and where they end: the
 * first entry whose sizes disagree, run past the file or fail the checksum
 * ends the journal (everything after it is ignored).
 */
export function readEntries(
  file: Uint8Array,
  checksum: EntryChecksum = zlibChecksum,
): { entries: RawEntry[]; end: number } {
  const v = view(file);
  const entries: RawEntry[] = [];
  let at = JOURNAL_HEADER;
  while (at + MIN_ENTRY <= file.length) {
    const size = v.getUint32(at, true);
    if (size < MIN_ENTRY || (size & 3) !== 0 || at + size > file.length) {
      break;
    }
    if (v.getUint32(at + size - 4, true) !== size) break;
    if (v.getUint32(at + 4, true) !== checksum(file, at + BODY_AT, at + size)) {
      break;
    }
    entries.push(new RawEntry(v, at, size));
    at += size;
  }
  return { entries, end: at };
}

/**
 * Bytes at the end of a journal of `size` bytes kept for removals (a
 * sixteenth of it, at most 1 MiB; see {@linkcode Journal.reserve}).
 */
export function journalReserve(size: number): number {
  return Math.min(size >>> 4, 2 ** 20);
}

/**
 * The largest entry larder appends to a journal of `size` bytes: one that
 * fits an empty journal outside the reserve. Removal and touch batches are
 * split to fit it, and a store of the longest key is far below it, so no
 * single append is larger.
 */
export function maxEntryBytes(size: number): number {
  return size - JOURNAL_HEADER - journalReserve(size);
}

/**
 * One past the last byte the entry at `end` (where `readEntries` stopped)
 * could cover if it is one append torn by a crash or a killed process
 * (FORMAT.md §10.2). A torn write keeps some of the entry's 512-byte
 * sectors, so its nonzero bytes lie within the entry's extent: the size
 * its first word declares when that is a size larder writes, or, when the
 * first word is zero (its first sector never reached the disk), anything
 * up to the largest single append. A nonzero first word that is not such
 * a size was never written by larder: the extent is empty, and any
 * nonzero byte after `end` is damage.
 */
export function tornEntryEnd(file: Uint8Array, end: number): number {
  const limit = Math.min(file.length, end + maxEntryBytes(file.length));
  // No entry larder appends could start this close to the end.
  if (end + MIN_ENTRY > file.length) return end;
  const size = view(file).getUint32(end, true);
  if (size === 0) return limit;
  const sane = size >= MIN_ENTRY && (size & 3) === 0 && end + size <= limit;
  return sane ? end + size : end;
}

// ---- the writer --------------------------------------------------------------

/**
 * An open journal being appended to.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NodeFileIO, readWhole } from "./io.ts";
 * import { Journal, journalName, readEntries } from "./journal.ts";
 * import { encodeOp, OP, REMOVE_REASON } from "./ops.ts";
 *
 * const io = new NodeFileIO();
 * const dir = await Deno.makeTempDir();
 * const j = Journal.create(io, dir, 1, 64 * 1024);
 * const op = encodeOp({
 *   tag: OP.remove,
 *   time: 0,
 *   reason: REMOVE_REASON.invalidate,
 *   items: [[3, 0x1234]],
 * });
 * assert.ok(j.fits(op.length)); // else the store rotates first
 * j.append(op);
 * j.close();
 * const image = readWhole(io, `${dir}/${journalName(1)}`)!;
 * assert.equal(readEntries(image).entries.length, 1);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class Journal {
  readonly tag: number;
  readonly size: number;
  #io: FileIO;
  #fd: number;
  #end: number;

  private constructor(
    io: FileIO,
    fd: number,
    tag: number,
    size: number,
    end: number,
  ) {
    this.#io = io;
    this.#fd = fd;
    this.tag = tag;
    this.size = size;
    this.#end = end;
  }

  /** Bytes of entries appended so far (header excluded). */
  get used(): number {
    return this.#end - JOURNAL_HEADER;
  }

  /**
   * Bytes at the end of the journal kept for removals (a sixteenth of it,
   * at most 1 MiB): other operations rotate before reaching them, so when
   * a rotation cannot run (a full disk) invalidations and evictions still
   * have room in the journal, whose blocks were all written at creation.
   */
  get reserve(): number {
    return journalReserve(this.size);
  }

  /** The largest entry that fits an empty journal outside the reserve. */
  get maxEntry(): number {
    return maxEntryBytes(this.size);
  }

  /**
   * Creates an empty journal named from `tag`, every byte of it written
   * (zeros after the header, not a sparse extent: appends then never need
   * a new disk block, so they still work on a full disk), and makes it
   * durable (file and directory fsynced). A journal that could not be
   * written whole is removed, so a failure leaves no partial file taking
   * space.
   */
  static create(io: FileIO, dir: string, tag: number, size: number): Journal {
    const path = `${dir}/${journalName(tag)}`;
    const fd = io.create(path);
    try {
      const chunk = new Uint8Array(Math.min(size, ZERO_CHUNK));
      chunk.set(encodeJournalHeader(tag, size), 0);
      for (let at = 0; at < size; at += chunk.length) {
        io.pwrite(fd, chunk.subarray(0, Math.min(chunk.length, size - at)), at);
        if (at === 0) chunk.fill(0, 0, JOURNAL_HEADER);
      }
      io.fsync(fd);
    } catch (err) {
      try {
        io.close(fd);
        io.unlink(path);
      } catch { /* the write failure is the one to report */ }
      throw err;
    }
    // Reopened read-write below: create() opened it write-only.
    io.close(fd);
    io.syncDir(dir);
    return new Journal(io, io.openRW(path, false), tag, size, JOURNAL_HEADER);
  }

  /**
   * Reopens journal `tag` to append from `end` (its start when it is
   * empty). Bytes after `end` up to `dirtyTo` (a torn entry) are zeroed
   * first, so no stale entry can follow a new one.
   */
  static open(
    io: FileIO,
    dir: string,
    tag: number,
    end = JOURNAL_HEADER,
    dirtyTo = end,
  ): Journal {
    const fd = io.openRW(`${dir}/${journalName(tag)}`, false);
    try {
      if (dirtyTo > end) {
        io.pwrite(fd, new Uint8Array(dirtyTo - end), end);
        io.fsync(fd);
      }
      return new Journal(io, fd, tag, io.size(fd), end);
    } catch (err) {
      io.close(fd);
      throw err;
    }
  }

  /**
   * True when an entry of `bytes` fits in what is left; with `reserved`,
   * counting the reserve (for removals only).
   */
  fits(bytes: number, reserved = false): boolean {
    return this.#end + bytes <= this.size - (reserved ? 0 : this.reserve);
  }

  /**
   * Appends one encoded entry (the caller checked `fits`, with the reserve
   * for removals). A failed write is zeroed again where it can be, so a
   * torn entry is not left for check-store to call corrupt.
   */
  append(entry: Uint8Array): void {
    if (this.#end + entry.length > this.size) {
      throw new RangeError("Cannot append to journal: full");
    }
    try {
      this.#io.pwrite(this.#fd, entry, this.#end);
    } catch (err) {
      try {
        this.#io.pwrite(this.#fd, new Uint8Array(entry.length), this.#end);
      } catch { /* the write failure is the one to report */ }
      throw err;
    }
    this.#end += entry.length;
  }

  /** Makes every appended entry durable. */
  sync(): void {
    this.#io.fsync(this.#fd);
  }

  /** Sets the rotated word through the open file and syncs it (gvfs step 5-6). */
  markRotated(): void {
    const one = new Uint8Array(4);
    view(one).setUint32(0, 1, true);
    this.#io.pwrite(this.#fd, one, ROTATED_OFFSET);
    this.#io.fsync(this.#fd);
  }

  /** Closes the file. */
  close(): void {
    this.#io.close(this.#fd);
  }
}
