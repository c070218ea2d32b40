/**
 * Merges repeated runs (best per phase) and renders the comparison as
 * markdown, with the issue's target ratios computed from the same run.
 *
 * @module
 */

import type { PhaseResult } from "./measure.ts";
import type { PeerRun } from "./run_peer.ts";

/** One peer on one workload after merging its runs. */
export interface MergedPeer {
  id: string;
  peer: string;
  eviction: string;
  runs: number;
  /** Distinct larder commits the runs saw (src changes mid-run show up here). */
  commits: string[];
  /** Best run of each phase (highest ops/s; for reopen, the fastest). */
  phases: Record<string, PhaseResult>;
  errors: string[];
}

/** One workload's results. */
export interface WorkloadReport {
  name: string;
  objects: number;
  workloadBytes: number;
  peers: MergedPeer[];
}

/** A target ratio from issue 6. */
export interface TargetLine {
  workload: string;
  label: string;
  ratio: number | null;
  target: number;
  pass: boolean | null;
}

/** Everything latest.json holds. */
export interface Report {
  date: string;
  command: string;
  commit: string;
  machine: Record<string, string | number>;
  scale: number;
  rounds: number;
  workloads: WorkloadReport[];
  targets: TargetLine[];
}

const PHASES = ["put", "get", "reopen", "invalidate", "evict"] as const;

/** How to read the tables; each peer's module doc has the details. */
const NOTES = [
  "Phases: put every object (meta + body); get all in random order (bytes verified outside the timed calls); " +
  "close, then open + first get; invalidate a random 10%; put everything into a fresh store limited to half the workload.",
  "Time is the sum of the time inside the store's calls; ops are objects (meta + body), MB/s counts meta + body.",
  "No peer fsyncs per put: node:sqlite runs WAL with synchronous=NORMAL; lmdb is lmdb-js's default (overlappingSync, " +
  "which still waits on a flush per commit) and `lmdb noSync` skips flushing (a system crash can corrupt it); " +
  "larder's put phase includes its final `flush()`.",
  "Eviction: `native` = the store keeps its own limit; `emulated` = the adapter tracks sizes in memory and deletes " +
  "least-recently-used keys down to 90% of the limit (what a user would have to add); `ring` = the raw file wraps " +
  "and overwrites its oldest records.",
  "Web Cache: `cache.delete()` leaves the response body files on disk (only deleting the whole cache frees them), " +
  "so its disk use never shrinks; it has no close, so its reopen is a second `caches.open` in the same process.",
  "Disk is allocated bytes (`du -B1`) of the peer's whole temp dir after the phase (for the eviction phase, what it adds to that: the main store is deleted after it); peak RSS is VmHWM, reset per phase.",
];

/** Keeps, per phase, the run with the highest throughput. */
export function merge(runs: PeerRun[]): MergedPeer {
  const first = runs[0]!;
  const phases: Record<string, PhaseResult> = {};
  for (const run of runs) {
    for (const p of run.phases) {
      const best = phases[p.phase];
      if (!best || p.opsPerSec > best.opsPerSec) phases[p.phase] = p;
    }
  }
  return {
    id: first.id,
    peer: first.peer,
    eviction: first.eviction,
    runs: runs.length,
    commits: [...new Set(runs.flatMap((r) => (r.commit ? [r.commit] : [])))],
    phases,
    errors: runs.flatMap((r) => (r.error ? [r.error] : [])),
  };
}

function ratio(
  w: WorkloadReport,
  a: [string, string],
  b: [string, string],
): number | null {
  const x = w.peers.find((p) => p.id === a[0])?.phases[a[1]]?.opsPerSec;
  const y = w.peers.find((p) => p.id === b[0])?.phases[b[1]]?.opsPerSec;
  return x && y ? x / y : null;
}

/** The issue's targets, as ratios of ops/s within this run. */
export function targets(workloads: WorkloadReport[]): TargetLine[] {
  const lines: TargetLine[] = [];
  const add = (
    w: WorkloadReport,
    label: string,
    r: number | null,
    target: number,
  ) =>
    lines.push({
      workload: w.name,
      label,
      ratio: r,
      target,
      pass: r === null ? null : r >= target,
    });
  for (const w of workloads) {
    const small = w.name === "small";
    add(
      w,
      "larder put / node:sqlite put",
      ratio(w, ["larder", "put"], ["sqlite", "put"]),
      small ? 3 : 2,
    );
    if (small) {
      add(
        w,
        "larder put / raw file put",
        ratio(w, ["larder", "put"], ["raw-file", "put"]),
        0.5,
      );
    }
    add(
      w,
      "larder get / lmdb get",
      ratio(w, ["larder", "get"], ["lmdb", "get"]),
      1,
    );
    add(
      w,
      "larder evict put / larder put",
      ratio(w, ["larder", "evict"], ["larder", "put"]),
      0.8,
    );
  }
  return lines;
}

const int = (
  n: number | undefined,
) => (n === undefined ? "—" : Math.round(n).toLocaleString("en-US"));
const fixed = (
  n: number | undefined,
  d = 1,
) => (n === undefined ? "—" : n.toFixed(d));
const times = (n: number | null) => (n === null ? "n/a" : `${n.toFixed(2)}×`);

function row(cells: (string | number)[]): string {
  return `| ${cells.join(" | ")} |`;
}

/**
 * A table's head row and its separator; `align` has one letter a column:
 * `l` left, `r` right (numbers).
 */
function head(cells: string[], align: string): string[] {
  if (align.length !== cells.length) {
    throw new Error(
      `Cannot build table head: ${cells.length} columns, ${align.length} alignments`,
    );
  }
  return [row(cells), row([...align].map((a) => a === "r" ? "---:" : "---"))];
}

function notes(p: PhaseResult): string {
  const e = p.extra;
  switch (p.phase) {
    case "put":
      return e.flushMs ? `incl. flush ${fixed(e.flushMs as number)} ms` : "";
    case "get":
      return `${e.misses} misses, ${e.mismatches} wrong`;
    case "reopen":
      return `open ${fixed(e.openMs as number, 2)} ms + first get ${
        fixed(e.firstGetMs as number, 2)
      } ms`;
    case "invalidate":
      return `${e.absent} absent, ${e.stillThere} still there, ${e.lostSurvivors} survivors lost`;
    case "evict":
      return `limit ${fixed(e.limitMiB as number)} MiB; resident ${
        fixed(e.residentPct as number, 0)
      }% ` +
        `(newest tenth ${fixed(e.newestResidentPct as number, 0)}%)`;
    default:
      return "";
  }
}

/** Renders the report as markdown. */
export function toMarkdown(r: Report): string {
  const out: string[] = [];
  out.push("# larder peer comparison", "");
  out.push(
    `${r.date} · \`${r.command}\` · larder at ${r.commit} (one snapshot for the whole run) · ` +
      `scale ${r.scale} · best of ${r.rounds} runs per phase, each peer in its own process and temp dir`,
    "",
  );
  out.push(
    `Machine: ${
      Object.entries(r.machine).map(([k, v]) => `${k} ${v}`).join(", ")
    }. ` +
      "Noisy shared VM: expect ±10–20% between runs.",
    "",
  );
  out.push("## Targets (issue 6, ops/s ratios from this run)", "");
  out.push(
    ...head(["workload", "ratio", "measured", "target", "met"], "llrrl"),
  );
  for (const t of r.targets) {
    out.push(
      row([
        t.workload,
        t.label,
        times(t.ratio),
        `≥ ${t.target}×`,
        t.pass === null ? "n/a" : t.pass ? "yes" : "**no**",
      ]),
    );
  }
  for (const w of r.workloads) {
    out.push(
      "",
      `## ${w.name}: ${int(w.objects)} objects, ${
        fixed(w.workloadBytes / 1e6)
      } MB (meta + body)`,
      "",
    );
    out.push(
      ...head(
        [
          "peer",
          "put ops/s",
          "put MB/s",
          "get ops/s",
          "get MB/s",
          "reopen ms",
          "invalidate ops/s",
          "evict ops/s",
          "evict / put",
          "eviction",
        ],
        "lrrrrrrrrl",
      ),
    );
    for (const p of w.peers) {
      const ph = p.phases;
      const evictRatio = ph.evict && ph.put
        ? `${(ph.evict.opsPerSec / ph.put.opsPerSec).toFixed(2)}×`
        : "—";
      out.push(row([
        p.errors.length ? `${p.peer} ⚠` : p.peer,
        int(ph.put?.opsPerSec),
        fixed(ph.put?.mbPerSec),
        int(ph.get?.opsPerSec),
        fixed(ph.get?.mbPerSec),
        fixed(ph.reopen ? ph.reopen.seconds * 1000 : undefined, 1),
        int(ph.invalidate?.opsPerSec),
        int(ph.evict?.opsPerSec),
        evictRatio,
        p.eviction,
      ]));
    }
    out.push(
      "",
      "<details><summary>Per phase: latency, peak RSS, disk</summary>",
      "",
    );
    out.push(
      ...head(
        [
          "phase",
          "peer",
          "ops/s",
          "MB/s",
          "p50 µs",
          "p99 µs",
          "peak RSS MiB",
          "disk MiB",
          "notes",
        ],
        "llrrrrrrl",
      ),
    );
    for (const phase of PHASES) {
      for (const p of w.peers) {
        const x = p.phases[phase];
        if (!x) continue;
        out.push(row([
          phase,
          p.peer,
          phase === "reopen" ? "—" : int(x.opsPerSec),
          phase === "reopen" || phase === "invalidate"
            ? "—"
            : fixed(x.mbPerSec),
          int(x.p50Us),
          int(x.p99Us),
          int(x.peakRssMiB),
          int(x.diskMiB),
          notes(x),
        ]));
      }
    }
    out.push("", "</details>");
    const errors = w.peers.flatMap((p) =>
      p.errors.map((e) => `- ${p.peer}: ${e}`)
    );
    if (errors.length) out.push("", "Errors:", "", ...errors);
  }
  out.push("", ...NOTES.map((n) => `- ${n}`), "");
  return out.join("\n");
}
