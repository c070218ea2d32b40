/**
 * Element origins (issue 15: `move`, copy-on-write `copy`, `dedup`).
 *
 * Every element's header names the key and hash it was written for
 * (FORMAT.md §6), and reads verify an element against them. An entry that
 * took over another key's element (moved or copied onto it, or merged
 * with an identical one by dedup) therefore keeps, beside its record, an
 * {@linkcode Origins}: its own key, and per element kind the key and hash
 * that element's header holds. The read paths and check-store verify
 * against the origin; the entry's own key decides which key the entry is.
 * The index memory holds them as it holds attribute sets (moved with the
 * record by the one swap-remove), and each rotation writes them as the
 * snapshot's origin section (FORMAT.md §4.3).
 *
 * @module
 */
import { concatBytes, sameBytes } from "./_bytes.ts";
import { DATA, type ElementKind, KINDS, META } from "./kinds.ts";

/** The key and hash an element's header was written for. */
export interface ElementOrigin {
  /** The header's key bytes (UTF-8). */
  readonly key: Uint8Array;
  readonly hashLo: number;
  readonly hashHi: number;
}

/**
 * An entry whose elements (some of them) were written for another key:
 * its own key, and the origin of each such element (undefined: written
 * for this entry's key).
 */
export interface Origins {
  /** The entry's own key bytes (UTF-8). */
  readonly key: Uint8Array;
  /** Per kind, the origin of that element, or undefined. */
  readonly of: readonly [ElementOrigin | undefined, ElementOrigin | undefined];
}

/** True when two origins name the same header identity. */
export function sameOrigin(a: ElementOrigin, b: ElementOrigin): boolean {
  return a.hashLo === b.hashLo && a.hashHi === b.hashHi &&
    sameBytes(a.key, b.key);
}

/**
 * `origins` with the origin of `kind` replaced by `o` (undefined: the
 * element is now this entry's own); undefined when nothing is left.
 */
export function withOrigin(
  origins: Origins | undefined,
  ownKey: Uint8Array,
  kind: ElementKind,
  o: ElementOrigin | undefined,
): Origins | undefined {
  const of: [ElementOrigin | undefined, ElementOrigin | undefined] = [
    origins?.of[DATA],
    origins?.of[META],
  ];
  of[kind] = o;
  if (of[DATA] === undefined && of[META] === undefined) return undefined;
  return { key: origins?.key ?? ownKey.slice(), of };
}

// ---- the snapshot's origin section (FORMAT.md §4.3) ----------------------

/** One entry of an origin section, as read. */
export interface OriginItem {
  index: number;
  hashLo: number;
  hashHi: number;
  origins: Origins;
}

const ITEM_HEAD = 16;
const ORIGIN_HEAD = 12;

/**
 * Encodes the origins of entries `0..count-1` (those that have any) as an
 * origin section.
 */
export function encodeOriginSection(
  count: number,
  get: (i: number) => { o: Origins; lo: number; hi: number } | undefined,
): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const e = get(i);
    if (e === undefined) continue;
    let n = ITEM_HEAD + e.o.key.length;
    for (const kind of KINDS) {
      const o = e.o.of[kind];
      if (o !== undefined) n += ORIGIN_HEAD + o.key.length;
    }
    const b = new Uint8Array(n);
    const v = new DataView(b.buffer);
    v.setUint32(0, i, true);
    v.setUint32(4, e.lo, true);
    v.setUint32(8, e.hi, true);
    v.setUint16(12, e.o.key.length, true);
    b[14] = (e.o.of[DATA] ? 1 : 0) | (e.o.of[META] ? 2 : 0);
    b.set(e.o.key, ITEM_HEAD);
    let at = ITEM_HEAD + e.o.key.length;
    for (const kind of KINDS) {
      const o = e.o.of[kind];
      if (o === undefined) continue;
      v.setUint32(at, o.hashLo, true);
      v.setUint32(at + 4, o.hashHi, true);
      v.setUint16(at + 8, o.key.length, true);
      b.set(o.key, at + ORIGIN_HEAD);
      at += ORIGIN_HEAD + o.key.length;
    }
    parts.push(b);
    total += n;
  }
  return concatBytes(parts, total);
}

/**
 * Decodes an origin section; undefined when it is malformed (its checksum
 * held, so a defect or a newer writer: the caller drops it).
 */
export function decodeOriginSection(b: Uint8Array): OriginItem[] | undefined {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: OriginItem[] = [];
  let at = 0;
  while (at < b.length) {
    if (at + ITEM_HEAD > b.length) return undefined;
    const keyLen = v.getUint16(at + 12, true);
    const mask = b[at + 14]!;
    if (mask === 0 || mask > 3 || b[at + 15] !== 0) return undefined;
    if (at + ITEM_HEAD + keyLen > b.length) return undefined;
    const index = v.getUint32(at, true);
    const hashLo = v.getUint32(at + 4, true);
    const hashHi = v.getUint32(at + 8, true);
    const key = b.slice(at + ITEM_HEAD, at + ITEM_HEAD + keyLen);
    at += ITEM_HEAD + keyLen;
    const of: [ElementOrigin | undefined, ElementOrigin | undefined] = [
      undefined,
      undefined,
    ];
    for (const kind of KINDS) {
      if ((mask & (1 << kind)) === 0) continue;
      if (at + ORIGIN_HEAD > b.length) return undefined;
      const len = v.getUint16(at + 8, true);
      if (at + ORIGIN_HEAD + len > b.length) return undefined;
      of[kind] = {
        hashLo: v.getUint32(at, true),
        hashHi: v.getUint32(at + 4, true),
        key: b.slice(at + ORIGIN_HEAD, at + ORIGIN_HEAD + len),
      };
      at += ORIGIN_HEAD + len;
    }
    out.push({ index, hashLo, hashHi, origins: { key, of } });
  }
  return out;
}
