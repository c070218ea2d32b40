/**
 * Per-get CPU of fetchEntry, safe vs nocrc in ONE process (verify-h-verify-1206):
 * both larder copies are imported, each fills its own store with the same
 * bench/compare workload, then get passes alternate A, B, B, A, ... timed with
 * process.cpuUsage (user+system), after gc().
 * usage: deno run -A --v8-flags=--expose-gc cpu_ab.ts <small|mixed> <scale> <pairs> <dir>
 */
import process from "node:process";
import { makeWorkload, type WorkloadName } from "/work/wt/h-verify-1206/bench/compare/workload.ts";

type Mod = typeof import("/work/wt/h-verify-1206/mod.ts");
const mods: Record<string, Mod> = {
  safe: await import("/work/wt/h-verify-1206/mod.ts"),
  nocrc: await import("/tmp/h-verify-1206-nocrc/mod.ts") as Mod,
};
const [name, scaleS, pairsS, dir] = Deno.args;
const w = makeWorkload(name as WorkloadName, { scale: Number(scaleS) });
const n = w.objects.length;
const opts = { limit: 2 * w.totalBytes + 2 ** 30, entryBits: 17 };
const stores: Record<string, Awaited<ReturnType<Mod["BackingStore"]["open"]>>> = {};
for (const [v, m] of Object.entries(mods)) {
  const s = await m.BackingStore.open(`${dir}/${v}`, opts);
  for (let i = 0; i < n; i++) await s.storeEntry(w.objects[i]!.key, w.body(i), w.meta(i));
  await s.flush();
  await s.close();
  stores[v] = await mods[v]!.BackingStore.open(`${dir}/${v}`, opts);
}
async function pass(v: string): Promise<{ cpu: number; user: number }> {
  const store = stores[v]!;
  (globalThis as { gc?: () => void }).gc?.();
  const c0 = process.cpuUsage();
  for (let j = 0; j < n; j++) {
    const i = w.getOrder[j]!;
    const hit = await store.fetchEntry(w.objects[i]!.key);
    if (hit === undefined || hit.data?.length !== w.objects[i]!.bodySize) throw new Error(`bad get ${i}`);
    hit.release();
  }
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / n, user: c.user / n };
}
await pass("safe"); await pass("nocrc"); // warm-up
const out: Record<string, { cpu: number; user: number }[]> = { safe: [], nocrc: [] };
for (let p = 0; p < Number(pairsS); p++) {
  const order = p % 2 === 0 ? ["safe", "nocrc"] : ["nocrc", "safe"];
  for (const v of order) out[v]!.push(await pass(v));
}
for (const s of Object.values(stores)) await s.close();
console.log(JSON.stringify({ name, n, totalBytes: w.totalBytes, out }));
