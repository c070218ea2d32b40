/**
 * An A/B of `proxy.handler` cache hits in one process: the base
 * checkout's createProxy and this one's, each over its own store of 5,000
 * responses, timed in alternating rounds (CPU µs per hit, `new Request`
 * each, no Deno.serve), so both see the same machine load. Prints each
 * round, the medians and the head/base ratio per round.
 *
 * Usage: BASE=/path/to/base/checkout [SIZE=1024] [ROUNDS=8] [COND=1]
 *   [STALE=1] deno run -A bench/proxy/ab_handler.ts
 *
 * COND=1 sends `If-None-Match` (a 200 still: it does not match); STALE=1
 * stores responses fresh for 1 s, waits 2 s, and asks with
 * `Cache-Control: max-stale`: stale hits served as `stale`.
 *
 * @module
 */
import process from "node:process";
import { fixedOrigin } from "./_fixed_origin.ts";

const base = Deno.env.get("BASE");
if (base === undefined) throw new Error("Cannot run A/B: set BASE");
const A = (await import(`${base}/src/proxy/mod.ts`)).createProxy;
const B = (await import("../../src/proxy/mod.ts")).createProxy;
const n = 5000, size = Number(Deno.env.get("SIZE") ?? 1024), hits = 20000;
const rounds = Number(Deno.env.get("ROUNDS") ?? 8);
const body = new Uint8Array(size).fill(97);
const stale = Deno.env.get("STALE") === "1";
const origin = fixedOrigin(
  body,
  stale ? { "cache-control": "public, max-age=1" } : {},
);
const o = `http://127.0.0.1:${origin.addr.port}`;
const proxies = [];
for (const make of [A, B]) {
  const dir = await Deno.makeTempDir({ prefix: "larder-ab-" });
  const p = await make({ origin: o, dir });
  for (let i = 0; i < n; i++) {
    await (await p.handler(new Request(`http://p/o/${i}`))).arrayBuffer();
  }
  proxies.push({ p, dir });
}
if (stale) await new Promise((r) => setTimeout(r, 2000));
const cond = Deno.env.get("COND") === "1";
const asked: Record<string, string> = {};
if (cond) asked["if-none-match"] = '"x"';
if (stale) asked["cache-control"] = "max-stale";
for (const { p } of proxies) {
  const r = await p.handler(new Request("http://p/o/0", { headers: asked }));
  await r.arrayBuffer();
  const got = r.headers.get("x-larder-cache");
  if (got !== (stale ? "stale" : "hit")) {
    throw new Error(`Cannot run A/B: a hit came back ${got}`);
  }
}
async function run(p: { handler(r: Request): Promise<Response> }) {
  const c = process.cpuUsage();
  for (let k = 0; k < hits; k++) {
    const i = (k * 7919) % n;
    const r = await p.handler(
      new Request(
        `http://p/o/${i}`,
        { headers: asked },
      ),
    );
    await r.arrayBuffer();
  }
  const u = process.cpuUsage(c);
  return (u.user + u.system) / hits;
}
for (const x of proxies) await run(x.p);
const res: number[][] = [[], []];
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? [0, 1] : [1, 0];
  for (const j of order) res[j]!.push(await run(proxies[j]!.p));
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
for (const [j, name] of [[0, "base"], [1, "head"]] as const) {
  console.log(
    name,
    res[j]!.map((v) => v.toFixed(1)).join(" "),
    "median",
    med(res[j]!).toFixed(2),
  );
}
const ratios = res[1]!.map((v, i) => v / res[0]![i]!);
console.log(
  "head/base per round",
  ratios.map((v) => v.toFixed(3)).join(" "),
  "median",
  med(ratios).toFixed(3),
);
for (const x of proxies) {
  await x.p.close();
  await Deno.remove(x.dir, { recursive: true });
}
await origin.shutdown();
