// Crash simulation: every mutating file-system call of the workloads is
// a crash point. At each, the fault layer freezes, builds the disk a
// restart would find (FORMAT.md §10.4: "drop" unsynced writes, keep a
// random "subset", "torn" last write, or the "process" dies and the kernel
// keeps every write), and a reopened store must return every acknowledged
// value (where the durability mode promises it), the old or the new value
// for the call in flight, and never bytes that were not stored. Where the
// crash tore a journal append, check-store must call the torn entry what
// it is (a warning), not damage.
import assert from "node:assert/strict";
import type { CrashMode, FaultFS } from "./_fault_fs.ts";
import { checkReopen } from "./_crash_model.ts";
import { checkStore } from "../src/check.ts";
import { JOURNAL_HEADER } from "../src/journal.ts";
import {
  crashRun,
  DIR,
  dryRun,
  type Durability,
  expectation,
  MODES,
  normalise,
  type Workload,
  WORKLOADS,
} from "./_crash_workloads.ts";
import { openForTest } from "../src/_testing.ts";

interface Tally {
  points: number;
  images: Record<CrashMode, number>;
  /** Torn journal appends seen, and those check-store was run on. */
  tears: number;
  checked: number;
  /** Of those, how many it reported as JOURNAL_TORN_TAIL. */
  tornTails: number;
}

/**
 * Runs check-store on a crash image (a copy: the check takes the lock) and
 * returns its journal errors: a torn final entry is a warning
 * (JOURNAL_TORN_TAIL), never JOURNAL_CORRUPT_TAIL.
 */
async function checkTear(
  img: FaultFS,
): Promise<{ errors: string[]; torn: boolean }> {
  const r = await checkStore(DIR, { io: img.clone() });
  return {
    errors: r.problems
      .filter((p) => p.severity === "error" && p.code.startsWith("JOURNAL_"))
      .map((p) => `${p.code}: ${p.detail}`),
    torn: r.problems.some((p) => p.code === "JOURNAL_TORN_TAIL"),
  };
}

async function crashSweep(
  w: Workload,
  durability: Durability,
): Promise<Tally> {
  const trace = await dryRun(w, durability);
  const tally: Tally = {
    points: 0,
    images: { drop: 0, subset: 0, torn: 0, process: 0 },
    tears: 0,
    checked: 0,
    tornTails: 0,
  };
  const failures: string[] = [];
  for (let n = 1; n <= trace.length; n++) {
    if (w.sample !== undefined && !w.sample(n, trace)) continue;
    const { fs, run } = await crashRun(w, durability, n);
    assert.ok(fs.crashed, `${w.name}: call ${n} was never reached`);
    assert.equal(
      normalise(fs.crashCall!),
      trace[n - 1],
      `${w.name}: the workload is not deterministic at call ${n}`,
    );
    tally.points++;
    // Only tears of a journal append (the writes that create a journal
    // start at byte 0), and every 8th of them: checking every image would
    // triple the sweep's time, every tear add a fifth to it (a one-off
    // sweep of all 9,400 images found no journal error).
    const at = /^pwrite \S*\/journal-[0-9A-F]{8}@(\d+)\+/.exec(fs.crashCall!);
    const journalWrite = at !== null && Number(at[1]) >= JOURNAL_HEADER;
    for (const mode of MODES) {
      for (const img of fs.images(mode, n)) {
        tally.images[mode]++;
        if (mode === "torn" && journalWrite && tally.tears++ % 8 === 0) {
          tally.checked++;
          const { errors, torn } = await checkTear(img);
          if (torn) tally.tornTails++;
          for (const e of errors) {
            failures.push(
              `${w.name} ${durability} crash at call ${n} (${fs.crashCall}) mode torn: check-store: ${e}`,
            );
          }
        }
        const problem = await checkReopen(
          run,
          img,
          expectation(mode, durability, w.evicts),
        );
        if (problem !== undefined) {
          failures.push(
            `${w.name} ${durability} crash at call ${n} (${fs.crashCall}) mode ${mode}: ${problem}`,
          );
        }
      }
    }
    if (failures.length >= 10) break;
  }
  assert.deepEqual(failures, [], failures.join("\n"));
  return tally;
}

/**
 * A crash while recovering from a crash: for every `every`-th crash point
 * and each first crash mode, crash again at every mutating call of the
 * reopen (whose recovery replays, repairs and rotates), in modes "drop" and
 * "process". The second restart must still meet what the first crash
 * promised. Returns the number of second crash points.
 */
async function recoverySweep(
  w: Workload,
  durability: Durability,
  every: number,
): Promise<number> {
  const trace = await dryRun(w, durability);
  const failures: string[] = [];
  let points = 0;
  for (let n = every; n <= trace.length; n += every) {
    const { fs, run } = await crashRun(w, durability, n);
    for (const first of ["drop", "process"] as const) {
      const disk = fs.image(first, n);
      // How many mutating calls the recovery makes.
      const dry = disk.clone();
      const st = await openForTest(DIR, run.options, { io: dry });
      const calls = dry.counts.mutating;
      await st.close();
      for (let m = 1; m <= calls; m++) {
        const again = disk.clone();
        again.crashAt(m);
        try {
          const st = await openForTest(DIR, run.options, { io: again });
          await st.close().catch(() => {});
          assert.fail(`${w.name}: recovery call ${m} was never reached`);
        } catch (err) {
          if (!again.crashed) throw err;
        }
        points++;
        for (const second of ["drop", "process"] as const) {
          const problem = await checkReopen(
            run,
            again.image(second, m),
            expectation(first, durability, w.evicts),
          );
          if (problem !== undefined) {
            failures.push(
              `${w.name} ${durability} crash at call ${n} (${first}), then at recovery call ${m} (${again.crashCall}, ${second}): ${problem}`,
            );
          }
        }
      }
    }
    if (failures.length >= 10) break;
  }
  assert.deepEqual(failures, [], failures.join("\n"));
  return points;
}

const totals: string[] = [];
let allPoints = 0;
let tornTails = 0;

for (const make of Object.values(WORKLOADS)) {
  const w = make();
  for (const durability of ["fsync", "process"] as Durability[]) {
    Deno.test(`crash at every call of workload ${w.name} (${durability} durability) loses nothing acknowledged`, async () => {
      const t = await crashSweep(w, durability);
      allPoints += t.points;
      tornTails += t.tornTails;
      totals.push(
        `${w.name}/${durability}: ${t.points} points, images drop ${t.images.drop} subset ${t.images.subset} torn ${t.images.torn} process ${t.images.process}, ${t.checked} of ${t.tears} torn journal appends checked (${t.tornTails} JOURNAL_TORN_TAIL)`,
      );
    });
  }
}

Deno.test("crash workload G copies a block file without its free slots and trims its tail", async () => {
  for (const durability of ["fsync", "process"] as Durability[]) {
    const trace = await dryRun(WORKLOADS.G(), durability);
    const copied = trace.indexOf("rename /store/dblk/A.tmp /store/dblk/A");
    assert.ok(copied > 0, `${durability}: a copy of dblk/A replaced it`);
    // A tail trim: cut after the last used slot, extended again (a hole).
    const trim = trace.findIndex((c, i) =>
      i > copied && /^ftruncate \/store\/dblk\/A [1-9]/.test(c) &&
      /^ftruncate \/store\/dblk\/A [1-9]/.test(trace[i + 1] ?? "") &&
      Number(c.split(" ")[2]) < Number(trace[i + 1]!.split(" ")[2])
    );
    assert.ok(trim > copied, `${durability}: the copy's tail was truncated`);
  }
});

let recoveryPoints = 0;
Deno.test("a crash during the recovery from a crash loses nothing the first crash kept", async () => {
  // Every 13th first crash point (every 53rd in C, whose recoveries are long).
  for (
    const [make, every] of [
      [WORKLOADS.A, 13],
      [WORKLOADS.B, 13],
      [
        WORKLOADS.E,
        7,
      ],
      [
        WORKLOADS.C,
        53,
      ],
      [WORKLOADS.F, 11],
      [WORKLOADS.G, 11],
    ] as const
  ) {
    for (const durability of ["fsync", "process"] as Durability[]) {
      recoveryPoints += await recoverySweep(make(), durability, every);
    }
  }
});

Deno.test("crash simulation covers at least 1,000 crash points", () => {
  console.log(
    `crash_test: ${allPoints} crash points; ${
      totals.join("; ")
    }; ${recoveryPoints} crash points inside recoveries`,
  );
  assert.ok(allPoints >= 1000, `only ${allPoints} crash points`);
  assert.ok(tornTails > 0, "no crash image had a torn journal entry");
});
