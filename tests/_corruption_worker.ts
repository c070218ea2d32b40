// A worker of corruption_fuzz_test.ts: loads the store images from real
// directories, runs its share of the chosen damage cases, and reports
// each case as it starts (so the test can name a case that hangs),
// problems and a tally.
/// <reference lib="deno.worker" />
import { FaultFS } from "./_fault_fs.ts";
import {
  buildCases,
  type CellValues,
  describeCase,
  expectationOf,
  groupOf,
  type ImageSpec,
  ROOT,
  runDamageCase,
} from "./_corruption_cases.ts";

/** A store image: where it is on disk, its spec and its values. */
export interface JobImage {
  dir: string;
  spec: ImageSpec;
  values: [string, CellValues][];
}

/** The message that starts a worker. */
export interface Job {
  images: JobImage[];
  /** Indices into `buildCases` of the images: the cases to run. */
  chosen: number[];
  shard: number;
  shards: number;
}

/** A problem a case had, by the case's index. */
export interface Problem {
  case: number;
  what: string;
}

self.onmessage = async (e: MessageEvent<Job>) => {
  const job = e.data;
  const specs = job.images.map((i) => i.spec);
  const images = job.images.map((i) => FaultFS.load(i.dir, ROOT));
  const values = job.images.map((i) => new Map(i.values));
  const cases = buildCases(specs);
  const tally: Record<string, number> = {};
  const problems: Problem[] = [];
  let slowest = 0;
  let ran = 0;
  for (let k = job.shard; k < job.chosen.length; k += job.shards) {
    const i = job.chosen[k]!;
    const c = cases[i]!;
    self.postMessage({ type: "progress", case: i });
    const expect = expectationOf(specs, c);
    const t0 = performance.now();
    const out = await runDamageCase(
      images[c.image]!,
      specs[c.image]!,
      c,
      values[c.image]!,
      expect.fetch,
    );
    slowest = Math.max(slowest, performance.now() - t0);
    ran++;
    const key = `${groupOf(specs, c)} ${out.result}`;
    tally[key] = (tally[key] ?? 0) + 1;
    let problem = out.problem;
    if (
      problem === undefined && out.result !== "opened" &&
      !(out.result === "VERSION_MISMATCH" && expect.mayRefuse)
    ) {
      problem = `open failed with ${out.result}`;
    }
    if (problem !== undefined && problems.length < 20) {
      problems.push({ case: i, what: `${describeCase(specs, c)}: ${problem}` });
    }
  }
  self.postMessage({ type: "done", tally, problems, slowest, ran });
};
