/**
 * A miss's CPU cost in larder's proxy: starts an origin and the proxy
 * (`scripts/serve.ts --quiet` of a checkout, on core 0), then fetches
 * N fresh URLs of SIZE bytes (16 at a time; every one a miss the proxy
 * fetches, tees to the client and stores) and prints the proxy's CPU µs
 * per miss. Run it for two checkouts in turn for an A/B.
 *
 * Usage: deno run -A bench/proxy/miss_cpu.ts [--size 65536] [--urls 2000]
 *   [--repo CHECKOUT]
 *
 * @module
 */
import { join } from "node:path";
import { flag } from "../_flags.ts";
import { cpuUs, sh, spawnUntil } from "./_spawn.ts";
import { fixedOrigin } from "./_fixed_origin.ts";

const REPO = flag("repo", new URL("../../", import.meta.url).pathname);
const SIZE = Number(flag("size", "65536"));
const URLS = Number(flag("urls", "2000"));
const work = await Deno.makeTempDir({ prefix: "larder-miss-cpu-" });

await sh("taskset", ["-a", "-c", "-p", "1", String(Deno.pid)]);

const body = new Uint8Array(SIZE).fill(97);
const origin = fixedOrigin(body);
const { process: proxy, banner } = await spawnUntil(
  "taskset",
  [
    "-c",
    "0",
    Deno.execPath(),
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-net=127.0.0.1",
    join(REPO, "scripts/serve.ts"),
    "--origin",
    `http://127.0.0.1:${origin.addr.port}`,
    "--port",
    "0",
    "--dir",
    join(work, "store"),
    "--limit",
    "4GiB",
    "--quiet",
  ],
  /on (http:\/\/127\.0\.0\.1:\d+)\//,
);
const url = banner[1]!;

const client = Deno.createHttpClient({});
const run = async (prefix: string, count: number) => {
  let next = 0;
  let misses = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < count) {
      const i = next++;
      const res = await fetch(`${url}/${prefix}/${SIZE}/${i}`, { client });
      await res.arrayBuffer();
      if (res.headers.get("x-larder-cache") === "miss") misses++;
    }
  }));
  return misses;
};
await run("warm", 200);
const load = await sh("uptime", []);
const c0 = await cpuUs(proxy.pid);
const t0 = performance.now();
const misses = await run("o", URLS);
const cpu = await cpuUs(proxy.pid) - c0;
const s = (performance.now() - t0) / 1000;
client.close();
console.log(
  `${SIZE} B misses: ${misses}/${URLS}, ${(URLS / s).toFixed(0)} req/s, ` +
    `${(cpu / URLS).toFixed(1)} µs CPU/miss; load: ${load.trim()}`,
);
proxy.kill("SIGTERM");
await proxy.status;
await origin.shutdown();
await Deno.remove(work, { recursive: true });
