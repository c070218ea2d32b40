/**
 * Byte layouts of every file larder writes, with encoders and checking
 * decoders. FORMAT.md is the specification; section numbers below point
 * at it. All integers are little-endian.
 *
 * @module
 */
import { crc32 } from "node:zlib";
import {
  CorruptError,
  NotAStoreError,
  VersionMismatchError,
} from "./errors.ts";
import { packRecords, unpackRecords } from "./_entry_pack.ts";
import {
  DATA,
  type ElementKind,
  KIND_TABLE,
  type PerKind,
  perKind,
} from "./kinds.ts";

const enc = new TextEncoder();

/** Block slot sizes by element kind (FORMAT.md §5): 64 B data, 1 KiB meta. */
export const SLOT_SIZE: PerKind<number> = perKind((k) =>
  KIND_TABLE[k].slotSize
);
/**
 * Bytes of an entry record (FORMAT.md §4). The WASM layout (asm/layout.ts)
 * defines the fields; _index_wasm.ts checks it has this size.
 */
export const ENTRY_SIZE = 40;
/** Slots per block file by kind (FORMAT.md §5.2): 2^19 data, 4096 meta. */
export const SLOTS_PER_FILE: PerKind<number> = perKind((k) =>
  KIND_TABLE[k].slotsPerFile
);
/** Block files a kind with `slots` slots has (FORMAT.md §2). */
export function blockFileCount(kind: ElementKind, slots: number): number {
  return Math.max(1, Math.ceil(slots / SLOTS_PER_FILE[kind]));
}

/**
 * True when the run of `n` slots of `kind` from `loc` (1 for a single
 * slot) lies below the kind's `slots` and within one block file (FORMAT.md
 * §5.3).
 */
export function runWithin(
  kind: ElementKind,
  slots: number,
  loc: number,
  n: number,
): boolean {
  const per = SLOTS_PER_FILE[kind];
  return n >= 1 && loc + n <= slots && (loc % per) + n <= per;
}

/**
 * Most data slots a store can have, as log2: block file names reach 4096
 * files a kind (FORMAT.md §2), 2^19 data slots each (the u32 slot number
 * and memory for the use map keep it lower).
 */
export const MAX_DATA_SLOT_BITS = 28;
/**
 * Data slots of an nsurl store's one slot an element (8 KiB, aligned; FORMAT.md
 * §5.3): its key hash is public, so its elements start only at these
 * boundaries.
 */
export const NSURL_SLOTS = 128;
/** Most data slots one run spans (run code 255; FORMAT.md §4, §5.3). */
export const MAX_RUN_SLOTS: number = KIND_TABLE[DATA].maxRunSlots;

/**
 * The run length that run code `code` (entry record byte 15, FORMAT.md
 * §4) stands for: `code + 1` below 128, else `(17 + (code & 15)) <<
 * (((code − 128) >> 4) + 3)`, from 136 to 32768 data slots in steps of
 * at most 1/16.
 */
export function runSlotsOf(code: number): number {
  return code < 128
    ? code + 1
    : (17 + (code & 15)) * 2 ** (((code - 128) >> 4) + 3);
}

/**
 * The run code of a run of `n` data slots; `n` must be a length runCode
 * can stand for exactly (see {@linkcode roundRun}).
 */
export function runCode(n: number): number {
  if (n <= 128) return n - 1;
  // The scale e whose 17…32 units of 8 << e slots reach n (as roundRun).
  let e = 0;
  while (256 << e < n) e++;
  return 128 + (e << 4) + (n / (8 << e) - 17);
}

/**
 * The shortest run length of at least `n` data slots that a run code
 * stands for; 0 above {@linkcode MAX_RUN_SLOTS}.
 */
export function roundRun(n: number): number {
  if (n <= 128) return n;
  if (n > MAX_RUN_SLOTS) return 0;
  // The scale whose 17…32 units reach n.
  let unit = 8;
  while (32 * unit < n) unit *= 2;
  return Math.ceil(n / unit) * unit;
}

/**
 * Bytes of the disk an element takes, as the byte limit counts them
 * (FORMAT.md §5.4): its run of data slots, its metadata slot, nothing for
 * metadata stored after its data, or a large file's bytes rounded up to
 * 4 KiB blocks plus one block for its key and directory share.
 */
export function diskBytes(
  kind: ElementKind,
  size: number,
  inFile: boolean,
  slots: number,
  withData: boolean,
): number {
  if (inFile) return Math.ceil((ELEMENT_HEADER + size) / 4096) * 4096 + 4096;
  if (withData) return 0;
  return slots * SLOT_SIZE[kind];
}

/**
 * The data slot count a new store gets, as log2 (FORMAT.md §3): room for
 * one slot an entry plus `limit` bytes and an eighth more of runs, rounded
 * up to a power of two, between `entryBits` and
 * {@linkcode MAX_DATA_SLOT_BITS}.
 */
export function dataSlotBitsFor(entryBits: number, limit: number): number {
  const slots = 2 ** entryBits + Math.ceil(limit * 1.125 / SLOT_SIZE[DATA]);
  const bits = Math.ceil(Math.log2(slots));
  return Math.max(entryBits, Math.min(MAX_DATA_SLOT_BITS, bits));
}
/** Bytes before slot 0 in a block file; keeps slots page-aligned. */
export const BLOCK_FILE_HEADER = 4096;
/** Bytes of the element header that precedes the key (FORMAT.md §6). */
export const ELEMENT_HEADER = 32;

/** Magic numbers (8 ASCII bytes, element: 4). */
export const MAGIC = {
  control: enc.encode("LARDERCT"),
  entries: enc.encode("LARDERIX"),
  blocks: enc.encode("LARDERBM"),
  blockFile: enc.encode("LARDERBF"),
  element: enc.encode("LDEL"),
} as const;

/** Format version of each file kind; any change to a layout bumps it. */
export const VERSION = {
  // 2: large-file directories ordered high bits first (FORMAT.md §2).
  // 3: byte 15 is dataSlotBits (FORMAT.md §3).
  // 4: data slots of 64 bytes, 2^19 a block file (FORMAT.md §3, §5.2).
  control: 4,
  // 2: flag bit 4, metadata stored in the data's slot (FORMAT.md §4, §6.1).
  // 3: byte 15, data runs over several slots (FORMAT.md §4, §5.3).
  // 4: the attribute section after the records (FORMAT.md §4.1).
  // 5: byte 15 is a run code over 64-byte data slots (FORMAT.md §4), and
  //    the origin section after the attributes (FORMAT.md §4.3; move,
  //    copy, dedup).
  // 6: records without the metadata fields they do not need (FORMAT.md
  //    §4); version 5 files are still read.
  entries: 6,
  // 2: the data and metadata maps have their own slot counts (FORMAT.md §5.1).
  // 3: data maps count 64-byte slots (FORMAT.md §5.1).
  blocks: 3,
  // 2: 64-byte data slots, 2^19 a data block file (FORMAT.md §5.2).
  blockFile: 2,
  element: 1,
  // 2: `storeEntry`; 3: its metadata location 2, in the data's slot;
  // 4: data runs over several slots; 5: `setAttr` and `unsetAttr`;
  // 6: the run byte is a run code over 64-byte data slots, and `move`,
  //    `copy` and `share` (FORMAT.md §11).
  journal: 6,
} as const;

/**
 * Oldest version of each file kind still read. Control refuses every
 * store of 8 KiB data slots (control 1–3) with VERSION_MISMATCH, so the
 * files of such a store (entries 1–4, blocks 1–2, block file 1, journal
 * 1–5) are never reached; each kind reads its current version only, but
 * entries, which reads version 5 (its records whole) too.
 */
export const VERSION_MIN = {
  control: VERSION.control,
  entries: 5,
  blocks: VERSION.blocks,
  blockFile: VERSION.blockFile,
  element: VERSION.element,
  journal: VERSION.journal,
} as const;

/** Key hash algorithms (control byte 14). */
export const HASH_IDS = { siphash13: 0, nsurl: 1 } as const satisfies Record<
  HashName,
  number
>;
/**
 * A key hash algorithm name: `"siphash13"` (SipHash-1-3 keyed by a random
 * key in `control`) or `"nsurl"` (NetSurf's). Spelled out rather than
 * `keyof typeof HASH_IDS` so the public type does not expose the control
 * byte values; `satisfies` above keeps the two in step.
 */
export type HashName = "siphash13" | "nsurl";

function hasMagic(bytes: Uint8Array, magic: Uint8Array, at = 0): boolean {
  if (bytes.length < at + magic.length) return false;
  for (let i = 0; i < magic.length; i++) {
    if (bytes[at + i] !== magic[i]) return false;
  }
  return true;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** The versions `oldest`…`known` as messages name them. */
export function versionsRead(known: number, oldest = known): string {
  return oldest === known ? `version ${known}` : `versions ${oldest}–${known}`;
}

/**
 * Refuses a `what` of format version `found` unless `oldest ≤ found ≤
 * known`.
 * @throws {VersionMismatchError} naming the versions read.
 */
export function checkVersion(
  what: string,
  found: number,
  known: number,
  oldest = known,
): void {
  if (found < oldest || found > known) {
    throw new VersionMismatchError(
      `Cannot read ${what}: format version ${found}, this larder reads ${
        versionsRead(known, oldest)
      }`,
    );
  }
}

// ---- §3 control ------------------------------------------------------------

/** Contents of the `control` file. */
export interface Control {
  /** log2 entry capacity. */
  entryBits: number;
  /** log2 address-map size. */
  identBits: number;
  /** log2 data slot count (version 2: entryBits). */
  dataSlotBits: number;
  /** Key hash algorithm. */
  hash: HashName;
  /** SipHash-1-3 key (16 random bytes). */
  sipKey: Uint8Array;
  /** Creation time, seconds since the Unix epoch. */
  createdAt: number;
}

const CONTROL_FIXED = 40;

/** Encodes the control file (FORMAT.md §3); no extensions yet. */
export function encodeControl(c: Control): Uint8Array {
  const b = new Uint8Array(CONTROL_FIXED + 4);
  const v = view(b);
  b.set(MAGIC.control, 0);
  v.setUint32(8, VERSION.control, true);
  b[12] = c.entryBits;
  b[13] = c.identBits;
  b[14] = HASH_IDS[c.hash];
  b[15] = c.dataSlotBits;
  b.set(c.sipKey, 16);
  v.setUint32(32, c.createdAt, true);
  v.setUint32(36, 0, true); // extensions length
  v.setUint32(CONTROL_FIXED, crc32(b.subarray(0, CONTROL_FIXED)), true);
  return b;
}

/**
 * Decodes the control file.
 * @throws {NotAStoreError} when the magic is not larder's.
 * @throws {VersionMismatchError} for another format version.
 * @throws {CorruptError} when short or its checksum fails.
 */
export function decodeControl(b: Uint8Array): Control {
  if (!hasMagic(b, MAGIC.control)) {
    throw new NotAStoreError(
      "Cannot open store: control file is not a larder control file",
    );
  }
  if (b.length < 12) {
    throw new CorruptError("Cannot read control: file is truncated");
  }
  const v = view(b);
  // Versions 2 and 3 laid data out in 8 KiB slots (version 2 one an
  // entry, version 1 numbered large files otherwise): their block files
  // and records cannot be read as 64-byte slots, so they are refused.
  const version = v.getUint32(8, true);
  if (version >= 1 && version < VERSION.control) {
    throw new VersionMismatchError(
      `Cannot read control: format version ${version} (a store of an earlier larder, with 8 KiB data slots); this larder reads version ${VERSION.control}. Remove the store's directory to start a new store there`,
    );
  }
  checkVersion("control", version, VERSION.control);
  if (b.length < CONTROL_FIXED + 4) {
    throw new CorruptError("Cannot read control: file is truncated");
  }
  const extLen = v.getUint32(36, true);
  const end = CONTROL_FIXED + extLen;
  if (extLen > b.length || b.length !== end + 4) {
    throw new CorruptError(
      "Cannot read control: length does not match its header",
    );
  }
  if (v.getUint32(end, true) !== crc32(b.subarray(0, end))) {
    throw new CorruptError("Cannot read control: checksum mismatch");
  }
  const hashId = b[14]!;
  const hash = (Object.keys(HASH_IDS) as HashName[]).find((k) =>
    HASH_IDS[k] === hashId
  );
  if (hash === undefined) {
    throw new CorruptError(`Cannot read control: unknown hash id ${hashId}`);
  }
  return {
    entryBits: b[12]!,
    identBits: b[13]!,
    dataSlotBits: b[15]!,
    hash,
    sipKey: b.slice(16, 32),
    createdAt: v.getUint32(32, true),
  };
}

// ---- §4 entries ------------------------------------------------------------

/** Header fields of the `entries` file. */
export interface EntriesHeader {
  /** Number of records that follow. */
  count: number;
  /** Next large-file id to hand out. */
  nextFileId: number;
  /** Random tag naming the journal that continues this snapshot. */
  journalTag: number;
}

/** Bytes of the entries file header. */
export const ENTRIES_HEADER = 64;

/** The records of an entries file as written: their length and CRC-32. */
export interface PackedRecords {
  /** Bytes of the packed records. */
  length: number;
  /** CRC-32 of the packed records. */
  crc: number;
}

/** Encodes the entries file header (FORMAT.md §4, the current version). */
export function encodeEntriesHeader(
  h: EntriesHeader,
  records: PackedRecords,
  attrs: Uint8Array = new Uint8Array(0),
  origins: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const b = new Uint8Array(ENTRIES_HEADER);
  const v = view(b);
  b.set(MAGIC.entries, 0);
  v.setUint32(8, VERSION.entries, true);
  v.setUint32(12, records.length, true);
  v.setUint32(16, h.count, true);
  v.setUint32(20, h.nextFileId, true);
  v.setUint32(24, h.journalTag, true);
  v.setUint32(28, records.crc, true);
  v.setUint32(32, attrs.length, true);
  v.setUint32(36, attrs.length === 0 ? 0 : crc32(attrs), true);
  v.setUint32(40, origins.length, true);
  v.setUint32(44, origins.length === 0 ? 0 : crc32(origins), true);
  v.setUint32(60, crc32(b.subarray(0, 60)), true);
  return b;
}

/**
 * The whole entries file for `count` records (`ENTRY_SIZE` bytes each, as
 * in memory) and the sections after them: for check-store's tools and
 * tests; a store writes its snapshot a chunk at a time (`_persist.ts`).
 */
export function encodeEntries(
  h: EntriesHeader,
  records: Uint8Array,
  attrs: Uint8Array = new Uint8Array(0),
  origins: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const aligned = records.byteOffset % 4 === 0 ? records : records.slice();
  const chunks: Uint8Array[] = [];
  const packed = packRecords(aligned, h.count, (c) => chunks.push(c.slice()));
  const head = encodeEntriesHeader(h, packed, attrs, origins);
  const out = new Uint8Array(
    head.length + packed.length + attrs.length + origins.length,
  );
  out.set(head);
  let at = head.length;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  out.set(attrs, at);
  out.set(origins, at + attrs.length);
  return out;
}

/**
 * Decodes the entries file's header, given the length of the whole file:
 * the header, the length and CRC-32 its records must have, and the
 * attribute and origin sections' lengths and CRC-32s.
 * @throws {VersionMismatchError} for a version other than 5 or 6.
 * @throws {CorruptError} when the header does not check out or the length
 * does not match its record count and sections.
 */
export function decodeEntriesHeader(
  b: Uint8Array,
  fileLength: number,
): {
  header: EntriesHeader;
  /** The file's version: 5 (records whole) or 6 (packed). */
  version: number;
  /** Bytes of the records as they lie in the file (packed from version 6). */
  recordsLength: number;
  recordsCrc: number;
  attrLength: number;
  attrsCrc: number;
  originLength: number;
  originsCrc: number;
} {
  if (!hasMagic(b, MAGIC.entries) || b.length < ENTRIES_HEADER) {
    throw new CorruptError(
      "Cannot read entries: bad magic or truncated header",
    );
  }
  const v = view(b);
  // Versions 1–4 belong to stores of 8 KiB data slots (control refuses
  // them; FORMAT.md §3): their byte 15 is no run code.
  const version = v.getUint32(8, true);
  checkVersion("entries", version, VERSION.entries, VERSION_MIN.entries);
  if (v.getUint32(60, true) !== crc32(b.subarray(0, 60))) {
    throw new CorruptError("Cannot read entries: header checksum mismatch");
  }
  const count = v.getUint32(16, true);
  // Version 5: byte 12 is the record size; 6: the packed records' length,
  // between 28 and 40 bytes a record.
  const field = v.getUint32(12, true);
  let recordsLength: number;
  if (version === 5) {
    if (field !== ENTRY_SIZE) {
      throw new CorruptError("Cannot read entries: unexpected record size");
    }
    recordsLength = count * ENTRY_SIZE;
  } else {
    if (field % 4 !== 0 || field < count * 28 || field > count * ENTRY_SIZE) {
      throw new CorruptError(
        "Cannot read entries: records length does not match the record count",
      );
    }
    recordsLength = field;
  }
  const attrLength = v.getUint32(32, true);
  const originLength = v.getUint32(40, true);
  if (
    fileLength - ENTRIES_HEADER - attrLength - originLength !== recordsLength
  ) {
    throw new CorruptError(
      "Cannot read entries: length does not match the record count",
    );
  }
  return {
    header: {
      count,
      nextFileId: v.getUint32(20, true),
      journalTag: v.getUint32(24, true),
    },
    version,
    recordsLength,
    recordsCrc: v.getUint32(28, true),
    attrLength,
    attrsCrc: v.getUint32(36, true),
    originLength,
    originsCrc: v.getUint32(44, true),
  };
}

/**
 * Throws unless `records` have the CRC-32 the entries header recorded.
 * @throws {CorruptError} when they differ.
 */
export function checkEntriesRecords(
  records: Uint8Array,
  recordsCrc: number,
): void {
  if (recordsCrc !== crc32(records)) {
    throw new CorruptError("Cannot read entries: records checksum mismatch");
  }
}

/**
 * Throws unless the attribute section has the CRC-32 the entries header
 * recorded (an empty section has none).
 * @throws {CorruptError} when they differ.
 */
export function checkEntriesAttrs(attrs: Uint8Array, attrsCrc: number): void {
  if (attrs.length > 0 && attrsCrc !== crc32(attrs)) {
    throw new CorruptError(
      "Cannot read entries: attribute section checksum mismatch",
    );
  }
}

/**
 * Throws unless the origin section has the CRC-32 the entries header
 * recorded (an empty section has none).
 * @throws {CorruptError} when they differ.
 */
export function checkEntriesOrigins(
  origins: Uint8Array,
  originsCrc: number,
): void {
  if (origins.length > 0 && originsCrc !== crc32(origins)) {
    throw new CorruptError(
      "Cannot read entries: origin section checksum mismatch",
    );
  }
}

/**
 * Decodes the entries file: its header, its records expanded to
 * `ENTRY_SIZE` bytes each (a copy for version 6, a view for 5), and views
 * of the attribute and origin sections.
 * @throws {VersionMismatchError} for a version other than 5 or 6.
 * @throws {CorruptError} when anything does not check out.
 */
export function decodeEntries(
  b: Uint8Array,
): {
  header: EntriesHeader;
  records: Uint8Array;
  attrs: Uint8Array;
  origins: Uint8Array;
} {
  const {
    header,
    version,
    recordsLength,
    recordsCrc,
    attrLength,
    attrsCrc,
    originsCrc,
  } = decodeEntriesHeader(b, b.length);
  const attrsAt = ENTRIES_HEADER + recordsLength;
  const packed = b.subarray(ENTRIES_HEADER, attrsAt);
  checkEntriesRecords(packed, recordsCrc);
  const records = version === 5 ? packed : unpackRecords(packed, header.count);
  const attrs = b.subarray(attrsAt, attrsAt + attrLength);
  checkEntriesAttrs(attrs, attrsCrc);
  const origins = b.subarray(attrsAt + attrLength);
  checkEntriesOrigins(origins, originsCrc);
  return { header, records, attrs, origins };
}

// ---- §5 blocks (use maps) and block files ----------------------------------

/** Bytes of the blocks file header. */
export const BLOCKS_HEADER = 32;

/** Bytes of a use map of `slots` slots: one bit each, padded to 8 bytes. */
export function useMapBytes(slots: number): number {
  return Math.ceil(slots / 64) * 8;
}

/**
 * The part of data use map `map` that `blocks` stores (FORMAT.md §5.1): up
 * to its last 8-byte word with a used slot.
 */
export function storedDataMap(map: Uint8Array): Uint8Array {
  // Words at a time from the end: the map is megabytes, mostly zero.
  let words = map.length >>> 3;
  if (map.byteOffset % 4 === 0) {
    const w = new Uint32Array(map.buffer, map.byteOffset, words * 2);
    while (words > 0 && w[2 * words - 1] === 0 && w[2 * words - 2] === 0) {
      words--;
    }
    return map.subarray(0, words * 8);
  }
  let end = map.length;
  while (end > 0 && map[end - 1] === 0) end--;
  return map.subarray(0, Math.ceil(end / 8) * 8);
}

/** Encodes the blocks file header; the data and meta use maps follow it. */
export function encodeBlocksHeader(
  slots: PerKind<number>,
  data: Uint8Array,
  meta: Uint8Array,
): Uint8Array {
  const b = new Uint8Array(BLOCKS_HEADER);
  const v = view(b);
  b.set(MAGIC.blocks, 0);
  v.setUint32(8, VERSION.blocks, true);
  v.setUint32(12, slots[0], true);
  v.setUint32(16, data.length, true);
  v.setUint32(20, crc32(meta, crc32(data)), true);
  v.setUint32(24, slots[1], true);
  v.setUint32(28, crc32(b.subarray(0, 28)), true);
  return b;
}

/**
 * Decodes the blocks file into its two use maps and their slot counts
 * (data, metadata).
 * @throws {VersionMismatchError} for another format version.
 * @throws {CorruptError} when anything does not check out.
 */
export function decodeBlocks(
  b: Uint8Array,
): { slots: [number, number]; maps: [Uint8Array, Uint8Array] } {
  const { slots, stored, meta } = readBlocks(b);
  // The data map is stored up to its last used word; the rest is free.
  const data = new Uint8Array(useMapBytes(slots[0]));
  data.set(stored);
  return { slots, maps: [data, meta] };
}

/**
 * As {@linkcode decodeBlocks}, the data map left as stored (up to its last
 * used word; the rest of its `useMapBytes(slots[0])` bytes is zeros): a
 * view of `b`, as the metadata map is.
 * @throws {VersionMismatchError} for another format version.
 * @throws {CorruptError} when anything does not check out.
 */
export function readBlocks(
  b: Uint8Array,
): { slots: [number, number]; stored: Uint8Array; meta: Uint8Array } {
  if (!hasMagic(b, MAGIC.blocks) || b.length < BLOCKS_HEADER) {
    throw new CorruptError("Cannot read blocks: bad magic or truncated header");
  }
  const v = view(b);
  // Version 1 has one slot count for both maps (bytes 24-27 reserved).
  const version = v.getUint32(8, true);
  checkVersion("blocks", version, VERSION.blocks);
  if (v.getUint32(28, true) !== crc32(b.subarray(0, 28))) {
    throw new CorruptError("Cannot read blocks: header checksum mismatch");
  }
  const dataSlots = v.getUint32(12, true);
  const metaSlots = version === 1 ? dataSlots : v.getUint32(24, true);
  const dataBytes = v.getUint32(16, true);
  const metaBytes = version === 1 ? dataBytes : useMapBytes(metaSlots);
  if (b.length !== BLOCKS_HEADER + dataBytes + metaBytes) {
    throw new CorruptError(
      "Cannot read blocks: length does not match its header",
    );
  }
  if (dataBytes % 8 !== 0 || dataBytes > useMapBytes(dataSlots)) {
    throw new CorruptError("Cannot read blocks: data use map length is wrong");
  }
  const stored = b.subarray(BLOCKS_HEADER, BLOCKS_HEADER + dataBytes);
  const meta = b.subarray(BLOCKS_HEADER + dataBytes);
  if (v.getUint32(20, true) !== crc32(meta, crc32(stored))) {
    throw new CorruptError("Cannot read blocks: use map checksum mismatch");
  }
  return { slots: [dataSlots, metaSlots], stored, meta };
}

/** Encodes a block file header (FORMAT.md §5.2). */
export function encodeBlockFileHeader(
  kind: number,
  fileIndex: number,
): Uint8Array {
  const b = new Uint8Array(32);
  const v = view(b);
  b.set(MAGIC.blockFile, 0);
  v.setUint32(8, VERSION.blockFile, true);
  v.setUint32(12, kind, true);
  v.setUint32(16, SLOT_SIZE[kind as ElementKind], true);
  v.setUint32(20, SLOTS_PER_FILE[kind as ElementKind], true);
  v.setUint32(24, fileIndex, true);
  v.setUint32(28, crc32(b.subarray(0, 28)), true);
  return b;
}

/** True when `b` is the header {@linkcode encodeBlockFileHeader} would write. */
export function blockFileHeaderMatches(
  b: Uint8Array,
  kind: number,
  fileIndex: number,
): boolean {
  const want = encodeBlockFileHeader(kind, fileIndex);
  if (b.length < want.length) return false;
  for (let i = 0; i < want.length; i++) if (b[i] !== want[i]) return false;
  return true;
}

/**
 * The version a block file header declares when its magic and checksum
 * are intact, else 0 (damaged or missing: not a claim of any version).
 */
export function blockFileVersion(b: Uint8Array): number {
  if (b.length < 32 || !hasMagic(b, MAGIC.blockFile)) return 0;
  const v = view(b);
  return v.getUint32(28, true) === crc32(b.subarray(0, 28))
    ? v.getUint32(8, true)
    : 0;
}

// ---- §6 element header -----------------------------------------------------

/** Fields of an element header. */
export interface ElementHeader {
  /** 0 data, 1 metadata. */
  kind: number;
  /** The key, as UTF-8 bytes. */
  keyLen: number;
  /** Element length in bytes. */
  length: number;
  /** CRC-32 of the element bytes. */
  crc: number;
  /** Key hash, low word. */
  hashLo: number;
  /** Key hash, high word. */
  hashHi: number;
  /** When it was stored, seconds since the Unix epoch. */
  storedAt: number;
}

/** Stores `n` as a little-endian u32 at `at` (no DataView on the hot path). */
function putU32(b: Uint8Array, at: number, n: number): void {
  b[at] = n;
  b[at + 1] = n >>> 8;
  b[at + 2] = n >>> 16;
  b[at + 3] = n >>> 24;
}

/**
 * Writes an element header followed by `key` into `out` at `at`.
 * @returns the number of bytes written (ELEMENT_HEADER + key length).
 */
export function writeElementHeader(
  out: Uint8Array,
  h: ElementHeader,
  key: Uint8Array,
  at = 0,
): number {
  out.set(MAGIC.element, at);
  out[at + 4] = VERSION.element;
  out[at + 5] = h.kind;
  out[at + 6] = h.keyLen;
  out[at + 7] = h.keyLen >>> 8;
  putU32(out, at + 8, h.length);
  putU32(out, at + 12, h.crc);
  putU32(out, at + 16, h.hashLo);
  putU32(out, at + 20, h.hashHi);
  putU32(out, at + 24, h.storedAt);
  // The checksum covers bytes 0–27 then the key: laid out contiguously
  // first (the key right after byte 27), so one zlib call covers both (a
  // call costs more than its bytes), then the key moves to its place.
  const end = at + 28 + key.length;
  if (end + 4 > out.length) {
    throw new RangeError("Cannot write element header: no room for the key");
  }
  out.set(key, at + 28);
  const sum = crc32(out.subarray(at, end));
  out.copyWithin(at + ELEMENT_HEADER, at + 28, end);
  putU32(out, at + 28, sum);
  return ELEMENT_HEADER + key.length;
}

/**
 * Parses and checks an element header at the start of `b` (which must
 * hold the header and key). Returns undefined when the magic, version or
 * header checksum is wrong: the bytes are not a valid element.
 */
export function readElementHeader(b: Uint8Array): ElementHeader | undefined {
  if (b.length < ELEMENT_HEADER || !hasMagic(b, MAGIC.element)) {
    return undefined;
  }
  if (b[4] !== VERSION.element) return undefined;
  const v = view(b);
  const keyLen = v.getUint16(6, true);
  if (b.length < ELEMENT_HEADER + keyLen) return undefined;
  const key = b.subarray(ELEMENT_HEADER, ELEMENT_HEADER + keyLen);
  if (v.getUint32(28, true) !== crc32(key, crc32(b.subarray(0, 28)))) {
    return undefined;
  }
  return {
    kind: b[5]!,
    keyLen,
    length: v.getUint32(8, true),
    crc: v.getUint32(12, true),
    hashLo: v.getUint32(16, true),
    hashHi: v.getUint32(20, true),
    storedAt: v.getUint32(24, true),
  };
}

/** The CACHEDIR.TAG contents (https://bford.info/cachedir/). */
export const CACHEDIR_TAG = enc.encode(
  "Signature: 8a477f597d28d172789f06886806bc55\n" +
    "# This file is a cache directory tag created by larder.\n" +
    "# For information about cache directory tags, see:\n" +
    "#\thttps://bford.info/cachedir/\n",
);
