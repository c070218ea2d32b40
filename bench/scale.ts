/**
 * Scale: a store of 2^20 small entries (entryBits 21) next to one of 2^24
 * (entryBits 24, the largest table, full), in one run (issue 16 goal 4).
 *
 *   deno run -A bench/scale.ts [--entries 16777216] [--small 1048576]
 *     [--sample 200000] [--dir D] [--keep] [--journal-bytes N]
 *
 * Each store is built with batched `store` calls of ~60-byte URL keys and
 * 100-byte bodies, then reports:
 *
 * - put rate: overwrites of `--sample` random keys of the full store (new
 *   bodies), in batches, and get rate: `fetch` of the same keys in another
 *   random order, every byte of every body checked;
 * - index memory per entry: the WASM memory of the store's IndexMemory
 *   (`memoryBytes`) over the entries, and RSS;
 * - eviction: one put of a new key past a full table (the larger store)
 *   or past its limit (the smaller, opened with a limit just under what it
 *   holds), timing the selection (`selectVictims`, or an incremental
 *   pass's sample and slices: in all, and the longest one), the eviction
 *   call, the put, the eviction until its last step or slice, and
 *   the longest stall of the event loop meanwhile (a 1 ms interval timer's
 *   largest gap), while gets run concurrently;
 * - a reopen with a limit 5% under the held disk bytes: open time (it
 *   evicts while opening), selection, longest stall.
 *
 * The store directories go under `--dir` (default: a temp dir under /work
 * when it exists, else the system's) and are removed afterwards.
 * @module
 */
import { BackingStore } from "../mod.ts";
import { IndexMemory } from "../src/index_memory.ts";
import { Eviction } from "../src/_eviction.ts";

function arg(name: string, dflt: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(Deno.args[i + 1]);
  if (!Number.isInteger(v) || v <= 0) {
    throw new RangeError(`Cannot run: --${name} must be a positive integer`);
  }
  return v;
}
const bigEntries = arg("entries", 2 ** 24);
const smallEntries = arg("small", 2 ** 20);
const sample = arg("sample", 200_000);
const dirArg = Deno.args.indexOf("--dir");
const keep = Deno.args.includes("--keep");
// Journal size of both stores (default: the store's, 8 MiB).
const journalAt = Deno.args.indexOf("--journal-bytes");
const journal = journalAt < 0 ? {} : { journalBytes: arg("journal-bytes", 1) };
const BATCH = 512;
const BODY = 100;

// Keys as the peer comparison's (~60 characters).
const key = (i: number) =>
  `https://host${i % 16}.example/static/js/${
    i.toString(36).padStart(8, "0")
  }.js?v=${(i * 2654435761 >>> 0).toString(16).padStart(8, "0")}`;

/** Body `v` of entry `i`: 100 bytes that differ per entry and version. */
function body(i: number, v: number, out = new Uint8Array(BODY)): Uint8Array {
  let x = (i * 2654435761 + v * 40503 + 1) >>> 0;
  for (let j = 0; j < BODY; j++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[j] = x >>> 24;
  }
  return out;
}

function shuffled(n: number, of: number, seed: number): Uint32Array {
  let x = seed >>> 0;
  const next = () => (x = (x * 1103515245 + 12345) >>> 0);
  const a = new Uint32Array(n);
  // Distinct random entries: a partial Fisher-Yates over a virtual 0..of-1.
  const swapped = new Map<number, number>();
  for (let k = 0; k < n; k++) {
    const r = k + ((next() * 65536 + next()) % (of - k));
    const vr = swapped.get(r) ?? r;
    swapped.set(r, swapped.get(k) ?? k);
    a[k] = vr;
  }
  return a;
}

// ---- instrumentation: the store's IndexMemory, selection and eviction ----

let mem: IndexMemory | undefined;
const origAdd = IndexMemory.prototype.add;
IndexMemory.prototype.add = function (this: IndexMemory, ...a) {
  mem = this;
  return origAdd.apply(this, a);
};
const selections: number[] = [];
const origSelect = IndexMemory.prototype.selectVictims;
IndexMemory.prototype.selectVictims = function (this: IndexMemory, ...a) {
  mem = this;
  const t = performance.now();
  const r = origSelect.apply(this, a);
  selections.push(performance.now() - t, r.length);
  return r;
};
const evictions: number[] = [];
let evictor: Eviction | undefined;
const origEvict = Eviction.prototype.evict;
Eviction.prototype.evict = function (this: Eviction, ...a) {
  evictor = this;
  const t = performance.now();
  origEvict.apply(this, a);
  evictions.push(performance.now() - t);
};

// Selection time of incremental passes (absent before them: 0).
type Timing = { selectMs: number; longestMs: number };
const timing = (): Timing => {
  const t = (evictor as { timing?: Timing } | undefined)?.timing;
  return { selectMs: t?.selectMs ?? 0, longestMs: t?.longestMs ?? 0 };
};
/** Until a stepped or incremental eviction under way has ended. */
async function evictionEnded(): Promise<void> {
  while (evictor?.stepping) await new Promise((r) => setTimeout(r, 1));
}
/** Starts a phase: its selections and its longest pass slice. */
function phase(): Timing {
  selections.length = 0;
  evictions.length = 0;
  const t = (evictor as { timing?: Timing } | undefined)?.timing;
  if (t !== undefined) t.longestMs = 0;
  return timing();
}
/** Selection ms in all (whole selections and passes) since `t0`. */
function selectedMs(t0: Timing): number {
  let ms = timing().selectMs - t0.selectMs;
  for (let j = 0; j < selections.length; j += 2) ms += selections[j]!;
  return ms;
}
/** The longest single selection call (or pass slice) of the phase. */
function longestSelectMs(): number {
  let ms = timing().longestMs;
  for (let j = 0; j < selections.length; j += 2) {
    ms = Math.max(ms, selections[j]!);
  }
  return ms;
}

/** The longest gap between ticks of a 1 ms timer while `f` runs. */
async function stalls<T>(f: () => Promise<T>): Promise<[T, number]> {
  let last = performance.now();
  let worst = 0;
  const id = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 1);
  try {
    await new Promise((r) => setTimeout(r, 5));
    last = performance.now();
    const r = await f();
    await new Promise((r) => setTimeout(r, 5));
    return [r, Math.max(worst, performance.now() - last)];
  } finally {
    clearInterval(id);
  }
}

const load = () => Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
const mb = (n: number) => (n / 2 ** 20).toFixed(0);
const rss = () => Deno.memoryUsage().rss;

async function getChecked(store: BackingStore, i: number, v: number) {
  const hit = await store.fetch(key(i));
  if (hit === undefined) throw new Error(`miss at ${i}`);
  const want = body(i, v);
  const got = hit.data;
  if (got.length !== BODY) throw new Error(`length ${got.length} at ${i}`);
  for (let j = 0; j < BODY; j++) {
    if (got[j] !== want[j]) throw new Error(`byte ${j} differs at ${i}`);
  }
  hit.release();
}

interface Row {
  entries: number;
  entryBits: number;
  buildS: number;
  putRate: number;
  getRate: number;
  memBytes: number;
  rssBuilt: number;
  diskBytes: number;
  putEvict: {
    selectMs: number;
    longestSelectMs: number;
    evictMs: number;
    callMs: number;
    allMs: number;
    stallMs: number;
    worstGetMs: number;
    victims: number;
  };
  reopen: {
    openMs: number;
    selectMs: number;
    evictMs: number;
    stallMs: number;
    victims: number;
  };
  loads: string[];
}

async function run(base: string, entries: number, entryBits: number) {
  const dir = `${base}/e${entryBits}`;
  const loads: string[] = [];
  const limit = 2 ** 40;
  // A full table frees capacity × hysteresis / limit entries: 1/64 here.
  const hysteresis = limit / 64;
  mem = undefined;
  let store = await BackingStore.open(dir, {
    entryBits,
    limit,
    hysteresis,
    ...journal,
  });
  const t0 = performance.now();
  let lastPrint = t0;
  for (let i = 0; i < entries; i += BATCH) {
    const end = Math.min(entries, i + BATCH);
    const ps: Promise<void>[] = [];
    for (let k = i; k < end; k++) ps.push(store.store(key(k), body(k, 0)));
    await Promise.all(ps);
    const now = performance.now();
    if (now - lastPrint > 10_000) {
      lastPrint = now;
      console.error(
        `  e${entryBits}: ${end} / ${entries} (${
          (end / ((now - t0) / 1000) / 1000).toFixed(0)
        } k/s, rss ${mb(rss())} MiB, load ${load()})`,
      );
    }
  }
  const buildS = (performance.now() - t0) / 1000;
  await store.flush();
  loads.push(load());
  const st0 = store.stats();
  if (st0.entries !== entries) throw new Error(`holds ${st0.entries}`);

  // Puts over a full store: overwrite a random sample with new bodies.
  const putKeys = shuffled(sample, entries, 0x1234 + entryBits);
  let t = performance.now();
  for (let s = 0; s < sample; s += BATCH) {
    const ps: Promise<void>[] = [];
    for (let k = s; k < Math.min(sample, s + BATCH); k++) {
      const i = putKeys[k]!;
      ps.push(store.store(key(i), body(i, 1)));
    }
    await Promise.all(ps);
  }
  const putRate = sample / ((performance.now() - t) / 1000);
  loads.push(load());
  // Gets of the same keys in another order, every byte checked.
  const getKeys = Uint32Array.from(putKeys);
  const order = shuffled(sample, sample, 0x9876 + entryBits);
  t = performance.now();
  for (let s = 0; s < sample; s += BATCH) {
    const ps: Promise<void>[] = [];
    for (let k = s; k < Math.min(sample, s + BATCH); k++) {
      ps.push(getChecked(store, getKeys[order[k]!]!, 1));
    }
    await Promise.all(ps);
  }
  const getRate = sample / ((performance.now() - t) / 1000);
  loads.push(load());
  const memBytes = mem!.memoryBytes;
  const rssBuilt = rss();
  const diskBytes = store.stats().diskBytes;

  // Eviction by a put: a new key past the full table (or, for a table with
  // room, reopen at a limit just under what it holds first).
  if (st0.entries < st0.capacity) {
    await store.close();
    store = await BackingStore.open(dir, {
      ...journal,
      limit: diskBytes + 1,
      hysteresis: Math.floor(diskBytes / 64),
    });
  }
  const tp = phase();
  const evicted0 = store.stats().evictions;
  // Gets keep running while the put evicts, one per timer turn (a loop of
  // awaits alone would starve the timers): the longest get is how long
  // eviction held a get up.
  let getting = true;
  let worstGet = 0;
  const getter = (async () => {
    let n = 0;
    while (getting) {
      const i = getKeys[n++ % sample]!;
      // From the request (before the timer turn it waits for) to the hit.
      const tg = performance.now();
      await new Promise((r) => setTimeout(r, 0));
      const hit = await store.fetch(key(i));
      worstGet = Math.max(worstGet, performance.now() - tg);
      hit?.release();
    }
  })();
  let callMs = 0;
  let allMs = 0;
  // Stalls and gets are watched until the eviction has ended, steps and
  // incremental slices after the put included.
  const [, stallPut] = await stalls(async () => {
    const tc = performance.now();
    await store.store(key(entries + 1), body(entries + 1, 0));
    callMs = performance.now() - tc;
    await evictionEnded();
    allMs = performance.now() - tc;
  });
  getting = false;
  await getter;
  const putEvict = {
    selectMs: selectedMs(tp),
    longestSelectMs: longestSelectMs(),
    victims: store.stats().evictions - evicted0,
    evictMs: evictions[0] ?? NaN,
    callMs,
    allMs,
    stallMs: stallPut,
    worstGetMs: worstGet,
  };
  loads.push(load());
  const held = store.stats().diskBytes;
  await store.close();
  store = undefined as unknown as BackingStore;

  // Reopen 5% under what it holds, default hysteresis (a fifth).
  // A new store's eviction, whole while opening: its selections alone.
  phase();
  evictor = undefined;
  let openMs = 0;
  const [, stallOpen] = await stalls(async () => {
    const to = performance.now();
    store = await BackingStore.open(dir, {
      ...journal,
      limit: Math.floor(held * 0.95),
    });
    openMs = performance.now() - to;
  });
  const reopen = {
    openMs,
    selectMs: selectedMs(timing()),
    victims: selections[1] ?? 0,
    evictMs: evictions[0] ?? NaN,
    stallMs: stallOpen,
  };
  loads.push(load());
  await store.close();
  if (!keep) await Deno.remove(dir, { recursive: true });
  return {
    entries,
    entryBits,
    buildS,
    putRate,
    getRate,
    memBytes,
    rssBuilt,
    diskBytes,
    putEvict,
    reopen,
    loads,
  } satisfies Row;
}

let base: string;
if (dirArg >= 0) {
  base = Deno.args[dirArg + 1]!;
  await Deno.mkdir(base, { recursive: true });
} else {
  let parent: string | undefined;
  try {
    if (Deno.statSync("/work").isDirectory) parent = "/work";
  } catch { /* the system's temp dir */ }
  base = await Deno.makeTempDir({ prefix: "larder-scale-", dir: parent });
}
console.error(`dirs under ${base}; load ${load()}`);
const rows: Row[] = [];
try {
  for (const [n, bits] of [[smallEntries, 21], [bigEntries, 24]] as const) {
    console.error(`building ${n} entries, entryBits ${bits}`);
    const r = await run(base, n, bits);
    rows.push(r);
    console.error(JSON.stringify(r));
  }
} finally {
  if (dirArg < 0 && !keep) await Deno.remove(base, { recursive: true });
}

const f = (x: number, d = 1) => x.toFixed(d);
console.log(
  `| entries | entryBits | build s | put /s | get /s | WASM MiB | WASM B/entry | RSS MiB | disk MiB | put-evict: select ms (longest) / evict call ms / put ms / until done ms / stall ms / longest get ms (victims) | reopen: open ms / select ms / stall ms (victims) | load (built, put, get, evict, reopen) |`,
);
console.log(
  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |",
);
for (const r of rows) {
  const p = r.putEvict, o = r.reopen;
  console.log(
    `| ${r.entries} | ${r.entryBits} | ${f(r.buildS)} | ${f(r.putRate, 0)} | ${
      f(r.getRate, 0)
    } | ${mb(r.memBytes)} | ${f(r.memBytes / r.entries)} | ${
      mb(r.rssBuilt)
    } | ${mb(r.diskBytes)} | ${f(p.selectMs)} (${f(p.longestSelectMs)}) / ${
      f(p.evictMs)
    } / ${f(p.callMs)} / ${f(p.allMs)} / ${f(p.stallMs)} / ${
      f(p.worstGetMs)
    } (${p.victims}) | ${f(o.openMs, 0)} / ${f(o.selectMs)} / ${
      f(o.stallMs)
    } (${o.victims}) | ${r.loads.join("; ")} |`,
  );
}
if (rows.length === 2) {
  const [a, b] = rows as [Row, Row];
  console.log(
    `\nlarge / small: put ${f(b.putRate / a.putRate, 2)}×, get ${
      f(b.getRate / a.getRate, 2)
    }×`,
  );
}
