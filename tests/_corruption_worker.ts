// A worker of corruption_fuzz_test.ts: loads the store image from a real
// directory, runs its share of the damage cases, and reports progress (so
// the test can time out a case that hangs), problems and a tally.
/// <reference lib="deno.worker" />
import { FaultFS } from "./_fault_fs.ts";
import {
  buildCases,
  describeCase,
  hitsVersion,
  ROOT,
  runDamageCase,
  type Target,
} from "./_corruption_cases.ts";

/** The message that starts a worker. */
export interface Job {
  dir: string;
  targets: Target[];
  sizes: { length: number; used: number }[];
  values: [string, { key: string; meta: boolean; values: Uint8Array[] }][];
  shard: number;
  shards: number;
}

self.onmessage = async (e: MessageEvent<Job>) => {
  const job = e.data;
  const image = FaultFS.load(job.dir, ROOT);
  const values = new Map(job.values);
  const cases = buildCases(job.targets, job.sizes);
  const tally: Record<string, number> = {};
  const problems: string[] = [];
  let slowest = 0;
  let ran = 0;
  for (let i = job.shard; i < cases.length; i += job.shards) {
    const c = cases[i]!;
    if (ran % 32 === 0) self.postMessage({ type: "progress", case: i });
    const t0 = performance.now();
    const out = await runDamageCase(image, job.targets, c, values);
    slowest = Math.max(slowest, performance.now() - t0);
    ran++;
    const t = job.targets[c.target]!;
    const key = `${t.kind} ${c.damage.op} ${out.result}`;
    tally[key] = (tally[key] ?? 0) + 1;
    let problem = out.problem;
    // Refusing to open is right only for a damaged control file (its key
    // and table size cannot be guessed) or a flipped version field (a newer
    // format must not be misread).
    if (
      problem === undefined && out.result !== "opened" &&
      t.kind !== "control" &&
      !(out.result === "VERSION_MISMATCH" && hitsVersion(job.targets, c))
    ) {
      problem = `open failed with ${out.result}`;
    }
    if (problem !== undefined && problems.length < 20) {
      problems.push(`${describeCase(job.targets, c)}: ${problem}`);
    }
  }
  self.postMessage({ type: "done", tally, problems, slowest, ran });
};
