/**
 * `deno task bench:soak`: a hostile load run against `deno task serve`.
 * Starts the soak origin (soak_origin.ts) and the proxy (scripts/serve.ts,
 * a small `--limit` so it evicts all the time) as child processes, drives
 * the proxy with wrk (soak.lua, a URL mix) and the checking client
 * (soak_checker.ts, every body verified) at once, samples the proxy's RSS
 * and the store's disk use, then checks that the proxy still answers
 * health, stops cleanly, leaves a store `check-store` calls clean and
 * restarts on it. See bench/README.md ("Soak"). Past the run's end it says
 * what it waits on every 15 s, and a step past its deadline (soak_watch.ts)
 * fails the soak in words instead of stalling it.
 *
 * Flags: --duration S (default 60), --connections N (wrk, default 128),
 * --workers N (checker, default 24), --limit SIZE (default 64MiB),
 * --out FILE (default bench/results/soak-latest.md).
 * Exits 1 when a correctness bar fails.
 *
 * @module
 */
import { join } from "node:path";
import { flag } from "../_flags.ts";
import { type Child, ensureWrk, sh, spawnUntil } from "./_spawn.ts";
import { ANSWER_MS, runChecker } from "./soak_checker.ts";
import { diskBound, diskUse } from "./soak_disk.ts";
import { connections, type Pending, Stalled, Watch } from "./soak_watch.ts";

const HERE = new URL(".", import.meta.url).pathname;
const REPO = new URL("../../", import.meta.url).pathname;
const DURATION = Number(flag("duration", "60"));
const CONNECTIONS = Number(flag("connections", "128"));
const WORKERS = Number(flag("workers", "24"));
const LIMIT = flag("limit", "64MiB");
const OUT = flag("out", join(REPO, "bench/results/soak-latest.md"));
const TOKEN = "soak-purge-token";
const deno = Deno.execPath();

function startProxy(origin: string, store: string): Promise<Child> {
  return spawnUntil(
    "taskset",
    [
      "-c",
      "0",
      deno,
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-net",
      join(REPO, "scripts/serve.ts"),
      "--origin",
      origin,
      "--port",
      "0",
      "--dir",
      store,
      "--limit",
      LIMIT,
      "--origin-timeout",
      "2000",
      "--quiet",
    ],
    /on (http:\/\/127\.0\.0\.1:\d+)\//,
    { env: { LARDER_PURGE_TOKEN: TOKEN }, keepStderr: true },
  );
}

async function rssKiB(pid: number): Promise<number> {
  return Number(await sh("ps", ["-o", "rss=", "-p", String(pid)]));
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))] ?? NaN;
};

await ensureWrk();
const work = await Deno.makeTempDir({ prefix: "larder-soak-" });
const store = join(work, "store");
const origin = await spawnUntil(
  "taskset",
  [
    "-c",
    "1",
    deno,
    "run",
    "--allow-net=127.0.0.1",
    join(HERE, "soak_origin.ts"),
  ],
  /origin on (\d+)/,
  { keepStderr: true },
);
const ORIGIN = `http://127.0.0.1:${origin.banner[1]}`;
let proxy = await startProxy(ORIGIN, store);
const PROXY = proxy.banner[1]!;
console.log(
  `soak: origin ${ORIGIN}, proxy ${PROXY}, store ${store}, limit ${LIMIT}, ${DURATION} s`,
);

const limitBytes = (await import("../../scripts/serve.ts")).parseSize(LIMIT);
const startMs = Date.now();
const samples: {
  s: number;
  rssKiB: number;
  disk: { allocated: number; apparent: number };
}[] = [];
// Disk peaks are short (a block file's copy lives for a few pieces): the
// bound is checked every 250 ms, the 2 s samples are what the report lists.
const diskPeaks = { idle: 0, copying: 0, copies: 0 };
const noteDisk = (u: ReturnType<typeof diskUse>) => {
  if (u.copying) {
    diskPeaks.copying = Math.max(diskPeaks.copying, u.allocated);
    diskPeaks.copies++;
  } else diskPeaks.idle = Math.max(diskPeaks.idle, u.allocated);
  return u;
};
let sampling = true;
const sampler = (async () => {
  while (sampling) {
    samples.push({
      s: Math.round((Date.now() - startMs) / 1000),
      rssKiB: await rssKiB(proxy.process.pid),
      disk: noteDisk(diskUse(store)),
    });
    for (let i = 0; i < 8 && sampling; i++) {
      await new Promise((r) => setTimeout(r, 250));
      noteDisk(diskUse(store));
    }
  }
})();

const pending = new Set<Pending>();
const watch = new Watch(pending, startMs + DURATION * 1000);

/**
 * A step past its deadline: says so (in the output file too), kills the
 * children and exits 1.
 */
async function giveUp(err: unknown): Promise<never> {
  if (!(err instanceof Stalled)) throw err;
  const text =
    `# Soak: stalled ${new Date().toISOString()}\n\n${err.message}\n` +
    `\nconnections to the proxy: ${await connections(PROXY)}\n`;
  console.error(text);
  await Deno.writeTextFile(OUT, text);
  for (const child of [wrkChild, proxy.process, origin.process]) {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
  }
  await Deno.remove(work, { recursive: true }).catch(() => {});
  Deno.exit(1);
}

/** A GET of the soak's own, bounded: status, field and body. */
async function get(url: string) {
  return await watch.within(
    `GET ${url}`,
    15_000,
    (async () => {
      const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      return { res, text: await res.text() };
    })(),
  );
}

const wrkChild = new Deno.Command("taskset", {
  args: [
    "-c",
    "1",
    "wrk",
    "-t2",
    `-c${CONNECTIONS}`,
    `-d${DURATION}s`,
    "--timeout",
    "10s",
    "-s",
    join(HERE, "soak.lua"),
    PROXY,
    "--",
    "1",
    "300",
  ],
  stdout: "piped",
  stderr: "piped",
}).spawn();
const wrk = wrkChild.output();
const checker = runChecker({
  proxyUrl: PROXY,
  originUrl: ORIGIN,
  purgeToken: TOKEN,
  untilMs: startMs + DURATION * 1000,
  workers: WORKERS,
  startMs,
  pending,
});
let wrkDone = false;
let checkerDone = false;
const settled = (p: Promise<unknown>, then: () => void) => p.then(then, then);
settled(wrk, () => {
  wrkDone = true;
  if (!checkerDone) watch.step = "the checker's last requests";
});
settled(checker, () => {
  checkerDone = true;
  if (!wrkDone) watch.step = "wrk's exit";
});
// The checker's last operation may be two requests of ANSWER_MS each.
const [wrkOut, check] = await watch.within(
  "wrk and the checker",
  DURATION * 1000 + 3 * ANSWER_MS,
  Promise.all([wrk, checker]),
).catch(giveUp);
sampling = false;
await watch.within("the disk sampler", 15_000, sampler).catch(giveUp);
const wrkText = new TextDecoder().decode(wrkOut.stdout);
const wrkJson = wrkText.split("\n").find((l) => l.startsWith('{"requests"'));
if (wrkJson === undefined) {
  throw new Error(
    `wrk gave no figures: ${wrkText}${new TextDecoder().decode(wrkOut.stderr)}`,
  );
}
const w = JSON.parse(wrkJson);

// ---- afterwards: health, a clean stop, check-store, a restart ----
const { res: health1, text: health1Body } = await get(
  `${PROXY}/_larder/health`,
).catch(giveUp);
// The proxy's own counts of what collapsing and the store did.
const proxyCounts = (await get(`${PROXY}/_larder/metrics`).catch(giveUp)).text
  .split("\n").filter((l) =>
    /^larder_proxy_(collapsed_waits|store_errors|store_refusals)/.test(l)
  ).join("; ");
const originTotal = Number((await get(`${ORIGIN}/_total`).catch(giveUp)).text);
const duEnd = noteDisk(diskUse(store));
const rssEnd = await rssKiB(proxy.process.pid);
const stop1 = await watch.exit(proxy.process, "the proxy", PROXY);
const stderr1 = proxy.stderr();
/**
 * The proxy's stderr without Deno.serve's one-line reports of a client
 * body that failed because the origin's was cut (the soak origin resets
 * on purpose); anything else there is a defect.
 */
function unexpectedStderr(text: string): string {
  return text.split("\n").filter((line) =>
    line !== "" &&
    !/^\[?Cannot read origin response: .* mid-body\]?$/.test(line)
  ).join("\n");
}
const checkStoreChild = new Deno.Command(deno, {
  args: [
    "run",
    "--allow-read",
    "--allow-write",
    join(REPO, "scripts/check_store.ts"),
    store,
    "--quiet",
  ],
  stdout: "piped",
  stderr: "piped",
}).spawn();
const checkStore = await watch.within(
  "check-store",
  180_000,
  checkStoreChild.output(),
).catch((err) => {
  checkStoreChild.kill("SIGKILL");
  return giveUp(err);
});
const checkText = new TextDecoder().decode(checkStore.stdout) +
  new TextDecoder().decode(checkStore.stderr);
proxy = await watch.within(
  "the restart's banner",
  60_000,
  startProxy(ORIGIN, store),
).catch(giveUp);
const { res: health2 } = await get(`${proxy.banner[1]}/_larder/health`)
  .catch(giveUp);
const { res: again } = await get(`${proxy.banner[1]}/o/100/1`).catch(giveUp);
const stop2 = await watch.exit(
  proxy.process,
  "the restarted proxy",
  proxy.banner[1]!,
);
const stderr2 = proxy.stderr();
await watch.exit(origin.process, "the origin", ORIGIN);
watch.stop();
await Deno.remove(work, { recursive: true });

// ---- the report ----
const maxRss = Math.max(...samples.map((s) => s.rssKiB));
const maxDu = Math.max(
  ...samples.map((s) => s.disk.allocated),
  duEnd.allocated,
);
const maxApparent = Math.max(
  ...samples.map((s) => s.disk.apparent),
  duEnd.apparent,
);
const bound = diskBound(limitBytes);
const bars: [string, boolean][] = [
  ["wrong bytes 0", check.wrongBytes === 0],
  ["checker failures 0", Object.keys(check.failures).length === 0],
  ["no wrk socket errors", w.connect + w.read + w.write + w.timeout === 0],
  [
    "no 5xx but the origin's 500/503",
    Object.keys(w.byStatus).every((s) =>
      s === "200" || s === "500" || s === "503"
    ),
  ],
  [
    "proxy stderr: nothing but one-line reports of origin bodies cut mid-body (both runs)",
    unexpectedStderr(stderr1) === "" && unexpectedStderr(stderr2) === "",
  ],
  ["health 200 after the run", health1.status === 200],
  ["clean exit on SIGTERM (both runs)", stop1.code === 0 && stop2.code === 0],
  ["check-store clean", checkStore.code === 0],
  ["restart: health 200", health2.status === 200],
  [
    "disk (du) ≤ limit + 10% + fixed overhead, no block file copy under way",
    diskPeaks.idle <= bound.idle,
  ],
  [
    "disk (du) ≤ that + one block file while a copy is under way (FORMAT.md §5.4)",
    diskPeaks.copying <= bound.copying,
  ],
  ["RSS ≤ 1 GiB", maxRss <= 2 ** 20],
];
const lines = [
  `# Soak: ${new Date().toISOString()}`,
  "",
  `\`deno task bench:soak --duration ${DURATION} --connections ${CONNECTIONS} --workers ${WORKERS} --limit ${LIMIT}\``,
  "",
  "| bar | met |",
  "| --- | --- |",
  ...bars.map(([name, ok]) => `| ${name} | ${ok ? "yes" : "**NO**"} |`),
  "",
  `wrk: ${w.requests} requests, ${
    (w.requests / (w.durationUs / 1e6)).toFixed(0)
  } req/s, ` +
  `${(w.bytes / 2 ** 20).toFixed(0)} MiB; latency p50 ${
    (w.p50Us / 1000).toFixed(1)
  } ms, ` +
  `p99 ${(w.p99Us / 1000).toFixed(1)} ms, max ${
    (w.maxUs / 1000).toFixed(1)
  } ms; ` +
  `errors connect ${w.connect}, read ${w.read}, write ${w.write}, timeout ${w.timeout}; ` +
  `by status ${JSON.stringify(w.byStatus)}`,
  "",
  `checker: ${check.latencyMs.length} verified GETs, ops ${
    JSON.stringify(check.ops)
  }; ` +
  `latency p50 ${pct(check.latencyMs, 0.5).toFixed(1)} ms, p99 ${
    pct(check.latencyMs, 0.99).toFixed(1)
  } ms, ` +
  `max ${
    Math.max(...check.latencyMs).toFixed(1)
  } ms; wrong bytes ${check.wrongBytes}; ` +
  `expected body errors (origin resets) ${check.expectedBodyErrors}; ` +
  `collapsed groups ${check.collapse.groups} (extra origin requests ${check.collapse.extraOriginRequests}); ` +
  `failures ${JSON.stringify(check.failures)}`,
  ...check.examples.map((e) => `- ${e}`),
  "",
  `origin requests: ${originTotal}`,
  "",
  `proxy RSS (MiB) every 2 s: ${
    samples.map((s) => (s.rssKiB / 1024).toFixed(0)).join(" ")
  }; at the end ${(rssEnd / 1024).toFixed(0)}`,
  "",
  `store disk use (allocated, as du counts it; MiB) every 2 s: ${
    samples.map((s) => (s.disk.allocated / 2 ** 20).toFixed(1)).join(" ")
  }; checked every 250 ms: max ${
    (diskPeaks.idle / 2 ** 20).toFixed(1)
  } MiB with no copy under way against a bound of ${
    (bound.idle / 2 ** 20).toFixed(1)
  } MiB (limit ${(limitBytes / 2 ** 20).toFixed(0)} MiB + 10% + the fixed ` +
  `overhead of FORMAT.md §5.4), ${
    (diskPeaks.copying / 2 ** 20).toFixed(1)
  } MiB in ${diskPeaks.copies} checks with a block file's copy under way ` +
  `against ${(bound.copying / 2 ** 20).toFixed(1)} MiB; max of the 2 s ` +
  `samples ${(maxDu / 2 ** 20).toFixed(1)} MiB; apparent size (du -b, block ` +
  `files' holes counted) at most ${(maxApparent / 2 ** 20).toFixed(1)} MiB`,
  "",
  `health after the run: ${health1.status} ${health1Body.slice(0, 200)}`,
  `proxy counts: ${proxyCounts}`,
  `exit codes: ${stop1.code}, after the restart ${stop2.code}; restart health ${health2.status}, GET /o/100/1 ${again.status} ${
    again.headers.get("x-larder-cache")
  }`,
  `check-store: exit ${checkStore.code}; ${
    checkText.trim().split("\n").slice(-3).join(" / ")
  }`,
  `past a deadline: ${
    watch.late.length === 0 ? "nothing" : watch.late.join("; ")
  }`,
  `proxy stderr: ${
    stderr1 === "" ? "(none)" : "\n```\n" + stderr1.slice(0, 4000) + "\n```"
  }`,
  `proxy stderr after the restart: ${
    stderr2 === "" ? "(none)" : "\n```\n" + stderr2.slice(0, 2000) + "\n```"
  }`,
  `origin stderr: ${
    origin.stderr() === "" ? "(none)" : origin.stderr().slice(0, 1000)
  }`,
  "",
];
const text = lines.join("\n");
console.log(text);
await Deno.writeTextFile(OUT, text);
Deno.exit(bars.every(([, ok]) => ok) ? 0 : 1);
