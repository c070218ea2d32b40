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
import { sameBytes } from "./_bytes.ts";
import { type Origins, withOrigin } from "./_origins.ts";
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
  /** Give one entry everything another had; the other goes (journal 6). */
  move: 8,
  /** Give one entry everything another has, sharing its elements (journal 6). */
  copy: 9,
  /** Make one entry's element share another's identical one (dedup; journal 6). */
  share: 10,
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

/**
 * Give entry `to` (added when `to` is the count) everything entry `from`
 * has: its elements (shared, no bytes copied), their origins, its
 * attributes; `move` then removes `from`, `copy` keeps it.
 */
export interface TransferOp {
  tag: typeof OP.move | typeof OP.copy;
  time: number;
  from: number;
  fromLo: number;
  fromHi: number;
  to: number;
  toLo: number;
  toHi: number;
  /** `from`'s key: the origin of elements written for it. */
  fromKey: Uint8Array;
  /** `to`'s key: kept with its origins. */
  toKey: Uint8Array;
}

/**
 * Entry `index`'s element of `kind` becomes entry `source`'s, which holds
 * the same bytes (dedup compared them): one more reference to it, and the
 * old element's reference goes. `origin*` name the header the shared
 * element carries; `ownKey` is entry `index`'s key.
 */
export interface ShareOp {
  tag: typeof OP.share;
  time: number;
  index: number;
  hashLo: number;
  hashHi: number;
  source: number;
  sourceLo: number;
  kind: ElementKind;
  ownKey: Uint8Array;
  originKey: Uint8Array;
  originLo: number;
  originHi: number;
}

/** An index operation. */
export type Op =
  | StoreOp
  | StoreEntryOp
  | RemoveOp
  | TouchOp
  | ClearOp
  | SetAttrOp
  | UnsetAttrOp
  | TransferOp
  | ShareOp;

// ---- encoding ---------------------------------------------------------------

/** Bytes before an operation's payload: time, tag, argument, reserved. */
const OP_HEAD = 8;
const STORE_FIXED = 32;
const STORE_ENTRY_FIXED = 48;
const SET_ATTR_FIXED = 20;
const UNSET_ATTR_FIXED = 12;
const TRANSFER_FIXED = 28;
const SHARE_FIXED = 36;
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
    case OP.move:
    case OP.copy:
      return TRANSFER_FIXED + op.fromKey.length + op.toKey.length;
    case OP.share:
      return SHARE_FIXED + op.ownKey.length + op.originKey.length;
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
    case OP.move:
    case OP.copy:
      v.setUint32(p, op.from, true);
      v.setUint32(p + 4, op.fromLo, true);
      v.setUint32(p + 8, op.fromHi, true);
      v.setUint32(p + 12, op.to, true);
      v.setUint32(p + 16, op.toLo, true);
      v.setUint32(p + 20, op.toHi, true);
      v.setUint16(p + 24, op.fromKey.length, true);
      v.setUint16(p + 26, op.toKey.length, true);
      b.set(op.fromKey, p + TRANSFER_FIXED);
      b.set(op.toKey, p + TRANSFER_FIXED + op.fromKey.length);
      break;
    case OP.share:
      v.setUint32(p, op.index, true);
      v.setUint32(p + 4, op.hashLo, true);
      v.setUint32(p + 8, op.hashHi, true);
      v.setUint32(p + 12, op.source, true);
      v.setUint32(p + 16, op.sourceLo, true);
      b[p + 20] = op.kind;
      b[p + 21] = 0;
      v.setUint16(p + 22, op.ownKey.length, true);
      v.setUint32(p + 24, op.originLo, true);
      v.setUint32(p + 28, op.originHi, true);
      v.setUint16(p + 32, op.originKey.length, true);
      v.setUint16(p + 34, 0, true);
      b.set(op.ownKey, p + SHARE_FIXED);
      b.set(op.originKey, p + SHARE_FIXED + op.ownKey.length);
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
  return decodeOpAt(body, 0, body.byteLength);
}

/** The key of a `store` or `storeEntry` decoded without its key. */
const NO_KEY = new Uint8Array(0);

/**
 * As {@linkcode decodeOp}, for the body of `bodyLen` bytes at `at` in `v`
 * (a view of a whole journal image: replay makes no view per entry).
 * Without `keys`, a `store` or `storeEntry` comes with an empty key: its
 * key is never replayed (nor checked), so replay makes no view of it.
 */
export function decodeOpAt(
  v: DataView,
  at: number,
  bodyLen: number,
  keys = true,
): Op | undefined {
  if (bodyLen < OP_HEAD) return undefined;
  const time = v.getUint32(at, true);
  const tag = v.getUint8(at + 4);
  const arg = v.getUint8(at + 5);
  const len = bodyLen - OP_HEAD;
  // The payload: offset q in v.
  const q = at + OP_HEAD;
  const keyAt = (fixed: number) =>
    new Uint8Array(
      v.buffer,
      v.byteOffset + q + fixed,
      Math.min(v.getUint16(q + 14, true), len - fixed),
    );
  switch (tag) {
    case OP.store: {
      if (len < STORE_FIXED) return undefined;
      const kind = v.getUint8(q + 12);
      if (!isKind(kind)) return undefined;
      const rec: ElementRecord = {
        size: v.getUint32(q + 16, true),
        loc: v.getUint32(q + 20, true),
        crc: v.getUint32(q + 24, true),
        inFile: v.getUint8(q + 13) === 1,
      };
      // A run of data slots: its run code (FORMAT.md §4).
      const code = kind === DATA && !rec.inFile ? v.getUint8(q + 28) : 0;
      if (code !== 0) rec.slots = runSlotsOf(code);
      return {
        tag,
        time,
        index: v.getUint32(q + 0, true),
        hashLo: v.getUint32(q + 4, true),
        hashHi: v.getUint32(q + 8, true),
        kind,
        rec,
        key: keys ? keyAt(STORE_FIXED) : NO_KEY,
      };
    }
    case OP.storeEntry: {
      if (len < STORE_ENTRY_FIXED) return undefined;
      const hasMeta = v.getUint8(q + 12);
      const data = getRecord(v, q + 16);
      const meta = hasMeta === 1 ? getRecord(v, q + 32) : undefined;
      // Metadata in the data's slot names that slot; data is never there.
      const valid = hasMeta <= 1 && data !== undefined &&
        data.withData !== true &&
        (hasMeta === 0 || (meta !== undefined &&
          (meta.withData !== true || (!data.inFile && meta.loc === data.loc))));
      if (!valid) return undefined;
      return {
        tag,
        time,
        index: v.getUint32(q + 0, true),
        hashLo: v.getUint32(q + 4, true),
        hashHi: v.getUint32(q + 8, true),
        data,
        meta,
        key: keys ? keyAt(STORE_ENTRY_FIXED) : NO_KEY,
      };
    }
    case OP.remove: {
      const n = len >= 4 ? v.getUint32(q + 0, true) : -1;
      if (n < 0 || len < 4 + n * REMOVE_ITEM_BYTES) return undefined;
      const items: [number, number][] = [];
      for (let k = 0; k < n; k++) {
        items.push([
          v.getUint32(q + 4 + k * 8, true),
          v.getUint32(q + 8 + k * 8, true),
        ]);
      }
      return { tag, time, reason: arg, items };
    }
    case OP.touch: {
      const n = len >= 4 ? v.getUint32(q + 0, true) : -1;
      if (n < 0 || len < 4 + n * TOUCH_ITEM_BYTES) return undefined;
      const items: Touch[] = [];
      for (let k = 0; k < n; k++) {
        const at = 4 + k * 16;
        items.push({
          index: v.getUint32(q + at, true),
          hashLo: v.getUint32(q + at + 4, true),
          lastUsed: v.getUint32(q + at + 8, true),
          useCount: v.getUint16(q + at + 12, true),
        });
      }
      return { tag, time, items };
    }
    case OP.clear: {
      if (len < 12) return undefined;
      const kind = v.getUint8(q + 8);
      if (!isKind(kind)) return undefined;
      return {
        tag,
        time,
        reason: arg,
        index: v.getUint32(q + 0, true),
        hashLo: v.getUint32(q + 4, true),
        kind,
      };
    }
    case OP.setAttr: {
      if (len < SET_ATTR_FIXED) return undefined;
      const keyLen = v.getUint16(q + 12, true);
      const nameLen = v.getUint8(q + 14);
      const recLen = v.getUint32(q + 16, true);
      if (
        nameLen === 0 || recLen === 0 ||
        len < SET_ATTR_FIXED + keyLen + nameLen + recLen
      ) {
        return undefined;
      }
      const at = v.byteOffset + q + SET_ATTR_FIXED;
      return {
        tag,
        time,
        index: v.getUint32(q + 0, true),
        hashLo: v.getUint32(q + 4, true),
        hashHi: v.getUint32(q + 8, true),
        key: new Uint8Array(v.buffer, at, keyLen),
        name: new Uint8Array(v.buffer, at + keyLen, nameLen),
        rec: new Uint8Array(v.buffer, at + keyLen + nameLen, recLen),
      };
    }
    case OP.unsetAttr: {
      if (len < UNSET_ATTR_FIXED) return undefined;
      const nameLen = v.getUint8(q + 8);
      if (nameLen === 0 || len < UNSET_ATTR_FIXED + nameLen) return undefined;
      return {
        tag,
        time,
        index: v.getUint32(q + 0, true),
        hashLo: v.getUint32(q + 4, true),
        name: new Uint8Array(
          v.buffer,
          v.byteOffset + q + UNSET_ATTR_FIXED,
          nameLen,
        ),
      };
    }
    case OP.move:
    case OP.copy: {
      if (len < TRANSFER_FIXED) return undefined;
      const fromLen = v.getUint16(q + 24, true);
      const toLen = v.getUint16(q + 26, true);
      if (len < TRANSFER_FIXED + fromLen + toLen) return undefined;
      const at = v.byteOffset + q + TRANSFER_FIXED;
      return {
        tag,
        time,
        from: v.getUint32(q + 0, true),
        fromLo: v.getUint32(q + 4, true),
        fromHi: v.getUint32(q + 8, true),
        to: v.getUint32(q + 12, true),
        toLo: v.getUint32(q + 16, true),
        toHi: v.getUint32(q + 20, true),
        fromKey: new Uint8Array(v.buffer, at, fromLen),
        toKey: new Uint8Array(v.buffer, at + fromLen, toLen),
      };
    }
    case OP.share: {
      if (len < SHARE_FIXED) return undefined;
      const kind = v.getUint8(q + 20);
      const ownLen = v.getUint16(q + 22, true);
      const originLen = v.getUint16(q + 32, true);
      if (!isKind(kind) || len < SHARE_FIXED + ownLen + originLen) {
        return undefined;
      }
      const at = v.byteOffset + q + SHARE_FIXED;
      return {
        tag,
        time,
        index: v.getUint32(q + 0, true),
        hashLo: v.getUint32(q + 4, true),
        hashHi: v.getUint32(q + 8, true),
        source: v.getUint32(q + 12, true),
        sourceLo: v.getUint32(q + 16, true),
        kind,
        ownKey: new Uint8Array(v.buffer, at, ownLen),
        originKey: new Uint8Array(v.buffer, at + ownLen, originLen),
        originLo: v.getUint32(q + 24, true),
        originHi: v.getUint32(q + 28, true),
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
  /**
   * Entry `i`'s element of `kind` is now `rec`, which another entry
   * already refers to (a copy or a move: one more reference, no new bytes).
   */
  shared?(i: number, kind: ElementKind, rec: ElementRecord): void;
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
  t.mem.clearOrigin(i, kind);
  t.dropped(i, kind, rec);
}

function set(t: Table, i: number, kind: ElementKind, rec: ElementRecord): void {
  drop(t, i, kind);
  // A fresh element is written for the entry's own key.
  t.mem.clearOrigin(i, kind);
  t.mem.setElement(i, kind, rec);
  t.placed(i, kind, rec);
}

/**
 * Applies a `move` or `copy`: entry `to` gets `from`'s elements (one more
 * reference each), their origins, its attributes and usage; a `move` then
 * removes `from` (its references go: nothing is freed, `to` holds them).
 */
function transfer(table: Table, op: TransferOp): boolean {
  const mem = table.mem;
  const from = op.from;
  if (
    !matches(mem, from, op.fromLo) || mem.hashHi(from) !== op.fromHi ||
    (op.to === from) || (op.toLo === op.fromLo && op.toHi === op.fromHi &&
      sameBytes(op.toKey, op.fromKey)) ||
    !mem.hasAnything(from)
  ) {
    return false;
  }
  let to: number;
  if (op.to === mem.count && mem.count < mem.capacity) {
    to = mem.add(op.toLo, op.toHi, op.time);
  } else if (matches(mem, op.to, op.toLo) && mem.hashHi(op.to) === op.toHi) {
    to = op.to;
  } else {
    return false;
  }
  const fromOrigins = mem.origins(from);
  // Metadata in the data's slot follows its data: data first.
  for (const kind of KINDS) drop(table, to, kind);
  let origins: Origins | undefined;
  for (const kind of KINDS) {
    const rec = mem.element(from, kind);
    if (rec === undefined) continue;
    const o = fromOrigins?.of[kind] ??
      { key: op.fromKey.slice(), hashLo: op.fromLo, hashHi: op.fromHi };
    mem.setElement(to, kind, rec);
    // An element written for `to`'s own key (moved back) is its own again.
    const own = o.hashLo === op.toLo && o.hashHi === op.toHi &&
      sameBytes(o.key, op.toKey);
    origins = withOrigin(origins, op.toKey, kind, own ? undefined : o);
    table.shared?.(to, kind, rec);
  }
  mem.setOrigins(to, origins);
  // Attributes are copied (they are small): a later change to one never
  // shows through the other.
  const before = mem.attrs(to)?.bytes ?? 0;
  const attrs = mem.attrs(from);
  const copied = attrs === undefined ? undefined : attrs.rekeyed(op.toKey);
  mem.setAttrs(to, copied);
  table.attrsChanged?.(to, (copied?.bytes ?? 0) - before);
  mem.setUsage(to, Math.max(1, mem.useCount(from)), op.time);
  if (op.tag === OP.move) {
    for (const kind of KINDS) drop(table, from, kind);
    if (attrs !== undefined) table.attrsChanged?.(from, -attrs.bytes);
    mem.setAttrs(from, undefined);
    table.removed(from, mem.remove(from));
  }
  return true;
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
    case OP.move:
    case OP.copy:
      return transfer(table, op);
    case OP.share:
      return share(table, op);
  }
}

/**
 * Applies a `share`: entry `index`'s element of `kind` becomes the one
 * entry `source` holds, which claims the same size and checksum (never
 * the data under metadata stored in its slot, nor metadata stored so).
 */
function share(table: Table, op: ShareOp): boolean {
  const mem = table.mem;
  const i = op.index;
  const j = op.source;
  if (
    !matches(mem, i, op.hashLo) || mem.hashHi(i) !== op.hashHi ||
    !matches(mem, j, op.sourceLo) || i === j
  ) {
    return false;
  }
  const mine = mem.element(i, op.kind);
  const theirs = mem.element(j, op.kind);
  if (
    mine === undefined || theirs === undefined ||
    mine.size !== theirs.size || mine.crc !== theirs.crc ||
    mine.withData === true || theirs.withData === true ||
    (op.kind === DATA && mem.metaWithData(i))
  ) {
    return false;
  }
  drop(table, i, op.kind);
  mem.setElement(i, op.kind, theirs);
  const own = op.originLo === op.hashLo && op.originHi === op.hashHi &&
    sameBytes(op.originKey, op.ownKey);
  const o = own ? undefined : {
    key: op.originKey.slice(),
    hashLo: op.originLo,
    hashHi: op.originHi,
  };
  mem.setOrigins(i, withOrigin(mem.origins(i), op.ownKey, op.kind, o));
  table.shared?.(i, op.kind, theirs);
  return true;
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
  for (let n = 0; n < entries.length; n++) {
    const e = entries[n]!;
    const op = decodeOpAt(e.view, e.bodyAt, e.bodyLen, false);
    if (op === undefined || !apply(table, op)) {
      return { applied, diverged: true, fileIdFloor };
    }
    applied++;
  }
  return { applied, diverged: false, fileIdFloor };
}
