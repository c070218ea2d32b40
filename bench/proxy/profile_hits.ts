/**
 * Where a cache hit's time goes in larder's proxy under load: starts an
 * origin, the proxy (`scripts/serve.ts --quiet` on core 0, with
 * `--cpu-prof`), fills N URLs of SIZE bytes, runs wrk (core 1, 64
 * connections) over them for S seconds, stops the proxy and prints the
 * server's CPU µs per hit and the profile's top functions by self time
 * and by total time (the fill is in the profile too, but short next to
 * the hits). Pass `--log` to keep the proxy's log line per request (to
 * /dev/null).
 *
 * Usage: deno run -A bench/proxy/profile_hits.ts [--size 1024] [--urls 2000]
 *   [--duration 10] [--dir DIR] [--no-prof] [--log] [--repo CHECKOUT]
 *
 * @module
 */
import { join } from "node:path";
import { flag } from "../_flags.ts";
import { cpuUs, sh, spawnUntil } from "./_spawn.ts";
import { fixedOrigin } from "./_fixed_origin.ts";

const HERE = new URL(".", import.meta.url).pathname;
const argv = Deno.args;
// Another checkout's proxy, for an A/B against this one.
const REPO = flag("repo", new URL("../../", import.meta.url).pathname);
const SIZE = Number(flag("size", "1024"));
const URLS = Number(flag("urls", "2000"));
const DURATION = Number(flag("duration", "10"));
const PROF = !argv.includes("--no-prof");
const LOG = argv.includes("--log");
const work = await Deno.makeTempDir({ prefix: "larder-profile-hits-" });
const profDir = flag("dir", join(work, "prof"));

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
    ...(PROF ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : []),
    join(REPO, "scripts/serve.ts"),
    "--origin",
    `http://127.0.0.1:${origin.addr.port}`,
    "--port",
    "0",
    "--dir",
    join(work, "store"),
    "--limit",
    "4GiB",
    ...(LOG ? [] : ["--quiet"]),
  ],
  /on (http:\/\/127\.0\.0\.1:\d+)\//,
);
const url = banner[1]!;

const client = Deno.createHttpClient({});
let next = 0;
await Promise.all(Array.from({ length: 16 }, async () => {
  while (next < URLS) {
    const i = next++;
    await (await fetch(`${url}/o/${SIZE}/${i}`, { client })).arrayBuffer();
  }
}));
const check = await fetch(`${url}/o/${SIZE}/1`, { client });
await check.arrayBuffer();
client.close();
if (check.headers.get("x-larder-cache") !== "hit") throw new Error("no hit");

const wrk = (seconds: number) =>
  sh("taskset", [
    "-c",
    "1",
    "wrk",
    "-t1",
    "-c64",
    `-d${seconds}s`,
    "-s",
    join(HERE, "urls.lua"),
    url,
    "--",
    String(SIZE),
    String(URLS),
    "1",
  ]);
await wrk(2);
console.log(`load: ${await sh("uptime", [])}`);
const c0 = await cpuUs(proxy.pid);
const out = await wrk(DURATION);
const cpu = await cpuUs(proxy.pid) - c0;
const r = JSON.parse(out.split("\n").findLast((l) => l.startsWith("{"))!);
console.log(
  `${SIZE} B hits: ${Math.round(r.requests / (r.durationUs / 1e6))} req/s, ` +
    `${(cpu / r.requests).toFixed(1)} µs CPU/hit, p50 ${
      (r.p50Us / 1000).toFixed(2)
    } ms, errors ${r.connect + r.read + r.write + r.status + r.timeout}`,
);
// The child pid is taskset's exec of deno: the same process.
proxy.kill("SIGTERM");
await proxy.status;
await origin.shutdown();

if (PROF) {
  const file = [...Deno.readDirSync(profDir)].find((e) =>
    e.name.endsWith(".cpuprofile")
  );
  if (file === undefined) throw new Error("no profile written");
  summarize(JSON.parse(Deno.readTextFileSync(join(profDir, file.name))));
  console.log(`profile: ${join(profDir, file.name)}`);
}
if (!argv.includes("--dir")) await Deno.remove(work, { recursive: true });

interface ProfileNode {
  id: number;
  callFrame: {
    functionName: string;
    url: string;
    lineNumber: number;
  };
  children?: number[];
}

/** Top functions by self and by total time, from a V8 .cpuprofile. */
function summarize(p: {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}): void {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const name = (n: ProfileNode) => {
    const f = n.callFrame;
    const file = f.url.replace(/^.*\/(src|scripts|ext|bench)\//, "$1/");
    return `${f.functionName || "(anonymous)"} ${file}:${f.lineNumber + 1}`;
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let all = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    all += dt;
    let n = byId.get(p.samples[i]!)!;
    self.set(name(n), (self.get(name(n)) ?? 0) + dt);
    const seen = new Set<string>();
    for (;;) {
      const k = name(n);
      if (!seen.has(k)) total.set(k, (total.get(k) ?? 0) + dt), seen.add(k);
      const up = parent.get(n.id);
      if (up === undefined) break;
      n = byId.get(up)!;
    }
  }
  const top = (m: Map<string, number>, count: number) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, count).map(([k, v]) =>
      `${(100 * v / all).toFixed(1).padStart(5)}%  ${k}`
    ).join("\n");
  console.log(`\nprofile: ${(all / 1e6).toFixed(1)} s sampled\n`);
  console.log(`self time:\n${top(self, 40)}\n`);
  console.log(`total time:\n${top(total, 60)}\n`);
}
