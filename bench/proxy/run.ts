/**
 * `deno task bench:proxy`: cache hits, fills and collapsed misses through
 * larder's proxy (scripts/serve.ts), nginx 1.22 proxy_cache (one worker)
 * and a Deno.serve proxy over Deno's built-in `caches`, with a bare
 * Deno.serve as the ceiling, in one run. See bench/proxy/README.md.
 *
 * Flags: --duration S (each timed wrk pass, default 10), --peers
 * larder,nginx,builtin,bare (default all), --mib-urls N (1 MiB objects,
 * default 1,000), --urls N (1 and 32 KiB objects, default 10,000; fewer
 * only to try the harness), --cpu-prof DIR (a V8 CPU profile of larder's
 * proxy into DIR), --out FILE (default bench/results/proxy-latest.md).
 *
 * @module
 */
import { join } from "node:path";
import { flag } from "../_flags.ts";
import { cpuUs, freePort, sh, spawnUntil } from "./_spawn.ts";

const HERE = new URL(".", import.meta.url).pathname;
const REPO = new URL("../../", import.meta.url).pathname;
const DURATION = Number(flag("duration", "10"));
const PEERS = flag("peers", "larder,nginx,builtin,bare").split(",");
const MIB_URLS = Number(flag("mib-urls", "1000"));
const URLS = Number(flag("urls", "10000"));
const CPU_PROF = flag("cpu-prof", "");
const OUT = flag("out", join(REPO, "bench/results/proxy-latest.md"));
const CONNECTIONS = 64;
const FILL_CONCURRENCY = 32;
const SIZES = [
  { name: "1 KiB", size: 1024, count: URLS },
  { name: "32 KiB", size: 32 * 1024, count: URLS },
  { name: "1 MiB", size: 2 ** 20, count: MIB_URLS },
];

// The client side (this process: origin and fill client; wrk) on core 1,
// the server under test on core 0.
await sh("taskset", ["-a", "-c", "-p", "1", String(Deno.pid)]);

// ---- the origin: deterministic bodies by URL, counting requests ----
const bases = new Map<number, Uint8Array<ArrayBuffer>>();
function originBody(size: number, i: number): Uint8Array<ArrayBuffer> {
  let base = bases.get(size);
  if (base === undefined) {
    base = new Uint8Array(size);
    for (let j = 0; j < size; j++) base[j] = (j * 31 + 7) & 0xff;
    bases.set(size, base);
  }
  const b = base.slice();
  new TextEncoder().encodeInto(`${size}/${i}/`, b);
  return b;
}
let originRequests = 0;
let slowRequests = 0;
const origin = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  async (req) => {
    originRequests++;
    const [, kind, a, b] = new URL(req.url).pathname.split("/");
    const headers = {
      "content-type": "application/octet-stream",
      "cache-control": "public, max-age=86400",
    };
    if (kind === "slow") {
      slowRequests++;
      await new Promise((r) => setTimeout(r, 500));
      return new Response(originBody(1024, 0), { headers });
    }
    if (kind !== "o") return new Response("not found", { status: 404 });
    return new Response(originBody(Number(a), Number(b)), { headers });
  },
);
const ORIGIN = `http://127.0.0.1:${origin.addr.port}`;

// ---- the peers ----
interface Peer {
  name: string;
  url: string;
  /** The response field saying hit or miss, and its values. */
  field: string;
  hit: string;
  miss: string;
  cacheOnly: boolean;
  /** The server's process (nginx: its master, the worker its child). */
  pid: number;
  stop(): Promise<void>;
}

const deno = Deno.execPath();

async function startLarder(dir: string): Promise<Peer> {
  const { process: child, banner: match } = await spawnUntil("taskset", [
    "-c",
    "0",
    deno,
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-net=127.0.0.1",
    ...(CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${CPU_PROF}`] : []),
    join(REPO, "scripts/serve.ts"),
    "--origin",
    ORIGIN,
    "--port",
    "0",
    "--dir",
    join(dir, "store"),
    "--limit",
    "8GiB",
    "--quiet",
  ], /on (http:\/\/127\.0\.0\.1:\d+)\//);
  return {
    name: "larder",
    url: match[1]!,
    field: "x-larder-cache",
    hit: "hit",
    miss: "miss",
    cacheOnly: false,
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

async function startNginx(dir: string): Promise<Peer> {
  const port = freePort();
  await Deno.chmod(dir, 0o777); // the worker runs as nobody under root
  const conf = (await Deno.readTextFile(join(HERE, "nginx.conf")))
    .replaceAll("{{PREFIX}}", dir)
    .replaceAll("{{PORT}}", String(port))
    .replaceAll("{{ORIGIN_PORT}}", String(origin.addr.port));
  await Deno.writeTextFile(join(dir, "nginx.conf"), conf);
  const child = new Deno.Command("taskset", {
    args: ["-c", "0", "nginx", "-p", dir, "-c", join(dir, "nginx.conf")],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0;; i++) {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      break;
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    name: "nginx",
    url,
    field: "x-cache-status",
    hit: "HIT",
    miss: "MISS",
    cacheOnly: false,
    pid: child.pid,
    async stop() {
      const pid = Number(await Deno.readTextFile(join(dir, "nginx.pid")));
      Deno.kill(pid, "SIGQUIT"); // graceful stop of master and worker
      await child.status;
    },
  };
}

async function startDenoScript(
  name: "builtin" | "bare",
  dir: string,
): Promise<Peer> {
  const port = freePort();
  const script = name === "builtin"
    ? "builtin_caches_proxy.ts"
    : "bare_serve.ts";
  const { process: child } = await spawnUntil(
    "taskset",
    [
      "-c",
      "0",
      deno,
      "run",
      "--allow-net=127.0.0.1",
      join(HERE, script),
      ...(name === "builtin" ? [ORIGIN] : []),
      String(port),
    ],
    /on \d+/,
    // The built-in caches live under DENO_DIR: a fresh one per run.
    { env: { DENO_DIR: join(dir, "deno_dir") } },
  );
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    field: "x-cache",
    hit: "hit",
    miss: "miss",
    cacheOnly: name === "bare",
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

// ---- measurement ----
interface Pass {
  requests: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** The server's CPU time per request, µs (hit passes). */
  cpuPerRequestUs?: number;
  note: string;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, j) => v === b[j]);
}

/** Each of `count` URLs once, FILL_CONCURRENCY at a time; all must miss. */
async function fill(peer: Peer, size: number, count: number): Promise<Pass> {
  const client = Deno.createHttpClient({});
  const before = originRequests;
  const lat: number[] = [];
  let errors = 0, notMiss = 0, next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: FILL_CONCURRENCY }, async () => {
      while (next < count) {
        const i = next++;
        const t = performance.now();
        try {
          const res = await fetch(`${peer.url}/o/${size}/${i}`, { client });
          const body = new Uint8Array(await res.arrayBuffer());
          lat.push(performance.now() - t);
          if (res.status !== 200 || body.length !== size) errors++;
          if (res.headers.get(peer.field) !== peer.miss) notMiss++;
        } catch {
          errors++;
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  client.close();
  lat.sort((a, b) => a - b);
  const origin = originRequests - before;
  return {
    requests: count,
    seconds,
    p50Ms: percentile(lat, 0.5),
    p99Ms: percentile(lat, 0.99),
    errors,
    note: `${origin} origin requests${
      notMiss ? `, ${notMiss} not marked ${peer.miss}` : ""
    }`,
  };
}

/** 20 URLs of a filled size: each must be a marked hit with exact bytes. */
async function sampleHits(
  peer: Peer,
  size: number,
  count: number,
): Promise<string> {
  const client = Deno.createHttpClient({});
  let good = 0;
  for (let k = 0; k < 20; k++) {
    const i = (k * 7919) % count;
    const res = await fetch(`${peer.url}/o/${size}/${i}`, { client });
    const body = new Uint8Array(await res.arrayBuffer());
    if (
      res.status === 200 && res.headers.get(peer.field) === peer.hit &&
      sameBytes(body, originBody(size, i))
    ) good++;
  }
  client.close();
  return `${good}/20 sampled hits marked ${peer.hit} with exact bytes`;
}

async function wrk(
  peer: Peer,
  size: number,
  count: number,
  seconds: number,
): Promise<Pass> {
  const out = await sh("taskset", [
    "-c",
    "1",
    "wrk",
    "-t1",
    `-c${CONNECTIONS}`,
    `-d${seconds}s`,
    "-s",
    join(HERE, "urls.lua"),
    peer.url,
    "--",
    String(size),
    String(count),
    "1",
  ]);
  const r = JSON.parse(out.split("\n").findLast((l) => l.startsWith("{"))!);
  return {
    requests: r.requests,
    seconds: r.durationUs / 1e6,
    p50Ms: r.p50Us / 1000,
    p99Ms: r.p99Us / 1000,
    errors: r.connect + r.read + r.write + r.status + r.timeout,
    // wrk counts a request with no response within 2 s as a timeout.
    note: r.connect + r.read + r.write + r.status + r.timeout === 0
      ? ""
      : `wrk errors: ${r.connect} connect, ${r.read} read, ${r.write} write, ` +
        `${r.status} status ≥ 400, ${r.timeout} timeouts (> 2 s); `,
  };
}

/** A hit pass: a short warm-up, then the timed one; the origin must see nothing. */
async function hits(peer: Peer, size: number, count: number): Promise<Pass> {
  const before = originRequests;
  const sample = peer.cacheOnly ? "" : await sampleHits(peer, size, count);
  await wrk(peer, size, count, 3);
  const cpu0 = await cpuUs(peer.pid);
  const pass = await wrk(peer, size, count, DURATION);
  pass.cpuPerRequestUs = (await cpuUs(peer.pid) - cpu0) / pass.requests;
  const origin = originRequests - before;
  pass.note += peer.cacheOnly
    ? "no cache"
    : `${origin} origin requests; ${sample}`;
  return pass;
}

/** 64 concurrent requests for one slow (500 ms) URL never seen before. */
async function collapse(peer: Peer): Promise<Pass> {
  const client = Deno.createHttpClient({});
  const before = slowRequests;
  const url = `${peer.url}/slow/${peer.name}-${Date.now()}`;
  const want = originBody(1024, 0);
  const lat: number[] = [];
  let errors = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      const t = performance.now();
      try {
        const res = await fetch(url, { client });
        const body = new Uint8Array(await res.arrayBuffer());
        lat.push(performance.now() - t);
        if (res.status !== 200 || !sameBytes(body, want)) errors++;
      } catch {
        errors++;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  client.close();
  lat.sort((a, b) => a - b);
  return {
    requests: 64,
    seconds,
    p50Ms: percentile(lat, 0.5),
    p99Ms: percentile(lat, 0.99),
    errors,
    note: `${slowRequests - before} origin requests`,
  };
}

// ---- the run ----
const results = new Map<string, Map<string, Pass>>(); // phase -> peer -> pass
function record(phase: string, peer: string, pass: Pass): void {
  if (!results.has(phase)) results.set(phase, new Map());
  results.get(phase)!.set(peer, pass);
  const rps = Math.round(pass.requests / pass.seconds);
  console.log(
    `${peer.padEnd(8)} ${phase.padEnd(16)} ${String(rps).padStart(7)} req/s ` +
      `p50 ${pass.p50Ms.toFixed(2)} ms p99 ${pass.p99Ms.toFixed(2)} ms ` +
      `errors ${pass.errors}${
        pass.cpuPerRequestUs === undefined
          ? ""
          : ` CPU ${pass.cpuPerRequestUs.toFixed(1)} µs/req`
      }  ${pass.note}`,
  );
}

const ver = async (cmd: string, args: string[]) => {
  try {
    return (await sh(cmd, args)).split("\n")[0]!;
  } catch {
    return "?";
  }
};
const load: string[] = [];
const startedAt = new Date().toISOString();
const commit = await ver("git", ["-C", REPO, "rev-parse", "--short", "HEAD"]);
// Every peer runs from the start (idle until its turn), and each phase
// runs the peers back to back, so a change in the machine's other load
// falls on all of them alike.
const peers: Peer[] = [];
const dirs: string[] = [];
try {
  for (const name of PEERS) {
    const dir = await Deno.makeTempDir({
      prefix: `larder-proxy-bench-${name}-`,
    });
    dirs.push(dir);
    peers.push(
      name === "larder"
        ? await startLarder(dir)
        : name === "nginx"
        ? await startNginx(dir)
        : await startDenoScript(name as "builtin" | "bare", dir),
    );
  }
  // The bare Deno.serve caches nothing: it only has hit passes.
  const each = async (
    phase: string,
    fn: (p: Peer) => Promise<Pass>,
    withBare = false,
  ) => {
    load.push(`${phase}: ${await sh("uptime", [])}`);
    for (const peer of peers) {
      if (withBare || !peer.cacheOnly) {
        record(phase, peer.name, await fn(peer));
      }
    }
  };
  for (const s of SIZES) {
    await each(`fill ${s.name}`, (peer) => fill(peer, s.size, s.count));
  }
  for (const s of SIZES) {
    await each(`hit ${s.name}`, (peer) => hits(peer, s.size, s.count), true);
  }
  await each("64 collapsed misses", collapse);
} finally {
  for (const peer of peers) await peer.stop();
  for (const dir of dirs) await Deno.remove(dir, { recursive: true });
}
await origin.shutdown();

// ---- the table ----
const pkg = (name: string) =>
  ver("dpkg-query", ["-W", "-f", "${Version}", name]);
const cpu = await ver("sh", [
  "-c",
  "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2",
]);
const fmtRps = (p?: Pass) =>
  p === undefined
    ? "–"
    : Math.round(p.requests / p.seconds).toLocaleString("en-US");
const ratio = (a?: Pass, b?: Pass) =>
  a === undefined || b === undefined
    ? "–"
    : `${((a.requests / a.seconds) / (b.requests / b.seconds)).toFixed(2)}×`;
const cols = ["larder", "nginx", "builtin", "bare"].filter((p) =>
  PEERS.includes(p)
);
const title: Record<string, string> = {
  larder: "larder",
  nginx: "nginx 1.22 (1 worker)",
  builtin: "Deno `caches` proxy",
  bare: "bare Deno.serve",
};
const lines: string[] = [];
lines.push(
  `# Proxy benchmark (larder ${commit}, ${startedAt})`,
  "",
  `\`deno task bench:proxy\`: ${CONNECTIONS} wrk connections, ${DURATION} s per hit pass ` +
    `(after 3 s of warm-up), fills by ${FILL_CONCURRENCY} concurrent fetches. ` +
    `Server on core 0, wrk and origin on core 1. CPU: ${cpu}, ${navigator.hardwareConcurrency} cores; ` +
    `Deno ${Deno.version.deno}, nginx ${await pkg("nginx")}, wrk ${await pkg(
      "wrk",
    )} (Debian packages).`,
  "",
  "## Requests/s",
  "",
  `| phase | ${
    cols.map((c) => title[c]).join(" | ")
  } | larder/nginx | larder/builtin |`,
  `| --- | ${cols.map(() => "---:").join(" | ")} | ---: | ---: |`,
);
for (const [phase, by] of results) {
  lines.push(
    `| ${phase} | ${cols.map((c) => fmtRps(by.get(c))).join(" | ")} | ${
      ratio(by.get("larder"), by.get("nginx"))
    } | ${ratio(by.get("larder"), by.get("builtin"))} |`,
  );
}
lines.push(
  "",
  "## Latency p50 / p99 (ms), errors",
  "",
  `| phase | ${cols.map((c) => title[c]).join(" | ")} |`,
  `| --- | ${cols.map(() => "---:").join(" | ")} |`,
);
for (const [phase, by] of results) {
  lines.push(
    `| ${phase} | ${
      cols.map((c) => {
        const p = by.get(c);
        return p === undefined
          ? "–"
          : `${p.p50Ms.toFixed(2)} / ${p.p99Ms.toFixed(2)}, ${p.errors} err`;
      }).join(" | ")
    } |`,
  );
}
lines.push(
  "",
  "## Server CPU time per hit (µs; less disturbed by other load)",
  "",
  `| phase | ${
    cols.map((c) => title[c]).join(" | ")
  } | larder/nginx | larder/builtin |`,
  `| --- | ${cols.map(() => "---:").join(" | ")} | ---: | ---: |`,
);
for (const [phase, by] of results) {
  if (!phase.startsWith("hit")) continue;
  const cpu = (c: string) => by.get(c)?.cpuPerRequestUs;
  const r = (a?: number, b?: number) =>
    a === undefined || b === undefined ? "–" : `${(b / a).toFixed(2)}×`;
  lines.push(
    `| ${phase} | ${cols.map((c) => cpu(c)?.toFixed(1) ?? "–").join(" | ")} | ${
      r(cpu("larder"), cpu("nginx"))
    } | ${r(cpu("larder"), cpu("builtin"))} |`,
  );
}
lines.push(
  "",
  "(The ratio columns are speed ratios: the peer's CPU per hit over larder's.)",
);
lines.push("", "## Checks", "");
for (const [phase, by] of results) {
  for (const c of cols) {
    const p = by.get(c);
    if (p !== undefined && p.note !== "") {
      lines.push(`- ${phase}, ${c}: ${p.note}`);
    }
  }
}
lines.push("", "## Machine load (uptime before each phase)", "");
for (const l of load) lines.push(`- ${l}`);
lines.push(`- after: ${await sh("uptime", [])}`);
const md = lines.join("\n") + "\n";
await Deno.mkdir(join(OUT, ".."), { recursive: true });
await Deno.writeTextFile(OUT, md);
console.log("\n" + md);
console.log(`written to ${OUT}`);
