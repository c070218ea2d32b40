/**
 * check-store: verify, report and repair a store directory. CHECK_STORE.md
 * documents the CLI, the report's schema and every problem code; the
 * checks follow FORMAT.md.
 *
 * A check is one or two read-only passes (`_check_pass.ts`). A pass loads
 * the effective index (the `entries` snapshot with its journal replayed,
 * or the index rebuilt from the elements when the snapshot is unusable),
 * checks every record, the use maps, every block file and claimed slot,
 * walks the large-file trees, and compares keys across entries. A repair
 * acts on what the first pass found, writes a new snapshot and an empty
 * journal, removes garbage larder provably wrote, and runs a second pass
 * to prove the result.
 *
 * Invariant: nothing is deleted unless its path is one of larder's names
 * and its content starts with larder's magic (`LDEL` for large files,
 * `LARDERJL` for journals), or it is a `.tmp` leftover of one of larder's
 * own root files. A foreign object at one of larder's names is moved
 * aside (`<name>.foreign-<n>`), never deleted.
 *
 * @module
 */
import { Pass } from "./_check_pass.ts";
import { KIND_TABLE, KINDS } from "./kinds.ts";
import {
  type CheckOptions,
  type CheckReport,
  type Problem,
  PROBLEM_CODES,
  type Repair,
  type RepairAction,
  type StoreInfo,
} from "./_check_report.ts";
import { hasMagicAt, walkLargeTree } from "./_scan.ts";
import { moveAside } from "./_foreign.ts";
import { NotAStoreError } from "./errors.ts";
import {
  blockFileCount,
  CACHEDIR_TAG,
  encodeBlockFileHeader,
  encodeBlocksHeader,
} from "./format.ts";
import {
  claimsSlot,
  DATA,
  type IndexMemory,
  META,
  recordSlots,
} from "./index_memory.ts";
import { type FileIO, NodeFileIO, readPrefix, replaceFile } from "./io.ts";
import {
  DEFAULT_JOURNAL_BYTES,
  Journal,
  JOURNAL_MAGIC,
  journalName,
} from "./journal.ts";
import { acquireLock, type StoreLock } from "./lock.ts";
import { larderEvidence, writeControlCopies } from "./_control.ts";
import { openState } from "./_open.ts";
import { resolveOptions } from "./options.ts";

export { PROBLEM_CODES } from "./_check_report.ts";
export type {
  CheckOptions,
  CheckProgress,
  CheckReport,
  CheckStats,
  Problem,
  ProblemCode,
  Repair,
  RepairAction,
  Severity,
  SlotStats,
  StoreInfo,
} from "./_check_report.ts";
import { newTag, writeSnapshotTemp } from "./_persist.ts";

// ---- repair -------------------------------------------------------------------

function repairStore(io: FileIO, dir: string, pass: Pass): Repair[] {
  const done: Repair[] = [];
  const index = pass.index!;
  const mem = index.mem;
  const say = (
    action: RepairAction,
    path: string,
    detail: string,
    key?: string,
  ) =>
    done.push(
      key === undefined ? { action, path, detail } : {
        action,
        path,
        key,
        detail,
      },
    );
  // First, so what follows can write at those names (`_foreign.ts`).
  for (const rel of pass.foreign) {
    const to = moveAside(io, dir, rel);
    say("MOVE_ASIDE", rel, `moved the foreign object aside to ${to}`);
  }
  if (pass.controlWrite !== undefined) {
    // Before the index: everything after rests on the store's parameters.
    const { bytes, names } = pass.controlWrite;
    writeControlCopies(io, dir, bytes, names);
    for (const name of names) {
      say(
        "WRITE_CONTROL",
        name,
        "wrote the control record from the sound copy",
      );
    }
  }
  if (index.source === "rebuilt") {
    const r = index.rebuild!;
    say(
      "REBUILD_INDEX",
      "entries",
      `rebuilt ${r.count} entries from ${r.slotsScanned} slots and ${r.filesScanned} large files`,
    );
  }
  // Temp files and stale journals first: nothing refers to them, and on a
  // full disk their space is what the new snapshot and journal need.
  for (const name of pass.temps) {
    io.unlink(`${dir}/${name}`);
    say(
      "DELETE_TEMP",
      name,
      name.endsWith(".tmp")
        ? "deleted a leftover temp file"
        : "deleted a journal no snapshot names",
    );
  }
  const keyOf = new Map<number, string>();
  for (const p of pass.problems) {
    if (p.entry !== undefined && p.key !== undefined) keyOf.set(p.entry, p.key);
  }
  for (const kind of KINDS) {
    for (const i of pass.dropElement[kind]) {
      mem.clearElement(i, kind);
      say(
        "DROP_ELEMENT",
        "entries",
        `dropped the ${
          KIND_TABLE[kind].name
        } element of entry ${i}; it keeps the other`,
        keyOf.get(i),
      );
    }
  }
  // Swap-remove moves the last record into the hole: remove from the top.
  for (const i of [...pass.drop].sort((a, b) => b - a)) {
    mem.remove(i);
    say("DROP_ENTRY", "entries", `dropped entry ${i}`, keyOf.get(i));
  }

  for (const fix of pass.headerFixes) {
    const fd = io.openRW(`${dir}/${fix.rel}`, false);
    try {
      io.pwrite(fd, encodeBlockFileHeader(fix.kind, fix.n), 0);
      io.fsync(fd);
    } finally {
      io.close(fd);
    }
    say(
      "REWRITE_BLOCK_FILE_HEADER",
      fix.rel,
      `wrote the header of ${KIND_TABLE[fix.kind].name} block file ${fix.n}`,
    );
  }

  // Never hand out an id a file at a larder name already has.
  let nextFileId = index.nextFileId;
  for (const f of pass.seenFiles) nextFileId = Math.max(nextFileId, f.id + 1);
  for (let i = 0; i < mem.count; i++) {
    for (const kind of KINDS) {
      const rec = mem.element(i, kind);
      if (rec?.inFile) nextFileId = Math.max(nextFileId, rec.loc + 1);
    }
  }
  nextFileId = nextFileId >>> 0;
  if (nextFileId !== index.nextFileId && index.source === "snapshot") {
    say(
      "RAISE_NEXT_FILE_ID",
      "entries",
      `nextFileId ${index.nextFileId} -> ${nextFileId}`,
    );
  }

  const writeEntries = pass.writeEntries || pass.drop.size > 0 ||
    pass.dropElement.some((d) => d.size > 0) ||
    nextFileId !== index.nextFileId;
  if (pass.writeBlocks || writeEntries) {
    // The use maps follow the records (as at open, FORMAT.md §9).
    mem.clearUseMaps();
    for (let i = 0; i < mem.count; i++) {
      for (const kind of KINDS) {
        const rec = mem.element(i, kind);
        if (claimsSlot(rec)) mem.markRun(kind, rec.loc, recordSlots(rec));
      }
    }
    const data = mem.useMap(DATA);
    const meta = mem.useMap(META);
    replaceFile(io, dir, "blocks", [
      encodeBlocksHeader(mem.slotCounts, data, meta),
      data,
      meta,
    ]);
    say("WRITE_BLOCKS", "blocks", "wrote the use maps from the entries");
  }
  if (writeEntries) {
    const name = writeSnapshot(io, dir, {
      mem,
      nextFileId,
      oldTag: index.source === "snapshot" ? index.journalTag : undefined,
      journalBytes: index.journal?.size ?? DEFAULT_JOURNAL_BYTES,
    });
    say("WRITE_ENTRIES", "entries", `wrote ${mem.count} entries`);
    say("NEW_JOURNAL", name, "created an empty journal for the new snapshot");
    if (index.source === "snapshot") {
      const old = journalName(index.journalTag);
      if (hasMagicAt(readPrefix(io, `${dir}/${old}`, 8), JOURNAL_MAGIC)) {
        io.unlink(`${dir}/${old}`);
        say("DELETE_FILE", old, "deleted the journal the old snapshot named");
      }
    }
  }

  // Only now, with the index no longer pointing at them, delete files.
  const referenced = [new Set<number>(), new Set<number>()];
  for (let i = 0; i < mem.count; i++) {
    for (const kind of KINDS) {
      const rec = mem.element(i, kind);
      if (rec?.inFile) referenced[kind]!.add(rec.loc);
    }
  }
  for (const f of pass.seenFiles) {
    if (!f.magic || referenced[f.kind]!.has(f.id)) continue;
    io.unlink(`${dir}/${f.rel}`);
    say(
      "DELETE_FILE",
      f.rel,
      `deleted unreferenced large file (${f.size} bytes)`,
    );
  }
  // Deleting files may have emptied more directories: walk again.
  for (const kind of KINDS) {
    walkLargeTree(io, dir, kind, {
      file() {},
      foreign() {},
      emptyChain(dirs) {
        let removed = 0;
        for (const rel of dirs) {
          try {
            Deno.removeSync(`${dir}/${rel}`); // fails unless empty
            removed++;
          } catch {
            break;
          }
        }
        if (removed > 0) {
          say(
            "REMOVE_DIR",
            dirs[dirs.length - 1]!,
            `removed ${removed} empty director${removed === 1 ? "y" : "ies"}`,
          );
        }
      },
    });
  }
  if (pass.writeCachedirTag) {
    replaceFile(io, dir, "CACHEDIR.TAG", [CACHEDIR_TAG]);
    say("WRITE_CACHEDIR_TAG", "CACHEDIR.TAG", "wrote the cache directory tag");
  }
  return done;
}

/**
 * Writes the table as the `entries` snapshot under a new journal tag, and
 * that empty journal, in the order of a rotation (FORMAT.md §10.3): the
 * snapshot to `entries.tmp` (fsynced), the new journal (fsynced), then the
 * rename that commits both. A crash leaves the old pair or the new one.
 * @returns the new journal's file name.
 */
function writeSnapshot(
  io: FileIO,
  dir: string,
  o: {
    mem: IndexMemory;
    nextFileId: number;
    oldTag: number | undefined;
    journalBytes: number;
  },
): string {
  const tag = newTag(o.oldTag);
  const tmp = writeSnapshotTemp(io, dir, o.mem, o.nextFileId, tag);
  try {
    Journal.create(io, dir, tag, o.journalBytes).close();
  } catch (err) {
    try {
      io.unlink(tmp);
    } catch { /* the create failure is the one to report */ }
    throw err;
  }
  io.rename(tmp, `${dir}/entries`);
  io.syncDir(dir);
  return journalName(tag);
}

// ---- entry point ------------------------------------------------------------

/** Throws NOT_A_STORE unless `dir` holds larder's control file. */
function probeStore(io: FileIO, dir: string): void {
  const k = io.kind(dir);
  if (k === "missing") {
    throw new NotAStoreError(`Cannot check store: ${dir} does not exist`);
  }
  if (k !== "dir" && k !== "symlink") {
    throw new NotAStoreError(`Cannot check store: ${dir} is not a directory`);
  }
  // Larder's own files (either control copy, entries, blocks, a journal,
  // a block file, its CACHEDIR.TAG) prove a store, even one whose control
  // record is lost (FORMAT.md §9); nothing else is touched.
  if (larderEvidence(io, dir) === undefined) {
    throw new NotAStoreError(
      io.kind(`${dir}/control`) === "missing"
        ? `Cannot check store: ${dir} has no larder control file`
        : `Cannot check store: ${dir}/control is not a larder control file`,
    );
  }
}

/**
 * Checks the store in `dir` and, with `repair`, repairs it. Takes the
 * store's lock for the whole call (unless `forceReadonly`), so it fails
 * with `LOCKED` while a store is open.
 *
 * @param dir The store directory.
 * @param options `repair`, `forceReadonly`, `onProgress`.
 * @returns the report; `ok` says whether the store is (now) sound.
 * @throws {TypeError} when `repair` and `forceReadonly` are both set.
 * @throws {StoreError} `NOT_A_STORE` (no larder control file), `LOCKED`,
 *   `IO`, `NO_SPACE`: the check could not run.
 *
 * @example
 * ```ts
 * import { BackingStore, checkStore } from "@larder/larder";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const store = await BackingStore.open(dir);
 * await store.store("https://example.com/", new Uint8Array([1, 2, 3]));
 * await store.close();
 *
 * const report = await checkStore(dir, { repair: true });
 * for (const p of report.problems) console.log(p.code, p.path, p.detail);
 * assert.equal(report.ok, true);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function checkStore(
  dir: string,
  options: CheckOptions = {},
): Promise<CheckReport> {
  try {
    return Promise.resolve(checkStoreSync(dir, options));
  } catch (err) {
    return Promise.reject(err);
  }
}

function checkStoreSync(dir: string, options: CheckOptions): CheckReport {
  if (typeof dir !== "string" || dir === "") {
    throw new TypeError("Cannot check store: dir must be a path");
  }
  if (options.repair && options.forceReadonly) {
    throw new TypeError(
      "Cannot check store: repair needs the lock, so it cannot be combined with forceReadonly",
    );
  }
  const started = performance.now();
  const io = options.io ?? new NodeFileIO();
  probeStore(io, dir);
  let lock: StoreLock | undefined;
  if (!options.forceReadonly) lock = acquireLock(io, dir);
  try {
    const first = new Pass(io, dir, options, started, "index", 0);
    first.run();
    let last = first;
    let repaired: Repair[] = [];
    let remaining: Problem[] | null = null;
    const actionable = first.problems.some((p) =>
      !PROBLEM_CODES[p.code].repair.startsWith("none")
    );
    if (options.repair && first.controlLost) {
      // Only an open can rebuild control and start the index it implies
      // (FORMAT.md §9): it takes the lock itself.
      lock?.release();
      lock = undefined;
      const { state, lock: held } = openState(dir, resolveOptions({}), io);
      try {
        repaired = [{
          action: "REBUILD_CONTROL",
          path: "control",
          detail:
            `rebuilt the control record (entryBits ${state.control.entryBits}, dataSlotBits ${state.control.dataSlotBits}, hash ${state.control.hash}); the index holds ${state.mem.count} entries`,
        }];
        state.close();
      } finally {
        held.release();
      }
      lock = acquireLock(io, dir);
      last = new Pass(io, dir, options, started, "recheck", first.bytesRead);
      last.run();
      remaining = last.problems;
    } else if (options.repair && first.complete && actionable) {
      repaired = repairStore(io, dir, first);
      last = new Pass(io, dir, options, started, "recheck", first.bytesRead);
      last.run();
      remaining = last.problems;
    }
    const control = first.control ?? last.control;
    const index = last.index;
    const store: StoreInfo | null = control === undefined ||
        index === undefined
      ? null
      : {
        entryBits: control.entryBits,
        identBits: control.identBits,
        hash: control.hash,
        createdAt: control.createdAt,
        dataSlotBits: control.dataSlotBits,
        capacity: 2 ** control.entryBits,
        blockFiles: {
          data: blockFileCount(2 ** control.dataSlotBits),
          meta: blockFileCount(2 ** control.entryBits),
        },
        nextFileId: index.nextFileId,
        index: first.index!.source,
        journal: index.journal,
      };
    const finalProblems = remaining ?? first.problems;
    return {
      schema: 1,
      dir,
      ok: last.complete && finalProblems.every((p) => p.severity !== "error"),
      complete: last.complete,
      locked: lock !== undefined,
      store,
      problems: first.problems,
      repaired,
      remaining,
      stats: last.stats ?? null,
      durationMs: performance.now() - started,
      bytesRead: first.bytesRead + (last === first ? 0 : last.bytesRead),
    };
  } finally {
    lock?.release();
  }
}
