/**
 * Runs every phase of one workload against one peer, in this process, and
 * writes the result as JSON. Started by run.ts, one process per peer and
 * run, so peers never share a heap, a page of JIT or a file handle.
 *
 *   deno run -A bench/compare/run_peer.ts --peer lmdb --workload small \
 *     --root /tmp/x --out /tmp/x.json [--scale 0.1]
 *
 * Timing: a phase's seconds are the sum of the time spent inside the
 * peer's calls; byte verification runs between calls, outside that time.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { loadPeer, PEERS } from "./peers/catalogue.ts";
import type { Entry, OpenOptions, Peer } from "./peers/types.ts";
import { diskUsage, type PhaseResult, PhaseTimer } from "./measure.ts";
import { makeWorkload, type Workload, type WorkloadName } from "./workload.ts";

/** What one peer process reports. */
export interface PeerRun {
  id: string;
  peer: string;
  eviction: string;
  workload: WorkloadName;
  objects: number;
  workloadBytes: number;
  phases: PhaseResult[];
  /** larder's git commit when the process started (set by the driver). */
  commit?: string;
  error?: string;
}

/** Survivors checked after invalidation, beyond the invalidated keys. */
const SURVIVOR_SAMPLE = 1000;

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length &&
    Buffer.from(a.buffer, a.byteOffset, a.length).equals(
      Buffer.from(b.buffer, b.byteOffset, b.length),
    );
}

class Checker {
  mismatches = 0;
  firstMismatch = "";
  constructor(readonly w: Workload, readonly metas: Uint8Array[]) {}

  /** Compares a hit with the workload's bytes; returns whether it hit. */
  check(index: number, e: Entry | undefined): boolean {
    if (!e) return false;
    const ok = same(e.meta, this.metas[index]!) &&
      same(e.body, this.w.body(index));
    e.release?.();
    if (!ok && this.mismatches++ === 0) {
      this.firstMismatch = this.w.objects[index]!.key;
    }
    return true;
  }
}

async function putAll(peer: Peer, w: Workload, metas: Uint8Array[]) {
  const timer = new PhaseTimer(w.objects.length);
  for (let i = 0; i < w.objects.length; i++) {
    const meta = metas[i]!;
    const body = w.body(i);
    const t0 = performance.now();
    await peer.put(w.objects[i]!.key, meta, body);
    timer.record(performance.now() - t0);
    timer.bytes += meta.length + body.length;
  }
  let flushMs = 0;
  if (peer.flush) {
    const t0 = performance.now();
    await peer.flush();
    flushMs = performance.now() - t0;
    timer.add(flushMs);
  }
  return { timer, flushMs };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      peer: { type: "string" },
      workload: { type: "string", default: "small" },
      scale: { type: "string", default: "1" },
      root: { type: "string" },
      out: { type: "string" },
    },
  });
  const entry = PEERS.find((p) => p.id === values.peer);
  if (!entry || !values.root || !values.out) {
    throw new TypeError(
      `Cannot run peer: need --peer (${
        PEERS.map((p) => p.id).join(", ")
      }), --root and --out`,
    );
  }
  const name = values.workload as WorkloadName;
  const w = makeWorkload(name, { scale: Number(values.scale) });
  const n = w.objects.length;
  const metas = w.objects.map((_, i) => w.meta(i));
  const factory = await loadPeer(entry);
  const run: PeerRun = {
    id: entry.id,
    peer: factory.name,
    eviction: factory.eviction,
    workload: name,
    objects: n,
    workloadBytes: w.totalBytes,
    phases: [],
  };
  const root = values.root;
  const log = (r: PhaseResult) => {
    run.phases.push(r);
    console.error(
      `[${entry.id} ${name}] ${r.phase}: ${r.opsPerSec.toFixed(0)} ops/s, ${
        r.mbPerSec.toFixed(1)
      } MB/s, ` +
        `p50 ${r.p50Us.toFixed(0)} µs, p99 ${r.p99Us.toFixed(0)} µs, ${
          JSON.stringify(r.extra)
        }`,
    );
  };
  const checker = new Checker(w, metas);
  const opts: OpenOptions = { objects: n, workloadBytes: w.totalBytes };
  const mainDir = join(root, "main");
  await Deno.mkdir(mainDir, { recursive: true });

  try {
    // Phase 1: put every object (meta + body).
    let peer = await factory.open(mainDir, opts);
    const put = await putAll(peer, w, metas);
    log(await put.timer.result("put", root, { flushMs: put.flushMs }));

    // Phase 2: get every object in random order; verify between calls.
    {
      const timer = new PhaseTimer(n);
      let misses = 0;
      for (const i of w.getOrder) {
        const t0 = performance.now();
        const e = await peer.get(w.objects[i]!.key);
        timer.record(performance.now() - t0);
        if (e) timer.bytes += e.meta.length + e.body.length;
        if (!checker.check(i, e)) misses++;
      }
      log(
        await timer.result("get", root, {
          misses,
          mismatches: checker.mismatches,
        }),
      );
    }

    // Phase 3: close, then time open + the first get.
    {
      await peer.close();
      const timer = new PhaseTimer(1);
      const first = w.getOrder[0]!;
      const t0 = performance.now();
      peer = await factory.open(mainDir, opts);
      const t1 = performance.now();
      const e = await peer.get(w.objects[first]!.key);
      const t2 = performance.now();
      timer.record(t2 - t0);
      const hit = checker.check(first, e);
      log(
        await timer.result("reopen", root, {
          openMs: t1 - t0,
          firstGetMs: t2 - t1,
          hit: String(hit),
        }),
      );
    }

    // Phase 4: invalidate a random 10%; then check they miss and others hit.
    {
      const timer = new PhaseTimer(w.invalidate.length);
      let absent = 0;
      for (const i of w.invalidate) {
        const t0 = performance.now();
        const existed = await peer.invalidate(w.objects[i]!.key);
        timer.record(performance.now() - t0);
        timer.bytes += w.objects[i]!.bodySize + w.objects[i]!.metaSize;
        if (!existed) absent++;
      }
      let stillThere = 0;
      for (const i of w.invalidate) {
        if (checker.check(i, await peer.get(w.objects[i]!.key))) stillThere++;
      }
      const gone = new Set(w.invalidate);
      let lost = 0;
      for (let k = 0, j = 0; k < SURVIVOR_SAMPLE && j < n; j++) {
        const i = w.getOrder[j]!;
        if (gone.has(i)) continue;
        k++;
        if (!checker.check(i, await peer.get(w.objects[i]!.key))) lost++;
      }
      log(
        await timer.result("invalidate", root, {
          absent,
          stillThere,
          lostSurvivors: lost,
        }),
      );
      await peer.close();
    }

    // Phase 5: a fresh store limited to half the workload; put everything.
    // The main store is deleted only after it, so this phase does not pay
    // for a mass deletion the put phase never saw, and its dirty pages are
    // written back first, so it does not pay for the main store's
    // write-back either: the put phase, too, starts after a sync (the
    // driver's, between processes; bench/compare/README.md).
    {
      await new Deno.Command("sync").output();
      const evictDir = join(root, "evict");
      await Deno.mkdir(evictDir, { recursive: true });
      // Disk for this phase is what it adds to the temp dir: some peers keep
      // their data outside the store dir (the Web Cache under DENO_DIR).
      const before = await diskUsage(root);
      const limit = Math.floor(w.totalBytes / 2);
      peer = await factory.open(evictDir, { ...opts, limit });
      const { timer, flushMs } = await putAll(peer, w, metas);
      // Residency: all of the newest tenth should survive an LRU-ish policy;
      // a 1-in-20 sample of everything shows how much of the budget is used.
      let newest = 0;
      const newestFrom = n - Math.floor(n / 10);
      for (let i = newestFrom; i < n; i++) {
        if (checker.check(i, await peer.get(w.objects[i]!.key))) newest++;
      }
      let sampled = 0;
      let resident = 0;
      for (let i = 0; i < n; i += 20, sampled++) {
        if (checker.check(i, await peer.get(w.objects[i]!.key))) resident++;
      }
      log(
        await timer.result("evict", root, {
          flushMs,
          limitMiB: limit / 2 ** 20,
          newestResidentPct: (100 * newest) / Math.max(1, n - newestFrom),
          residentPct: (100 * resident) / Math.max(1, sampled),
        }, before),
      );
      await peer.close();
      await (factory.drop?.(mainDir) ??
        Deno.remove(mainDir, { recursive: true }));
    }
    if (checker.mismatches) {
      run.error =
        `${checker.mismatches} objects returned wrong bytes, first ${checker.firstMismatch}`;
    }
  } catch (e) {
    run.error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    console.error(e);
  }
  await Deno.writeTextFile(values.out, JSON.stringify(run));
  if (run.error) Deno.exit(1);
}

await main();
