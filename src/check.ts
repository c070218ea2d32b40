/**
 * check-store: verify, report and repair a store directory. CHECK_STORE.md
 * documents the CLI, the report's schema and every problem code; the
 * checks follow FORMAT.md.
 *
 * A check is one or two read-only passes (`_check_pass.ts`, a list of
 * named steps). A pass loads
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
import { runPass } from "./_check_pass.ts";
import { repairStore } from "./_check_repair.ts";
import {
  type CheckOptions,
  type CheckReport,
  type Problem,
  PROBLEM_CODES,
  type Repair,
  type StoreInfo,
} from "./_check_report.ts";
import { NotAStoreError } from "./errors.ts";
import { blockFileCount } from "./format.ts";
import { DATA, META } from "./kinds.ts";
import { type FileIO, NodeFileIO } from "./io.ts";
import { acquireLock, type StoreLock } from "./lock.ts";
import { larderEvidence } from "./_control.ts";
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
    const first = runPass(io, dir, {
      options,
      started,
      phase: "index",
      bytesBefore: 0,
    });
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
      last = runPass(io, dir, {
        options,
        started,
        phase: "recheck",
        bytesBefore: first.bytesRead,
      });
      remaining = last.problems;
    } else if (options.repair && first.complete && actionable) {
      repaired = repairStore(io, dir, first);
      last = runPass(io, dir, {
        options,
        started,
        phase: "recheck",
        bytesBefore: first.bytesRead,
      });
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
          data: blockFileCount(DATA, 2 ** control.dataSlotBits),
          meta: blockFileCount(META, 2 ** control.entryBits),
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
      stepMs: first.stepMs,
      recheckStepMs: last === first ? null : last.stepMs,
      bytesRead: first.bytesRead + (last === first ? 0 : last.bytesRead),
    };
  } finally {
    lock?.release();
  }
}
