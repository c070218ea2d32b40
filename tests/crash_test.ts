// Crash simulation: every mutating file-system call of three workloads is
// a crash point. At each, the fault layer freezes, builds the disk a
// restart would find (FORMAT.md §10.4: "drop" unsynced writes, keep a
// random "subset", "torn" last write, or the "process" dies and the kernel
// keeps every write), and a reopened store must return every acknowledged
// value (where the durability mode promises it), the old or the new value
// for the call in flight, and never bytes that were not stored.
import assert from "node:assert/strict";
import { type CrashMode, FaultFS } from "./_fault_fs.ts";
import { checkReopen, ModelRun, Stopped } from "./_crash_model.ts";
import {
  DIR,
  dryRun,
  type Durability,
  expectation,
  MODES,
  normalise,
  runSteps,
  type Workload,
  WORKLOADS,
} from "./_crash_workloads.ts";

interface Tally {
  points: number;
  images: Record<CrashMode, number>;
}

async function crashSweep(
  w: Workload,
  durability: Durability,
): Promise<Tally> {
  const trace = await dryRun(w, durability);
  const tally: Tally = {
    points: 0,
    images: { drop: 0, subset: 0, torn: 0, process: 0 },
  };
  const failures: string[] = [];
  for (let n = 1; n <= trace.length; n++) {
    if (w.sample !== undefined && !w.sample(n, trace)) continue;
    const fs = new FaultFS();
    fs.crashAt(n);
    const run = new ModelRun(fs, DIR, { ...w.options, durability });
    try {
      await runSteps(run, w.steps);
    } catch (err) {
      if (!(err instanceof Stopped)) throw err;
    } finally {
      await run.abandon();
    }
    assert.ok(fs.crashed, `${w.name}: call ${n} was never reached`);
    assert.equal(
      normalise(fs.crashCall!),
      trace[n - 1],
      `${w.name}: the workload is not deterministic at call ${n}`,
    );
    tally.points++;
    for (const mode of MODES) {
      for (const img of fs.images(mode, n)) {
        tally.images[mode]++;
        const problem = await checkReopen(
          run,
          img,
          expectation(mode, durability),
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

const totals: string[] = [];
let allPoints = 0;

for (const make of Object.values(WORKLOADS)) {
  const w = make();
  for (const durability of ["fsync", "process"] as Durability[]) {
    Deno.test(`crash at every call of workload ${w.name} (${durability} durability) loses nothing acknowledged`, async () => {
      const t = await crashSweep(w, durability);
      allPoints += t.points;
      totals.push(
        `${w.name}/${durability}: ${t.points} points, images drop ${t.images.drop} subset ${t.images.subset} torn ${t.images.torn} process ${t.images.process}`,
      );
    });
  }
}

Deno.test("crash simulation covers at least 1,000 crash points", () => {
  console.log(`crash_test: ${allPoints} crash points; ${totals.join("; ")}`);
  assert.ok(allPoints >= 1000, `only ${allPoints} crash points`);
});
