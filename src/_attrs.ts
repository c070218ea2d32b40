/**
 * Per-entry attributes (gvfs metadata `set`/`set_list`/`unset`, RISC OS
 * per-object information): the value records, their limits, and an
 * entry's set of them ({@linkcode AttrSet}) as the index memory holds it
 * beside the entry record. They live in the journal (`setAttr`,
 * `unsetAttr`, FORMAT.md §11) and in the `entries` snapshot's attribute
 * section (FORMAT.md §4.1), never in element files.
 *
 * Every value record begins with its version byte (FORMAT.md §4.2); a
 * record of a newer version is kept and persisted as it is but reads as
 * absent.
 *
 * @module
 */
import { concatBytes } from "./_bytes.ts";

/** A value as the public API takes and returns it. */
export type AttrValue = string | readonly string[] | Uint8Array;

/** Limits on attributes (FORMAT.md §4.2). */
export const ATTR_LIMITS = {
  /** Longest name, in UTF-8 bytes (at least 1; NUL is not allowed). */
  nameBytes: 255,
  /** Largest value: UTF-8 bytes of a string, bytes, or a list's encoding. */
  valueBytes: 16384,
  /** Most attributes on one entry. */
  perEntry: 64,
  /** Most bytes (names plus value records) on one entry. */
  entryBytes: 65536,
} as const;

/** Version of the value records this larder writes and reads. */
export const ATTR_RECORD_VERSION = 1;

const T_STRING = 1;
const T_LIST = 2;
const T_BYTES = 3;

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/** The UTF-8 bytes of a valid attribute name; TypeError/RangeError if not. */
export function encodeAttrName(name: unknown): Uint8Array {
  if (typeof name !== "string") {
    throw new TypeError("Cannot use attribute: name must be a string");
  }
  if (name.includes("\0")) {
    throw new RangeError("Cannot use attribute: name contains NUL");
  }
  if (!name.isWellFormed()) {
    throw new RangeError(
      "Cannot use attribute: name is not well-formed UTF-16",
    );
  }
  const b = enc.encode(name);
  if (b.length === 0 || b.length > ATTR_LIMITS.nameBytes) {
    throw new RangeError(
      `Cannot use attribute: name must be 1 to ${ATTR_LIMITS.nameBytes} UTF-8 bytes, not ${b.length}`,
    );
  }
  return b;
}

function tooLarge(n: number): RangeError {
  return new RangeError(
    `Cannot set attribute: value of ${n} bytes exceeds the maximum of ${ATTR_LIMITS.valueBytes}`,
  );
}

/** Encodes `value` as a value record (version byte first; FORMAT.md §4.2). */
export function encodeAttrValue(value: unknown): Uint8Array {
  let type: number;
  let payload: Uint8Array;
  if (typeof value === "string") {
    if (!value.isWellFormed()) {
      throw new RangeError(
        "Cannot set attribute: value is not well-formed UTF-16",
      );
    }
    type = T_STRING;
    payload = enc.encode(value);
  } else if (value instanceof Uint8Array) {
    type = T_BYTES;
    payload = value;
  } else if (Array.isArray(value)) {
    type = T_LIST;
    const parts: Uint8Array[] = [];
    let n = 4;
    for (const s of value) {
      if (typeof s !== "string") {
        throw new TypeError(
          "Cannot set attribute: a list value must hold only strings",
        );
      }
      if (!s.isWellFormed()) {
        throw new RangeError(
          "Cannot set attribute: value is not well-formed UTF-16",
        );
      }
      const b = enc.encode(s);
      parts.push(b);
      n += 4 + b.length;
      if (n > ATTR_LIMITS.valueBytes) throw tooLarge(n);
    }
    payload = new Uint8Array(n);
    const v = new DataView(payload.buffer);
    v.setUint32(0, parts.length, true);
    let at = 4;
    for (const b of parts) {
      v.setUint32(at, b.length, true);
      payload.set(b, at + 4);
      at += 4 + b.length;
    }
  } else {
    throw new TypeError(
      "Cannot set attribute: value must be a string, a string[] or a Uint8Array",
    );
  }
  return valueRecord(type, payload);
}

/** What a value record holds, as read. */
export type DecodedAttr =
  | { ok: true; value: AttrValue }
  | { ok: false; why: "newer" | "corrupt" };

/** Decodes a value record; a newer version or a malformed one is not ok. */
export function decodeAttrValue(rec: Uint8Array): DecodedAttr {
  if (rec.length < 1) return { ok: false, why: "corrupt" };
  if (rec[0]! > ATTR_RECORD_VERSION) return { ok: false, why: "newer" };
  if (rec[0] !== ATTR_RECORD_VERSION || rec.length < 2) {
    return { ok: false, why: "corrupt" };
  }
  const payload = rec.subarray(2);
  if (payload.length > ATTR_LIMITS.valueBytes) {
    return { ok: false, why: "corrupt" };
  }
  try {
    switch (rec[1]) {
      case T_STRING:
        return { ok: true, value: dec.decode(payload) };
      case T_BYTES:
        return { ok: true, value: payload.slice() };
      case T_LIST: {
        if (payload.length < 4) return { ok: false, why: "corrupt" };
        const v = new DataView(
          payload.buffer,
          payload.byteOffset,
          payload.length,
        );
        const n = v.getUint32(0, true);
        const out: string[] = [];
        let at = 4;
        for (let k = 0; k < n; k++) {
          if (at + 4 > payload.length) return { ok: false, why: "corrupt" };
          const len = v.getUint32(at, true);
          if (at + 4 + len > payload.length) {
            return { ok: false, why: "corrupt" };
          }
          out.push(dec.decode(payload.subarray(at + 4, at + 4 + len)));
          at += 4 + len;
        }
        if (at !== payload.length) return { ok: false, why: "corrupt" };
        return { ok: true, value: out };
      }
      default:
        return { ok: false, why: "corrupt" };
    }
  } catch {
    return { ok: false, why: "corrupt" }; // not UTF-8
  }
}

/**
 * The bytes partial access (`attrSize`, `readAttr`, `writeAttr`) sees in
 * a value record: a binary value's bytes, or a string's UTF-8 bytes;
 * "list" for a string list (no partial access), undefined when the
 * record reads as absent (newer or malformed).
 */
export function attrBytesView(
  rec: Uint8Array,
): Uint8Array | "list" | undefined {
  const d = decodeAttrValue(rec);
  if (!d.ok) return undefined;
  if (rec[1] === T_LIST) return "list";
  return rec.subarray(2);
}

/** A binary value record holding `bytes`. */
export function bytesRecord(bytes: Uint8Array): Uint8Array {
  return valueRecord(T_BYTES, bytes);
}

/** A value record: version byte, type byte, payload (FORMAT.md §4.2). */
function valueRecord(type: number, payload: Uint8Array): Uint8Array {
  if (payload.length > ATTR_LIMITS.valueBytes) throw tooLarge(payload.length);
  const rec = new Uint8Array(2 + payload.length);
  rec[0] = ATTR_RECORD_VERSION;
  rec[1] = type;
  rec.set(payload, 2);
  return rec;
}

/** Bytes one attribute counts for (its name and its value record). */
export function attrCost(name: Uint8Array, rec: Uint8Array): number {
  return name.length + rec.length;
}

/**
 * One entry's attributes, as raw value records by name, with the entry's
 * key (an entry may have attributes and no element to carry its key).
 */
export class AttrSet {
  /** The entry's key bytes (UTF-8), as its elements' headers hold it. */
  readonly key: Uint8Array;
  /** Value records by name, in insertion order. */
  readonly records: Map<string, Uint8Array> = new Map();
  /** Bytes of names plus records (what the limit counts). */
  bytes = 0;

  constructor(key: Uint8Array) {
    this.key = key.slice();
  }

  /** Sets `name` to `rec`; returns the change in `bytes`. */
  set(name: string, rec: Uint8Array): number {
    const before = this.bytes;
    this.delete(name);
    this.records.set(name, rec);
    this.bytes += attrCost(enc.encode(name), rec);
    return this.bytes - before;
  }

  /** Removes `name`; returns the change in `bytes` (0 when absent). */
  delete(name: string): number {
    const rec = this.records.get(name);
    if (rec === undefined) return 0;
    this.records.delete(name);
    const cost = attrCost(enc.encode(name), rec);
    this.bytes -= cost;
    return -cost;
  }

  /** A copy (for copy-on-write and tests). */
  clone(): AttrSet {
    return this.rekeyed(this.key);
  }

  /** A copy for the entry of key `key` (`move`, `copy`). */
  rekeyed(key: Uint8Array): AttrSet {
    const c = new AttrSet(key);
    for (const [n, r] of this.records) c.set(n, r);
    return c;
  }
}

// ---- the snapshot's attribute section (FORMAT.md §4.1) --------------------

/** The entries an attribute section names, as read. */
export interface AttrSectionItem {
  index: number;
  hashLo: number;
  hashHi: number;
  set: AttrSet;
}

/**
 * Encodes the attribute sets of entries `0..count-1` (those that have
 * one) as an attribute section.
 */
export function encodeAttrSection(
  count: number,
  get: (i: number) => { set: AttrSet; lo: number; hi: number } | undefined,
): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const e = get(i);
    if (e === undefined || e.set.records.size === 0) continue;
    const names = [...e.set.records.keys()].map((n) => enc.encode(n));
    let n = 16 + e.set.key.length;
    let k = 0;
    for (const rec of e.set.records.values()) {
      n += 5 + names[k++]!.length + rec.length;
    }
    const b = new Uint8Array(n);
    const v = new DataView(b.buffer);
    v.setUint32(0, i, true);
    v.setUint32(4, e.lo, true);
    v.setUint32(8, e.hi, true);
    v.setUint16(12, e.set.key.length, true);
    v.setUint16(14, e.set.records.size, true);
    b.set(e.set.key, 16);
    let at = 16 + e.set.key.length;
    k = 0;
    for (const rec of e.set.records.values()) {
      const name = names[k++]!;
      b[at] = name.length;
      v.setUint32(at + 1, rec.length, true);
      b.set(name, at + 5);
      b.set(rec, at + 5 + name.length);
      at += 5 + name.length + rec.length;
    }
    parts.push(b);
    total += n;
  }
  return concatBytes(parts, total);
}

/**
 * Decodes an attribute section; undefined when it is malformed (its
 * checksum held, so a defect or a newer writer: the caller drops it).
 */
export function decodeAttrSection(
  b: Uint8Array,
): AttrSectionItem[] | undefined {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: AttrSectionItem[] = [];
  let at = 0;
  while (at < b.length) {
    if (at + 16 > b.length) return undefined;
    const keyLen = v.getUint16(at + 12, true);
    const n = v.getUint16(at + 14, true);
    if (at + 16 + keyLen > b.length) return undefined;
    const set = new AttrSet(b.subarray(at + 16, at + 16 + keyLen));
    const item: AttrSectionItem = {
      index: v.getUint32(at, true),
      hashLo: v.getUint32(at + 4, true),
      hashHi: v.getUint32(at + 8, true),
      set,
    };
    at += 16 + keyLen;
    for (let k = 0; k < n; k++) {
      if (at + 5 > b.length) return undefined;
      const nameLen = b[at]!;
      const recLen = v.getUint32(at + 1, true);
      if (nameLen === 0 || at + 5 + nameLen + recLen > b.length) {
        return undefined;
      }
      let name: string;
      try {
        name = dec.decode(b.subarray(at + 5, at + 5 + nameLen));
      } catch {
        return undefined;
      }
      set.set(
        name,
        b.slice(at + 5 + nameLen, at + 5 + nameLen + recLen),
      );
      at += 5 + nameLen + recLen;
    }
    out.push(item);
  }
  return out;
}
