/**
 * The journal (FORMAT.md §10), after gvfs's metadata journal: a fixed-size
 * file of checksummed operations that continues the `entries` snapshot
 * whose header names it. Every index change is appended before the call
 * that made it resolves; at open the operations are replayed onto the
 * snapshot, up to the first entry whose size or checksum fails.
 *
 * Operations name entries by their index in the table. The store appends
 * them in the order it changes the table, and the table changes
 * deterministically (add appends, removal moves the last record into the
 * hole), so replaying them over the snapshot rebuilds the same table. Each
 * operation also carries the entry's hash, and replay stops at the first
 * operation that does not match; elements are verified on every read
 * regardless, so a divergence can cost entries but never return wrong bytes.
 *
 * @module
 */
import { crc32 } from "node:zlib";
import { CorruptError } from "./errors.ts";
import { checkVersion, versionsRead } from "./format.ts";
import {
  type ElementKind,
  type ElementRecord,
  type IndexMemory,
  recordSlots,
} from "./index_memory.ts";
import type { FileIO } from "./io.ts";

const enc = new TextEncoder();
/** Journal magic (FORMAT.md §10.1). */
export const JOURNAL_MAGIC: Uint8Array = enc.encode("LARDERJL");
/**
 * Journal format version written (2 added `storeEntry`; 3 its metadata
 * location 2, in the data's slot; 4 data runs over several slots).
 */
export const JOURNAL_VERSION = 4;
/** Oldest journal version still read (each is a subset of the next). */
export const JOURNAL_VERSION_MIN = 1;
/** The journal versions read, for messages. */
export const JOURNAL_VERSIONS_READ: string = versionsRead(
  JOURNAL_VERSION,
  JOURNAL_VERSION_MIN,
);
/** Bytes of the journal header; entries start here. */
export const JOURNAL_HEADER = 32;
/** Offset of the `rotated` word, changed in place through the open file. */
export const ROTATED_OFFSET = 20;
/** Bytes of an entry's fixed part: size, crc, time, op, reserved. */
const ENTRY_HEAD = 16;

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

/** Operation types (FORMAT.md §10.2). Values are on disk: never reuse one. */
export const OP = {
  /** Set one element of an entry (creating the entry when index = count). */
  store: 1,
  /** Remove entries (invalidate, evict, or drop as damaged). */
  remove: 2,
  /** Use counts and last-use times of entries, in a batch. */
  touch: 3,
  /** Drop one element of an entry that keeps its other one. */
  clear: 4,
  /** Set an entry's data and metadata together (creating it at index = count). */
  storeEntry: 5,
} as const;

/** Why entries were removed (`remove` op, byte 13). */
export const REMOVE_REASON = { invalidate: 0, evict: 1, corrupt: 2 } as const;

/** Default journal size: 8 MiB (about 70,000 store operations). */
export const DEFAULT_JOURNAL_BYTES = 8 * 2 ** 20;

/** Zeros written per call when a journal is created. */
const ZERO_CHUNK = 2 ** 20;

/** Bytes of one entry of a `remove` op. */
export const REMOVE_ITEM_BYTES = 8;
/** Bytes of one entry of a `touch` op. */
export const TOUCH_ITEM_BYTES = 16;

/**
 * How many items of `itemBytes` (REMOVE_ITEM_BYTES, TOUCH_ITEM_BYTES) one
 * `remove` or `touch` entry of at most `maxEntry` bytes holds: larger
 * batches are split into entries of this many, each replayed on its own.
 */
export function itemsPerEntry(maxEntry: number, itemBytes: number): number {
  // Fixed head, the count word, the trailing size.
  return Math.max(1, Math.floor((maxEntry - ENTRY_HEAD - 8) / itemBytes));
}

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

// ---- entry encoding ---------------------------------------------------------

// The hot encoders (store, storeEntry) frame their entry here rather than in
// a fresh buffer, which costs about as much as the journal write itself.
const SCRATCH = new Uint8Array(1024);
const SCRATCH_VIEW = new DataView(SCRATCH.buffer);

/**
 * A new entry of `payloadLen` payload bytes with its fixed head written
 * (size, time, op, argument); the caller fills the payload at ENTRY_HEAD
 * and then seals it. With `shared`, an entry that fits is framed in a
 * shared buffer: it is valid only until the next shared encode.
 */
function frame(
  op: number,
  arg: number,
  time: number,
  payloadLen: number,
  shared = false,
): { b: Uint8Array; v: DataView } {
  const size = (ENTRY_HEAD + payloadLen + 4 + 3) & ~3;
  let b: Uint8Array, v: DataView;
  if (shared && size <= SCRATCH.length) {
    b = SCRATCH.subarray(0, size);
    b.fill(0); // reserved bytes and padding are zero
    v = SCRATCH_VIEW;
  } else {
    b = new Uint8Array(size);
    v = new DataView(b.buffer);
  }
  v.setUint32(0, size, true);
  v.setUint32(8, time, true);
  b[12] = op;
  b[13] = arg;
  return { b, v };
}

/** Writes the trailing size and the checksum of a framed entry. */
function seal(b: Uint8Array, v: DataView): Uint8Array {
  v.setUint32(b.length - 4, b.length, true);
  v.setUint32(4, crc32(b.subarray(8)), true);
  return b;
}

/** Builds one entry of the less frequent operations through `fill`. */
function entry(
  op: number,
  arg: number,
  time: number,
  payloadLen: number,
  fill: (v: DataView, b: Uint8Array) => void,
): Uint8Array {
  const { b, v } = frame(op, arg, time, payloadLen);
  fill(
    new DataView(b.buffer, ENTRY_HEAD, payloadLen),
    b.subarray(ENTRY_HEAD, ENTRY_HEAD + payloadLen),
  );
  return seal(b, v);
}

/** A `store` operation's fields. */
export interface StoreOp {
  /** Entry index; equal to the table's count when it creates the entry. */
  index: number;
  hashLo: number;
  hashHi: number;
  kind: ElementKind;
  inFile: boolean;
  size: number;
  loc: number;
  crc: number;
  /** Data in slots: the run's slot count (FORMAT.md §5.3); 1 when absent. */
  slots?: number;
}

const STORE_FIXED = 32;

/**
 * Encodes a `store` operation with the key's bytes (FORMAT.md §10.2): a
 * view of a shared buffer, valid until the next `encodeStore` or
 * `encodeStoreEntry` (the store appends it at once).
 */
export function encodeStore(
  op: StoreOp,
  key: Uint8Array,
  time: number,
): Uint8Array {
  // The hot path of every store: no allocation, no closure.
  const { b, v } = frame(OP.store, 0, time, STORE_FIXED + key.length, true);
  const p = ENTRY_HEAD;
  v.setUint32(p, op.index, true);
  v.setUint32(p + 4, op.hashLo, true);
  v.setUint32(p + 8, op.hashHi, true);
  b[p + 12] = op.kind;
  b[p + 13] = op.inFile ? 1 : 0;
  v.setUint16(p + 14, key.length, true);
  v.setUint32(p + 16, op.size, true);
  v.setUint32(p + 20, op.loc, true);
  v.setUint32(p + 24, op.crc, true);
  b[p + 28] = op.kind === 0 && !op.inFile ? (op.slots ?? 1) - 1 : 0;
  b.set(key, p + STORE_FIXED);
  return seal(b, v);
}

/** A `storeEntry` operation's fields: the data element, and metadata or none. */
export interface StoreEntryOp {
  /** Entry index; equal to the table's count when it creates the entry. */
  index: number;
  hashLo: number;
  hashHi: number;
  data: ElementRecord;
  meta: ElementRecord | undefined;
}

const STORE_ENTRY_FIXED = 48;

// Where an op 5 record's element is: a slot of its kind, a large file, or
// (metadata only) the data's slot, after the data element (FORMAT.md §10.2).
const IN_SLOT = 0;
const IN_FILE = 1;
const WITH_DATA = 2;

function setRecord(v: DataView, at: number, rec: ElementRecord): void {
  const where = rec.inFile
    ? IN_FILE
    : rec.withData === true
    ? WITH_DATA
    : IN_SLOT;
  v.setUint8(at, where);
  v.setUint8(at + 1, where === IN_SLOT ? recordSlots(rec) - 1 : 0);
  v.setUint32(at + 4, rec.size, true);
  v.setUint32(at + 8, rec.loc, true);
  v.setUint32(at + 12, rec.crc, true);
}

function getRecord(v: DataView, at: number): ElementRecord | undefined {
  const where = v.getUint8(at);
  if (where > WITH_DATA) return undefined;
  const rec: ElementRecord = {
    inFile: where === IN_FILE,
    size: v.getUint32(at + 4, true),
    loc: v.getUint32(at + 8, true),
    crc: v.getUint32(at + 12, true),
  };
  if (where === WITH_DATA) rec.withData = true;
  // A run of slots (journal version 4; 0 before).
  const extra = where === IN_SLOT ? v.getUint8(at + 1) : 0;
  if (extra !== 0) rec.slots = extra + 1;
  return rec;
}

/**
 * Encodes a `storeEntry` operation with the key's bytes (FORMAT.md §10.2),
 * in the shared buffer, like `encodeStore`.
 */
export function encodeStoreEntry(
  op: StoreEntryOp,
  key: Uint8Array,
  time: number,
): Uint8Array {
  // On the hot path of every entry store, so written out like encodeStore.
  const { b, v } = frame(
    OP.storeEntry,
    0,
    time,
    STORE_ENTRY_FIXED + key.length,
    true,
  );
  const p = ENTRY_HEAD;
  v.setUint32(p, op.index, true);
  v.setUint32(p + 4, op.hashLo, true);
  v.setUint32(p + 8, op.hashHi, true);
  b[p + 12] = op.meta === undefined ? 0 : 1;
  v.setUint16(p + 14, key.length, true);
  setRecord(v, p + 16, op.data);
  if (op.meta !== undefined) setRecord(v, p + 32, op.meta);
  b.set(key, p + STORE_ENTRY_FIXED);
  return seal(b, v);
}

/** Encodes a `remove` of entries given as [index, hashLo] in removal order. */
export function encodeRemove(
  items: readonly (readonly [number, number])[],
  reason: number,
  time: number,
): Uint8Array {
  return entry(OP.remove, reason, time, 4 + items.length * 8, (v) => {
    v.setUint32(0, items.length, true);
    items.forEach(([index, lo], n) => {
      v.setUint32(4 + n * 8, index, true);
      v.setUint32(8 + n * 8, lo, true);
    });
  });
}

/** A `clear` operation's fields. */
export interface ClearOp {
  index: number;
  hashLo: number;
  kind: ElementKind;
}

/** Encodes a `clear` of one element (`reason` as for remove). */
export function encodeClear(
  op: ClearOp,
  reason: number,
  time: number,
): Uint8Array {
  return entry(OP.clear, reason, time, 12, (v) => {
    v.setUint32(0, op.index, true);
    v.setUint32(4, op.hashLo, true);
    v.setUint8(8, op.kind);
  });
}

/** One entry's usage in a `touch` batch. */
export interface Touch {
  index: number;
  hashLo: number;
  lastUsed: number;
  useCount: number;
}

/** Encodes a `touch` batch. */
export function encodeTouch(items: readonly Touch[], time: number): Uint8Array {
  return entry(OP.touch, 0, time, 4 + items.length * 16, (v) => {
    v.setUint32(0, items.length, true);
    items.forEach((t, n) => {
      const at = 4 + n * 16;
      v.setUint32(at, t.index, true);
      v.setUint32(at + 4, t.hashLo, true);
      v.setUint32(at + 8, t.lastUsed, true);
      v.setUint16(at + 12, Math.min(t.useCount, 0xffff), true);
    });
  });
}

// ---- reading and replay -----------------------------------------------------

/** A checked journal entry: op, argument byte, time and payload view. */
export interface RawEntry {
  op: number;
  arg: number;
  time: number;
  payload: DataView;
  /** Offset of the entry in the file. */
  offset: number;
}

/**
 * The valid entries of a journal image, in order, and where they end: the
 * first entry whose sizes disagree, run past the file or fail the checksum
 * ends the journal (everything after it is ignored).
 */
export function readEntries(
  file: Uint8Array,
): { entries: RawEntry[]; end: number } {
  const v = view(file);
  const entries: RawEntry[] = [];
  let at = JOURNAL_HEADER;
  while (at + ENTRY_HEAD + 4 <= file.length) {
    const size = v.getUint32(at, true);
    if (size < ENTRY_HEAD + 4 || (size & 3) !== 0 || at + size > file.length) {
      break;
    }
    if (v.getUint32(at + size - 4, true) !== size) break;
    if (v.getUint32(at + 4, true) !== crc32(file.subarray(at + 8, at + size))) {
      break;
    }
    entries.push({
      op: file[at + 12]!,
      arg: file[at + 13]!,
      time: v.getUint32(at + 8, true),
      payload: new DataView(
        file.buffer,
        file.byteOffset + at + ENTRY_HEAD,
        size - ENTRY_HEAD - 4,
      ),
      offset: at,
    });
    at += size;
  }
  return { entries, end: at };
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
  if (end + ENTRY_HEAD + 4 > file.length) return end;
  const size = view(file).getUint32(end, true);
  if (size === 0) return limit;
  const sane = size >= ENTRY_HEAD + 4 && (size & 3) === 0 &&
    end + size <= limit;
  return sane ? end + size : end;
}

/** What a replay did. */
export interface ReplayResult {
  /** Operations applied. */
  applied: number;
  /** True when an operation did not match the table (replay stopped there). */
  diverged: boolean;
  /** One past the largest large-file id a replayed op used (0 if none). */
  fileIdFloor: number;
}

/**
 * Applies journal entries to `mem` (loaded with the snapshot). Storage is
 * not touched: the caller rebuilds use maps from the records afterwards.
 */
export function replay(
  mem: IndexMemory,
  entries: readonly RawEntry[],
): ReplayResult {
  let applied = 0;
  let fileIdFloor = 0;
  const matches = (index: number, lo: number) =>
    index < mem.count && mem.hashLo(index) === lo;
  // The entry a store names (index, hash low, hash high at the payload's
  // start): added when the index is `count`, else it must match; -1 if not.
  const storeTarget = (p: DataView, time: number): number => {
    const index = p.getUint32(0, true);
    const lo = p.getUint32(4, true);
    const hi = p.getUint32(8, true);
    if (index === mem.count && mem.count < mem.capacity) {
      return mem.add(lo, hi, time);
    }
    return matches(index, lo) && mem.hashHi(index) === hi ? index : -1;
  };
  const setStored = (i: number, kind: ElementKind, rec: ElementRecord) => {
    mem.setElement(i, kind, rec);
    if (rec.inFile) fileIdFloor = Math.max(fileIdFloor, rec.loc + 1);
  };
  for (const e of entries) {
    const p = e.payload;
    if (e.op === OP.store) {
      const kind = p.byteLength < STORE_FIXED ? 2 : p.getUint8(12);
      const i = kind > 1 ? -1 : storeTarget(p, e.time);
      // The store never replaces data alone while the metadata lives in
      // the data's slot (it stores the entry: op 5).
      if (i < 0 || (kind === 0 && mem.metaWithData(i))) {
        return { applied, diverged: true, fileIdFloor };
      }
      const rec: ElementRecord = {
        size: p.getUint32(16, true),
        loc: p.getUint32(20, true),
        crc: p.getUint32(24, true),
        inFile: p.getUint8(13) === 1,
      };
      // A run of data slots (journal version 4; 0 before).
      const extra = kind === 0 && !rec.inFile ? p.getUint8(28) : 0;
      if (extra !== 0) rec.slots = extra + 1;
      setStored(i, kind as ElementKind, rec);
      mem.setUsage(i, Math.max(1, mem.useCount(i)), e.time);
    } else if (e.op === OP.storeEntry) {
      if (p.byteLength < STORE_ENTRY_FIXED) {
        return { applied, diverged: true, fileIdFloor };
      }
      const hasMeta = p.getUint8(12);
      const data = getRecord(p, 16);
      const meta = hasMeta === 1 ? getRecord(p, 32) : undefined;
      // Metadata in the data's slot names that slot; data is never there.
      const valid = hasMeta <= 1 && data !== undefined &&
        data.withData !== true &&
        (hasMeta === 0 || (meta !== undefined &&
          (meta.withData !== true || (!data.inFile && meta.loc === data.loc))));
      const i = valid ? storeTarget(p, e.time) : -1;
      if (i < 0) return { applied, diverged: true, fileIdFloor };
      setStored(i, 0, data!);
      if (meta === undefined) mem.clearElement(i, 1);
      else setStored(i, 1, meta);
      mem.setUsage(i, Math.max(1, mem.useCount(i)), e.time);
    } else if (e.op === OP.remove) {
      const n = p.byteLength >= 4 ? p.getUint32(0, true) : -1;
      if (n < 0 || p.byteLength < 4 + n * 8) {
        return { applied, diverged: true, fileIdFloor };
      }
      for (let k = 0; k < n; k++) {
        const index = p.getUint32(4 + k * 8, true);
        if (!matches(index, p.getUint32(8 + k * 8, true))) {
          return { applied, diverged: true, fileIdFloor };
        }
        mem.remove(index);
      }
    } else if (e.op === OP.touch) {
      const n = p.byteLength >= 4 ? p.getUint32(0, true) : -1;
      if (n < 0 || p.byteLength < 4 + n * 16) {
        return { applied, diverged: true, fileIdFloor };
      }
      for (let k = 0; k < n; k++) {
        const at = 4 + k * 16;
        const index = p.getUint32(at, true);
        if (!matches(index, p.getUint32(at + 4, true))) {
          return { applied, diverged: true, fileIdFloor };
        }
        mem.setUsage(
          index,
          p.getUint16(at + 12, true),
          p.getUint32(at + 8, true),
        );
      }
    } else if (e.op === OP.clear) {
      if (p.byteLength < 12) return { applied, diverged: true, fileIdFloor };
      const index = p.getUint32(0, true);
      const kind = p.getUint8(8) as ElementKind;
      const other = kind === 0 ? 1 : 0;
      // The store clears an element only while the entry keeps the other,
      // and never the data under metadata stored in its slot.
      if (
        kind > 1 || !matches(index, p.getUint32(4, true)) ||
        !mem.has(index, kind) || !mem.has(index, other) ||
        (kind === 0 && mem.metaWithData(index))
      ) {
        return { applied, diverged: true, fileIdFloor };
      }
      mem.clearElement(index, kind);
    } else {
      // An op this version does not know: stop rather than guess.
      return { applied, diverged: true, fileIdFloor };
    }
    applied++;
  }
  return { applied, diverged: false, fileIdFloor };
}

// ---- the writer --------------------------------------------------------------

/**
 * An open journal being appended to.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NodeFileIO, readWhole } from "./io.ts";
 * import { encodeRemove, Journal, journalName, readEntries } from "./journal.ts";
 *
 * const io = new NodeFileIO();
 * const dir = await Deno.makeTempDir();
 * const j = Journal.create(io, dir, 1, 64 * 1024);
 * const op = encodeRemove([[3, 0x1234]], 0, 0);
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
