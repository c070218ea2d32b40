/**
 * Peer comparison driver (issue 6): runs every peer on every workload in
 * its own `deno run` process and fresh temp dir, several rounds
 * interleaved so machine noise spreads over all peers, keeps the best run
 * per phase, and writes bench/results/latest.{md,json}.
 *
 *   npm ci --prefix bench/compare          # once: cacache, lmdb
 *   deno task bench:compare                # full run
 *   deno task bench:compare --quick        # 1/10 of the objects, to iterate
 *   deno task bench:compare --peers larder,lmdb --workloads small --rounds 1
 *   deno task bench:compare --worktree     # larder's uncommitted source, not HEAD
 *   deno task bench:compare --settle-s 65  # sync and wait after each peer's cleanup
 *
 * @module
 */

import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { PEERS } from "./peers/catalogue.ts";
import {
  merge,
  type Report,
  targets,
  toMarkdown,
  type WorkloadReport,
} from "./report.ts";
import type { PeerRun } from "./run_peer.ts";

const here = new URL(".", import.meta.url).pathname;
const resultsDir = join(here, "..", "results");
const NPM_PEERS = new Set(["lmdb", "lmdb-nosync", "cacache"]);

async function machine(): Promise<Record<string, string | number>> {
  // Deno reads /proc/cpuinfo only under -A; cat needs just --allow-run.
  const info = await new Deno.Command("cat", {
    args: ["/proc/cpuinfo"],
    stdout: "piped",
    stderr: "null",
  }).output()
    .then((o) => new TextDecoder().decode(o.stdout), () => "");
  const cpu = /model name\s*:\s*(.+)/.exec(info)?.[1] ?? "?";
  return {
    cpu,
    cores: navigator.hardwareConcurrency,
    memoryGiB: Math.round(Deno.systemMemoryInfo().total / 2 ** 30),
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
  };
}

async function gitCommit(): Promise<string> {
  const run = async (args: string[]) =>
    new TextDecoder().decode(
      (await new Deno.Command("git", {
        args,
        cwd: here,
        stdout: "piped",
        stderr: "null",
      }).output()).stdout,
    ).trim();
  // The last commit that touched larder itself, not bench/ or docs.
  const head = await run([
    "log",
    "-1",
    "--format=%h",
    "--",
    "../../src",
    "../../mod.ts",
  ]);
  const dirty = await run([
    "status",
    "--porcelain",
    "--",
    "../../src",
    "../../mod.ts",
    "../../asm",
  ]);
  return `${head || "?"}${dirty ? " (+ uncommitted larder changes)" : ""}`;
}

/**
 * Copies larder's source (`mod.ts`, `src/`: it imports nothing else) so a
 * run measures one version even if the working tree changes meanwhile:
 * the committed HEAD by default, the working tree with `--worktree`.
 */
async function snapshotLarder(
  worktree: boolean,
): Promise<{ dir: string; commit: string }> {
  const dir = await Deno.makeTempDir({ prefix: "larder-bench-src-" });
  const repo = join(here, "..", "..");
  const cmd = worktree
    ? `cp -R mod.ts src '${dir}'`
    : `git archive HEAD mod.ts src | tar -x -C '${dir}'`;
  const out = await new Deno.Command("sh", { args: ["-c", cmd], cwd: repo })
    .output();
  if (!out.success) {
    throw new Error(
      `Cannot snapshot larder: \`${cmd}\` exited with ${out.code}`,
    );
  }
  const commit = await gitCommit();
  return { dir, commit: worktree ? commit : commit.replace(/ \(.*\)$/, "") };
}

/**
 * Takes the machine-wide comparison lock: two comparisons at once would
 * share the two cores and the disk and skew each other, so a second one
 * waits. The lock goes with the process.
 */
async function exclusive(): Promise<Deno.FsFile> {
  const path = join(
    Deno.env.get("TMPDIR") ?? "/tmp",
    "larder-bench-compare.lock",
  );
  const lock = await Deno.open(path, { create: true, write: true });
  if (!(await lock.tryLock(true))) {
    console.error(`another bench:compare is running; waiting for ${path}`);
    await lock.lock(true);
  }
  return lock;
}

/** Runs one peer process; never throws, so one broken peer cannot stop the rest. */
async function runPeer(
  id: string,
  workload: string,
  options: {
    scale: number;
    timeoutMin: number;
    larder: { dir: string; commit: string };
  },
): Promise<PeerRun> {
  const { scale, timeoutMin, larder } = options;
  const commit = larder.commit;
  const entry = PEERS.find((p) => p.id === id)!;
  const root = await Deno.makeTempDir({ prefix: `larder-bench-${id}-` });
  const out = `${root}.json`;
  const failed = (error: string): PeerRun => ({
    id,
    peer: id,
    eviction: "?",
    workload: workload as PeerRun["workload"],
    objects: 0,
    workloadBytes: 0,
    phases: [],
    commit,
    error,
  });
  try {
    // Start each peer without the previous one's dirty pages still being
    // written back underneath it.
    await new Deno.Command("sync").output();
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        // Deno grants /proc/self/{status,clear_refs} (peak RSS) only under -A.
        "-A",
        // PhaseTimer collects the garbage of one phase before the next.
        "--v8-flags=--expose-gc",
        "--config",
        join(here, "deno.json"),
        ...(entry.flags ?? []),
        join(here, "run_peer.ts"),
        ...[
          "--peer",
          id,
          "--workload",
          workload,
          "--scale",
          String(scale),
          "--root",
          root,
          "--out",
          out,
        ],
      ],
      env: { ...entry.env?.(root), LARDER_MODULE: join(larder.dir, "mod.ts") },
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMin * 60_000);
    const status = await child.status;
    clearTimeout(timer);
    if (!existsSync(out)) {
      return failed(
        `process exited with ${status.code}${
          status.signal ? ` (${status.signal})` : ""
        } and no result`,
      );
    }
    return { ...JSON.parse(await Deno.readTextFile(out)) as PeerRun, commit };
  } finally {
    await Deno.remove(root, { recursive: true }).catch(() => {});
    await Deno.remove(out).catch(() => {});
  }
}

/**
 * Lets the file system get over the previous process's deleted temp dir
 * (`sync`, then `seconds`), so one peer does not pay for another's files
 * (bench/compare/README.md: ext4 without a journal).
 */
async function settle(seconds: number): Promise<void> {
  if (seconds <= 0) return;
  await new Deno.Command("sync").output().catch(() => {});
  await new Promise((r) => setTimeout(r, seconds * 1000));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean", default: false },
      scale: { type: "string" },
      rounds: { type: "string", default: "2" },
      peers: { type: "string", default: PEERS.map((p) => p.id).join(",") },
      workloads: { type: "string", default: "small,mixed" },
      "timeout-min": { type: "string", default: "30" },
      "settle-s": { type: "string", default: "0" },
      worktree: { type: "boolean", default: false },
    },
  });
  const scale = Number(values.scale ?? (values.quick ? 0.1 : 1));
  const rounds = Math.max(1, Number(values.rounds));
  const ids = values.peers.split(",").filter(Boolean);
  for (const id of ids) {
    if (!PEERS.some((p) => p.id === id)) {
      throw new RangeError(`Cannot run peer: unknown id ${id}`);
    }
  }
  if (
    ids.some((id) => NPM_PEERS.has(id)) &&
    !existsSync(join(here, "node_modules", "lmdb"))
  ) {
    throw new Error(
      "Cannot run npm peers: install them first with `npm ci --prefix bench/compare`",
    );
  }
  const lock = await exclusive();
  const larder = await snapshotLarder(values.worktree);
  const timeoutMin = Number(values["timeout-min"]);
  const settleS = Number(values["settle-s"]);
  let processes = 0;
  const workloads: WorkloadReport[] = [];
  for (const name of values.workloads.split(",").filter(Boolean)) {
    const runs = new Map<string, PeerRun[]>(ids.map((id) => [id, []]));
    // Rounds outermost: a slow minute on the VM then hits every peer once.
    for (let round = 1; round <= rounds; round++) {
      for (const id of ids) {
        if (processes++ > 0) await settle(settleS);
        console.error(`--- ${name} round ${round}/${rounds}: ${id}`);
        runs.get(id)!.push(
          await runPeer(id, name, { scale, timeoutMin, larder }),
        );
      }
    }
    const merged = ids.map((id) => merge(runs.get(id)!));
    const sizes = [...runs.values()].flat().find((r) => r.objects > 0);
    workloads.push({
      name,
      objects: sizes?.objects ?? 0,
      workloadBytes: sizes?.workloadBytes ?? 0,
      peers: merged,
    });
  }
  const report: Report = {
    date: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC",
    command: `deno task bench:compare ${Deno.args.join(" ")}`.trim(),
    commit: larder.commit,
    machine: await machine(),
    scale,
    rounds,
    workloads,
    targets: targets(workloads),
  };
  const md = toMarkdown(report);
  await Deno.mkdir(resultsDir, { recursive: true });
  // Partial runs (--peers, --workloads, --scale) must not overwrite the full table.
  const partial = scale !== 1 ||
    values.peers !== PEERS.map((p) => p.id).join(",") ||
    values.workloads !== "small,mixed";
  const base = join(resultsDir, partial ? "partial" : "latest");
  await Deno.writeTextFile(`${base}.md`, md);
  await Deno.writeTextFile(
    `${base}.json`,
    JSON.stringify(report, null, 2) + "\n",
  );
  await Deno.remove(larder.dir, { recursive: true });
  lock.close();
  console.log(md);
  console.error(`wrote ${base}.md and ${base}.json`);
}

await main();
