// Replays one crash point of crash_test.ts and explains it, for debugging:
//   deno run -A tests/_crash_repro.ts A fsync 101 subset
// (workload A|B|C|D, durability, mutating call number, crash mode).
import { checkReopen } from "./_crash_model.ts";
import {
  crashRun,
  type Durability,
  expectation,
  WORKLOADS,
} from "./_crash_workloads.ts";
import type { CrashMode } from "./_fault_fs.ts";

const [name, durability, at, mode] = Deno.args;
const w = WORKLOADS[name as keyof typeof WORKLOADS]();
const n = Number(at);
const { fs, run } = await crashRun(w, durability as Durability, n, true);
console.log(`last calls:\n  ${(fs.trace ?? []).slice(-20).join("\n  ")}`);
console.log("in flight:", run.inFlight.map(([c, v]) => [c, v?.length]));
for (const img of fs.images(mode as CrashMode, n)) {
  console.log("files:", img.files().join(" "));
  console.log(
    (await checkReopen(
      run,
      img,
      expectation(mode as CrashMode, durability as Durability, w.evicts),
    )) ?? "ok",
  );
}
