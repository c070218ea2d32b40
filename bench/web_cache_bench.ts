/**
 * The Web Cache API on larder against Deno's built-in `caches` (SQLite and
 * body files under DENO_DIR), on the same requests: put, match of a hit
 * and of a miss, keys. 1 KiB bodies, 500 entries per cache; and a 16 MiB
 * body put and matched (streamed both ways by larder).
 *
 *   deno bench --allow-read --allow-write --allow-env bench/web_cache_bench.ts
 */
import { openCacheStorage } from "../src/web_cache/mod.ts";

const ENTRIES = 500;
const BODY = new Uint8Array(1024).fill(97);
const url = (i: number) => `https://bench.example/item/${i}?v=1`;

const dir = await Deno.makeTempDir({ prefix: "larder-web-cache-bench-" });
const storage = await openCacheStorage(dir, { limit: 256 * 2 ** 20 });
const larder = await storage.open("bench");
const builtinName = `larder-bench-${crypto.randomUUID()}`;
const builtin = await caches.open(builtinName);

for (let i = 0; i < ENTRIES; i++) {
  const headers = { "content-type": "application/octet-stream" };
  await larder.put(url(i), new Response(BODY, { headers }));
  await builtin.put(url(i), new Response(BODY, { headers }));
}

globalThis.addEventListener("unload", () => {
  // Deno runs unload handlers synchronously: best effort cleanup.
  Deno.removeSync(dir, { recursive: true });
});

let n = 0;
Deno.bench("put 1 KiB, larder", { group: "put", baseline: true }, async () => {
  await larder.put(url(n++ % ENTRIES), new Response(BODY));
});
Deno.bench("put 1 KiB, built-in caches", { group: "put" }, async () => {
  await builtin.put(url(n++ % ENTRIES), new Response(BODY));
});

let h = 0;
Deno.bench(
  "match hit + body, larder",
  { group: "match hit", baseline: true },
  async () => {
    const r = await larder.match(url(h++ % ENTRIES));
    await r!.arrayBuffer();
  },
);
Deno.bench(
  "match hit + body, built-in caches",
  { group: "match hit" },
  async () => {
    const r = await builtin.match(url(h++ % ENTRIES));
    await r!.arrayBuffer();
  },
);

let m = 0;
Deno.bench(
  "match miss, larder",
  { group: "match miss", baseline: true },
  async () => {
    await larder.match(`https://bench.example/missing/${m++}`);
  },
);
Deno.bench("match miss, built-in caches", { group: "match miss" }, async () => {
  await builtin.match(`https://bench.example/missing/${m++}`);
});

Deno.bench(
  `keys() of ${ENTRIES}, larder`,
  { group: "keys", baseline: true },
  async () => {
    await larder.keys();
  },
);
Deno.bench(
  `keys() of ${ENTRIES}, built-in caches`,
  { group: "keys" },
  async () => {
    await builtin.keys();
  },
);

const LARGE = new Uint8Array(16 * 2 ** 20).fill(98);
Deno.bench(
  "put + match 16 MiB, larder",
  { group: "16 MiB", baseline: true },
  async () => {
    await larder.put(url(-1), new Response(LARGE));
    await (await larder.match(url(-1)))!.arrayBuffer();
  },
);
Deno.bench(
  "put + match 16 MiB, built-in caches",
  { group: "16 MiB" },
  async () => {
    await builtin.put(url(-1), new Response(LARGE));
    await (await builtin.match(url(-1)))!.arrayBuffer();
  },
);

Deno.bench(
  "teardown (not a measurement)",
  { group: "zz", n: 1, warmup: 0 },
  async () => {
    await caches.delete(builtinName);
    await storage.close();
  },
);
