/**
 * larder's side of the NetSurf anchor (bench/netsurf/README in
 * bench/README.md): one case, the same phases and checks as the anchor's
 * `bench.c`, timing only larder's calls. Prints one JSON line.
 *
 * usage: larder.ts SCENARIO N LIMITMODE DIR API
 *   API `entry`: `storeEntry(url, data, meta)` / `fetchEntry(url)`, one
 *   call per object; `element`: `store` data then metadata, and `fetch`
 *   metadata then data, as llcache calls NetSurf's store.
 *
 * Exits 1 when any fetched element is wrong (another URL's metadata, or
 * data whose length or stamp differ); those must be 0 for larder.
 *
 * @module
 */
import { BackingStore } from "../../mod.ts";
import {
  checkData,
  checkMeta,
  fillData,
  type LimitMode,
  limitOf,
  makeMeta,
  makeWorkload,
  type Scenario,
} from "./workload.ts";

const [scenario, nArg, mode, parent, api] = Deno.args;
if (
  (scenario !== "mixed" && scenario !== "small") ||
  (mode !== "noevict" && mode !== "evict") ||
  (api !== "entry" && api !== "element") || parent === undefined
) {
  console.error(
    "usage: larder.ts mixed|small N noevict|evict DIR entry|element",
  );
  Deno.exit(2);
}
const w = makeWorkload(scenario as Scenario, Number(nArg));
const limit = limitOf(w, mode as LimitMode);
const hysteresis = Math.floor(limit / 5);
const dir = await Deno.makeTempDir({ dir: parent, prefix: "larder." });
// NetSurf's table sizes (2^16 entries, 2^20 address map), which are also
// larder's defaults; given explicitly so a change of default shows here.
const store = await BackingStore.open(dir, {
  limit,
  hysteresis,
  entryBits: 16,
  identBits: 20,
});

const encoder = new TextEncoder();
let tStore = 0;
let storedBytes = 0;
let storeFail = 0;
for (let i = 0; i < w.n; i++) {
  const o = w.objects[i]!;
  const data = fillData(o.size, i);
  const meta = makeMeta(o);
  const a = performance.now();
  try {
    if (api === "entry") await store.storeEntry(o.url, data, meta);
    else {
      await store.store(o.url, data);
      await store.store(o.url, meta, { meta: true });
    }
    tStore += performance.now() - a;
    storedBytes += o.size + o.msize;
  } catch (err) {
    tStore += performance.now() - a;
    storeFail++;
    if (storeFail === 1) console.error(err);
  }
}

let t0 = performance.now();
await store.flush();
const tMaint = performance.now() - t0;

let tFetch = 0;
let fetchedBytes = 0;
let hits = 0, misses = 0, wrong = 0, dataMiss = 0, bad = 0;
for (let k = 0; k < w.n; k++) {
  const idx = w.order[k]!;
  const o = w.objects[idx]!;
  const url = encoder.encode(o.url); // not timed, as bench.c's nsurl_access
  const a = performance.now();
  if (api === "entry") {
    const hit = await store.fetchEntry(o.url);
    if (hit === undefined || hit.meta === undefined) {
      hit?.release();
      tFetch += performance.now() - a;
      misses++;
      continue;
    }
    if (!checkMeta(hit.meta, url)) {
      hit.release();
      tFetch += performance.now() - a;
      wrong++;
      continue;
    }
    if (hit.data === undefined) {
      hit.release();
      tFetch += performance.now() - a;
      dataMiss++;
      continue;
    }
    if (!checkData(hit.data, idx, o.size)) bad++;
    fetchedBytes += hit.meta.length + hit.data.length;
    hit.release();
  } else {
    const m = await store.fetch(o.url, { meta: true });
    if (m === undefined) {
      tFetch += performance.now() - a;
      misses++;
      continue;
    }
    const urlOk = checkMeta(m.data, url);
    const mlen = m.data.length;
    m.release();
    if (!urlOk) {
      tFetch += performance.now() - a;
      wrong++;
      continue;
    }
    const d = await store.fetch(o.url);
    if (d === undefined) {
      tFetch += performance.now() - a;
      dataMiss++;
      continue;
    }
    if (!checkData(d.data, idx, o.size)) bad++;
    fetchedBytes += mlen + d.data.length;
    d.release();
  }
  tFetch += performance.now() - a;
  hits++;
}

const stats = store.stats();
t0 = performance.now();
await store.close();
const tFin = performance.now() - t0;
await Deno.remove(dir, { recursive: true });

const result = {
  scenario,
  n: w.n,
  mode,
  api,
  limit,
  hysteresis,
  workloadBytes: w.workloadBytes,
  dataBytes: w.dataBytes,
  sizeFingerprint: w.sizeFingerprint,
  store: {
    objs: w.n - storeFail,
    fail: storeFail,
    timeS: tStore / 1e3,
    objsPerS: w.n / (tStore / 1e3),
    mbPerS: storedBytes / 1e6 / (tStore / 1e3),
  },
  maintMs: tMaint,
  fetch: {
    hits,
    misses,
    wrong,
    dataMiss,
    bad,
    timeS: tFetch / 1e3,
    objsPerS: w.n / (tFetch / 1e3),
    mbPerS: fetchedBytes / 1e6 / (tFetch / 1e3),
  },
  finaliseMs: tFin,
  evictions: stats.evictions,
};
console.log(JSON.stringify(result));
if (wrong > 0 || bad > 0 || storeFail > 0) Deno.exit(1);
