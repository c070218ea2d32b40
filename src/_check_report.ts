/**
 * The report check-store produces: problem codes with their severity and
 * repair, and the shape of the report object (schema 1, CHECK_STORE.md).
 * Private: `check.ts` re-exports it.
 *
 * @module
 */
import type { FileIO } from "./io.ts";

/** How bad a problem is: errors make the check fail (exit 1). */
export type Severity = "error" | "warning";

const ELEMENT_REPAIR =
  "drop the element (the entry, when it has no other that verifies)";

/**
 * Every problem code, its severity and what `repair` does about it.
 * Codes are stable; CHECK_STORE.md explains each.
 *
 * @example
 * ```ts
 * import { PROBLEM_CODES } from "@larder/larder";
 * import assert from "node:assert/strict";
 *
 * assert.equal(PROBLEM_CODES.CONTROL_COPY_MISSING.severity, "warning");
 * ```
 */
export const PROBLEM_CODES = {
  CONTROL_CORRUPT: {
    severity: "error",
    repair: "rewrite it from the other copy",
  },
  CONTROL_LOST: {
    severity: "error",
    repair: "rebuild control as an open does (a SipHash store's index " +
      "starts empty)",
  },
  CONTROL_COPY_MISSING: { severity: "warning", repair: "write control.bak" },
  VERSION_NEWER: {
    severity: "error",
    repair: "entries: rebuild the index; journal: new journal; blocks, " +
      "block file header: rewrite; element: drop it; control: " +
      "none (the check stops)",
  },
  VERSION_OLD: {
    severity: "error",
    repair: "none (the check stops): a store of an earlier format " +
      "(8 KiB data slots) is not converted; remove it to start a new one",
  },
  ENTRIES_CORRUPT: { severity: "error", repair: "rebuild the index" },
  ENTRIES_MISSING: { severity: "error", repair: "rebuild the index" },
  JOURNAL_MISSING: { severity: "error", repair: "new snapshot and journal" },
  JOURNAL_CORRUPT: { severity: "error", repair: "new snapshot and journal" },
  JOURNAL_CORRUPT_TAIL: {
    severity: "error",
    repair: "new snapshot and journal",
  },
  JOURNAL_TORN_TAIL: {
    severity: "warning",
    repair: "new snapshot and journal",
  },
  JOURNAL_DIVERGED: { severity: "error", repair: "new snapshot and journal" },
  ENTRY_INVALID: { severity: "error", repair: "drop the entry" },
  SLOT_SHARED: { severity: "error", repair: "keep one claimant's element" },
  FILE_SHARED: { severity: "error", repair: "keep one claimant's element" },
  ELEMENT_MISSING: { severity: "error", repair: ELEMENT_REPAIR },
  ELEMENT_HEADER: { severity: "error", repair: ELEMENT_REPAIR },
  ELEMENT_KEY: { severity: "error", repair: ELEMENT_REPAIR },
  ELEMENT_MISMATCH: { severity: "error", repair: ELEMENT_REPAIR },
  ELEMENT_CRC: { severity: "error", repair: ELEMENT_REPAIR },
  LARGE_FILE_TRUNCATED: { severity: "error", repair: ELEMENT_REPAIR },
  LARGE_FILE_TRAILING: { severity: "error", repair: ELEMENT_REPAIR },
  KEY_HASH: { severity: "error", repair: "drop the entry" },
  DUPLICATE_KEY: { severity: "error", repair: "keep the newest entry" },
  ORPHAN_FILE: { severity: "error", repair: "delete the file" },
  NEXT_FILE_ID: { severity: "warning", repair: "raise nextFileId" },
  BLOCKS_CORRUPT: { severity: "warning", repair: "rewrite blocks" },
  BLOCKS_MISMATCH: { severity: "warning", repair: "rewrite blocks" },
  BLOCK_FILE_CORRUPT: {
    severity: "warning",
    repair: "rewrite the header when it is larder's or zeros, else none",
  },
  SLOT_UNMARKED: { severity: "warning", repair: "rewrite blocks" },
  SLOT_MARKED_FREE: { severity: "warning", repair: "rewrite blocks" },
  TEMP_LEFTOVER: { severity: "warning", repair: "delete the file" },
  JOURNAL_STALE: { severity: "warning", repair: "delete the file" },
  EMPTY_DIR: { severity: "warning", repair: "remove the directories" },
  CACHEDIR_TAG: {
    severity: "warning",
    repair: "write it when missing, else none",
  },
  FOREIGN_FILE: { severity: "warning", repair: "none: never touched" },
  ATTR_CORRUPT: { severity: "error", repair: "drop the attribute" },
  ORIGIN_CORRUPT: {
    severity: "error",
    repair: "write the index without the unreadable origins (the " +
      "elements they named then fail verification and are dropped)",
  },
  ATTR_VERSION_NEWER: {
    severity: "warning",
    repair: "none: kept for the newer larder that wrote it",
  },
  FOREIGN_OBJECT: {
    severity: "error",
    repair: "move it aside to <name>.foreign-<n>",
  },
} as const satisfies Record<string, { severity: Severity; repair: string }>;

/** A stable problem code (see {@linkcode PROBLEM_CODES}). */
export type ProblemCode = keyof typeof PROBLEM_CODES;

/** One thing found wrong. */
export interface Problem {
  /** Stable code. */
  code: ProblemCode;
  /** `error` fails the check; `warning` does not. */
  severity: Severity;
  /** Path relative to the store directory (`""`: the directory itself). */
  path: string;
  /** The key concerned, when known. */
  key?: string;
  /** Index of the entry concerned in the entry table. */
  entry?: number;
  /** Slot number (of the element's kind) concerned. */
  slot?: number;
  /** What is wrong, for people. */
  detail: string;
}

/** Stable codes of what a repair did. */
export type RepairAction =
  | "REBUILD_INDEX"
  | "DROP_ENTRY"
  | "DROP_ELEMENT"
  | "DROP_ATTR"
  | "RAISE_NEXT_FILE_ID"
  | "REWRITE_BLOCK_FILE_HEADER"
  | "WRITE_BLOCKS"
  | "WRITE_ENTRIES"
  | "NEW_JOURNAL"
  | "DELETE_FILE"
  | "DELETE_TEMP"
  | "REMOVE_DIR"
  | "MOVE_ASIDE"
  | "WRITE_CACHEDIR_TAG"
  | "WRITE_CONTROL"
  | "REBUILD_CONTROL";

/** One change a repair made. */
export interface Repair {
  /** Stable action code. */
  action: RepairAction;
  /** Path relative to the store directory. */
  path: string;
  /** The key concerned, when known. */
  key?: string;
  /** What was done, for people. */
  detail: string;
}

/** Parameters of the store, from `control`. */
export interface StoreInfo {
  /** log2 of the entry capacity. */
  entryBits: number;
  /** log2 of the address-map size. */
  identBits: number;
  /** Key hash algorithm. */
  hash: string;
  /** Creation time, seconds since the Unix epoch. */
  createdAt: number;
  /** log2 of the data slot count. */
  dataSlotBits: number;
  /** Entries the table holds (2^entryBits); also the metadata slots. */
  capacity: number;
  /** Block files of each kind the slots take (created as used). */
  blockFiles: { data: number; meta: number };
  /** Next large-file id the index hands out. */
  nextFileId: number;
  /**
   * The journal continuing the snapshot (FORMAT.md §10): its file name,
   * size and the operations replayed from it; null when there is none.
   */
  journal: { name: string; size: number; operations: number } | null;
  /**
   * Where the index checked came from: the `entries` snapshot, `empty`
   * (no snapshot and no elements: a new store), or `rebuilt` from the
   * elements because the snapshot was missing, damaged or newer.
   */
  index: "snapshot" | "empty" | "rebuilt";
}

/** Per-kind slot figures. */
export interface SlotStats {
  /** Slots claimed by entries. */
  used: number;
  /** Slots free (capacity − used). */
  free: number;
  /**
   * Free slots below the highest used one, as a share of the slots up to
   * it: 0 when used slots are packed from 0.
   */
  fragmentation: number;
  /** Average share of a used slot holding header, key and bytes. */
  fill: number;
}

/** Totals and distributions. */
export interface CheckStats {
  /** Entries in the index. */
  entries: number;
  /** Elements by kind. */
  elements: { data: number; meta: number };
  /** Element bytes as the index accounts them (what the limit counts). */
  bytes: number;
  /** Element bytes of elements that verified. */
  bytesVerified: number;
  /** Bytes the store's files occupy on disk (allocated blocks). */
  bytesOnDisk: number;
  /** Slot figures by kind. */
  slots: { data: SlotStats; meta: SlotStats };
  /** Large files referenced, and their total length. */
  largeFiles: { count: number; bytes: number };
  /** Orphan large files, and their total length. */
  orphans: { count: number; bytes: number };
  /** Entries by use count: `[min, max]` ranges (powers of two). */
  useCountHistogram: Array<{ min: number; max: number; count: number }>;
  /**
   * Entries by time since last use; `maxAgeSeconds: null` is older than
   * a year; `future` counts last uses ahead of the clock.
   */
  ageHistogram: Array<{ maxAgeSeconds: number | null; count: number }>;
  /** Entries whose last use lies in the future (clock changes). */
  future: number;
}

/** What `checkStore` returns; CHECK_STORE.md has the schema. */
export interface CheckReport {
  /** Schema version of this object (1). */
  schema: 1;
  /** The store directory, as given. */
  dir: string;
  /**
   * True when the check completed and found no error (after repair: no
   * error remains).
   */
  ok: boolean;
  /** False when the check had to stop (control unreadable or newer). */
  complete: boolean;
  /** True when the store's lock was held throughout. */
  locked: boolean;
  /** The store's parameters (null when control is unreadable). */
  store: StoreInfo | null;
  /** What the (first) check found. */
  problems: Problem[];
  /** What repair changed (empty without repair). */
  repaired: Repair[];
  /** What the re-check after repair found; null when no repair ran. */
  remaining: Problem[] | null;
  /** Totals of the last pass (null when control is unreadable). */
  stats: CheckStats | null;
  /** Wall time of the whole call. */
  durationMs: number;
  /**
   * Milliseconds each step of the first check took, by step name, in the
   * order the steps ran (a check that stops early lists fewer).
   */
  stepMs: Record<string, number>;
  /** The same for the re-check after repair; null when none ran. */
  recheckStepMs: Record<string, number> | null;
  /** Bytes read from the store. */
  bytesRead: number;
}

/** Progress of a check, reported at most every 100 ms. */
export interface CheckProgress {
  /** `index`, `rebuild`, `slots`, `files`, `keys`, `repair`, `recheck`. */
  phase: string;
  /** Elements checked so far in this pass. */
  done: number;
  /** Elements the index references. */
  total: number;
  /** Bytes read so far (all passes). */
  bytesRead: number;
  /** Milliseconds since the check started. */
  elapsedMs: number;
}

/** Options of `checkStore`. */
export interface CheckOptions {
  /** Repair what can be repaired (needs the lock). */
  repair?: boolean;
  /**
   * Check without taking the lock, e.g. while a store is open. Results
   * may then be inconsistent; cannot be combined with `repair`.
   */
  forceReadonly?: boolean;
  /** Called with progress at most every 100 ms. */
  onProgress?: (p: CheckProgress) => void;
  /** Testing hook: the hash override the store was written with. */
  hashOverride?: (key: string) => number;
  /**
   * The file layer (tests).
   *
   * @ignore
   */
  io?: FileIO;
}
