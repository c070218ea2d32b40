/**
 * Where a cache hit's time goes in larder's proxy, without the network:
 * fills a proxy (createProxy over a temp dir) with N responses from an
 * in-process origin, then times `proxy.handler` for hits read to the end,
 * (wall time and the process's CPU time, which other load on the machine
 * disturbs less), next to the store read alone (`openEntry` + read, the same keys) and a
 * constant Response. Run with `--cpu-prof` for a profile of the hit loop
 * (the fill is short).
 *
 * Usage: deno run -A bench/proxy/hit_path.ts [SIZE] [N] [HITS]
 *
 * @module
 */
import process from "node:process";
import { createProxy } from "../../src/proxy/mod.ts";
import { BackingStore } from "../../src/store.ts";
import { fixedOrigin } from "./_fixed_origin.ts";

const size = Number(Deno.args[0] ?? 1024);
const n = Number(Deno.args[1] ?? 10_000);
const hits = Number(Deno.args[2] ?? 100_000);
const body = new Uint8Array(size).fill(97);
const origin = fixedOrigin(body);
const dir = await Deno.makeTempDir({ prefix: "larder-hit-path-" });
const proxy = await createProxy({
  origin: `http://127.0.0.1:${origin.addr.port}`,
  dir,
  storeOptions: { limit: 2 ** 32 },
});
const url = (i: number) => `http://proxy/o/${size}/${i}`;
for (let i = 0; i < n; i++) {
  await (await proxy.handler(new Request(url(i)))).arrayBuffer();
}

async function time(name: string, fn: (i: number) => Promise<unknown>) {
  for (let i = 0; i < 2000; i++) await fn(i % n); // warm-up
  const t = performance.now();
  const c = process.cpuUsage();
  for (let k = 0; k < hits; k++) await fn((k * 7919) % n);
  const cpu = process.cpuUsage(c);
  const us = (performance.now() - t) * 1000 / hits;
  const cpuUs = (cpu.user + cpu.system) / hits;
  console.log(
    `${name.padEnd(44)} ${us.toFixed(1).padStart(7)} µs wall ${
      cpuUs.toFixed(1).padStart(7)
    } µs CPU`,
  );
}

await time("constant Response, read", async () => {
  await new Response(body).arrayBuffer();
});
await time("new Request + new URL", (i) => {
  const r = new Request(url(i));
  return Promise.resolve(new URL(r.url));
});
await time("proxy.handler hit, body read", async (i) => {
  const res = await proxy.handler(new Request(url(i)));
  if (res.headers.get("x-larder-cache") !== "hit") throw new Error("not hit");
  await res.arrayBuffer();
});
await proxy.close();

const store = await BackingStore.open(dir);
const origins = `http://127.0.0.1:${origin.addr.port}`;
await time("store openEntry + read (the same entries)", async (i) => {
  const r = await store.openEntry(`~px/r/${origins}/o/${size}/${i}`);
  if (r === undefined) throw new Error("miss");
  await r.read(0, r.size);
  r.release();
});
await time("store fetch meta (the Vary-marker lookup)", async (i) => {
  const r = await store.fetch(`~px/v/${origins}/o/${size}/${i}`, {
    meta: true,
  });
  r?.release();
});
await store.close();
await origin.shutdown();
await Deno.remove(dir, { recursive: true });
