/**
 * One read-only pass of check-store over a store directory (FORMAT.md is
 * the specification checked; `§N` points at it): an ordered list of named
 * steps, each a function of the one {@linkcode PassState}, run in order
 * and timed. Private to check.ts, which runs a pass, repairs from what it
 * found (`_check_repair.ts`), and runs another.
 *
 * A step reads what the steps before it left in the state; the order is
 * part of what each step means (records are judged only once the index is
 * loaded, keys compared only once every element is judged).
 *
 * @module
 */
import type { CheckOptions } from "./_check_report.ts";
import { PassState } from "./_check_state.ts";
import {
  checkControl,
  checkRootFiles,
  classifyJournals,
} from "./_check_root.ts";
import { loadIndex } from "./_check_index.ts";
import { checkRecords } from "./_check_records.ts";
import { checkAttrs } from "./_check_attrs.ts";
import { checkBlockFiles, checkUseMaps } from "./_check_slots.ts";
import { checkLargeFiles } from "./_check_large.ts";
import {
  checkKeys,
  checkShared,
  fillKeys,
  settleDrops,
} from "./_check_keys.ts";
import { countStats } from "./_check_stats.ts";
import type { FileIO } from "./io.ts";

/** A named step of a pass. */
export interface CheckStep {
  /** Its name in `stepMs` (CHECK_STORE.md). */
  readonly name: string;
  /** Runs the step; `false` ends the pass: nothing after can be checked. */
  readonly run: (p: PassState) => boolean | void;
}

/** The steps of a pass, in the order they run. */
export const CHECK_STEPS: readonly CheckStep[] = [
  { name: "rootFiles", run: checkRootFiles },
  { name: "control", run: checkControl },
  { name: "index", run: loadIndex },
  { name: "journals", run: classifyJournals },
  { name: "records", run: checkRecords },
  { name: "attrs", run: checkAttrs },
  { name: "useMaps", run: checkUseMaps },
  { name: "blockFiles", run: checkBlockFiles },
  { name: "largeFiles", run: checkLargeFiles },
  { name: "keys", run: checkKeys },
  { name: "shared", run: checkShared },
  { name: "settleDrops", run: settleDrops },
  { name: "fillKeys", run: fillKeys },
  { name: "stats", run: countStats },
];

/** How a pass reports progress. */
export interface PassOptions {
  /** The check's options (`onProgress`, `hashOverride`). */
  options: CheckOptions;
  /** `performance.now()` when the check started. */
  started: number;
  /** The progress phase the pass starts in. */
  phase: string;
  /** Bytes earlier passes read, for progress. */
  bytesBefore: number;
}

/** Runs one pass over the store in `dir`; the state holds what it found. */
export function runPass(io: FileIO, dir: string, o: PassOptions): PassState {
  const p = new PassState(io, dir, o);
  for (const step of CHECK_STEPS) {
    const t = performance.now();
    const go = step.run(p);
    p.stepMs[step.name] = performance.now() - t;
    if (go === false) break;
  }
  return p;
}
