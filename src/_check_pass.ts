/**
 * One read-only pass of check-store over a store directory (FORMAT.md is
 * the specification checked; `§N` points at it). Private to check.ts,
 * which runs a pass, repairs from what it found, and runs another.
 *
 * @module
 */
import {
  byName,
  CHUNK_BYTES,
  hasMagicAt,
  keyText,
  type LargeRead,
  listDir,
  parseElement,
  readLargeElement,
  readSlots,
  slotElement,
  walkLargeTree,
} from "./_scan.ts";
import {
  type CheckOptions,
  type CheckStats,
  type Problem,
  PROBLEM_CODES,
  type ProblemCode,
  type SlotStats,
  type StoreInfo,
} from "./_check_report.ts";
import { CorruptError, StoreError, VersionMismatchError } from "./errors.ts";
import {
  BLOCK_FILE_HEADER,
  blockFileCount,
  blockFileHeaderMatches,
  blockFileVersion,
  CACHEDIR_TAG,
  type Control,
  decodeBlocks,
  decodeEntries,
  ELEMENT_HEADER,
  type ElementHeader,
  MAGIC,
  runWithin,
  SLOT_SIZE,
  SLOTS_PER_FILE,
  useMapBytes,
  VERSION,
} from "./format.ts";
import { pairRecordsFit, recordFitsSlots } from "./elements.ts";
import {
  claimsSlot,
  DATA,
  type ElementKind,
  type ElementRecord,
  IndexMemory,
  MAX_KEY_BYTES,
  META,
  recordSlots,
} from "./index_memory.ts";
import { type FileIO, readPrefix, readWhole } from "./io.ts";
import {
  decodeJournalHeader,
  JOURNAL_MAGIC,
  JOURNAL_VERSION,
  JOURNAL_VERSIONS_READ,
  journalName,
  readEntries,
  tornEntryEnd,
} from "./journal.ts";
import { replay } from "./ops.ts";
import { normaliseKey, nsurlComponents } from "./key.ts";
import { BLOCK_DIRS, blockFileParts, largeFileParts } from "./paths.ts";
import { rebuildIndex, type RebuildResult } from "./rebuild.ts";
import {
  chooseControl,
  type ControlCopy,
  readControlCopies,
} from "./_control.ts";

const ROOT_FILES = new Set([
  "lock",
  "CACHEDIR.TAG",
  "control",
  "control.bak",
  "entries",
  "blocks",
]);
/** Root files larder replaces through `NAME.tmp` (FORMAT.md §7). */
const REPLACED = [
  "control",
  "control.bak",
  "entries",
  "blocks",
  "CACHEDIR.TAG",
];
/** Journal file names (FORMAT.md §10.1). */
const JOURNAL_NAME = /^journal-[0-9A-F]{8}$/;
/** Element kinds, in the order checks visit them. */
export const KINDS = [DATA, META] as const;
/** Element kinds for people. */
export const KIND_NAME = ["data", "metadata"] as const;

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
interface ElementFacts {
  status:
    | LargeRead["status"]
    | "short"
    | "overflow";
  header?: ElementHeader;
  key?: Uint8Array;
  /** Bytes of header, key and element in the slot (for slot fill). */
  span?: number;
}

function versionAt(b: Uint8Array, at: number): number {
  return b.length < at + 4
    ? 0
    : new DataView(b.buffer, b.byteOffset + at, 4).getUint32(0, true);
}

/** A file kind for people: "a directory", "a FIFO or device"... */
function kindName(k: string): string {
  return k === "dir"
    ? "a directory"
    : k === "other"
    ? "a FIFO, socket or device"
    : `a ${k}`;
}

function hex(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, "0")}`;
}

/** Use maps of the slots the records in `mem` claim (runs whole). */
function claimedSlots(mem: IndexMemory): [Uint8Array, Uint8Array] {
  const maps: [Uint8Array, Uint8Array] = [
    new Uint8Array(useMapBytes(mem.slotCounts[DATA])),
    new Uint8Array(useMapBytes(mem.slotCounts[META])),
  ];
  for (let i = 0; i < mem.count; i++) {
    for (const kind of KINDS) {
      const rec = mem.element(i, kind);
      if (!claimsSlot(rec)) continue;
      const end = Math.min(rec.loc + recordSlots(rec), mem.slotCounts[kind]);
      for (let s = rec.loc; s < end; s++) maps[kind][s >>> 3]! |= 1 << (s & 7);
    }
  }
  return maps;
}

/** Offset of the first non-zero byte at or after `from`, or -1. */
function firstNonZero(b: Uint8Array, from: number): number {
  let i = from;
  // Word at a time where aligned: journals are megabytes of zeros.
  while (i < b.length && ((b.byteOffset + i) & 3) !== 0) {
    if (b[i] !== 0) return i;
    i++;
  }
  const words = new Uint32Array(
    b.buffer,
    b.byteOffset + i,
    (b.length - i) >>> 2,
  );
  for (let w = 0; w < words.length; w++) {
    if (words[w] !== 0) {
      for (let k = i + w * 4; k < i + w * 4 + 4; k++) if (b[k] !== 0) return k;
    }
  }
  for (let k = i + words.length * 4; k < b.length; k++) {
    if (b[k] !== 0) return k;
  }
  return -1;
}

function randomU32(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}

/** One check of a store directory; `run` fills it in. */
export class Pass {
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
  dropElement: [Set<number>, Set<number>] = [new Set(), new Set()];
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
  /** Slots the snapshot claims, when the journal changes them. */
  #snapshotClaims: [Uint8Array, Uint8Array] | undefined;
  /** Journal files in the root, classified once the index names one. */
  #journals: string[] = [];
  seenFiles: SeenFile[] = [];
  writeCachedirTag = false;
  /** The control record to write, and to which copies (FORMAT.md §3). */
  controlWrite:
    | { bytes: Uint8Array; names: ControlCopy["name"][] }
    | undefined;
  /** Both control copies are lost: only an open's rebuild can help. */
  controlLost = false;
  stats: CheckStats | undefined;

  #io: FileIO;
  #dir: string;
  #opt: CheckOptions;
  #started: number;
  #phase: string;
  #lastReport: number;
  #done = 0;
  #total = 0;
  #bytesBefore: number;

  // Per kind: first claimant of each slot (-1 none); later claimants.
  #slotOwner: [Int32Array, Int32Array] = [new Int32Array(0), new Int32Array(0)];
  #slotExtra: [Map<number, number[]>, Map<number, number[]>] = [
    new Map(),
    new Map(),
  ];
  #fileOwners: [Map<number, number[]>, Map<number, number[]>] = [
    new Map(),
    new Map(),
  ];
  // Per kind, per entry: the element's key and store time once verified.
  #keyOf: [(string | undefined)[], (string | undefined)[]] = [[], []];
  #storedAt: number[] = [];
  #verifiedBytes = 0;
  #slotSpan: [number, number] = [0, 0];
  /** Data runs (FORMAT.md §5.3): first slot → slots, for runs over one. */
  #runs = new Map<number, number>();
  /** Data slots inside a run after its first, one bit each. */
  #inRun = new Uint8Array(0);
  #allocated = 0;
  #largeBytes = 0;
  #largeCount = 0;
  #orphanBytes = 0;
  #orphanCount = 0;

  constructor(
    io: FileIO,
    dir: string,
    opt: CheckOptions,
    started: number,
    phase: string,
    bytesBefore: number,
  ) {
    this.#io = io;
    this.#dir = dir;
    this.#opt = opt;
    this.#started = started;
    this.#phase = phase;
    this.#lastReport = performance.now();
    this.#bytesBefore = bytesBefore;
  }

  #report(
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
  #foreignObject(rel: string, detail: string): void {
    if (this.foreign.includes(rel)) return;
    this.foreign.push(rel);
    this.#report(
      "FOREIGN_OBJECT",
      rel,
      `${detail}: the store cannot write there; a repair moves it aside`,
    );
  }

  #progress(phase?: string): void {
    if (phase !== undefined) this.#phase = phase;
    const now = performance.now();
    if (this.#opt.onProgress === undefined || now - this.#lastReport < 100) {
      return;
    }
    this.#lastReport = now;
    this.#opt.onProgress({
      phase: this.#phase,
      done: this.#done,
      total: this.#total,
      bytesRead: this.#bytesBefore + this.bytesRead,
      elapsedMs: now - this.#started,
    });
  }

  #allocatedBytes(rel: string): number {
    try {
      const st = Deno.lstatSync(`${this.#dir}/${rel}`);
      return st.blocks !== null ? st.blocks * 512 : st.size;
    } catch {
      return 0;
    }
  }

  run(): void {
    this.#rootFiles();
    const control = this.#control();
    if (control === undefined) return;
    this.control = control;
    const index = this.#loadIndex(control);
    this.index = index;
    this.#classifyJournals(index);
    const [dataSlots, metaSlots] = index.mem.slotCounts;
    this.#slotOwner = [
      new Int32Array(dataSlots).fill(-1),
      new Int32Array(metaSlots).fill(-1),
    ];
    this.#inRun = new Uint8Array(useMapBytes(dataSlots));
    this.#keyOf = [new Array(index.mem.count), new Array(index.mem.count)];
    this.#storedAt = new Array(index.mem.count).fill(0);
    this.#records();
    this.#useMaps();
    this.#blockFiles();
    this.#largeFiles();
    this.#keys();
    this.#shared();
    this.#settleDrops();
    this.#fillKeys();
    this.#stats();
  }

  // ---- root directory ------------------------------------------------------

  #rootFiles(): void {
    const io = this.#io;
    for (const { name, kind: k } of byName(listDir(io, this.#dir))) {
      if (ROOT_FILES.has(name)) {
        if (k !== "file" && (name === "entries" || name === "blocks")) {
          this.#foreignObject(name, `${kindName(k)} where larder keeps a file`);
        } else if (k !== "file") {
          this.#report("FOREIGN_FILE", name, `${k} where larder keeps a file`);
        }
        this.#allocated += this.#allocatedBytes(name);
        continue;
      }
      if (name === "d" || name === "m") continue; // walked later
      if ((BLOCK_DIRS as readonly string[]).includes(name)) {
        if (k !== "dir") {
          this.#foreignObject(
            name,
            `${kindName(k)} where larder keeps a directory`,
          );
        }
        continue;
      }
      if (JOURNAL_NAME.test(name) && k === "file") {
        this.#journals.push(name); // classified once the index names one
        this.#allocated += this.#allocatedBytes(name);
        continue;
      }
      if (name.endsWith(".tmp") && REPLACED.includes(name.slice(0, -4))) {
        if (k === "file") {
          this.temps.push(name);
          this.#report(
            "TEMP_LEFTOVER",
            name,
            "left by an interrupted replacement of " + name.slice(0, -4),
          );
        } else {
          this.#foreignObject(
            name,
            `${kindName(k)} where larder writes a temp file`,
          );
        }
        continue;
      }
      this.#report(
        "FOREIGN_FILE",
        name,
        `${k === "dir" ? "directory" : k} larder did not write; not touched`,
      );
    }
    const tag = `${this.#dir}/CACHEDIR.TAG`;
    const tagKind = io.kind(tag);
    if (tagKind === "missing") {
      this.writeCachedirTag = true;
      this.#report("CACHEDIR_TAG", "CACHEDIR.TAG", "missing");
    } else if (tagKind === "file") {
      const bytes = readWhole(io, tag) ?? new Uint8Array(0);
      this.bytesRead += bytes.length;
      if (!hasMagicAt(bytes, CACHEDIR_TAG.subarray(0, 43))) {
        this.#report(
          "CACHEDIR_TAG",
          "CACHEDIR.TAG",
          "does not start with the cache directory signature; not touched",
        );
      }
    }
  }

  /** Journals other than the current one are leftovers of a rotation. */
  #classifyJournals(index: LoadedIndex): void {
    for (const name of this.#journals) {
      if (name === index.journal?.name) continue;
      if (
        index.source === "snapshot" && name === journalName(index.journalTag)
      ) {
        continue; // the current journal, reported by #replayJournal
      }
      const head = readPrefix(this.#io, `${this.#dir}/${name}`, 8);
      if (hasMagicAt(head, JOURNAL_MAGIC)) {
        this.temps.push(name);
        this.#report(
          "JOURNAL_STALE",
          name,
          "a journal no snapshot names (left by an interrupted rotation)",
        );
      } else {
        this.#report(
          "FOREIGN_FILE",
          name,
          "file at a journal name without larder's magic; not touched",
        );
      }
    }
  }

  // ---- §3 control ----------------------------------------------------------

  #control(): Control | undefined {
    const copies = readControlCopies(this.#io, this.#dir);
    for (const c of copies) this.bytesRead += c.bytes?.length ?? 0;
    let chosen: ControlCopy | undefined;
    try {
      chosen = chooseControl(copies);
    } catch (err) {
      if (!(err instanceof VersionMismatchError)) throw err;
      const newer = copies.find((c) => c.state === "newer")!;
      this.complete = false;
      this.#report(
        "VERSION_NEWER",
        newer.name,
        `control format version ${
          versionAt(newer.bytes!, 8)
        }; this larder reads ${VERSION.control}: nothing else can be checked`,
      );
      return undefined;
    }
    if (chosen === undefined) {
      // Both copies lost in a directory larder's files prove is a store
      // (probeStore refused anything else).
      this.complete = false;
      this.controlLost = true;
      this.#report(
        "CONTROL_LOST",
        "control",
        `no sound copy of the control record (${
          copies.map((c) => `${c.name}: ${c.detail ?? c.state}`).join("; ")
        }): nothing else can be checked; an open or --repair rebuilds it`,
      );
      return undefined;
    }
    for (const c of copies) {
      if (c.state === "ok") continue;
      if (c.state === "missing" && c.name === "control.bak") {
        this.#report(
          "CONTROL_COPY_MISSING",
          c.name,
          "no second copy of the control record (a store made before it existed)",
        );
      } else {
        this.#report(
          "CONTROL_CORRUPT",
          c.name,
          `${c.detail ?? c.state}; ${chosen.name} is sound and is used`,
        );
      }
    }
    const names = copies.filter((c) => c.state !== "ok").map((c) => c.name);
    if (names.length > 0) this.controlWrite = { bytes: chosen.bytes!, names };
    return chosen.control;
  }

  // ---- §4 the index ----------------------------------------------------------

  /**
   * Loads the effective index: the `entries` snapshot or, when that is
   * unusable, the index rebuilt from the elements. The journal's replay
   * (issue 4) belongs here, after the snapshot is decoded.
   */
  #loadIndex(control: Control): LoadedIndex {
    const io = this.#io;
    const mem = new IndexMemory(control);
    mem.setSipKey(control.sipKey);
    const path = `${this.#dir}/entries`;
    const kind = io.kind(path);
    let why: { code: ProblemCode; detail: string } | undefined;
    if (kind === "file") {
      const bytes = readWhole(io, path) ?? new Uint8Array(0);
      this.bytesRead += bytes.length;
      try {
        const { header, records } = decodeEntries(bytes);
        if (header.count > mem.capacity) {
          throw new CorruptError(
            `Cannot read entries: ${header.count} records, capacity ${mem.capacity}`,
          );
        }
        mem.loadRecords(records, header.count);
        const index: LoadedIndex = {
          mem,
          nextFileId: header.nextFileId,
          journalTag: header.journalTag,
          source: "snapshot",
          journal: null,
        };
        this.#replayJournal(index);
        return index;
      } catch (err) {
        if (err instanceof VersionMismatchError) {
          why = {
            code: "VERSION_NEWER",
            detail: `entries format version ${
              versionAt(bytes, 8)
            }; this larder reads ${VERSION.entries}`,
          };
        } else if (err instanceof CorruptError) {
          why = { code: "ENTRIES_CORRUPT", detail: err.message };
        } else throw err;
      }
    } else if (kind !== "missing") {
      why = { code: "ENTRIES_CORRUPT", detail: `${kind}, not a file` };
    }
    this.#progress("rebuild");
    const rebuild = rebuildIndex(io, this.#dir, mem, {
      onProgress: (p) => {
        this.#done = p.done;
        this.#progress();
      },
    });
    this.bytesRead += rebuild.bytesRead;
    if (why === undefined && rebuild.count === 0) {
      // A store that has not written its index yet, and holds nothing.
      return {
        mem,
        nextFileId: rebuild.nextFileId,
        journalTag: randomU32(),
        source: "empty",
        journal: null,
      };
    }
    why ??= {
      code: "ENTRIES_MISSING",
      detail: "no entries file, but the store holds elements",
    };
    this.#report(
      why.code,
      "entries",
      `${why.detail}; ${rebuild.count} entries recoverable from the elements` +
        ` (${rebuild.dropped} superseded, ${rebuild.corrupt} damaged)`,
    );
    this.writeEntries = true;
    this.writeBlocks = true;
    return {
      mem,
      nextFileId: rebuild.nextFileId,
      journalTag: randomU32(),
      source: "rebuilt",
      journal: null,
      rebuild,
    };
  }

  /**
   * Replays the journal the snapshot names onto it (FORMAT.md §10), as
   * open does: the valid entries in order, up to the first that fails or
   * does not match the table. Anything else in the file is reported.
   */
  #replayJournal(index: LoadedIndex): void {
    const io = this.#io;
    const name = journalName(index.journalTag);
    const path = `${this.#dir}/${name}`;
    const kind = io.kind(path);
    const trouble = (code: ProblemCode, detail: string) => {
      this.writeEntries = true; // a new snapshot and journal replace it
      this.#report(code, name, detail);
    };
    if (kind === "missing") {
      return trouble(
        "JOURNAL_MISSING",
        "the journal the entries snapshot names does not exist; changes " +
          "since the snapshot are lost",
      );
    }
    if (kind !== "file") {
      return trouble("JOURNAL_CORRUPT", `${kind}, not a file; not touched`);
    }
    const bytes = readWhole(io, path) ?? new Uint8Array(0);
    this.bytesRead += bytes.length;
    let size: number;
    try {
      const h = decodeJournalHeader(bytes);
      if (h.tag !== index.journalTag || h.size !== bytes.length) {
        return trouble(
          "JOURNAL_CORRUPT",
          `header names tag ${hex(h.tag)} and ${h.size} bytes; the file ` +
            `is ${bytes.length} bytes, the snapshot names tag ` +
            hex(index.journalTag),
        );
      }
      if (h.rotated) {
        return trouble(
          "JOURNAL_CORRUPT",
          "marked rotated, yet the entries snapshot names it",
        );
      }
      size = h.size;
    } catch (err) {
      if (err instanceof VersionMismatchError) {
        const v = versionAt(bytes, 8);
        return trouble(
          v > JOURNAL_VERSION ? "VERSION_NEWER" : "JOURNAL_CORRUPT",
          `journal format version ${v}; this larder reads ${JOURNAL_VERSIONS_READ}`,
        );
      }
      if (err instanceof CorruptError) {
        return trouble("JOURNAL_CORRUPT", err.message);
      }
      throw err;
    }
    const { entries, end } = readEntries(bytes);
    // `blocks` is written with the snapshot (FORMAT.md §10.3), so after a
    // crash it matches the snapshot, not what the journal adds to it.
    if (entries.length > 0) this.#snapshotClaims = claimedSlots(index.mem);
    const r = replay(index.mem, entries);
    index.journal = { name, size, operations: r.applied };
    if (r.fileIdFloor > index.nextFileId) index.nextFileId = r.fileIdFloor;
    const junk = firstNonZero(bytes, end);
    // One torn final entry is what a crash leaves (open discards it);
    // nonzero bytes past what one append could cover are damage.
    const torn = junk < 0 ? end : tornEntryEnd(bytes, end);
    const beyond = junk < 0 ? -1 : firstNonZero(bytes, torn);
    if (junk >= 0 && beyond < 0) {
      trouble(
        "JOURNAL_TORN_TAIL",
        `${entries.length} valid operations end at byte ${end}; the ` +
          `nonzero bytes after them (from byte ${junk}) lie within the one ` +
          `entry a crash could have torn (to byte ${torn}): the operation ` +
          "being written when the process or machine stopped is discarded",
      );
    } else if (beyond >= 0) {
      trouble(
        "JOURNAL_CORRUPT_TAIL",
        `${entries.length} valid operations end at byte ${end}; byte ` +
          `${beyond} after them is not zero, past what one torn entry ` +
          `could cover (to byte ${torn}): damage, and what follows is ignored`,
      );
    }
    if (r.diverged) {
      trouble(
        "JOURNAL_DIVERGED",
        `operation ${r.applied + 1} of ${entries.length} does not match ` +
          "the table; replay stopped there",
      );
    }
  }

  /** Structural checks of each record (FORMAT.md §8 invariants 1–3). */
  #records(): void {
    const { mem, nextFileId } = this.index!;
    for (let i = 0; i < mem.count; i++) {
      const recs = [mem.element(i, DATA), mem.element(i, META)];
      if (recs[0] === undefined && recs[1] === undefined) {
        this.#invalid(i, "has no elements");
        continue;
      }
      for (const kind of KINDS) {
        const rec = recs[kind];
        if (rec === undefined) continue;
        this.#total++;
        if (rec.withData === true) {
          // Judged with the data's slot (#slot); it claims no slot itself.
          if (!pairRecordsFit(recs[DATA], rec)) {
            this.#invalid(
              i,
              `metadata is marked as in the data's slot ${rec.loc}, which ` +
                "the data does not have or has no room for it",
            );
          }
          continue;
        }
        if (rec.inFile) {
          const owners = this.#fileOwners[kind].get(rec.loc);
          if (owners === undefined) this.#fileOwners[kind].set(rec.loc, [i]);
          else owners.push(i);
          if (rec.loc >= nextFileId) {
            this.nextFileIdNeeded = Math.max(
              this.nextFileIdNeeded,
              rec.loc + 1,
            );
          }
          continue;
        }
        const n = recordSlots(rec);
        if (!runWithin(mem.slotCounts[kind], rec.loc, n)) {
          this.#invalid(
            i,
            n === 1
              ? `${KIND_NAME[kind]} slot ${rec.loc} out of range`
              : `data run of ${n} slots from ${rec.loc} out of range or across block files`,
          );
          continue;
        }
        const after = kind === DATA && recs[META]?.withData
          ? recs[META]
          : undefined;
        if (!recordFitsSlots(kind, rec, after)) {
          this.#invalid(
            i,
            `${KIND_NAME[kind]} element of ${rec.size} bytes cannot fit ${
              n === 1 ? "a slot" : `${n} slots`
            }`,
          );
          continue;
        }
        if (n > 1) this.#runs.set(rec.loc, n);
        const owner = this.#slotOwner[kind];
        for (let s = rec.loc; s < rec.loc + n; s++) {
          if (s > rec.loc) this.#inRun[s >>> 3]! |= 1 << (s & 7);
          if (owner[s] === -1) owner[s] = i;
          else {
            const extra = this.#slotExtra[kind].get(s);
            if (extra === undefined) this.#slotExtra[kind].set(s, [i]);
            else extra.push(i);
          }
        }
      }
    }
    if (this.nextFileIdNeeded > nextFileId) {
      this.writeEntries = true;
      this.#report(
        "NEXT_FILE_ID",
        "entries",
        `nextFileId is ${nextFileId} but entries use large-file ids up to ${
          this.nextFileIdNeeded - 1
        }`,
      );
    }
  }

  #invalid(i: number, detail: string): void {
    this.drop.add(i);
    this.#report("ENTRY_INVALID", "entries", `entry ${i} ${detail}`, {
      entry: i,
    });
  }

  // ---- §5.1 blocks -----------------------------------------------------------

  #useMaps(): void {
    const io = this.#io;
    const mem = this.index!.mem;
    const path = `${this.#dir}/blocks`;
    let maps: [Uint8Array, Uint8Array] | undefined;
    const kind = io.kind(path);
    const anySlots = this.#slotOwner.some((o) => o.some((v) => v >= 0));
    if (kind === "missing") {
      if (anySlots) {
        this.writeBlocks = true;
        this.#report(
          "BLOCKS_CORRUPT",
          "blocks",
          "missing, yet entries use slots",
        );
      }
      return;
    }
    if (kind !== "file") {
      this.writeBlocks = true; // reported as FOREIGN_OBJECT
      return;
    }
    const bytes = readWhole(io, path) ?? new Uint8Array(0);
    this.bytesRead += bytes.length;
    try {
      const decoded = decodeBlocks(bytes);
      const [dataSlots, metaSlots] = mem.slotCounts;
      const mapBytes = mem.useMap(DATA).length;
      if (
        decoded.slots[0] !== dataSlots || decoded.slots[1] !== metaSlots ||
        decoded.maps[0].length !== mapBytes
      ) {
        this.writeBlocks = true;
        this.#report(
          "BLOCKS_MISMATCH",
          "blocks",
          `use maps for ${decoded.slots[0]} data slots of ${
            decoded.maps[0].length
          } bytes and ${
            decoded.slots[1]
          } metadata slots; control says ${dataSlots} data slots of ${mapBytes} bytes and ${metaSlots} metadata slots`,
        );
        return;
      }
      maps = decoded.maps;
    } catch (err) {
      this.writeBlocks = true;
      if (err instanceof VersionMismatchError) {
        this.#report(
          "VERSION_NEWER",
          "blocks",
          `blocks format version ${
            versionAt(bytes, 8)
          }; this larder reads ${VERSION.blocks}`,
        );
      } else if (err instanceof CorruptError) {
        this.#report("BLOCKS_CORRUPT", "blocks", err.message);
      } else throw err;
      return;
    }
    const claims = this.#snapshotClaims;
    for (const kind of KINDS) {
      const map = maps[kind];
      const owner = this.#slotOwner[kind];
      const slots = mem.slotCounts[kind];
      for (let byte = 0; byte < slots >>> 3; byte++) {
        let claimed = 0;
        if (claims !== undefined) claimed = claims[kind][byte]!;
        else {
          for (let bit = 0; bit < 8; bit++) {
            if (owner[byte * 8 + bit]! >= 0) claimed |= 1 << bit;
          }
        }
        const marked = map[byte]!;
        if (claimed === marked) continue;
        for (let bit = 0; bit < 8; bit++) {
          const s = byte * 8 + bit;
          const m = (marked >> bit) & 1;
          const c = (claimed >> bit) & 1;
          if (m === c) continue;
          this.writeBlocks = true;
          if (c && claims !== undefined) {
            this.#report(
              "SLOT_UNMARKED",
              "blocks",
              `${KIND_NAME[kind]} slot ${s} holds an element of the entries ` +
                "snapshot but is not marked used",
              { slot: s },
            );
          } else if (c) {
            this.#report(
              "SLOT_UNMARKED",
              "blocks",
              `${KIND_NAME[kind]} slot ${s} holds entry ${
                owner[s]
              }'s element but is not marked used`,
              { slot: s, entry: owner[s]! },
            );
          } else {
            this.#report(
              "SLOT_MARKED_FREE",
              "blocks",
              `${
                KIND_NAME[kind]
              } slot ${s} is marked used but no entry claims it`,
              { slot: s },
            );
          }
        }
      }
    }
  }

  // ---- §5.2 block files and slots ----------------------------------------------

  #blockFiles(): void {
    const io = this.#io;
    const mem = this.index!.mem;
    const buf = new Uint8Array(CHUNK_BYTES);
    this.#progress("slots");
    for (const kind of KINDS) {
      const fileCount = blockFileCount(mem.slotCounts[kind]);
      const expected = new Set<string>();
      const owner = this.#slotOwner[kind];
      // Directories on the way to block files: usable, or not there.
      const dirUsable = new Map<string, boolean>();
      const usable = (rel: string): boolean => {
        let ok = dirUsable.get(rel);
        if (ok === undefined) {
          const up = rel.lastIndexOf("/");
          ok = up < 0 || usable(rel.slice(0, up));
          if (ok) {
            const k = io.kind(`${this.#dir}/${rel}`);
            ok = k === "dir";
            if (k !== "dir" && k !== "missing") {
              this.#foreignObject(
                rel,
                `${kindName(k)} where larder keeps a directory`,
              );
            }
          }
          dirUsable.set(rel, ok);
        }
        return ok;
      };
      for (let n = 0; n < fileCount; n++) {
        const parts = blockFileParts(kind, n, fileCount);
        const rel = parts.join("/");
        expected.add(rel);
        if (parts.length === 3) expected.add(parts.slice(0, 2).join("/"));
        const base = n * SLOTS_PER_FILE;
        let claimed = 0;
        for (let s = 0; s < SLOTS_PER_FILE; s++) {
          if (owner[base + s]! >= 0) claimed++;
        }
        const path = `${this.#dir}/${rel}`;
        const k = usable(parts.slice(0, -1).join("/"))
          ? io.kind(path)
          : "missing";
        if (k !== "file") {
          if (k !== "missing") {
            this.#foreignObject(
              rel,
              `${kindName(k)} where larder keeps a block file`,
            );
          }
          if (claimed > 0) {
            this.#eachClaimant(
              kind,
              base,
              SLOTS_PER_FILE,
              (i, s) =>
                this.#elementProblem(i, kind, "ELEMENT_MISSING", rel, {
                  slot: s,
                  detail: `block file ${rel} does not exist`,
                }),
            );
          }
          continue;
        }
        this.#allocated += this.#allocatedBytes(rel);
        const fd = io.openR(path);
        try {
          const head = new Uint8Array(32);
          this.bytesRead += io.pread(fd, head, 0);
          const version = blockFileVersion(head);
          if (version > VERSION.blockFile) {
            this.headerFixes.push({ rel, kind, n });
            this.#report(
              "VERSION_NEWER",
              rel,
              `block file format version ${version}; this larder reads ${VERSION.blockFile}`,
            );
          } else if (!blockFileHeaderMatches(head, kind, n)) {
            // A crash between creating a block file and writing its header
            // leaves zeros; open writes the header again (FORMAT.md §9).
            if (hasMagicAt(head, MAGIC.blockFile) || head.every((b) => !b)) {
              this.headerFixes.push({ rel, kind, n });
              this.#report(
                "BLOCK_FILE_CORRUPT",
                rel,
                `header is not that of ${KIND_NAME[kind]} block file ${n}`,
              );
            } else {
              this.#report(
                "BLOCK_FILE_CORRUPT",
                rel,
                "not a larder block file (no LARDERBF magic); not touched",
              );
            }
          }
          if (claimed === 0) continue;
          // A run is judged from its first slot, read whole.
          const judged = (s: number) =>
            owner[base + s]! >= 0 &&
            (kind === META || !this.#insideRun(base + s));
          this.bytesRead += readSlots(
            io,
            fd,
            kind,
            judged,
            (s, bytes) => {
              if (!judged(s)) return;
              const n = kind === DATA ? this.#runs.get(base + s) ?? 1 : 1;
              let room = SLOT_SIZE[kind];
              if (n > 1) {
                room = n * SLOT_SIZE[DATA];
                bytes = new Uint8Array(room);
                const got = io.pread(
                  fd,
                  bytes,
                  BLOCK_FILE_HEADER + s * SLOT_SIZE[DATA],
                );
                this.bytesRead += got;
                bytes = bytes.subarray(0, got);
              }
              this.#slot(kind, base + s, rel, bytes, room);
            },
            buf,
          );
        } finally {
          io.close(fd);
        }
        this.#progress();
      }
      this.#foreignInBlockDir(kind, expected);
    }
  }

  #eachClaimant(
    kind: ElementKind,
    first: number,
    n: number,
    f: (i: number, slot: number) => void,
  ): void {
    const owner = this.#slotOwner[kind];
    for (let s = first; s < first + n; s++) {
      if (owner[s]! < 0) continue;
      f(owner[s]!, s);
      for (const i of this.#slotExtra[kind].get(s) ?? []) f(i, s);
    }
  }

  #foreignInBlockDir(kind: ElementKind, expected: Set<string>): void {
    const io = this.#io;
    const walk = (rel: string) => {
      if (this.foreign.includes(rel)) return;
      const k = io.kind(`${this.#dir}/${rel}`);
      if (k === "missing") return;
      if (k === "dir") {
        for (const name of io.list(`${this.#dir}/${rel}`).sort()) {
          const child = `${rel}/${name}`;
          if (!expected.has(child)) {
            const ck = io.kind(`${this.#dir}/${child}`);
            this.#report(
              "FOREIGN_FILE",
              child,
              `${
                ck === "dir" ? "directory" : ck
              } larder did not write; not touched`,
            );
          } else if (io.kind(`${this.#dir}/${child}`) === "dir") walk(child);
        }
        return;
      }
      this.#report("FOREIGN_FILE", rel, `${k} where larder keeps a directory`);
    };
    walk(BLOCK_DIRS[kind]);
  }

  /** True when data slot `slot` is inside a run, after its first slot. */
  #insideRun(slot: number): boolean {
    return (this.#inRun[slot >>> 3]! & (1 << (slot & 7))) !== 0;
  }

  #slot(
    kind: ElementKind,
    slot: number,
    rel: string,
    bytes: Uint8Array,
    room: number,
  ): void {
    const facts = slotElement(room, bytes);
    const claimants = [
      this.#slotOwner[kind][slot]!,
      ...(this.#slotExtra[kind].get(slot) ?? []),
    ];
    const mem = this.index!.mem;
    for (const i of claimants) {
      this.#judge(i, kind, facts, rel, slot);
      // Metadata stored after the data (FORMAT.md §6.1) can be found only
      // through a data element that verified; else the entry goes whole.
      if (
        kind !== DATA || this.dropElement[DATA].has(i) ||
        !mem.metaWithData(i)
      ) continue;
      const end = facts.span!;
      const after = slotElement(room - end, bytes.subarray(end));
      this.#judge(i, META, after, rel, slot, `metadata in data slot ${slot}`);
    }
  }

  /**
   * Compares what a slot or file holds with entry `i`'s record of it and
   * reports the first thing that disagrees.
   */
  #judge(
    i: number,
    kind: ElementKind,
    f: ElementFacts,
    rel: string,
    slot?: number,
    where = slot === undefined
      ? `large file ${rel}`
      : `${KIND_NAME[kind]} slot ${slot}`,
  ): void {
    this.#done++;
    const rec = this.index!.mem.element(i, kind)!;
    const fail = (code: ProblemCode, detail: string, key?: string) =>
      this.#elementProblem(i, kind, code, rel, {
        detail: `${where}: ${detail}`,
        ...(slot === undefined ? {} : { slot }),
        ...(key === undefined ? {} : { key }),
      });
    switch (f.status) {
      case "missing":
        return fail("ELEMENT_MISSING", "the block file ends before it");
      case "empty":
        return fail(
          slot === undefined ? "ELEMENT_HEADER" : "ELEMENT_MISSING",
          slot === undefined
            ? "no element header (no LDEL magic)"
            : "holds no element",
        );
      case "newer":
        return fail(
          "VERSION_NEWER",
          `element format version newer than ${VERSION.element}`,
        );
      case "header":
        return fail("ELEMENT_HEADER", "element header checksum fails");
    }
    const h = f.header!;
    const text = keyText(f.key!);
    if (h.kind !== kind) {
      return fail("ELEMENT_MISMATCH", `holds a ${KIND_NAME[h.kind]} element`);
    }
    const mem = this.index!.mem;
    if (h.hashLo !== mem.hashLo(i) || h.hashHi !== mem.hashHi(i)) {
      return fail(
        "ELEMENT_KEY",
        `holds another key's element (hash ${hex(h.hashHi)}${
          hex(h.hashLo).slice(2)
        }, entry ${i} has ${hex(mem.hashHi(i))}${hex(mem.hashLo(i)).slice(2)})`,
        text,
      );
    }
    if (text === undefined) {
      return fail("ELEMENT_KEY", "stored key is not valid UTF-8");
    }
    if (h.keyLen > MAX_KEY_BYTES) {
      return fail(
        "ELEMENT_KEY",
        `stored key is ${h.keyLen} bytes, over ${MAX_KEY_BYTES}`,
        text,
      );
    }
    if (h.length !== rec.size || h.crc !== rec.crc) {
      return fail(
        "ELEMENT_MISMATCH",
        `header says ${h.length} bytes, CRC ${
          hex(h.crc)
        }; the entry says ${rec.size} bytes, CRC ${hex(rec.crc)}`,
        text,
      );
    }
    switch (f.status) {
      case "overflow":
        return fail("ELEMENT_MISMATCH", "element overflows its slot", text);
      case "short":
        return fail(
          "ELEMENT_MISSING",
          "the block file ends inside the element",
          text,
        );
      case "truncated":
        return fail(
          "LARGE_FILE_TRUNCATED",
          `${f.span} bytes, the element needs ${
            ELEMENT_HEADER + h.keyLen + h.length
          }`,
          text,
        );
      case "trailing":
        return fail(
          "LARGE_FILE_TRAILING",
          `${f.span} bytes, longer than the element's ${
            ELEMENT_HEADER + h.keyLen + h.length
          }`,
          text,
        );
      case "crc":
        return fail("ELEMENT_CRC", "content CRC-32 does not match", text);
    }
    this.#keyOf[kind][i] = text;
    this.#storedAt[i] = Math.max(this.#storedAt[i]!, h.storedAt);
    this.#verifiedBytes += h.length;
    // Metadata in the data's slot fills that slot.
    if (slot !== undefined) {
      this.#slotSpan[rec.withData === true ? DATA : kind] += f.span!;
    }
  }

  #elementProblem(
    i: number,
    kind: ElementKind,
    code: ProblemCode,
    rel: string,
    o: { detail: string; slot?: number; key?: string },
  ): void {
    this.dropElement[kind].add(i);
    this.#report(code, rel, `${KIND_NAME[kind]} of entry ${i}: ${o.detail}`, {
      entry: i,
      ...(o.slot === undefined ? {} : { slot: o.slot }),
      ...(o.key === undefined ? {} : { key: o.key }),
    });
  }

  // ---- §6 large files ----------------------------------------------------------

  #largeFiles(): void {
    const io = this.#io;
    const buf = new Uint8Array(CHUNK_BYTES);
    this.#progress("files");
    for (const kind of KINDS) {
      const owners = this.#fileOwners[kind];
      const seen = new Set<number>();
      walkLargeTree(io, this.#dir, kind, {
        file: (rel, id) => {
          seen.add(id);
          const claimants = owners.get(id);
          const path = `${this.#dir}/${rel}`;
          if (claimants !== undefined) {
            const r = readLargeElement(io, path, buf);
            this.bytesRead += r.bytesRead;
            this.#largeCount++;
            this.#largeBytes += r.fileSize;
            this.#allocated += r.fileSize;
            const f: ElementFacts = { status: r.status, span: r.fileSize };
            if (r.header !== undefined) f.header = r.header;
            if (r.key !== undefined) f.key = r.key;
            for (const i of claimants) this.#judge(i, kind, f, rel);
            this.seenFiles.push({
              kind,
              id,
              rel,
              magic: r.status !== "empty" && r.status !== "missing",
              size: r.fileSize,
            });
            this.#progress();
            return;
          }
          this.#orphan(kind, id, rel);
        },
        foreign: (rel, what, larderName) =>
          larderName
            ? this.#foreignObject(
              rel,
              what.includes(" where ")
                ? what
                : `${what === "other" ? "FIFO, socket or device" : what}` +
                  " at a larder name",
            )
            : this.#report(
              "FOREIGN_FILE",
              rel,
              `${what === "dir" ? "directory" : what} larder did not write` +
                "; not touched",
            ),
        emptyChain: (dirs) =>
          this.#report(
            "EMPTY_DIR",
            dirs[dirs.length - 1]!,
            dirs.length === 1
              ? "empty directory"
              : `chain of ${dirs.length} empty directories`,
          ),
      });
      for (const [id, claimants] of owners) {
        if (seen.has(id)) continue;
        const rel = largeFileParts(kind, id).join("/");
        for (const i of claimants) {
          this.#done++;
          this.#elementProblem(i, kind, "ELEMENT_MISSING", rel, {
            detail: `large file ${rel} does not exist`,
          });
        }
      }
    }
  }

  #orphan(kind: ElementKind, id: number, rel: string): void {
    const io = this.#io;
    let head = new Uint8Array(0);
    let size = 0;
    try {
      const fd = io.openR(`${this.#dir}/${rel}`);
      try {
        size = io.size(fd);
        head = new Uint8Array(Math.min(size, ELEMENT_HEADER + 16384));
        head = head.subarray(0, io.pread(fd, head, 0));
        this.bytesRead += head.length;
      } finally {
        io.close(fd);
      }
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
    }
    const magic = hasMagicAt(head, MAGIC.element);
    this.seenFiles.push({ kind, id, rel, magic, size });
    if (!magic) {
      this.#report(
        "FOREIGN_FILE",
        rel,
        `${size}-byte file at a larder name without larder's magic; not touched`,
      );
      return;
    }
    this.#orphanCount++;
    this.#orphanBytes += size;
    this.#allocated += size;
    const p = parseElement(head);
    const key = typeof p === "string" ? undefined : keyText(p.key);
    this.#report(
      "ORPHAN_FILE",
      rel,
      `${
        KIND_NAME[kind]
      } large file ${id} (${size} bytes) that no entry references`,
      key === undefined ? {} : { key },
    );
  }

  // ---- keys across entries (FORMAT.md §8 invariant 7) ---------------------------

  #keys(): void {
    const { mem } = this.index!;
    const control = this.control!;
    this.#progress("keys");
    const entries: number[] = [];
    const keys: string[] = [];
    for (let i = 0; i < mem.count; i++) {
      const kd = this.#keyOf[DATA][i];
      const km = this.#keyOf[META][i];
      if (kd !== undefined && km !== undefined && kd !== km) {
        this.drop.add(i);
        this.#report(
          "ELEMENT_KEY",
          "entries",
          `entry ${i}: data element is for ${
            JSON.stringify(kd)
          }, metadata for ${JSON.stringify(km)}`,
          { entry: i, key: kd },
        );
        continue;
      }
      const key = kd ?? km;
      if (key === undefined) continue;
      // A key that normalises to something else can never be looked up.
      const nk = normaliseKey(key);
      if (nk.text !== key) {
        this.#keyProblem(
          i,
          key,
          `key is not canonical (lookups use ${JSON.stringify(nk.text)})`,
        );
        continue;
      }
      entries.push(i);
      keys.push(key);
    }
    const hashes = this.#hashKeys(mem, control, keys);
    const byKey = new Map<string, number[]>();
    for (let j = 0; j < entries.length; j++) {
      const i = entries[j]!;
      const lo = hashes[2 * j]!, hi = hashes[2 * j + 1]!;
      if (lo !== mem.hashLo(i) || hi !== mem.hashHi(i)) {
        this.#keyProblem(
          i,
          keys[j]!,
          `key hashes to ${hex(hi)}${hex(lo).slice(2)}, the entry has ${
            hex(mem.hashHi(i))
          }${hex(mem.hashLo(i)).slice(2)}`,
        );
        continue;
      }
      if (this.drop.has(i)) continue;
      const same = byKey.get(keys[j]!);
      if (same === undefined) byKey.set(keys[j]!, [i]);
      else same.push(i);
    }
    for (const [key, same] of byKey) {
      if (same.length < 2) continue;
      // Keep the most recently stored; ties keep the lowest index.
      let keep = same[0]!;
      for (const i of same) {
        if (this.#storedAt[i]! > this.#storedAt[keep]!) keep = i;
      }
      for (const i of same) {
        if (i === keep) continue;
        this.drop.add(i);
        this.#report(
          "DUPLICATE_KEY",
          "entries",
          `entries ${same.join(", ")} have the same key; keeping ${keep}`,
          { entry: i, key },
        );
      }
    }
  }

  #keyProblem(i: number, key: string, detail: string): void {
    this.drop.add(i);
    this.#report("KEY_HASH", "entries", `entry ${i}: ${detail}`, {
      entry: i,
      key,
    });
  }

  /** [low, high] hash words of each key, by the store's hash, in batches. */
  #hashKeys(mem: IndexMemory, control: Control, keys: string[]): Uint32Array {
    const override = this.#opt.hashOverride;
    if (override !== undefined) {
      const out = new Uint32Array(keys.length * 2);
      keys.forEach((k, j) => out[2 * j] = override(k) >>> 0);
      return out;
    }
    if (control.hash === "siphash13") return mem.hashSipMany(keys);
    const lows = mem.hashNsurlMany(
      keys.map((k) => nsurlComponents(normaliseKey(k))),
    );
    const out = new Uint32Array(keys.length * 2);
    lows.forEach((lo, j) => out[2 * j] = lo);
    return out;
  }

  /** Two entries claiming one slot or file: keep the first that verified. */
  #shared(): void {
    for (const kind of KINDS) {
      for (const [slot, extra] of this.#slotExtra[kind]) {
        const claimants = [this.#slotOwner[kind][slot]!, ...extra];
        const rel = blockFileParts(
          kind,
          Math.floor(slot / SLOTS_PER_FILE),
          blockFileCount(this.index!.mem.slotCounts[kind]),
        ).join("/");
        this.#resolveShared(
          kind,
          "SLOT_SHARED",
          rel,
          claimants,
          `${KIND_NAME[kind]} slot ${slot}`,
          slot,
        );
      }
      for (const [id, claimants] of this.#fileOwners[kind]) {
        if (claimants.length < 2) continue;
        this.#resolveShared(
          kind,
          "FILE_SHARED",
          largeFileParts(kind, id).join("/"),
          claimants,
          `${KIND_NAME[kind]} large file ${id}`,
        );
      }
    }
  }

  #resolveShared(
    kind: ElementKind,
    code: ProblemCode,
    rel: string,
    claimants: number[],
    what: string,
    slot?: number,
  ): void {
    const keep = claimants.find((i) =>
      !this.drop.has(i) && !this.dropElement[kind].has(i)
    );
    for (const i of claimants) if (i !== keep) this.dropElement[kind].add(i);
    this.#report(
      code,
      rel,
      `${what} is claimed by entries ${claimants.join(", ")}; ${
        keep === undefined ? "none verifies" : `keeping ${keep}`
      }`,
      slot === undefined ? {} : { slot },
    );
  }

  /**
   * An entry losing every element it has is dropped whole; so is one
   * losing the data its metadata is stored after.
   */
  #settleDrops(): void {
    const mem = this.index!.mem;
    for (const i of this.dropElement[DATA]) {
      if (mem.metaWithData(i)) this.drop.add(i);
    }
    for (const kind of KINDS) {
      for (const i of this.dropElement[kind]) {
        if (this.drop.has(i)) continue;
        const other = kind === DATA ? META : DATA;
        if (!mem.has(i, other) || this.dropElement[other].has(i)) {
          this.drop.add(i);
        }
      }
    }
    for (const kind of KINDS) {
      for (const i of this.drop) this.dropElement[kind].delete(i);
    }
  }

  /** Names the key of entry-level problems whose element did not say. */
  #fillKeys(): void {
    for (const p of this.problems) {
      if (p.entry === undefined || p.key !== undefined) continue;
      const key = this.#keyOf[DATA][p.entry] ?? this.#keyOf[META][p.entry];
      if (key !== undefined) p.key = key;
    }
  }

  // ---- totals ---------------------------------------------------------------

  #stats(): void {
    const { mem } = this.index!;
    const now = Math.floor(Date.now() / 1000);
    const useBuckets = Array.from({ length: 17 }, (_, b) => ({
      min: b === 0 ? 0 : 2 ** (b - 1),
      max: b === 0 ? 0 : 2 ** b - 1,
      count: 0,
    }));
    const ages = [3600, 86400, 7 * 86400, 30 * 86400, 365 * 86400, null];
    const ageBuckets = ages.map((maxAgeSeconds) => ({
      maxAgeSeconds,
      count: 0,
    }));
    let future = 0;
    let bytes = 0;
    const elements = { data: 0, meta: 0 };
    const slotUse: [number, number] = [0, 0];
    for (let i = 0; i < mem.count; i++) {
      const uses = mem.useCount(i);
      useBuckets[uses === 0 ? 0 : 32 - Math.clz32(uses)]!.count++;
      const age = now - mem.lastUsed(i);
      if (age < 0) future++;
      else {
        ageBuckets.find((b) =>
          b.maxAgeSeconds === null || age < b.maxAgeSeconds
        )!
          .count++;
      }
      for (const kind of KINDS) {
        const rec: ElementRecord | undefined = mem.element(i, kind);
        if (rec === undefined) continue;
        bytes += rec.size;
        if (kind === DATA) elements.data++;
        else elements.meta++;
        if (claimsSlot(rec)) slotUse[kind]++;
      }
    }
    const slotStats = (kind: ElementKind): SlotStats => {
      const owner = this.#slotOwner[kind];
      let highest = -1;
      for (let s = owner.length - 1; s >= 0; s--) {
        if (owner[s]! >= 0) {
          highest = s;
          break;
        }
      }
      let used = 0;
      for (let s = 0; s <= highest; s++) if (owner[s]! >= 0) used++;
      return {
        used,
        free: owner.length - used,
        fragmentation: highest < 0 ? 0 : (highest + 1 - used) / (highest + 1),
        fill: used === 0 ? 0 : this.#slotSpan[kind] / (used * SLOT_SIZE[kind]),
      };
    };
    this.stats = {
      entries: mem.count,
      elements,
      bytes,
      bytesVerified: this.#verifiedBytes,
      bytesOnDisk: this.#allocated,
      slots: { data: slotStats(DATA), meta: slotStats(META) },
      largeFiles: { count: this.#largeCount, bytes: this.#largeBytes },
      orphans: { count: this.#orphanCount, bytes: this.#orphanBytes },
      useCountHistogram: useBuckets.filter((b) => b.count > 0),
      ageHistogram: ageBuckets,
      future,
    };
  }
}
