/**
 * Where a get's time goes, by body size, for one peer of the comparison:
 * puts a workload (`mixed` by default) into a fresh store of `--peer`
 * (larder by default), then gets every object in the workload's random
 * order several times, timing each get and reporting µs per get for bodies
 * up to 8 KiB (one larder data slot), 8–100 KiB and 100 KiB–1 MiB, next to
 * what checking the body's CRC-32 alone costs at that size. The comparison
 * times only the first pass; the later ones show what a settled heap and
 * page cache give.
 *
 * ```sh
 * deno run -A --config bench/compare/deno.json bench/compare/get_probe.ts --sync
 * deno run … bench/compare/get_probe.ts --peer lmdb --passes 5 --scale 0.5
 * ```
 *
 * `--sync` runs `sync` between the puts and the first pass, so the
 * kernel's writeback of the puts does not overlap the timed gets. Each
 * pass also reports the process's user and system CPU time and minor page
 * faults.
 *
 * @module
 */
import process from "node:process";
import { crc32 } from "node:zlib";
import { parseArgs } from "node:util";
import { loadPeer, PEERS } from "./peers/catalogue.ts";
import { makeWorkload, type WorkloadName } from "./workload.ts";

const KIB = 1024;
const CLASSES = ["≤ 8 KiB", "8–100 KiB", "100 KiB–1 MiB"] as const;

function sizeClass(bytes: number): number {
  return bytes <= 8 * KIB ? 0 : bytes <= 100 * KIB ? 1 : 2;
}

/** µs per get in each class, then over all gets. */
function perClass(sum: number[], count: number[]): string {
  const all = sum.reduce((a, b) => a + b) / count.reduce((a, b) => a + b);
  return sum.map((t, k) => (t / Math.max(1, count[k]!) * 1000).toFixed(1))
    .join(" / ") + `, all ${(all * 1000).toFixed(1)}`;
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    passes: { type: "string", default: "3" },
    scale: { type: "string", default: "1" },
    sync: { type: "boolean", default: false },
    peer: { type: "string", default: "larder" },
    workload: { type: "string", default: "mixed" },
  },
});
const entry = PEERS.find((p) => p.id === values.peer);
if (entry === undefined) {
  throw new TypeError(
    `Cannot probe: --peer must be one of ${PEERS.map((p) => p.id).join(", ")}`,
  );
}
const factory = await loadPeer(entry);
const w = makeWorkload(values.workload as WorkloadName, {
  scale: Number(values.scale),
});
const dir = await Deno.makeTempDir({ prefix: "larder-probe-" });
try {
  const store = await factory.open(dir, {
    objects: w.objects.length,
    workloadBytes: w.totalBytes,
  });
  const t0 = performance.now();
  for (let i = 0; i < w.objects.length; i++) {
    await store.put(w.objects[i]!.key, w.meta(i), w.body(i));
  }
  await store.flush?.();
  console.log(
    `put ${w.objects.length} objects: ${
      (w.objects.length / (performance.now() - t0) * 1000).toFixed(0)
    } ops/s`,
  );
  if (values.sync) new Deno.Command("sync").outputSync();

  const count = [0, 0, 0];
  for (const o of w.objects) count[sizeClass(o.bodySize)]!++;
  console.log(
    `objects by data size (${CLASSES.join(" / ")}): ${count.join(" / ")}`,
  );
  console.log(`µs per get (${CLASSES.join(" / ")}):`);
  for (let pass = 0; pass < Number(values.passes); pass++) {
    const spent = [0, 0, 0];
    const r0 = process.resourceUsage();
    const start = performance.now();
    for (const i of w.getOrder) {
      const o = w.objects[i]!;
      const a = performance.now();
      const hit = await store.get(o.key);
      spent[sizeClass(o.bodySize)]! += performance.now() - a;
      if (hit?.body.length !== o.bodySize) throw new Error(`miss: ${o.key}`);
      hit.release?.();
    }
    const ops = w.objects.length / (performance.now() - start) * 1000;
    const r1 = process.resourceUsage();
    const ms = (us: number) => (us / 1000).toFixed(0);
    console.log(
      `  pass ${pass}: ${ops.toFixed(0)} ops/s, ${perClass(spent, count)}; ` +
        `user ${ms(r1.userCPUTime - r0.userCPUTime)} ms, system ${
          ms(r1.systemCPUTime - r0.systemCPUTime)
        } ms, ${r1.minorPageFault - r0.minorPageFault} minor faults`,
    );
  }
  await store.close();

  const crcSpent = [0, 0, 0];
  for (let i = 0; i < w.objects.length; i++) {
    const body = w.body(i);
    const a = performance.now();
    crc32(body);
    crcSpent[sizeClass(body.length)]! += performance.now() - a;
  }
  console.log(`  CRC-32 of the data alone: ${perClass(crcSpent, count)}`);
} finally {
  await Deno.remove(dir, { recursive: true });
}
