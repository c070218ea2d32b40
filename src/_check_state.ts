/**
 * What one check-store pass knows: the findings a repair acts on
 * (`_check_repair.ts`) and the working tables the check steps
 * (`_check_pass.ts`) fill in and read, in order. Every step takes the one
 * {@linkcode PassState}; nothing else is shared between steps.
 *
 * @module
 */
import type {
  CheckOptions,
  CheckStats,
  Problem,
  ProblemCode,
  StoreInfo,
} from "./_check_report.ts";
import { PROBLEM_CODES } from "./_check_report.ts";
import type { Control, ElementHeader } from "./format.ts";
import { useMapBytes } from "./format.ts";
import type { LargeRead } from "./_scan.ts";
import type { IndexMemory } from "./index_memory.ts";
import type { FileIO } from "./io.ts";
import {
  DATA,
  type ElementKind,
  KIND_TABLE,
  KINDS,
  type PerKind,
  perKind,
} from "./kinds.ts";
import type { RebuildResult } from "./rebuild.ts";
import type { ControlCopy } from "./_control.ts";

/** The effective index a pass checks. */
export interface LoadedIndex {
  /** The table. */
  mem: IndexMemory;
  /** Next large-file id (the snapshot's, raised by the journal's). */
  nextFileId: number;
  /** The snapshot's journal tag (random when there is no snapshot). */
  journalTag: number;
  /** Where the table came from. */
  source: StoreInfo["index"];
  /** The journal that continued the snapshot, when it could be read. */
  journal: StoreInfo["journal"];
  /** Set when the table was rebuilt from the elements. */
  rebuild?: RebuildResult;
}

/** A larder-named large file the walk met. */
export interface SeenFile {
  kind: ElementKind;
  id: number;
  rel: string;
  /** Starts with larder's element magic: deletable when unreferenced. */
  magic: boolean;
  size: number;
}

/** What an element slot or file held, judged against one record. */
export interface ElementFacts {
  status:
    | LargeRead["status"]
    | "short"
    | "overflow";
  header?: ElementHeader;
  key?: Uint8Array;
  /** Bytes of header, key and element in the slot (for slot fill). */
  span?: number;
}

/** The little-endian u32 at `at`, or 0 past the end (a format version). */
export function versionAt(b: Uint8Array, at: number): number {
  return b.length < at + 4
    ? 0
    : new DataView(b.buffer, b.byteOffset + at, 4).getUint32(0, true);
}

/** A file kind for people: "a directory", "a FIFO or device"... */
export function fileKindName(k: string): string {
  return k === "dir"
    ? "a directory"
    : k === "other"
    ? "a FIFO, socket or device"
    : `a ${k}`;
}

/** `n` as 0x and eight hex digits. */
export function hex(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, "0")}`;
}

/** The name of element kind `kind` in messages. */
export function kindName(kind: ElementKind): string {
  return KIND_TABLE[kind].name;
}

/** One check of a store directory; the steps of `_check_pass.ts` fill it in. */
export class PassState {
  readonly io: FileIO;
  readonly dir: string;
  readonly opt: CheckOptions;

  // ---- findings (read by check.ts and the repair) --------------------------

  problems: Problem[] = [];
  bytesRead = 0;
  complete = true;
  control: Control | undefined;
  index: LoadedIndex | undefined;
  /** Entries to drop in a repair. */
  drop = new Set<number>();
  /**
   * Per kind, entries to lose only that element in a repair: the entry
   * keeps its other one, which verified (as fetch does, journal op 4).
   */
  dropElement: PerKind<Set<number>> = perKind(() => new Set());
  /** Per entry: attributes to drop in a repair (damaged records). */
  dropAttrs = new Map<number, string[]>();
  /** The index needs writing even with nothing dropped. */
  writeEntries = false;
  writeBlocks = false;
  nextFileIdNeeded = 0;
  headerFixes: Array<{ rel: string; kind: ElementKind; n: number }> = [];
  /** Root files a repair may delete: temp files, stale journals. */
  temps: string[] = [];
  /**
   * Foreign objects at larder's names (`FOREIGN_OBJECT`), which a repair
   * moves aside (`_foreign.ts`), in the order found.
   */
  foreign: string[] = [];
  seenFiles: SeenFile[] = [];
  writeCachedirTag = false;
  /** The control record to write, and to which copies (FORMAT.md §3). */
  controlWrite:
    | { bytes: Uint8Array; names: ControlCopy["name"][] }
    | undefined;
  /** Both control copies are lost: only an open's rebuild can help. */
  controlLost = false;
  stats: CheckStats | undefined;
  /** Milliseconds each step took, by step name, in the order run. */
  stepMs: Record<string, number> = {};

  // ---- working tables (between steps) --------------------------------------

  /** Slots the snapshot claims, when the journal changes them. */
  snapshotClaims: PerKind<Uint8Array> | undefined;
  /** Journal files in the root, classified once the index names one. */
  journals: string[] = [];
  /**
   * Per kind: first claimant of each slot + 1 (0 none: a zeroed table
   * costs nothing until used, where 2^28 slots filled with -1 would).
   */
  slotOwner: PerKind<Uint32Array> = perKind(() => new Uint32Array(0));
  /**
   * Per kind: one past the highest slot any record claims (slots above it
   * have no owner: 2^28 data slots are not walked one by one).
   */
  slotTop: number[] = [0, 0];
  /** Per kind: claimants of a slot after its first. */
  slotExtra: PerKind<Map<number, number[]>> = perKind(() => new Map());
  /** Per kind: large-file id → the entries claiming it. */
  fileOwners: PerKind<Map<number, number[]>> = perKind(() => new Map());
  /** Per kind, per entry: the element's key once verified. */
  keyOf: PerKind<(string | undefined)[]> = perKind(() => []);
  /** Per entry: the latest store time of its verified elements. */
  storedAt: number[] = [];
  verifiedBytes = 0;
  /** Per kind: bytes of the used slots holding header, key and element. */
  slotSpan: number[] = KINDS.map(() => 0);
  /** Data runs (FORMAT.md §5.3): first slot → slots, for runs over one. */
  runs = new Map<number, number>();
  /** Data slots inside a run after its first, one bit each. */
  inRun = new Uint8Array(0);
  allocated = 0;
  largeBytes = 0;
  largeCount = 0;
  orphanBytes = 0;
  orphanCount = 0;
  /** Elements judged so far, of `total`, for progress. */
  done = 0;
  total = 0;

  #started: number;
  #phase: string;
  #lastReport: number;
  #bytesBefore: number;

  constructor(
    io: FileIO,
    dir: string,
    o: {
      options: CheckOptions;
      started: number;
      phase: string;
      bytesBefore: number;
    },
  ) {
    this.io = io;
    this.dir = dir;
    this.opt = o.options;
    this.#started = o.started;
    this.#phase = o.phase;
    this.#lastReport = performance.now();
    this.#bytesBefore = o.bytesBefore;
  }

  /** Sets the index to check and sizes the tables that follow it. */
  setIndex(index: LoadedIndex): void {
    this.index = index;
    const { mem } = index;
    this.slotOwner = perKind((kind) => new Uint32Array(mem.slotCounts[kind]));
    this.slotTop = [0, 0];
    this.inRun = new Uint8Array(useMapBytes(mem.slotCounts[DATA]));
    this.keyOf = perKind(() => new Array(mem.count));
    this.storedAt = new Array(mem.count).fill(0);
  }

  report(
    code: ProblemCode,
    path: string,
    detail: string,
    extra: { key?: string; entry?: number; slot?: number } = {},
  ): void {
    const p: Problem = {
      code,
      severity: PROBLEM_CODES[code].severity,
      path,
      detail,
    };
    if (extra.key !== undefined) p.key = extra.key;
    if (extra.entry !== undefined) p.entry = extra.entry;
    if (extra.slot !== undefined) p.slot = extra.slot;
    this.problems.push(p);
  }

  /** Reports `rel` as a foreign object standing where larder writes. */
  foreignObject(rel: string, detail: string): void {
    if (this.foreign.includes(rel)) return;
    this.foreign.push(rel);
    this.report(
      "FOREIGN_OBJECT",
      rel,
      `${detail}: the store cannot write there; a repair moves it aside`,
    );
  }

  /** Entry `i`'s record is unusable: the repair drops the entry. */
  invalid(i: number, detail: string): void {
    this.drop.add(i);
    this.report("ENTRY_INVALID", "entries", `entry ${i} ${detail}`, {
      entry: i,
    });
  }

  /** Entry `i`'s element of `kind` failed: the repair drops the element. */
  elementProblem(
    i: number,
    kind: ElementKind,
    code: ProblemCode,
    rel: string,
    o: { detail: string; slot?: number; key?: string },
  ): void {
    this.dropElement[kind].add(i);
    this.report(code, rel, `${kindName(kind)} of entry ${i}: ${o.detail}`, {
      entry: i,
      ...(o.slot === undefined ? {} : { slot: o.slot }),
      ...(o.key === undefined ? {} : { key: o.key }),
    });
  }

  /** Reports progress (at most every 100 ms), entering `phase` if given. */
  progress(phase?: string): void {
    if (phase !== undefined) this.#phase = phase;
    const now = performance.now();
    if (this.opt.onProgress === undefined || now - this.#lastReport < 100) {
      return;
    }
    this.#lastReport = now;
    this.opt.onProgress({
      phase: this.#phase,
      done: this.done,
      total: this.total,
      bytesRead: this.#bytesBefore + this.bytesRead,
      elapsedMs: now - this.#started,
    });
  }

  /** Bytes the file system allocates to `rel` (its length if unknown). */
  allocatedBytes(rel: string): number {
    try {
      const st = Deno.lstatSync(`${this.dir}/${rel}`);
      return st.blocks !== null ? st.blocks * 512 : st.size;
    } catch {
      return 0;
    }
  }
}
