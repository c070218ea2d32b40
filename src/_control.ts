/**
 * The store's `control` record and its copy `control.bak` (FORMAT.md §3):
 * reading both, deciding which one holds, telling a damaged larder store
 * from a foreign directory, and, when both copies are lost, rebuilding the
 * record from what the other files carry. Shared by the open path
 * (src/_open.ts) and check-store (src/_check_pass.ts).
 *
 * @module
 */
import { crc32 } from "node:zlib";
import { CorruptError, StoreError, VersionMismatchError } from "./errors.ts";
import {
  CACHEDIR_TAG,
  type Control,
  dataSlotBitsFor,
  decodeControl,
  decodeEntries,
  type HashName,
  MAGIC,
  MAX_DATA_SLOT_BITS,
  VERSION,
} from "./format.ts";
import { type FileIO, readPrefix, readWhole, replaceFile } from "./io.ts";
import { ENTRY_SIZE } from "./format.ts";
import { moveAside } from "./_foreign.ts";
import { JOURNAL_MAGIC } from "./journal.ts";
import {
  ENTRY_BITS_RANGE,
  MAX_IDENT_BITS,
  tableDimensionsValid,
} from "./options.ts";

/** The two copies of the control record, in the order they are preferred. */
export const CONTROL_NAMES = ["control", "control.bak"] as const;

/** What one copy of the control record turned out to be. */
export interface ControlCopy {
  name: (typeof CONTROL_NAMES)[number];
  /**
   * `ok`: decodes and its dimensions are valid. `missing`: no such file.
   * `damaged`: anything else but `newer`. `newer`: an intact record (its
   * checksum verifies) of a format version this larder does not read.
   */
  state: "ok" | "missing" | "damaged" | "newer";
  control?: Control;
  /** The copy's bytes, when it exists. */
  bytes?: Uint8Array;
  /** Why it is damaged or newer. */
  detail?: string;
}

/** True when `b` starts with `magic`. */
function startsWith(b: Uint8Array, magic: Uint8Array): boolean {
  return b.length >= magic.length && magic.every((m, i) => b[i] === m);
}

/**
 * True when `b` is a whole control record (magic, length, checksum) that
 * declares a version this larder does not read: written by a newer
 * larder, not damage (a flipped version bit fails the checksum).
 */
function intactNewer(b: Uint8Array): boolean {
  if (b.length < 44 || !startsWith(b, MAGIC.control)) return false;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const end = 40 + v.getUint32(36, true);
  return b.length === end + 4 &&
    v.getUint32(end, true) === crc32(b.subarray(0, end));
}

/** Reads and classifies one copy. */
export function readControlCopy(
  io: FileIO,
  dir: string,
  name: ControlCopy["name"],
): ControlCopy {
  const path = `${dir}/${name}`;
  const kind = io.kind(path);
  if (kind === "missing") return { name, state: "missing" };
  if (kind !== "file") {
    return {
      name,
      state: "damaged",
      detail: `${kind} where larder keeps a file`,
    };
  }
  // An I/O error is not damage: it propagates rather than have a copy
  // (and with it the SipHash key) replaced.
  const bytes = readWhole(io, path);
  if (bytes === undefined) return { name, state: "missing" };
  try {
    const control = decodeControl(bytes);
    if (!tableDimensionsValid(control)) {
      return {
        name,
        state: "damaged",
        bytes,
        detail: "table dimensions out of range",
      };
    }
    return { name, state: "ok", control, bytes };
  } catch (err) {
    if (err instanceof VersionMismatchError && intactNewer(bytes)) {
      return { name, state: "newer", bytes, detail: err.message };
    }
    if (err instanceof StoreError) {
      return { name, state: "damaged", bytes, detail: err.message };
    }
    throw err;
  }
}

/** Both copies, `control` first. */
export function readControlCopies(
  io: FileIO,
  dir: string,
): [ControlCopy, ControlCopy] {
  return [
    readControlCopy(io, dir, CONTROL_NAMES[0]),
    readControlCopy(io, dir, CONTROL_NAMES[1]),
  ];
}

/**
 * The copy to use: `control` when it is sound, else `control.bak`.
 * @throws {VersionMismatchError} when a copy is an intact record of a
 *   newer format (a newer larder wrote it; it must not be misread).
 */
export function chooseControl(
  copies: readonly ControlCopy[],
): ControlCopy | undefined {
  const newer = copies.find((c) => c.state === "newer");
  if (newer !== undefined) {
    throw new VersionMismatchError(newer.detail!);
  }
  return copies.find((c) => c.state === "ok");
}

/**
 * Writes the record `bytes` to the copies named in `which` (both by
 * default), each replaced atomically (FORMAT.md §7), `control` first.
 */
export function writeControlCopies(
  io: FileIO,
  dir: string,
  bytes: Uint8Array,
  which: readonly ControlCopy["name"][] = CONTROL_NAMES,
): void {
  for (const name of CONTROL_NAMES) {
    if (!which.includes(name)) continue;
    // A foreign object at the name is kept, never renamed over.
    const k = io.kind(`${dir}/${name}`);
    if (k !== "missing" && k !== "file") moveAside(io, dir, name);
    replaceFile(io, dir, name, [bytes]);
  }
}

/** The copies that do not hold exactly `bytes` (damaged, missing, stale). */
export function copiesToWrite(
  copies: readonly ControlCopy[],
  bytes: Uint8Array,
): ControlCopy["name"][] {
  return copies.filter((c) =>
    c.bytes === undefined || c.bytes.length !== bytes.length ||
    c.bytes.some((b, i) => b !== bytes[i])
  ).map((c) => c.name);
}

/**
 * What proves `dir` is a larder store when no copy of its control record
 * is sound: a file only larder writes, recognised by its magic (either
 * control copy, `entries`, `blocks`, a journal, the first block file) or
 * larder's own CACHEDIR.TAG. Undefined when nothing does: then the
 * directory is foreign and must be left alone (FORMAT.md §9).
 */
export function larderEvidence(io: FileIO, dir: string): string | undefined {
  const probes: [string, Uint8Array][] = [
    ["control", MAGIC.control],
    ["control.bak", MAGIC.control],
    ["entries", MAGIC.entries],
    ["blocks", MAGIC.blocks],
    ["dblk/A", MAGIC.blockFile],
    ["mblk/A", MAGIC.blockFile],
    ["dblk/A/A", MAGIC.blockFile],
    ["mblk/A/A", MAGIC.blockFile],
    ["CACHEDIR.TAG", CACHEDIR_TAG],
  ];
  for (const [name, magic] of probes) {
    if (startsWith(readPrefix(io, `${dir}/${name}`, magic.length), magic)) {
      return name;
    }
  }
  let names: string[] = [];
  try {
    names = io.list(dir);
  } catch (err) {
    if (!(err instanceof StoreError)) throw err;
  }
  for (const name of names) {
    if (!/^journal-[0-9A-F]{8}$/.test(name)) continue;
    const head = readPrefix(io, `${dir}/${name}`, JOURNAL_MAGIC.length);
    if (startsWith(head, JOURNAL_MAGIC)) return name;
  }
  return undefined;
}

/** What a rebuilt control record could and could not recover. */
export interface RebuiltControl {
  control: Control;
  /**
   * True for a SipHash store: the random key existed only in the control
   * copies, so the elements' hashes cannot be recomputed; they cannot be
   * found any more and the index starts empty.
   */
  keyLost: boolean;
  /** Where the table dimensions came from. */
  dimensionsFrom: "blocks" | "options";
  /** Where the hash algorithm came from. */
  hashFrom: "options" | "entries" | "default";
}

/** What the store was opened with, as far as a rebuild needs it. */
export interface RebuildHints {
  entryBits: number;
  identBits: number;
  limit: number;
  hash: HashName;
  explicitHash: boolean;
}

function log2Exact(n: number): number | undefined {
  const b = Math.log2(n);
  return Number.isInteger(b) ? b : undefined;
}

/**
 * Rebuilds the control record of a larder store whose copies are both
 * lost (FORMAT.md §9). The table dimensions come from the `blocks`
 * header (its slot counts are 2^dataSlotBits and 2^entryBits), else from
 * the options; the hash from the options when given, else from the
 * `entries` records (nsurl hashes have a zero high word), else the
 * default. A SipHash key cannot be recovered: a new one is drawn.
 */
export function rebuildControl(
  io: FileIO,
  dir: string,
  hints: RebuildHints,
): RebuiltControl {
  let entryBits = hints.entryBits;
  let dataSlotBits = dataSlotBitsFor(entryBits, hints.limit);
  let dimensionsFrom: RebuiltControl["dimensionsFrom"] = "options";
  const head = readPrefix(io, `${dir}/blocks`, 32);
  if (head.length === 32 && startsWith(head, MAGIC.blocks)) {
    const v = new DataView(head.buffer, head.byteOffset, 32);
    const version = v.getUint32(8, true);
    if (
      // Earlier versions count 8 KiB data slots (FORMAT.md §5.1).
      version === VERSION.blocks &&
      v.getUint32(28, true) === crc32(head.subarray(0, 28))
    ) {
      const d = log2Exact(v.getUint32(12, true));
      const m = log2Exact(v.getUint32(24, true));
      if (
        d !== undefined && m !== undefined && m >= ENTRY_BITS_RANGE[0] &&
        m <= ENTRY_BITS_RANGE[1] && d >= m && d <= MAX_DATA_SLOT_BITS
      ) {
        entryBits = m;
        dataSlotBits = d;
        dimensionsFrom = "blocks";
      }
    }
  }
  let hash = hints.hash;
  let hashFrom: RebuiltControl["hashFrom"] = hints.explicitHash
    ? "options"
    : "default";
  if (!hints.explicitHash) {
    const records = snapshotRecords(io, dir);
    if (records !== undefined && records.count > 0) {
      hash = records.anyHashHi ? "siphash13" : "nsurl";
      hashFrom = "entries";
    }
  }
  const control: Control = {
    entryBits,
    identBits: Math.min(
      MAX_IDENT_BITS,
      Math.max(hints.identBits, entryBits + 1),
    ),
    dataSlotBits,
    hash,
    sipKey: crypto.getRandomValues(new Uint8Array(16)),
    createdAt: Math.floor(Date.now() / 1000),
  };
  return { control, keyLost: hash === "siphash13", dimensionsFrom, hashFrom };
}

/** Whether the `entries` snapshot's records carry 64-bit (SipHash) hashes. */
function snapshotRecords(
  io: FileIO,
  dir: string,
): { count: number; anyHashHi: boolean } | undefined {
  if (io.kind(`${dir}/entries`) !== "file") return undefined;
  const bytes = readWhole(io, `${dir}/entries`);
  if (bytes === undefined) return undefined;
  try {
    const { header, records } = decodeEntries(bytes);
    const v = new DataView(records.buffer, records.byteOffset, records.length);
    let anyHashHi = false;
    for (let i = 0; i < header.count && !anyHashHi; i++) {
      anyHashHi = v.getUint32(i * ENTRY_SIZE + 4, true) !== 0;
    }
    return { count: header.count, anyHashHi };
  } catch (err) {
    if (err instanceof CorruptError || err instanceof VersionMismatchError) {
      return undefined;
    }
    throw err;
  }
}
