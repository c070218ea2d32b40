/**
 * An interleaved wrk A/B of cache hits through Deno.serve: a bare
 * Deno.serve, the BASE checkout's proxy and HEAD's (and, with a 7th
 * argument, the builtin `caches` proxy), all up at once on core 0, each
 * filled with URLS objects of SIZE bytes and checked for exact bytes on
 * sampled hits; then ROUNDS rounds of wrk (core 1, 64 connections,
 * urls.lua) of SECONDS each, the order reversed every other round. Prints
 * each server's CPU µs a hit (from /proc) and req/s per round, the
 * medians and head/base per round.
 *
 * Usage: deno run -A bench/proxy/ab_wrk.ts BASE HEAD SIZE URLS ROUNDS SECONDS [builtin]
 *
 * @module
 */

import { join } from "node:path";
import { cpuUs, freePort, sh, spawnUntil } from "./_spawn.ts";
const [BASE, HEAD, SIZE_, URLS_, ROUNDS_, SEC_, BUILTIN] = Deno.args;
if (BASE === undefined || HEAD === undefined) {
  throw new TypeError("Cannot run A/B: give BASE and HEAD checkouts");
}
const headDir: string = HEAD;
const SIZE = Number(SIZE_),
  URLS = Number(URLS_),
  ROUNDS = Number(ROUNDS_),
  SEC = Number(SEC_);
await sh("taskset", ["-a", "-c", "-p", "1", String(Deno.pid)]);
const work = await Deno.makeTempDir({ prefix: "ab-" });
const bodyOf = (i: number) => {
  const b = new Uint8Array(SIZE);
  for (let j = 0; j < SIZE; j++) b[j] = (i * 31 + j) & 255;
  return b;
};
const origin = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  (req) => {
    const i = Number(new URL(req.url).pathname.split("/")[3]);
    return new Response(bodyOf(i), {
      headers: {
        "content-type": "application/octet-stream",
        "cache-control": "public, max-age=86400",
      },
    });
  },
);
const ORIGIN = `http://127.0.0.1:${origin.addr.port}`;
type S = { name: string; url: string; pid: number; stop: () => Promise<void> };
async function proxy(name: string, repo: string): Promise<S> {
  const c = await spawnUntil("taskset", [
    "-c",
    "0",
    Deno.execPath(),
    "run",
    "-A",
    join(repo, "scripts/serve.ts"),
    "--origin",
    ORIGIN,
    "--port",
    "0",
    "--dir",
    join(work, name),
    "--limit",
    "4GiB",
    "--quiet",
  ], /on (http:\/\/127\.0\.0\.1:\d+)\//);
  return {
    name,
    url: c.banner[1]!,
    pid: c.process.pid,
    stop: async () => {
      c.process.kill("SIGTERM");
      await c.process.status;
    },
  };
}
async function script(name: string, file: string, extra: string[]): Promise<S> {
  const port = freePort();
  const c = await spawnUntil(
    "taskset",
    [
      "-c",
      "0",
      Deno.execPath(),
      "run",
      "--allow-net=127.0.0.1",
      join(headDir, "bench/proxy", file),
      ...extra,
      String(port),
    ],
    /on \d+/,
    { env: { DENO_DIR: join(work, "dd") } },
  );
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    pid: c.process.pid,
    stop: async () => {
      c.process.kill("SIGTERM");
      await c.process.status;
    },
  };
}
const servers: S[] = [
  await script("bare", "bare_serve.ts", []),
  await proxy("base", BASE),
  await proxy("head", HEAD),
];
if (BUILTIN) {
  servers.push(await script("builtin", "builtin_caches_proxy.ts", [ORIGIN]));
}
const client = Deno.createHttpClient({});
for (const s of servers) {
  if (s.name === "bare") continue;
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < URLS) {
      const i = next++;
      await (await fetch(`${s.url}/o/${SIZE}/${i}`, { client })).arrayBuffer();
    }
  }));
  for (const i of [1, 7, URLS - 1]) {
    const r = await fetch(`${s.url}/o/${SIZE}/${i}`, { client });
    const b = new Uint8Array(await r.arrayBuffer());
    const want = bodyOf(i);
    const st = r.headers.get("x-larder-cache") ?? r.headers.get("x-cache");
    if (
      st !== "hit" || b.length !== SIZE || !b.every((v, j) => v === want[j])
    ) throw new Error(`${s.name}: bad hit ${st}`);
  }
}
client.close();
const wrk = (url: string, sec: number) =>
  sh("taskset", [
    "-c",
    "1",
    "wrk",
    "-t1",
    "-c64",
    `-d${sec}s`,
    "-s",
    join(headDir, "bench/proxy/urls.lua"),
    url,
    "--",
    String(SIZE),
    String(URLS),
    "1",
  ]);
for (const s of servers) await wrk(s.url, 2);
const res: Record<string, { cpu: number[]; rps: number[] }> = {};
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 === 0 ? servers : [...servers].reverse();
  const line: string[] = [];
  for (const s of order) {
    const c0 = await cpuUs(s.pid);
    const out = await wrk(s.url, SEC);
    const cpu = await cpuUs(s.pid) - c0;
    const j = JSON.parse(out.split("\n").findLast((l) => l.startsWith("{"))!);
    const errs = j.connect + j.read + j.write + j.status + j.timeout;
    const per = cpu / j.requests, rps = j.requests / (j.durationUs / 1e6);
    (res[s.name] ??= { cpu: [], rps: [] }).cpu.push(per);
    res[s.name]!.rps.push(rps);
    line.push(
      `${s.name} ${per.toFixed(1)}µs ${Math.round(rps)}/s${
        errs ? ` ERR${errs}` : ""
      }`,
    );
  }
  console.log(
    `round ${r + 1} [${
      (await sh("cat", ["/proc/loadavg"])).split(" ").slice(0, 3).join(" ")
    }]: ${line.join(" | ")}`,
  );
}
const med = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2
    ? s[s.length >> 1]!
    : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
for (const [n, v] of Object.entries(res)) {
  console.log(
    `${n}: CPU µs/hit median ${med(v.cpu).toFixed(1)} min ${
      Math.min(...v.cpu).toFixed(1)
    }; req/s median ${Math.round(med(v.rps))}`,
  );
}
if (res.base && res.head) {
  const ratios = res.head.cpu.map((h, i) => h / res.base!.cpu[i]!);
  console.log(
    `head/base CPU per round: ${
      ratios.map((x) => x.toFixed(3)).join(" ")
    }; median ${med(ratios).toFixed(3)}`,
  );
}
for (const s of servers) await s.stop();
await origin.shutdown();
await Deno.remove(work, { recursive: true });
