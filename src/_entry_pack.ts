/**
 * Entry records as the `entries` file holds them (FORMAT.md §4, entries
 * version 6): each 40-byte record without the metadata fields it does not
 * need. A record is its first 28 bytes; one with metadata (flag bit 1)
 * adds the metadata size, its location unless the metadata lies in the
 * data's slot (flag bit 4, where the location is the data's), and its
 * CRC-32, in the record's order.
 * So an entry of one data element takes 28 bytes on disk, one with its
 * metadata after the data 36, any other 40.
 *
 * Packing goes a chunk at a time (the table can be 640 MiB); unpacking is
 * done in place: the packed bytes are read into the tail of the table's
 * own region and expanded forwards, which never overtakes what is still
 * to be read because no packed record is longer than its record.
 *
 * @module
 */
import { crc32 } from "node:zlib";
import { CorruptError } from "./errors.ts";

/** Bytes of an entry record in memory (asm/layout.ts). */
const RECORD = 40;
/** Words of an entry record in memory. */
const WORDS = RECORD / 4;
/** Words every packed record has: bytes 0 … 27 of the record. */
const CORE = 7;
/** Flag bits (FORMAT.md §4) in word 3, bits 16–23. */
const HAS_META = 0x02 << 16;
const META_WITH_DATA = 0x10 << 16;
/** Word indexes of the metadata fields and the data location. */
const W_DATA_LOC = 5;
const W_META_SIZE = 7;
const W_META_LOC = 8;
const W_META_CRC = 9;

/** Words the packed form of a record takes, from its word 3. */
function packedWords(word3: number): number {
  if ((word3 & HAS_META) === 0) return CORE;
  return (word3 & META_WITH_DATA) === 0 ? CORE + 3 : CORE + 2;
}

/** Bytes the packed form of `count` records at `records` takes. */
export function packedLength(records: Uint8Array, count: number): number {
  const w = words(records);
  let n = 0;
  for (let i = 0, b = 3; i < count; i++, b += WORDS) n += packedWords(w[b]!);
  return n * 4;
}

/** Records packed per chunk when writing (640 KiB of records). */
const CHUNK_RECORDS = 16384;

/**
 * Packs the `count` records in `records` a chunk at a time, handing each
 * chunk to `write` (a view valid only during the call) in order; returns
 * the packed length and its CRC-32.
 */
export function packRecords(
  records: Uint8Array,
  count: number,
  write: (chunk: Uint8Array) => void,
): { length: number; crc: number } {
  const src = words(records);
  const out = new Uint32Array(Math.min(count, CHUNK_RECORDS) * WORDS);
  const outBytes = new Uint8Array(out.buffer);
  let length = 0;
  let crc = 0;
  for (let first = 0; first < count; first += CHUNK_RECORDS) {
    const last = Math.min(count, first + CHUNK_RECORDS);
    let o = 0;
    for (let i = first, s = first * WORDS; i < last; i++, s += WORDS) {
      const w3 = src[s + 3]!;
      out[o] = src[s]!;
      out[o + 1] = src[s + 1]!;
      out[o + 2] = src[s + 2]!;
      out[o + 3] = w3;
      out[o + 4] = src[s + 4]!;
      out[o + 5] = src[s + 5]!;
      out[o + 6] = src[s + 6]!;
      o += CORE;
      if ((w3 & HAS_META) !== 0) {
        // In the record's order: a record with its metadata apart packs
        // to itself.
        out[o++] = src[s + W_META_SIZE]!;
        if ((w3 & META_WITH_DATA) === 0) out[o++] = src[s + W_META_LOC]!;
        out[o++] = src[s + W_META_CRC]!;
      }
    }
    const chunk = outBytes.subarray(0, o * 4);
    crc = crc32(chunk, crc);
    length += chunk.length;
    write(chunk);
  }
  return { length, crc };
}

/**
 * Expands `count` packed records lying in the last `length` bytes of
 * `dest` (which holds `count` records, 4-byte aligned) into records from
 * its start, in place. `expand` does the expanding when the packed form
 * is shorter than the table (the index memory's kernel, for a snapshot
 * read into it; {@linkcode expandRecordsJs} otherwise) and says whether
 * the packed records filled exactly `length` bytes.
 * @throws {CorruptError} when the packed records do not fill exactly
 * `length` bytes (their flags disagree with the header's length).
 */
export function unpackInPlace(
  dest: Uint8Array,
  count: number,
  length: number,
  expand: (count: number, length: number) => boolean = (n, len) =>
    expandRecordsJs(dest, n, len),
): void {
  if (dest.length !== count * RECORD || length % 4 !== 0) {
    throw new CorruptError("Cannot read entries: bad packed records length");
  }
  if (length === dest.length) {
    // Every record has its metadata apart: the packed form is the table.
    // It is still one only if each record says so.
    if (packedLength(dest, count) === length) return;
    throw new CorruptError("Cannot read entries: records overrun the length");
  }
  if (!expand(count, length)) {
    throw new CorruptError(
      "Cannot read entries: packed records do not match the length",
    );
  }
}

/**
 * The reference expansion for {@linkcode unpackInPlace} (asm/load.ts
 * `records_expand` is the kernel's): expands `count` packed records lying
 * in the last `length` bytes (fewer than `dest`'s) of `dest` into its
 * records; false when they do not fill exactly `length` bytes.
 */
export function expandRecordsJs(
  dest: Uint8Array,
  count: number,
  length: number,
): boolean {
  const w = words(dest);
  const end = w.length;
  let p = end - length / 4;
  for (let i = 0, d = 0; i < count; i++, d += WORDS) {
    // Read the whole packed record before writing any of its record: the
    // record's words may cover it.
    const w3 = w[p + 3]!;
    const n = packedWords(w3);
    if (p + n > end) return false;
    const w0 = w[p]!, w1 = w[p + 1]!, w2 = w[p + 2]!;
    const w4 = w[p + 4]!, w5 = w[p + 5]!, w6 = w[p + 6]!;
    let metaSize = 0, metaLoc = 0, metaCrc = 0;
    if (n > CORE) {
      metaSize = w[p + CORE]!;
      if (n === CORE + 3) {
        metaLoc = w[p + CORE + 1]!;
        metaCrc = w[p + CORE + 2]!;
      } else {
        metaLoc = w5;
        metaCrc = w[p + CORE + 1]!;
      }
    }
    p += n;
    w[d] = w0;
    w[d + 1] = w1;
    w[d + 2] = w2;
    w[d + 3] = w3;
    w[d + 4] = w4;
    w[d + W_DATA_LOC] = w5;
    w[d + 6] = w6;
    w[d + W_META_SIZE] = metaSize;
    w[d + W_META_LOC] = metaLoc;
    w[d + W_META_CRC] = metaCrc;
  }
  return p === end;
}

/**
 * The `count` records packed in `packed`, expanded into a new buffer
 * (for check-store and tests, which read the whole file).
 * @throws {CorruptError} as {@linkcode unpackInPlace}.
 */
export function unpackRecords(packed: Uint8Array, count: number): Uint8Array {
  const out = new Uint8Array(count * RECORD);
  if (packed.length > out.length) {
    throw new CorruptError("Cannot read entries: records overrun the length");
  }
  out.set(packed, out.length - packed.length);
  unpackInPlace(out, count, packed.length);
  return out;
}

function words(b: Uint8Array): Uint32Array {
  if (b.byteOffset % 4 !== 0) {
    throw new RangeError("Cannot pack entry records: not 4-byte aligned");
  }
  return new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2);
}
