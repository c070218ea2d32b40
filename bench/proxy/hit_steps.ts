/**
 * A proxy cache hit's steps one by one, in CPU µs each: fills a store
 * through createProxy (5,000 responses of 1 KiB), then times the target
 * URL, the store lookup, the record decode, the policy's decision, the
 * served headers, the Response, and the whole `proxy.handler`, each over
 * the same entries. See bench/proxy/README.md.
 *
 * Usage: [SIZE=32768] deno run -A bench/proxy/hit_steps.ts
 *
 * @module
 */
import process from "node:process";
import { createProxy } from "../../src/proxy/mod.ts";
import { backingProxyStore, ProxyCache } from "../../src/proxy/proxy_store.ts";
import { BackingStore } from "../../src/store.ts";
import { decodeResponseRecord } from "../../src/http/record.ts";
import {
  clientNotModified,
  decide,
  decidePrepared,
  prepareHead,
  servedHeaders,
} from "../../src/http/policy.ts";
import { fixedOrigin } from "./_fixed_origin.ts";

const n = 5000, size = Number(Deno.env.get("SIZE") ?? 1024), hits = 30000;
const body = new Uint8Array(size).fill(97);
const origin = fixedOrigin(body);
const dir = await Deno.makeTempDir({ prefix: "larder-hit-steps-" });
const o = `http://127.0.0.1:${origin.addr.port}`;
{
  const proxy = await createProxy({ origin: o, dir });
  for (let i = 0; i < n; i++) {
    await (await proxy.handler(new Request(`http://p/o/${i}`))).arrayBuffer();
  }
  await proxy.close();
}
const cache = new ProxyCache(backingProxyStore(await BackingStore.open(dir)));
const reqs = Array.from(
  { length: n },
  (_, i) => new Request(`http://p/o/${i}`),
);
async function time(name: string, fn: (i: number) => unknown) {
  for (let i = 0; i < 2000; i++) await fn(i % n);
  const c = process.cpuUsage();
  for (let k = 0; k < hits; k++) await fn((k * 7919) % n);
  const cpu = process.cpuUsage(c);
  console.log(
    `${name.padEnd(40)} ${((cpu.user + cpu.system) / hits).toFixed(1)} µs CPU`,
  );
}
const found = await cache.lookup(`${o}/o/1`, reqs[1]!.headers);
const rec = found!.record;
const head = () => ({
  method: rec.method,
  url: rec.url,
  requestHeaders: rec.requestHeaders,
  status: rec.status,
  headers: new Headers(rec.responseHeaders),
  requestTime: rec.requestTime,
  responseTime: rec.responseTime,
});
await time("target URL (two parses, as targetOf)", (i) => {
  const u = new URL(reqs[i]!.url);
  return new URL(o + u.pathname + u.search);
});
await time("cache.lookup (decoded records kept)", async (i) => {
  const f = await cache.lookup(`${o}/o/${i}`, reqs[i]!.headers);
  f!.entry.release();
});
await time(
  "decodeResponseRecord",
  () => decodeResponseRecord(found!.entry.meta),
);
await time("new Headers(pairs)", () => new Headers(rec.responseHeaders));
await time(
  "head + decide",
  (i) =>
    decide(
      { method: "GET", url: rec.url, headers: reqs[i]!.headers },
      head(),
      Date.now(),
    ),
);
await time("prepareHead (once per stored record)", () => prepareHead(head()));
await time(
  "decidePrepared (the hit path's decision)",
  (i) =>
    decidePrepared(
      { method: "GET", url: rec.url, headers: reqs[i]!.headers },
      found!.prepared,
      Date.now(),
    ),
);
await time("servedHeaders", () => servedHeaders(head(), Date.now()));
await time(
  "clientNotModified",
  (i) =>
    clientNotModified({
      method: "GET",
      url: rec.url,
      headers: reqs[i]!.headers,
    }, head().headers),
);
const h = servedHeaders(head(), Date.now());
await time(
  "new Response(bytes, {headers})",
  () => new Response(body, { status: 200, statusText: "", headers: h }),
);
await time("new Response + arrayBuffer", async () => {
  await new Response(body, { status: 200, headers: h }).arrayBuffer();
});
await time("new Request(url)", (i) => new Request(`http://p/o/${i}`));
console.log(
  rec.responseHeaders.length,
  "stored header fields:",
  JSON.stringify(rec.responseHeaders),
);
await cache.close();
{
  const proxy = await createProxy({ origin: o, dir });
  await time("proxy.handler (prebuilt Request)", async (i) => {
    const r = await proxy.handler(reqs[i]!);
    await r.arrayBuffer();
  });
  await time("proxy.handler (new Request)", async (i) => {
    const r = await proxy.handler(new Request(`http://p/o/${i}`));
    await r.arrayBuffer();
  });
  await proxy.close();
}
await Deno.remove(dir, { recursive: true });
await origin.shutdown();
