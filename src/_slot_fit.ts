/**
 * What fits a slot or a run of slots (FORMAT.md §5.3, §6.1): how many data
 * slots an element (or an entry's data and metadata together) needs, and
 * whether an index record's claimed slots can hold what it records.
 *
 * @module
 */
import { diskBytes, ELEMENT_HEADER, roundRun, SLOT_SIZE } from "./format.ts";
import { type ElementRecord, recordSlots } from "./index_memory.ts";
import { DATA, type ElementKind, META } from "./kinds.ts";

/**
 * Data slots an entry's data element needs (with its metadata element
 * after it when `metaLen` is given, FORMAT.md §6.1): 1 when it fits one
 * slot, else the shortest run a run code stands for (§4, §5.3), up to
 * MAX_RUN_SLOTS; 0 when it needs a large file.
 */
export function runSlots(
  keyLen: number,
  dataLen: number,
  metaLen?: number,
): number {
  let bytes = ELEMENT_HEADER + keyLen + dataLen;
  if (metaLen !== undefined) bytes += ELEMENT_HEADER + keyLen + metaLen;
  return roundRun(Math.ceil(bytes / SLOT_SIZE[DATA]));
}

/** True when an element of `size` bytes under a `keyLen`-byte key fits a slot. */
export function fitsSlot(
  kind: ElementKind,
  keyLen: number,
  size: number,
): boolean {
  return ELEMENT_HEADER + keyLen + size <= SLOT_SIZE[kind];
}

/**
 * True when an entry's data and metadata (`dataLen`, `metaLen` bytes under
 * a `keyLen`-byte key) fit one data slot together, each with its own
 * header and key (FORMAT.md §6.1).
 */
export function fitsSlotPair(
  keyLen: number,
  dataLen: number,
  metaLen: number,
): boolean {
  return 2 * (ELEMENT_HEADER + keyLen) + dataLen + metaLen <= SLOT_SIZE[DATA];
}

/**
 * True when record `rec` of `kind` (in slots) fits the slots it claims:
 * its header and element (and, for data, `meta`'s stored after it) within
 * its slot or run. Key lengths are not recorded, so they count as 0.
 */
export function recordFitsSlots(
  kind: ElementKind,
  rec: ElementRecord,
  meta?: ElementRecord,
): boolean {
  const need = ELEMENT_HEADER + rec.size +
    (meta === undefined ? 0 : ELEMENT_HEADER + meta.size);
  return need <= recordSlots(rec) * SLOT_SIZE[kind];
}

/**
 * True when metadata record `meta`, marked as stored in its data's slot,
 * can be: the entry's data record `data` is in that slot (or run) and
 * both fit it.
 */
export function pairRecordsFit(
  data: ElementRecord | undefined,
  meta: ElementRecord,
): boolean {
  return data !== undefined && !data.inFile && data.loc === meta.loc &&
    recordFitsSlots(0, data, meta);
}

/** Disk bytes the element `rec` of `kind` takes, as the limit counts them. */
export function recordDisk(kind: ElementKind, rec: ElementRecord): number {
  return diskBytes(
    kind,
    rec.size,
    rec.inFile,
    recordSlots(rec),
    rec.withData === true,
  );
}

/**
 * Disk bytes a new element of `size` bytes of `kind` under a `keyLen`-byte
 * key will take (its run, its metadata slot, or a large file), as the
 * limit counts them; with `metaLen`, an entry's data and metadata stored
 * together when they fit a run.
 */
export function incomingDisk(
  kind: ElementKind,
  keyLen: number,
  size: number,
  metaLen?: number,
): number {
  if (metaLen !== undefined) {
    const n = runSlots(keyLen, size, metaLen);
    return n > 0
      ? n * SLOT_SIZE[DATA]
      : incomingDisk(DATA, keyLen, size) + incomingDisk(META, keyLen, metaLen);
  }
  if (kind === DATA) {
    const n = runSlots(keyLen, size);
    if (n > 0) return n * SLOT_SIZE[DATA];
  } else if (fitsSlot(kind, keyLen, size)) return SLOT_SIZE[kind];
  return diskBytes(kind, size, true, 0, false);
}
