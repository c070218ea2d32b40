/**
 * Entry records (FORMAT.md §4) in WASM memory: what an element record
 * says, and reading, writing and clearing one kind's fields of a record.
 *
 * @module
 */
import { runCode, runSlotsOf } from "./format.ts";
import {
  DATA,
  type ElementKind,
  META,
  type PerKind,
  perKind,
} from "./kinds.ts";
import {
  C,
  CRC_OFF,
  F_HAS,
  F_IN_FILE,
  F_META_WITH_DATA,
  type IndexWasm,
  LOC_OFF,
  SIZE_OFF,
} from "./_index_wasm.ts";

/** Where an element is stored, as recorded in its entry. */
export interface ElementRecord {
  /** Length of the element in bytes. */
  size: number;
  /** Slot number (block files) or file id (large files). */
  loc: number;
  /** CRC-32 of the element's bytes. */
  crc: number;
  /** True when the element has its own large file. */
  inFile: boolean;
  /**
   * Metadata only: true when it is stored in the data's slot, right after
   * the data element (`loc` is then the data's slot; FORMAT.md §6.1).
   */
  withData?: boolean;
  /**
   * Data in slots only: how many consecutive data slots, from `loc`, its
   * run spans (FORMAT.md §5.3); 1 when absent.
   */
  slots?: number;
}

/** Slots an element record occupies from its `loc` (1 unless a data run). */
export function recordSlots(rec: ElementRecord): number {
  return rec.slots ?? 1;
}

/**
 * True when `rec` occupies a slot of its own kind: not a large file, and
 * not metadata stored in its data's slot.
 */
export function claimsSlot(
  rec: ElementRecord | undefined,
): rec is ElementRecord {
  return rec !== undefined && !rec.inFile && rec.withData !== true;
}

/** The element of `kind` in the record at byte `b`, or undefined when absent. */
export function readRecord(
  w: IndexWasm,
  b: number,
  kind: ElementKind,
): ElementRecord | undefined {
  const flags = w.u8[b + C.E_FLAGS]!;
  if ((flags & (F_HAS << kind)) === 0) return undefined;
  const rec: ElementRecord = {
    size: w.u32[(b + SIZE_OFF[kind]) >>> 2]!,
    loc: w.u32[(b + LOC_OFF[kind]) >>> 2]!,
    crc: w.u32[(b + CRC_OFF[kind]) >>> 2]!,
    inFile: (flags & (F_IN_FILE << kind)) !== 0,
  };
  if (kind === META && (flags & F_META_WITH_DATA) !== 0) rec.withData = true;
  // Byte 15 is the run code (FORMAT.md §4).
  const code = kind === DATA ? w.u8[b + C.E_DATA_SLOTS]! : 0;
  if (code !== 0) rec.slots = runSlotsOf(code);
  return rec;
}

/**
 * As {@linkcode readRecord}, into the caller's `rec` (every field set:
 * `withData` false and `slots` 1 where readRecord leaves them out), for a
 * pass over the whole table that would otherwise make an object per
 * element. Returns `rec`, or undefined when the element is absent.
 */
export function readRecordInto(
  w: IndexWasm,
  b: number,
  kind: ElementKind,
  rec: Required<ElementRecord>,
): Required<ElementRecord> | undefined {
  const flags = w.u8[b + C.E_FLAGS]!;
  if ((flags & (F_HAS << kind)) === 0) return undefined;
  rec.size = w.u32[(b + SIZE_OFF[kind]) >>> 2]!;
  rec.loc = w.u32[(b + LOC_OFF[kind]) >>> 2]!;
  rec.crc = w.u32[(b + CRC_OFF[kind]) >>> 2]!;
  rec.inFile = (flags & (F_IN_FILE << kind)) !== 0;
  rec.withData = kind === META && (flags & F_META_WITH_DATA) !== 0;
  rec.slots = kind === DATA ? runSlotsOf(w.u8[b + C.E_DATA_SLOTS]!) : 1;
  return rec;
}

/** Records `rec` as the element of `kind` in the record at byte `b`. */
export function writeRecord(
  w: IndexWasm,
  b: number,
  kind: ElementKind,
  rec: ElementRecord,
): void {
  w.u32[(b + SIZE_OFF[kind]) >>> 2] = rec.size;
  w.u32[(b + LOC_OFF[kind]) >>> 2] = rec.loc;
  w.u32[(b + CRC_OFF[kind]) >>> 2] = rec.crc;
  let flags = w.u8[b + C.E_FLAGS]! | (F_HAS << kind);
  flags = rec.inFile
    ? flags | (F_IN_FILE << kind)
    : flags & ~(F_IN_FILE << kind);
  if (kind === META) {
    flags = rec.withData === true
      ? flags | F_META_WITH_DATA
      : flags & ~F_META_WITH_DATA;
  } else {
    w.u8[b + C.E_DATA_SLOTS] = runCode(recordSlots(rec));
  }
  w.u8[b + C.E_FLAGS] = flags;
}

/** Marks the record at byte `b` as having no element of `kind`. */
export function clearRecord(w: IndexWasm, b: number, kind: ElementKind): void {
  w.u32[(b + SIZE_OFF[kind]) >>> 2] = 0;
  w.u32[(b + LOC_OFF[kind]) >>> 2] = 0;
  w.u32[(b + CRC_OFF[kind]) >>> 2] = 0;
  w.u8[b + C.E_FLAGS] = w.u8[b + C.E_FLAGS]! &
    ~(((F_HAS | F_IN_FILE) << kind) | (kind === META ? F_META_WITH_DATA : 0));
  if (kind === DATA) w.u8[b + C.E_DATA_SLOTS] = 0;
}

/** One record object a kind, read into for every entry (a million at open). */
export function scratchRecords(): PerKind<Required<ElementRecord>> {
  return perKind<Required<ElementRecord>>(() => ({
    size: 0,
    loc: 0,
    crc: 0,
    inFile: false,
    withData: false,
    slots: 1,
  }));
}
