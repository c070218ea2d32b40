// The crash-test workloads, shared by crash_test.ts and by
// _crash_repro.ts (which replays one crash point for debugging).
import type { OpenOptions } from "../mod.ts";
import { type CrashMode, FaultFS, rng } from "./_fault_fs.ts";
import {
  type Expectation,
  ModelRun,
  type Op,
  Stopped,
} from "./_crash_model.ts";
import { bytesFor, FILE_SIZED } from "./_helpers.ts";

/** Where the workloads put their store. */
export const DIR = "/store";
const BASE: OpenOptions = {
  entryBits: 8,
  identBits: 9,
  // Room for every workload without eviction, and a small use map
  // (2^21 data slots; FORMAT.md §3).
  limit: 64 * 2 ** 20,
  maintenanceDelayMs: 2 ** 30,
  journalBytes: 65536,
};

/** A durability option value. */
export type Durability = "process" | "fsync";
/** One step of a workload. */
export type Step = Op | ["batch", Op[]] | ["fetch", string, boolean] | ["open"];

/** A scripted run of store calls. */
export interface Workload {
  name: string;
  options: OpenOptions;
  steps: Step[];
  /** True when the store evicts: the model cannot tell which entries. */
  evicts?: boolean;
  /** Crash points: all when undefined, else the ones this picks. */
  sample?: (n: number, trace: string[]) => boolean;
}

const value = (key: string, version: number, size: number) =>
  bytesFor(`${key}#${version}`, size);

/** A: small stores, metadata, overwrites, invalidations, fetches, a batch. */
function workloadA(): Workload {
  const r = rng(0xa);
  const versions = new Map<string, number>();
  const steps: Step[] = [["open"]];
  const store = (key: string, meta: boolean): Op => {
    const v = (versions.get(key) ?? 0) + 1;
    versions.set(key, v);
    const size = meta ? Math.floor(r() * 900) : Math.floor(r() * 3000);
    return ["store", key, value(`${key}${meta}`, v, size), meta];
  };
  const entry = (key: string, withMeta: boolean): Op => {
    const [data, meta] = [store(key, false), store(key, true)];
    return [
      "entry",
      key,
      data[2] as Uint8Array,
      withMeta ? meta[2] as Uint8Array : undefined,
    ];
  };
  for (let i = 0; i < 60; i++) {
    const key = `https://a.example/${Math.floor(r() * 12)}`;
    const x = r();
    if (x < 0.4) steps.push(store(key, false));
    else if (x < 0.55) steps.push(store(key, true));
    else if (x < 0.65) steps.push(entry(key, r() < 0.8));
    else if (x < 0.8) steps.push(["invalidate", key]);
    else steps.push(["fetch", key, x > 0.9]);
    if (i === 20) steps.push(["flush"]);
    // Attributes (issue 15): on entries with elements, on a key with
    // none (an attribute-only entry), replaced, unset, in a batch.
    if (i === 10) {
      steps.push(
        ["setAttr", "https://a.example/1", "x", value("attr1x", 1, 100)],
        ["setAttr", "https://a.example/only", "y", value("onlyy", 1, 2000)],
      );
    }
    if (i === 25) {
      steps.push(
        ["unsetAttr", "https://a.example/only", "y"],
        ["setAttr", "https://a.example/2", "y", value("attr2y", 1, 300)],
        ["setAttr", "https://a.example/only", "x", value("onlyx", 1, 50)],
      );
    }
    if (i === 45) {
      steps.push(
        ["setAttr", "https://a.example/1", "x", value("attr1x", 2, 700)],
        ["unsetAttr", "https://a.example/2", "y"],
      );
    }
    if (i === 30) {
      steps.push(["batch", [
        store("batch-1", false),
        store("batch-2", false),
        store("batch-3", true),
        entry("batch-4", true),
        ["invalidate", "https://a.example/3"],
        ["setAttr", "batch-5", "x", value("batch5x", 1, 400)],
      ]]);
    }
    if (i === 40) steps.push(["close"], ["open"]);
    // Moves and copy-on-write copies (issue 15): onto new and existing
    // keys, copies of copies, stores into a sharer, from a missing key.
    if (i === 15) {
      steps.push(
        ["copy", "https://a.example/1", "https://a.example/c1"],
        ["copy", "https://a.example/c1", "https://a.example/c2"],
        ["move", "https://a.example/4", "https://a.example/m4"],
      );
    }
    if (i === 35) {
      steps.push(
        store("https://a.example/c1", false),
        ["move", "https://a.example/c2", "https://a.example/5"],
        ["copy", "https://a.example/nowhere", "https://a.example/c3"],
        ["copy", "https://a.example/2", "https://a.example/1"],
      );
    }
    // Deduplication (issue 15): identical bodies under several keys.
    if (i === 22 || i === 52) {
      const same = value(`dup${i}`, 1, 700 + i * 40);
      steps.push(
        ["store", "https://a.example/dup1", same, false],
        ["store", "https://a.example/dup2", same, false],
        ["store", "https://a.example/dup3", same.slice(), false],
        ["dedup"],
        // Copy-on-write after the merge: the others keep the shared copy
        // while new stores take freed slots.
        ["store", "https://a.example/dup1", value(`dup${i}`, 2, 900), false],
        ["store", "https://a.example/dupX", value(`dup${i}`, 3, 900), false],
        ["fetch", "https://a.example/dup2", false],
        ["invalidate", "https://a.example/dup2"],
        ["store", "https://a.example/dupY", value(`dup${i}`, 4, 900), false],
        ["fetch", "https://a.example/dup3", false],
      );
    }
    if (i === 50) {
      steps.push(
        ["move", "https://a.example/m4", "https://a.example/4"],
        ["invalidate", "https://a.example/c1"],
        ["copy", "https://a.example/5", "https://a.example/c2"],
      );
    }
  }
  steps.push(["close"]);
  return { name: "A small", options: BASE, steps };
}

/**
 * B: large elements, in runs of data slots or in files of their own:
 * creation, replacement, invalidation.
 */
function workloadB(): Workload {
  const r = rng(0xb);
  const versions = new Map<string, number>();
  const steps: Step[] = [["open"]];
  const store = (key: string, meta: boolean, size: number): Op => {
    const v = (versions.get(key) ?? 0) + 1;
    versions.set(key, v);
    return ["store", key, value(`${key}${meta}`, v, size), meta];
  };
  // A run of data slots, or (one in four) a file of its own.
  const large = () =>
    (r() < 0.25 ? FILE_SIZED : 8200) + Math.floor(r() * 30000);
  for (let i = 0; i < 24; i++) {
    const key = `L${Math.floor(r() * 5)}`;
    const x = r();
    if (x < 0.4) steps.push(store(key, false, large()));
    else if (x < 0.5) {
      // A large body with small or large metadata, or none.
      const data = store(key, false, large());
      const y = r();
      const meta = y < 0.7
        ? store(key, true, 300 + Math.floor(r() * 3000))
        : undefined;
      steps.push([
        "entry",
        key,
        data[2] as Uint8Array,
        meta?.[2] as Uint8Array | undefined,
      ]);
    } else if (x < 0.6) {
      steps.push(store(key, true, 1100 + Math.floor(r() * 5000)));
    } else if (x < 0.7) steps.push(store(key, false, Math.floor(r() * 4000)));
    else if (x < 0.85) steps.push(["invalidate", key]);
    else steps.push(["fetch", key, false]);
    if (i === 12) steps.push(["flush"]);
    // Large elements shared and moved (issue 15).
    if (i === 8) steps.push(["copy", "L1", "LC"], ["move", "L2", "LM"]);
    if (i === 20) {
      const same = value("Ldup", i, large());
      steps.push(
        ["store", "LD1", same, false],
        ["store", "LD2", same, false],
        ["dedup"],
        ["store", "LD1", value("Ldup", i + 1, large()), false],
        ["store", "LDX", value("Ldup", i + 2, large()), false],
        ["fetch", "LD2", false],
      );
    }
    if (i === 18) {
      steps.push(store("LC", false, large()), ["copy", "LM", "L1"], [
        "move",
        "L3",
        "LC",
      ]);
    }
  }
  steps.push(["close"]);
  return { name: "B large", options: BASE, steps };
}

/** C: long keys fill a 64 KiB journal several times; flush and close. */
function workloadC(): Workload {
  const r = rng(0xc);
  const steps: Step[] = [["open"]];
  const keyOf = (i: number) => `${"k".repeat(1500)}/${i}`;
  for (let i = 0; i < 260; i++) {
    const n = Math.floor(r() * 40);
    const x = r();
    if (x < 0.8) steps.push(["store", keyOf(n), value(`c${n}`, i, 100), false]);
    else steps.push(["invalidate", keyOf(n)]);
    if (i === 150) steps.push(["flush"]);
  }
  steps.push(["close"]);
  return {
    name: "C rotation",
    options: { ...BASE, journalBytes: 65536 },
    steps,
    // Every call of a rotation, plus every 5th call elsewhere.
    sample: (n, trace) => {
      const call = trace[n - 1]!;
      return n % 5 === 0 || !/^pwrite .*(dblk|journal-[0-9A-F]+@)/.test(call) ||
        /journal-[0-9A-F]+@20\+/.test(call);
    },
  };
}

// The store reads the clock for use times, which order eviction: a second
// boundary falling inside one run but not another would change its calls.
// Workloads run on a clock stopped at the time this module loaded: the wall
// clock and the monotonic one, which the store's clock bridges with when
// the wall clock is behind the latest time it gave (as after an open of a
// store whose records are newer than STOPPED_AT).
const STOPPED_AT = Date.now();
const STOPPED_MONO = performance.now();

/** Runs a workload's steps through `run`, on a stopped clock. */
export async function runSteps(run: ModelRun, steps: Step[]): Promise<void> {
  const realNow = Date.now;
  Date.now = () => STOPPED_AT;
  Object.defineProperty(performance, "now", {
    value: () => STOPPED_MONO,
    configurable: true,
    writable: true,
  });
  try {
    await runStepsNow(run, steps);
  } finally {
    Date.now = realNow;
    // The own property shadowed Performance.prototype.now.
    delete (performance as { now?: unknown }).now;
  }
}

async function runStepsNow(run: ModelRun, steps: Step[]): Promise<void> {
  for (const s of steps) {
    if (s[0] === "open") await run.open();
    else if (s[0] === "fetch") await run.fetch(s[1], s[2]);
    else if (s[0] === "batch") await run.batch(s[1]);
    else await run.do(s);
  }
}

/** A call name without the random journal tag. */
export const normalise = (call: string): string =>
  call.replace(/journal-[0-9A-F]{8}/g, "journal-X");

/** Runs a workload to completion, recording its mutating calls. */
export async function dryRun(
  w: Workload,
  durability: Durability,
): Promise<string[]> {
  const fs = new FaultFS();
  fs.trace = [];
  const run = new ModelRun(fs, DIR, { ...w.options, durability });
  run.evicts = w.evicts === true;
  await runSteps(run, w.steps);
  return fs.trace.map(normalise);
}

/** The crash modes, in the order they are checked. */
/**
 * Runs a workload with a crash at mutating call `n` (recording the call
 * names when `trace`); returns the frozen disk and the model of the run.
 */
export async function crashRun(
  w: Workload,
  durability: Durability,
  n: number,
  trace = false,
): Promise<{ fs: FaultFS; run: ModelRun }> {
  const fs = new FaultFS();
  if (trace) fs.trace = [];
  fs.crashAt(n);
  const run = new ModelRun(fs, DIR, { ...w.options, durability });
  run.evicts = w.evicts === true;
  try {
    await runSteps(run, w.steps);
  } catch (err) {
    if (!(err instanceof Stopped)) throw err;
  } finally {
    await run.abandon();
  }
  return { fs, run };
}

export const MODES: CrashMode[] = ["drop", "subset", "torn", "process"];

/** What a reopen after a crash in `mode` must show. */
export function expectation(
  mode: CrashMode,
  durability: Durability,
  evicts = false,
): Expectation {
  // "process" loses no completed write: every durability mode promises
  // survival. The power-loss modes only bind "fsync"; under "process"
  // durability they may lose changes but never return foreign bytes.
  const exact = mode === "process" || mode === "torn" || durability === "fsync";
  return {
    strictness: exact ? "exact" : "ever",
    // Unsynced writes surviving out of order can pair the journal entry of
    // the call in flight with an element that did not reach the disk.
    inFlightMiss: mode === "subset",
    anyMiss: evicts,
  };
}

/**
 * D: a 64 KiB limit, so stores evict (75 entries over the run). Which
 * entries go is the store's choice: any element may then be a miss, but
 * never stale or foreign bytes.
 */
function workloadD(): Workload {
  const r = rng(0xd);
  const steps: Step[] = [["open"]];
  for (let i = 0; i < 140; i++) {
    const x = r();
    if (i >= 60 && i < 100) {
      steps.push(["store", `tiny-${i}`, value("tiny", i, 10), false]);
      continue;
    }
    const key = `https://d.example/${Math.floor(r() * 30)}`;
    if (x < 0.7) {
      const size = r() < 0.85 ? 1000 + Math.floor(r() * 6000) : 12000;
      steps.push(["store", key, value(key, i, size), false]);
    } else if (x < 0.8) steps.push(["invalidate", key]);
    else steps.push(["fetch", key, false]);
    if (i === 50) steps.push(["flush"]);
  }
  steps.push(["close"]);
  return {
    name: "D eviction",
    options: { ...BASE, entryBits: 8, limit: 65536, hysteresis: 16384 },
    steps,
    evicts: true,
    sample: (n) => n % 3 === 0,
  };
}

/**
 * E: streamed stores of bodies that end in a slot, a run or a large file
 * (written piece by piece, placed at the end), replacing whole values.
 */
function workloadE(): Workload {
  const steps: Step[] = [["open"]];
  const sizes = [300, FILE_SIZED + 5000, 20_000, FILE_SIZED + 300_000, 0];
  for (const [i, size] of sizes.entries()) {
    const key = `S${i % 2}`;
    steps.push(["store", key, value(key, i, 1000 + i), false]);
    steps.push(["stream", key, value(key, 100 + i, size), false]);
    if (i === 2) steps.push(["stream", key, value(key, 200, 700), true]);
    if (i === 3) steps.push(["flush"]);
  }
  steps.push(["invalidate", "S0"]);
  steps.push(["close"]);
  return { name: "E streamed", options: BASE, steps };
}

/**
 * F: a table large beside its journal, so close keeps the journal and an
 * open that replayed it appends to it (FORMAT.md §10.3) instead of
 * rotating: changes, close, open, more changes, across three reopens.
 */
function workloadF(): Workload {
  const steps: Step[] = [["open"]];
  const fill: Op[] = [];
  for (let i = 0; i < 160; i++) {
    fill.push(["store", `f${i}`, value("fill", i, 40 + i), false]);
  }
  steps.push(["batch", fill], ["flush"]);
  for (let round = 0; round < 3; round++) {
    const k = (i: number) => `f${(round * 7 + i * 3) % 160}`;
    steps.push(
      ["store", k(0), value(k(0), round + 1, 300), false],
      ["store", k(1), value(k(1), round + 1, 9000), true],
      ["invalidate", k(2)],
      ["setAttr", k(3), "a", value(`${k(3)}a`, round, 60)],
      ["fetch", k(4), false],
      ["close"],
      ["open"],
      ["store", k(5), value(k(5), round + 1, 120), false],
    );
  }
  steps.push(["close"]);
  return {
    name: "F kept journal",
    options: BASE,
    steps,
    // Every call from the flush on (the kept journals), every 9th before.
    sample: (n, trace) => {
      const flush = trace.findIndex((c) => /^rename .*entries/.test(c));
      return n > flush || n % 9 === 0;
    },
  };
}

/**
 * G: the disk bound's copies and trims (FORMAT.md §5.4): large values
 * between small ones, each replaced by a larger one that fits no freed
 * run, then one more large store, so the allocated blocks pass the limit
 * and a tenth and data block file 0 is copied without its free slots
 * (`dblk/A.tmp` renamed over it); then the last value is invalidated and
 * the file's free tail truncated. Every call from the copy on, every 4th
 * before.
 */
function workloadG(): Workload {
  const steps: Step[] = [["open"]];
  for (let i = 0; i < 4; i++) {
    steps.push(
      ["store", `h${i}`, value(`h${i}`, 1, 300_000), false],
      ["store", `s${i}`, value(`s${i}`, 1, 300), false],
    );
  }
  steps.push(["store", "s2", value("s2m", 1, 200), true], ["flush"]);
  for (let i = 0; i < 4; i++) {
    steps.push(["store", `h${i}`, value(`h${i}`, 2, 320_000), false]);
  }
  steps.push(
    ["store", "j", value("j", 1, 320_000), false],
    ["fetch", "s1", false],
    ["invalidate", "j"],
    ["store", "s0", value("s0", 2, 500), false],
    ["close"],
    ["open"],
    ["store", "h1", value("h1", 3, 200), false],
    ["close"],
  );
  return {
    name: "G disk bound",
    options: { ...BASE, limit: 2 * 2 ** 20 },
    steps,
    sample: (n, trace) => {
      const copy = trace.findIndex((c) =>
        c.startsWith("create /store/dblk/A.tmp")
      );
      return n % 4 === 0 || (copy >= 0 && n > copy);
    },
  };
}

/** The workloads by letter. */
export const WORKLOADS = {
  A: workloadA,
  B: workloadB,
  C: workloadC,
  D: workloadD,
  E: workloadE,
  F: workloadF,
  G: workloadG,
};
