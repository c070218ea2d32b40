/**
 * Index operations (FORMAT.md §11): every change to the entry table is
 * one of these records, with a stable numeric tag. The store builds an
 * operation, appends it to the journal, then applies it with
 * {@linkcode apply}; opening replays the journal through the same
 * {@linkcode apply}, and a rebuild from the elements adds its entries
 * with it too. What an operation does to the table is written once, here
 * (after LevelDB's `VersionEdit`, whose `LogAndApply` and `Recover` share
 * one `Apply`).
 *
 * The encoding of an operation is the body of a journal entry; the
 * framing around it (sizes, checksum) is journal.ts's.
 *
 * @module
 */
import {
  type ElementRecord,
  type IndexMemory,
  recordSlots,
} from "./index_memory.ts";
import {
  DATA,
  type ElementKind,
  isKind,
  KINDS,
  META,
  otherKinds,
} from "./kinds.ts";
import { AttrSet } from "./_attrs.ts";
import { runCode, runSlotsOf } from "./format.ts";
import { BODY_AT, frame, FRAME_BYTES, type RawEntry, seal } from "./journal.ts";

/**
 * Operation tags (FORMAT.md §11). They are on disk: never change or
 * reuse one; a new operation takes a new tag and bumps the journal version.
 */
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
  /** Set one attribute of an entry (creating the entry at index = count). */
  setAttr: 6,
  /** Remove one attribute of an entry (and the entry, if nothing is left). */
  unsetAttr: 7,
} as const;

/** Why entries were removed (`remove` and `clear` argument). */
export const REMOVE_REASON = { invalidate: 0, evict: 1, corrupt: 2 } as const;

/** Set one element of entry `index` (added when `index` is the count). */
export interface StoreOp {
  tag: typeof OP.store;
  time: number;
  index: number;
  hashLo: number;
  hashHi: number;
  kind: ElementKind;
  rec: ElementRecord;
  /** The key's bytes: make the journal self-describing, never replayed. */
  key: Uint8Array;
}

/** Set both elements of entry `index`: the data, and metadata or none. */
export interface StoreEntryOp {
  tag: typeof OP.storeEntry;
  time: number;
  index: number;
  hashLo: number;
  hashHi: number;
  data: ElementRecord;
  meta: ElementRecord | undefined;
  /** As for `store`. */
  key: Uint8Array;
}

/** Remove entries given as [index, hash low word], in this order. */
export interface RemoveOp {
  tag: typeof OP.remove;
  time: number;
  reason: number;
  items: readonly (readonly [number, number])[];
}

/** One entry's usage in a `touch` batch. */
export interface Touch {
  index: number;
  hashLo: number;
  lastUsed: number;
  useCount: number;
}

/** Set the usage of entries. */
export interface TouchOp {
  tag: typeof OP.touch;
  time: number;
  items: readonly Touch[];
}

/** Drop entry `index`'s element of `kind`; it keeps its other one. */
export interface ClearOp {
  tag: typeof OP.clear;
  time: number;
  reason: number;
  index: number;
  hashLo: number;
  kind: ElementKind;
}

/** Set attribute `name` of entry `index` to value record `rec`. */
export interface SetAttrOp {
  tag: typeof OP.setAttr;
  time: number;
  index: number;
  hashLo: number;
  hashHi: number;
  /** The attribute's name, UTF-8. */
  name: Uint8Array;
  /** Its value record (FORMAT.md §4.2), version byte first. */
  rec: Uint8Array;
  /** The key's bytes: kept with the attributes (an entry may have no element). */
  key: Uint8Array;
}

/** Remove attribute `name` of entry `index`. */
export interface UnsetAttrOp {
  tag: typeof OP.unsetAttr;
  time: number;
  index: number;
  hashLo: number;
  name: Uint8Array;
}

/** An index operation. */
export type Op =
  | StoreOp
  | StoreEntryOp
  | RemoveOp
  | TouchOp
  | ClearOp
  | SetAttrOp
  | UnsetAttrOp;

// ---- encoding ---------------------------------------------------------------

/** Bytes before an operation's payload: time, tag, argument, reserved. */
const OP_HEAD = 8;
const STORE_FIXED = 32;
const STORE_ENTRY_FIXED = 48;
const SET_ATTR_FIXED = 20;
const UNSET_ATTR_FIXED = 12;
/** Bytes of one entry of a `remove` op. */
export const REMOVE_ITEM_BYTES = 8;
/** Bytes of one entry of a `touch` op. */
export const TOUCH_ITEM_BYTES = 16;

/**
 * How many items of `itemBytes` (REMOVE_ITEM_BYTES, TOUCH_ITEM_BYTES) one
 * `remove` or `touch` journal entry of at most `maxEntry` bytes holds:
 * larger batches are split into operations of this many, each applied
 * on its own.
 */
export function itemsPerEntry(maxEntry: number, itemBytes: number): number {
  // Framing, the op's head and its count word.
  return Math.max(
    1,
    Math.floor((maxEntry - FRAME_BYTES - OP_HEAD - 4) / itemBytes),
  );
}

// Where a `storeEntry` element is: a slot of its kind, a large file, or
// (metadata only) the data's slot, after the data element (FORMAT.md §11).
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
  v.setUint8(at + 1, where === IN_SLOT ? runCode(recordSlots(rec)) : 0);
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
  // A run of slots: its run code (FORMAT.md §4).
  const code = where === IN_SLOT ? v.getUint8(at + 1) : 0;
  if (code !== 0) rec.slots = runSlotsOf(code);
  return rec;
}

function payloadBytes(op: Op): number {
  switch (op.tag) {
    case OP.store:
      return STORE_FIXED + op.key.length;
    case OP.storeEntry:
      return STORE_ENTRY_FIXED + op.key.length;
    case OP.remove:
      return 4 + op.items.length * REMOVE_ITEM_BYTES;
    case OP.touch:
      return 4 + op.items.length * TOUCH_ITEM_BYTES;
    case OP.clear:
      return 12;
    case OP.setAttr:
      return SET_ATTR_FIXED + op.key.length + op.name.length + op.rec.length;
    case OP.unsetAttr:
      return UNSET_ATTR_FIXED + op.name.length;
  }
}

/**
 * Encodes `op` as a framed journal entry (FORMAT.md §11 in §10.2). Small entries
 * (every store) are framed in a shared buffer without allocating: the
 * result is valid only until the next encode, so append it at once.
 */
export function encodeOp(op: Op): Uint8Array {
  const { b, v } = frame(OP_HEAD + payloadBytes(op));
  const arg = op.tag === OP.remove || op.tag === OP.clear ? op.reason : 0;
  v.setUint32(BODY_AT, op.time, true);
  b[BODY_AT + 4] = op.tag;
  b[BODY_AT + 5] = arg;
  const p = BODY_AT + OP_HEAD;
  switch (op.tag) {
    case OP.store: {
      const { rec, kind } = op;
      v.setUint32(p, op.index, true);
      v.setUint32(p + 4, op.hashLo, true);
      v.setUint32(p + 8, op.hashHi, true);
      b[p + 12] = kind;
      b[p + 13] = rec.inFile ? 1 : 0;
      v.setUint16(p + 14, op.key.length, true);
      v.setUint32(p + 16, rec.size, true);
      v.setUint32(p + 20, rec.loc, true);
      v.setUint32(p + 24, rec.crc, true);
      b[p + 28] = kind === DATA && !rec.inFile ? runCode(recordSlots(rec)) : 0;
      b.set(op.key, p + STORE_FIXED);
      break;
    }
    case OP.storeEntry:
      v.setUint32(p, op.index, true);
      v.setUint32(p + 4, op.hashLo, true);
      v.setUint32(p + 8, op.hashHi, true);
      b[p + 12] = op.meta === undefined ? 0 : 1;
      v.setUint16(p + 14, op.key.length, true);
      setRecord(v, p + 16, op.data);
      if (op.meta !== undefined) setRecord(v, p + 32, op.meta);
      b.set(op.key, p + STORE_ENTRY_FIXED);
      break;
    case OP.remove:
      v.setUint32(p, op.items.length, true);
      op.items.forEach(([index, lo], n) => {
        v.setUint32(p + 4 + n * 8, index, true);
        v.setUint32(p + 8 + n * 8, lo, true);
      });
      break;
    case OP.touch:
      v.setUint32(p, op.items.length, true);
      op.items.forEach((t, n) => {
        const at = p + 4 + n * 16;
        v.setUint32(at, t.index, true);
        v.setUint32(at + 4, t.hashLo, true);
        v.setUint32(at + 8, t.lastUsed, true);
        v.setUint16(at + 12, Math.min(t.useCount, 0xffff), true);
      });
      break;
    case OP.clear:
      v.setUint32(p, op.index, true);
      v.setUint32(p + 4, op.hashLo, true);
      v.setUint8(p + 8, op.kind);
      break;
    case OP.setAttr: {
      v.setUint32(p, op.index, true);
      v.setUint32(p + 4, op.hashLo, true);
      v.setUint32(p + 8, op.hashHi, true);
      v.setUint16(p + 12, op.key.length, true);
      b[p + 14] = op.name.length;
      b[p + 15] = 0;
      v.setUint32(p + 16, op.rec.length, true);
      let at = p + SET_ATTR_FIXED;
      b.set(op.key, at);
      b.set(op.name, at += op.key.length);
      b.set(op.rec, at + op.name.length);
      break;
    }
    case OP.unsetAttr:
      v.setUint32(p, op.index, true);
      v.setUint32(p + 4, op.hashLo, true);
      b[p + 8] = op.name.length;
      b.fill(0, p + 9, p + 12);
      b.set(op.name, p + UNSET_ATTR_FIXED);
      break;
  }
  return seal(b, v);
}

/** The tag of the operation in `body` (a journal entry's, from readEntries). */
export function opTag(body: DataView): number {
  return body.getUint8(4);
}

/**
 * Decodes the operation in a journal entry's body; undefined for a tag
 * this version does not know or a payload that is malformed whatever the
 * table holds (replay stops there). Keys are views of `body`.
 */
export function decodeOp(body: DataView): Op | undefined {
  if (body.byteLength < OP_HEAD) return undefined;
  const time = body.getUint32(0, true);
  const tag = body.getUint8(4);
  const arg = body.getUint8(5);
  const len = body.byteLength - OP_HEAD;
  const p = new DataView(body.buffer, body.byteOffset + OP_HEAD, len);
  const keyAt = (fixed: number) =>
    new Uint8Array(
      p.buffer,
      p.byteOffset + fixed,
      Math.min(p.getUint16(14, true), len - fixed),
    );
  switch (tag) {
    case OP.store: {
      if (len < STORE_FIXED) return undefined;
      const kind = p.getUint8(12);
      if (!isKind(kind)) return undefined;
      const rec: ElementRecord = {
        size: p.getUint32(16, true),
        loc: p.getUint32(20, true),
        crc: p.getUint32(24, true),
        inFile: p.getUint8(13) === 1,
      };
      // A run of data slots: its run code (FORMAT.md §4).
      const code = kind === DATA && !rec.inFile ? p.getUint8(28) : 0;
      if (code !== 0) rec.slots = runSlotsOf(code);
      return {
        tag,
        time,
        index: p.getUint32(0, true),
        hashLo: p.getUint32(4, true),
        hashHi: p.getUint32(8, true),
        kind,
        rec,
        key: keyAt(STORE_FIXED),
      };
    }
    case OP.storeEntry: {
      if (len < STORE_ENTRY_FIXED) return undefined;
      const hasMeta = p.getUint8(12);
      const data = getRecord(p, 16);
      const meta = hasMeta === 1 ? getRecord(p, 32) : undefined;
      // Metadata in the data's slot names that slot; data is never there.
      const valid = hasMeta <= 1 && data !== undefined &&
        data.withData !== true &&
        (hasMeta === 0 || (meta !== undefined &&
          (meta.withData !== true || (!data.inFile && meta.loc === data.loc))));
      if (!valid) return undefined;
      return {
        tag,
        time,
        index: p.getUint32(0, true),
        hashLo: p.getUint32(4, true),
        hashHi: p.getUint32(8, true),
        data,
        meta,
        key: keyAt(STORE_ENTRY_FIXED),
      };
    }
    case OP.remove: {
      const n = len >= 4 ? p.getUint32(0, true) : -1;
      if (n < 0 || len < 4 + n * REMOVE_ITEM_BYTES) return undefined;
      const items: [number, number][] = [];
      for (let k = 0; k < n; k++) {
        items.push([
          p.getUint32(4 + k * 8, true),
          p.getUint32(8 + k * 8, true),
        ]);
      }
      return { tag, time, reason: arg, items };
    }
    case OP.touch: {
      const n = len >= 4 ? p.getUint32(0, true) : -1;
      if (n < 0 || len < 4 + n * TOUCH_ITEM_BYTES) return undefined;
      const items: Touch[] = [];
      for (let k = 0; k < n; k++) {
        const at = 4 + k * 16;
        items.push({
          index: p.getUint32(at, true),
          hashLo: p.getUint32(at + 4, true),
          lastUsed: p.getUint32(at + 8, true),
          useCount: p.getUint16(at + 12, true),
        });
      }
      return { tag, time, items };
    }
    case OP.clear: {
      if (len < 12) return undefined;
      const kind = p.getUint8(8);
      if (!isKind(kind)) return undefined;
      return {
        tag,
        time,
        reason: arg,
        index: p.getUint32(0, true),
        hashLo: p.getUint32(4, true),
        kind,
      };
    }
    case OP.setAttr: {
      if (len < SET_ATTR_FIXED) return undefined;
      const keyLen = p.getUint16(12, true);
      const nameLen = p.getUint8(14);
      const recLen = p.getUint32(16, true);
      if (
        nameLen === 0 || recLen === 0 ||
        len < SET_ATTR_FIXED + keyLen + nameLen + recLen
      ) {
        return undefined;
      }
      const at = p.byteOffset + SET_ATTR_FIXED;
      return {
        tag,
        time,
        index: p.getUint32(0, true),
        hashLo: p.getUint32(4, true),
        hashHi: p.getUint32(8, true),
        key: new Uint8Array(p.buffer, at, keyLen),
        name: new Uint8Array(p.buffer, at + keyLen, nameLen),
        rec: new Uint8Array(p.buffer, at + keyLen + nameLen, recLen),
      };
    }
    case OP.unsetAttr: {
      if (len < UNSET_ATTR_FIXED) return undefined;
      const nameLen = p.getUint8(8);
      if (nameLen === 0 || len < UNSET_ATTR_FIXED + nameLen) return undefined;
      return {
        tag,
        time,
        index: p.getUint32(0, true),
        hashLo: p.getUint32(4, true),
        name: new Uint8Array(
          p.buffer,
          p.byteOffset + UNSET_ATTR_FIXED,
          nameLen,
        ),
      };
    }
    default:
      // An op this version does not know: stop rather than guess.
      return undefined;
  }
}

// ---- applying ---------------------------------------------------------------

/**
 * The entry table an operation is applied to, with what its owner does
 * as elements come and go: the live store frees storage and keeps its
 * byte counts; replay only notes large-file ids.
 */
export interface Table {
  readonly mem: IndexMemory;
  /** Entry `i` no longer refers to `rec`, its element of `kind`. */
  dropped(i: number, kind: ElementKind, rec: ElementRecord): void;
  /** Entry `i`'s element of `kind` is now `rec`. */
  placed(i: number, kind: ElementKind, rec: ElementRecord): void;
  /** Entry `i` was removed; entry `moved` took its index (-1: none). */
  removed(i: number, moved: number): void;
  /** Entry `i`'s attribute bytes changed by `delta` (if it keeps count). */
  attrsChanged?(i: number, delta: number): void;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function nameText(name: Uint8Array): string | undefined {
  try {
    return utf8.decode(name);
  } catch {
    return undefined;
  }
}

function matches(mem: IndexMemory, index: number, lo: number): boolean {
  return index < mem.count && mem.hashLo(index) === lo;
}

/**
 * The entry a store names: added when the index is `count` (and there is
 * room), else it must match the hash; -1 if not.
 */
function target(
  mem: IndexMemory,
  op: StoreOp | StoreEntryOp | SetAttrOp,
): number {
  if (op.index === mem.count && mem.count < mem.capacity) {
    return mem.add(op.hashLo, op.hashHi, op.time);
  }
  return matches(mem, op.index, op.hashLo) && mem.hashHi(op.index) === op.hashHi
    ? op.index
    : -1;
}

function drop(t: Table, i: number, kind: ElementKind): void {
  const rec = t.mem.element(i, kind);
  if (rec === undefined) return;
  t.mem.clearElement(i, kind);
  t.dropped(i, kind, rec);
}

function set(t: Table, i: number, kind: ElementKind, rec: ElementRecord): void {
  drop(t, i, kind);
  t.mem.setElement(i, kind, rec);
  t.placed(i, kind, rec);
}

/**
 * Applies `op` to `table`; false when it does not match the table (an
 * index out of range, another hash, an element the op needs missing),
 * which stops a replay and is a defect on the live path. Items of a
 * `remove` or `touch` before the one that does not match stay applied.
 */
export function apply(table: Table, op: Op): boolean {
  const mem = table.mem;
  switch (op.tag) {
    case OP.store: {
      const i = target(mem, op);
      // Data is never replaced alone under metadata stored in its slot
      // (the store stores the entry instead).
      if (i < 0 || (op.kind === DATA && mem.metaWithData(i))) return false;
      set(table, i, op.kind, op.rec);
      mem.setUsage(i, Math.max(1, mem.useCount(i)), op.time);
      return true;
    }
    case OP.storeEntry: {
      const i = target(mem, op);
      if (i < 0) return false;
      set(table, i, DATA, op.data);
      if (op.meta === undefined) drop(table, i, META);
      else set(table, i, META, op.meta);
      mem.setUsage(i, Math.max(1, mem.useCount(i)), op.time);
      return true;
    }
    case OP.remove:
      for (const [index, lo] of op.items) {
        if (!matches(mem, index, lo)) return false;
        for (const kind of KINDS) drop(table, index, kind);
        const attrs = mem.attrs(index);
        if (attrs !== undefined) table.attrsChanged?.(index, -attrs.bytes);
        table.removed(index, mem.remove(index));
      }
      return true;
    case OP.touch:
      for (const t of op.items) {
        if (!matches(mem, t.index, t.hashLo)) return false;
        mem.setUsage(t.index, t.useCount, t.lastUsed);
      }
      return true;
    case OP.clear: {
      const i = op.index;
      // Only while the entry keeps another element, and never the data
      // under metadata stored in its slot.
      if (
        !matches(mem, i, op.hashLo) || !mem.has(i, op.kind) ||
        (!otherKinds(op.kind).some((k) => mem.has(i, k)) &&
          mem.attrs(i) === undefined) ||
        (op.kind === DATA && mem.metaWithData(i))
      ) {
        return false;
      }
      drop(table, i, op.kind);
      return true;
    }
    case OP.setAttr: {
      const name = nameText(op.name);
      const i = name === undefined ? -1 : target(mem, op);
      if (i < 0) return false;
      const set = mem.attrs(i) ?? new AttrSet(op.key);
      // The record is kept as journaled (the op's bytes are a view).
      const delta = set.set(name!, op.rec.slice());
      table.attrsChanged?.(i, delta);
      mem.setAttrs(i, set);
      mem.setUsage(i, Math.max(1, mem.useCount(i)), op.time);
      return true;
    }
    case OP.unsetAttr: {
      const i = op.index;
      const name = nameText(op.name);
      const set = matches(mem, i, op.hashLo) ? mem.attrs(i) : undefined;
      if (name === undefined || set?.records.has(name) !== true) return false;
      const delta = set.delete(name);
      table.attrsChanged?.(i, delta);
      mem.setAttrs(i, set);
      // An entry with nothing left is no entry.
      if (!mem.hasAnything(i)) table.removed(i, mem.remove(i));
      return true;
    }
  }
}

// ---- replay -----------------------------------------------------------------

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
 * Applies journal entries (from readEntries) to `mem`, loaded with the
 * snapshot, up to the first that is unknown, malformed or does not match.
 * Storage is not touched: the caller rebuilds use maps from the records.
 */
export function replay(
  mem: IndexMemory,
  entries: readonly RawEntry[],
): ReplayResult {
  let fileIdFloor = 0;
  const table: Table = {
    mem,
    dropped() {},
    placed(_i, _kind, rec) {
      if (rec.inFile) fileIdFloor = Math.max(fileIdFloor, rec.loc + 1);
    },
    removed() {},
  };
  let applied = 0;
  for (const e of entries) {
    const op = decodeOp(e.body);
    if (op === undefined || !apply(table, op)) {
      return { applied, diverged: true, fileIdFloor };
    }
    applied++;
  }
  return { applied, diverged: false, fileIdFloor };
}
