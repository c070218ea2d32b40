/**
 * Element verification (FORMAT.md §6): whether bytes read from a slot or a
 * large file are the element an index record expects, another key's (a
 * hash collision: look further), or damage; and which read failures mean
 * the element is simply not there.
 *
 * @module
 */
import { crc32 } from "node:zlib";
import { StoreError } from "./errors.ts";
import { ELEMENT_HEADER, MAGIC, readElementHeader, VERSION } from "./format.ts";
import type { ElementKind } from "./kinds.ts";
import { sameBytes } from "./_bytes.ts";

/** What a read expects to find; anything else is a mismatch. */
export interface Expected {
  /** 0 data, 1 metadata. */
  kind: ElementKind;
  /** The key's UTF-8 bytes. */
  key: Uint8Array;
  /** Key hash, low and high words. */
  hashLo: number;
  /** Key hash, high word. */
  hashHi: number;
  /** Length recorded in the index. */
  size: number;
  /** CRC-32 recorded in the index. */
  crc: number;
}

/**
 * Result of reading an element: its bytes, a valid element of another key
 * (a hash collision: look further), or damage (drop the entry).
 */
export type ReadResult =
  | { ok: true; bytes: Uint8Array }
  | { ok: false; reason: "other-key" | "corrupt" };

export type RawResult = ReadResult | typeof KEY_LENGTH_DIFFERS;

export const OTHER_KEY = { ok: false, reason: "other-key" } as const;
// Internal: the stored key has another length, so the caller must read the
// header again at that length to tell a collision from damage.
const KEY_LENGTH_DIFFERS = { ok: false, reason: "key-length" } as const;

/** The key length field of a header prefix (no validation). */
export function storedKeyLen(buf: Uint8Array): number {
  return buf.length < ELEMENT_HEADER ? -1 : buf[6]! | (buf[7]! << 8);
}
export const CORRUPT = { ok: false, reason: "corrupt" } as const;

/**
 * True when a failure means the element is not there (a missing file or
 * directory, a symlink refused by O_NOFOLLOW, a block file of another
 * version): a miss. Anything else (EIO, a full disk, no permission) is an
 * error the caller must see, never a reason to drop the entry.
 */
export function isAbsence(err: unknown): boolean {
  if (!(err instanceof StoreError)) return false;
  if (err.code === "VERSION_MISMATCH" || err.code === "CORRUPT") return true;
  const code = (err.cause as { code?: unknown } | undefined)?.code;
  return code === "ENOENT" || code === "ELOOP" || code === "ENOTDIR" ||
    code === "EISDIR";
}

/**
 * Checks `buf` (header, key, element) against `want`.
 * @returns the element bytes (a view into `buf`) or why not.
 */
export function verifyElement(buf: Uint8Array, want: Expected): RawResult {
  return verifyElementAt(buf, 0, buf.length, want);
}

/**
 * As {@linkcode verifyElement}, for the element whose header starts at
 * `at` of `buf` and which must end by `end`: one read of several elements
 * is checked in place, with no view made but the element's bytes.
 */
export function verifyElementAt(
  buf: Uint8Array,
  at: number,
  end: number,
  want: Expected,
): RawResult {
  if (end - at < ELEMENT_HEADER) return CORRUPT;
  const keyLen = want.key.length;
  if ((buf[at + 6]! | (buf[at + 7]! << 8)) !== keyLen) {
    return KEY_LENGTH_DIFFERS;
  }
  // Hot path: every header field is compared with the index and the key and
  // content checksum are checked, so the header's own CRC adds nothing here
  // (rebuild and check-store, which have no index to compare with, check it).
  for (let i = 0; i < 4; i++) {
    if (buf[at + i] !== MAGIC.element[i]) return CORRUPT;
  }
  if (buf[at + 4] !== VERSION.element) return CORRUPT;
  // The element must belong to the entry: same kind and the entry's hash.
  // A different key under the same hash is a collision (look further); a
  // different hash means the slot was reused after the index was written.
  if (
    buf[at + 5] !== want.kind || u32(buf, at + 16) !== want.hashLo ||
    u32(buf, at + 20) !== want.hashHi
  ) return CORRUPT;
  const key = want.key;
  const k0 = at + ELEMENT_HEADER;
  if (k0 + keyLen > end) return OTHER_KEY; // as a short key compares
  for (let i = 0; i < keyLen; i++) {
    if (buf[k0 + i] !== key[i]) return OTHER_KEY;
  }
  if (u32(buf, at + 8) !== want.size || u32(buf, at + 12) !== want.crc) {
    return CORRUPT;
  }
  const start = k0 + keyLen;
  if (end < start + want.size) return CORRUPT;
  const bytes = buf.subarray(start, start + want.size);
  if (crc32(bytes) !== want.crc) return CORRUPT;
  return { ok: true, bytes };
}

/** Little-endian u32 at `at` (no DataView allocation on the hot path). */
function u32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) |
    (b[at + 3]! << 24)) >>> 0;
}

/**
 * Whether a header-and-key prefix read from storage is a valid element of
 * `kind` under `key`: true, false (another key's), or "corrupt".
 */
export function headerKeyMatches(
  head: Uint8Array | undefined,
  want: Pick<Expected, "kind" | "key" | "hashLo" | "hashHi">,
): boolean | "corrupt" {
  if (head === undefined) return "corrupt";
  const h = readElementHeader(head);
  if (
    h === undefined || h.kind !== want.kind || h.hashLo !== want.hashLo ||
    h.hashHi !== want.hashHi
  ) {
    return "corrupt";
  }
  const key = want.key;
  return sameBytes(
    head.subarray(ELEMENT_HEADER, ELEMENT_HEADER + h.keyLen),
    key,
  );
}

/**
 * Resolves a key-length difference (verifyElement's internal result) by
 * reading the header again at the stored key's length with `readHeader`:
 * a valid header of another key is a collision, not damage.
 */
export function settleKeyLength(
  r: RawResult,
  buf: Uint8Array,
  want: Expected,
  readHeader: (keyLen: number) => Uint8Array | undefined,
): ReadResult {
  if (r.ok || r.reason !== "key-length") return r;
  const len = storedKeyLen(buf);
  if (len < 0) return CORRUPT;
  return headerKeyMatches(readHeader(len), want) === false
    ? OTHER_KEY
    : CORRUPT;
}

/**
 * Verifies the element read into `buf` against `want` and, when only the
 * key length differs, settles it with `readHeader` (settleKeyLength): the
 * one read check of block slots and large files, which differ only in how
 * they read a header at another key length.
 */
export function verifySettled(
  buf: Uint8Array,
  want: Expected,
  readHeader: (keyLen: number) => Uint8Array | undefined,
): ReadResult {
  return settleKeyLength(verifyElement(buf, want), buf, want, readHeader);
}
