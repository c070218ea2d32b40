/**
 * The four WASM kernels next to the obvious alternative a Deno program has
 * (node:zlib's native CRC-32, plain-JS hashing, sorting, bitmaps), each
 * group in one run.
 *
 *   deno bench --allow-read --allow-write --allow-env bench/kernels_bench.ts
 *   deno run --allow-read --allow-write --allow-env bench/kernels_bench.ts
 *
 * `deno bench` prints its usual table. Run directly, the file times the
 * same cases itself and prints medians with the p10–p90 spread and a
 * throughput column, as a markdown table (what bench/README.md quotes).
 * LARDER_BENCH_16M=1 adds eviction over 2^24 entries (about 1.6 GB);
 * LARDER_BENCH_ONLY=<text> times only the groups whose name contains it.
 * @module
 */
import { crc32 as zlibCrc32 } from "node:zlib";
import { DATA, IndexMemory, META } from "../src/index_memory.ts";
import { RefBitmap } from "../tests/_reference/bitmap.ts";
import { crc32Slicing8 } from "../tests/_reference/crc32.ts";
import { fnv1aString, nsurlHash } from "../tests/_reference/nsurl.ts";
import { sipHash } from "../tests/_reference/siphash.ts";
import { rng } from "../tests/_reference/rng.ts";

interface Case {
  group: string;
  name: string;
  fn: () => unknown;
  /** Bytes or items one call processes, for the throughput column. */
  per: number;
  unit: "B" | "keys" | "entries" | "ops" | "slots";
  baseline?: boolean;
}

const cases: Case[] = [];
function add(c: Case): void {
  cases.push(c);
}

function randomFill(bytes: Uint8Array, seed: number): Uint8Array {
  const words = new Uint32Array(
    bytes.buffer,
    bytes.byteOffset,
    bytes.length >>> 2,
  );
  let s = seed >>> 0;
  for (let i = 0; i < words.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    words[i] = s >>> 0;
  }
  return bytes;
}

// ---- CRC-32 ------------------------------------------------------------------

const crcMem = new IndexMemory({ entryBits: 8, identBits: 9 });
{
  const size = 64 << 20;
  const data = randomFill(new Uint8Array(size), 1);
  const staged = crcMem.stage(size);
  staged.set(data);
  const g = "crc32 64 MiB";
  add({
    group: g,
    name: "node:zlib crc32",
    per: size,
    unit: "B",
    baseline: true,
    fn: () => zlibCrc32(data),
  });
  add({
    group: g,
    name: "wasm, bytes in WASM memory",
    per: size,
    unit: "B",
    fn: () => crcMem.crc32Staged(crcMem.stage(size)),
  });
  add({
    group: g,
    name: "wasm, copied in",
    per: size,
    unit: "B",
    fn: () => crcMem.crc32Wasm(data),
  });
  add({
    group: g,
    name: "wasm slicing-by-16 only (16 KiB calls)",
    per: size,
    unit: "B",
    fn: () => {
      const s = crcMem.stage(size);
      let c = 0;
      for (let at = 0; at < size; at += 16384) {
        c = crcMem.crc32Staged(s.subarray(at, at + 16384), c);
      }
      return c;
    },
  });
  add({
    group: g,
    name: "JS slicing-by-8",
    per: size,
    unit: "B",
    fn: () => crc32Slicing8(data),
  });
}
for (const size of [128, 1024, 8192, 65536, 1 << 20]) {
  const data = randomFill(new Uint8Array(size), size);
  const g = `crc32 ${
    size >= 1024 ? `${size / 1024} KiB` : `${size} B`
  } element`;
  add({
    group: g,
    name: "node:zlib crc32",
    per: size,
    unit: "B",
    baseline: true,
    fn: () => zlibCrc32(data),
  });
  add({
    group: g,
    name: "wasm, copied in",
    per: size,
    unit: "B",
    fn: () => crcMem.crc32Wasm(data),
  });
  add({
    group: g,
    name: "wasm, bytes in WASM memory",
    per: size,
    unit: "B",
    fn: () => crcMem.crc32Staged(crcMem.stage(size)),
  });
  add({
    group: g,
    name: "JS slicing-by-8",
    per: size,
    unit: "B",
    fn: () => crc32Slicing8(data),
  });
}

// ---- hashing -----------------------------------------------------------------

{
  const N = 4096;
  const urls = Array.from(
    { length: N },
    (_, i) =>
      `https://cdn${i % 7}.example.com/assets/img/photo-${
        (i * 7919) % 100000
      }.jpg?w=${i % 640}`,
  );
  const avg = Math.round(urls.reduce((a, u) => a + u.length, 0) / N);
  // nsurl components of these URLs (no user, password or port).
  const comps = urls.map((u) => {
    const url = new URL(u);
    return [
      url.protocol.slice(0, -1),
      url.hostname,
      url.pathname,
      url.search.slice(1),
    ];
  });
  const mem = new IndexMemory({ entryBits: 8, identBits: 9 });
  mem.setSipKey(Uint8Array.from({ length: 16 }, (_, i) => i * 17));
  const key = new Uint8Array(16);
  const out = new Uint32Array(2 * N);
  const enc = new TextEncoder();
  const g = `hash ${N} URLs of ~${avg} bytes`;
  add({
    group: g,
    name: "JS FNV-1a over the string",
    per: N,
    unit: "keys",
    baseline: true,
    fn: () => {
      let x = 0;
      for (const u of urls) x ^= fnv1aString(u);
      return x;
    },
  });
  add({
    group: g,
    name: "wasm SipHash-1-3, batch (hashSipMany)",
    per: N,
    unit: "keys",
    fn: () => mem.hashSipMany(urls, out),
  });
  add({
    group: g,
    name: "wasm SipHash-1-3, key by key (encodeKey + hashSip)",
    per: N,
    unit: "keys",
    fn: () => {
      let x = 0;
      for (const u of urls) x ^= mem.hashSip(mem.encodeKey(u))[0];
      return x;
    },
  });
  add({
    group: g,
    name: "wasm nsurl, batch (hashNsurlMany)",
    per: N,
    unit: "keys",
    fn: () => mem.hashNsurlMany(comps, out),
  });
  add({
    group: g,
    name: "wasm nsurl, key by key (hashNsurl)",
    per: N,
    unit: "keys",
    fn: () => {
      let x = 0;
      for (const c of comps) x ^= mem.hashNsurl(c);
      return x;
    },
  });
  add({
    group: g,
    name: "JS nsurl reference",
    per: N,
    unit: "keys",
    fn: () => {
      let x = 0;
      for (const c of comps) x ^= nsurlHash(c);
      return x;
    },
  });
  add({
    group: g,
    name: "JS SipHash-1-3 reference (BigInt)",
    per: N,
    unit: "keys",
    fn: () => {
      let x = 0n;
      for (const u of urls) x ^= sipHash(1, 3, key, enc.encode(u));
      return x;
    },
  });
}

// ---- eviction ----------------------------------------------------------------

/** A table of n entries with typical usage: a month of last-use times, small use counts. */
function evictionTable(entryBits: number, n: number) {
  const mem = new IndexMemory({ entryBits, identBits: entryBits + 1 });
  const rand = rng(n);
  const pinned = new Uint8Array(n);
  const useCount = new Uint16Array(n);
  const lastUsed = new Uint32Array(n);
  const bytes = new Float64Array(n);
  let total = 0;
  for (let k = 0; k < n; k++) {
    const i = mem.add((k * 2654435761) >>> 0, k, 0);
    useCount[i] = 1 + rand(40);
    lastUsed[i] = 1_700_000_000 + rand(86400 * 30);
    mem.setUsage(i, useCount[i]!, lastUsed[i]!);
    if (rand(100) === 0) {
      pinned[i] = 1;
      mem.setPinned(i, true);
    }
    const size = 1 + rand(8000);
    mem.setElement(i, DATA, { size, loc: k, crc: 0, inFile: false });
    mem.setElement(i, META, { size: 200, loc: k, crc: 0, inFile: false });
    bytes[i] = size + 200;
    total += size + 200;
  }
  // The obvious JS alternative: sort every index with a comparator, then
  // take the prefix (what selectVictims did before the kernel).
  const jsSelect = (byteTarget: number) => {
    const order = Array.from({ length: n }, (_, i) => i);
    order.sort((a, b) =>
      pinned[a]! - pinned[b]! || useCount[a]! - useCount[b]! ||
      lastUsed[a]! - lastUsed[b]! || a - b
    );
    let sum = 0;
    let k = 0;
    while (k < n && sum < byteTarget) sum += bytes[order[k++]!]!;
    return k;
  };
  return { mem, total, jsSelect };
}

const evictSizes: [number, number][] = [[16, 65536], [20, 1_000_000]];
if (Deno.env.get("LARDER_BENCH_16M") === "1") evictSizes.push([24, 1 << 24]);
for (const [bits, n] of evictSizes) {
  const { mem, total, jsSelect } = evictionTable(bits, n);
  const g = `evict ${n.toLocaleString("en")} entries`;
  // The store frees a hysteresis share: 5% of the bytes here.
  const target = Math.floor(total / 20);
  add({
    group: g,
    name: "wasm selectVictims, 5% of bytes",
    per: n,
    unit: "entries",
    baseline: true,
    fn: () => mem.selectVictims(target, 0, 7),
  });
  add({
    group: g,
    name: "wasm selectVictims, one entry",
    per: n,
    unit: "entries",
    fn: () => mem.selectVictims(0, 1, 7),
  });
  add({
    group: g,
    name: "wasm evictionOrder (full sort)",
    per: n,
    unit: "entries",
    fn: () => mem.evictionOrder(),
  });
  if (n <= 1_000_000) {
    add({
      group: g,
      name: "JS sort + prefix, 5% of bytes",
      per: n,
      unit: "entries",
      fn: () => jsSelect(target),
    });
  }
}

// ---- slot allocation ---------------------------------------------------------

{
  const n = 1_000_000;
  const slots = 1 << 20;
  const mem = new IndexMemory({ entryBits: 20, identBits: 21 });
  const rand = rng(99);
  const freeOrder = Uint32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rand(i + 1);
    [freeOrder[i], freeOrder[j]] = [freeOrder[j]!, freeOrder[i]!];
  }
  const g = "slots: 1,000,000 claims then 1,000,000 frees (random order)";
  add({
    group: g,
    name: "wasm claimSlot / freeSlot",
    per: 2 * n,
    unit: "ops",
    baseline: true,
    fn: () => {
      for (let k = 0; k < n; k++) mem.claimSlot(DATA, slots);
      for (let k = 0; k < n; k++) mem.freeSlot(DATA, freeOrder[k]!);
    },
  });
  const ref = new RefBitmap(slots);
  add({
    group: g,
    name: "JS reference (boolean array, same hint)",
    per: 2 * n,
    unit: "ops",
    fn: () => {
      let hint = 0;
      for (let k = 0; k < n; k++) hint = ref.claim(hint) + 1;
      for (let k = 0; k < n; k++) ref.free(freeOrder[k]!);
    },
  });

  // Churn on a 90%-full map: free a random used slot, claim one. The hint
  // drops to each freed slot, so claims cross long full stretches; the
  // kernel skips them 64 words (4096 slots) a read.
  const churn = new IndexMemory({ entryBits: 20, identBits: 21 });
  const churnRef = new RefBitmap(slots);
  for (let s = 0; s < slots; s++) {
    if (rand(10) === 0) continue;
    churn.markSlot(META, s);
    churnRef.used[s] = true;
  }
  const picks = Uint32Array.from({ length: n }, () => rand(slots));
  const g2 =
    "slots: 1,000,000 (free a used slot, claim) pairs on a 90%-full map";
  add({
    group: g2,
    name: "wasm freeSlot + claimSlot",
    per: 2 * n,
    unit: "ops",
    baseline: true,
    fn: () => {
      for (let k = 0; k < n; k++) {
        const s = picks[k]!;
        if (!churn.slotUsed(META, s)) continue;
        churn.freeSlot(META, s);
        churn.claimSlot(META, slots);
      }
    },
  });
  // The boolean array walks the full stretch behind the hint slot by slot;
  // 1,000 pairs of it take as long as the kernel's million.
  let refHint = 0;
  add({
    group: g2,
    name: "JS reference (boolean array, same hint), 1,000 pairs",
    per: 2 * 1000,
    unit: "ops",
    fn: () => {
      for (let k = 0, done = 0; k < n && done < 1000; k++) {
        const s = picks[k]!;
        if (!churnRef.used[s]) continue;
        churnRef.free(s);
        if (s < refHint) refHint = s;
        refHint = churnRef.claim(refHint) + 1;
        done++;
      }
    },
  });
  const g4 = "slots: count used among 2^20";
  add({
    group: g4,
    name: "wasm usedSlots",
    per: slots,
    unit: "slots",
    baseline: true,
    fn: () => churn.usedSlots(META, slots),
  });
  add({
    group: g4,
    name: "JS reference (boolean array)",
    per: slots,
    unit: "slots",
    fn: () => churnRef.count(),
  });

  // check-store's audit over a full table.
  const audit = new IndexMemory({ entryBits: 20, identBits: 21 });
  for (let k = 0; k < n; k++) {
    const i = audit.add((k * 2654435761) >>> 0, k, 0);
    audit.setElement(i, DATA, { size: 100, loc: k, crc: 0, inFile: false });
    audit.markSlot(DATA, k);
  }
  const g3 = "slots: audit 1,000,000 entries against the use map";
  add({
    group: g3,
    name: "wasm auditSlots",
    per: n,
    unit: "entries",
    baseline: true,
    fn: () => audit.auditSlots(DATA, slots),
  });
  add({
    group: g3,
    name: "JS loop over element() and slotUsed()",
    per: n,
    unit: "entries",
    fn: () => {
      let bad = 0;
      for (let i = 0; i < audit.count; i++) {
        const rec = audit.element(i, DATA);
        if (
          rec !== undefined && !rec.inFile && !audit.slotUsed(DATA, rec.loc)
        ) bad++;
      }
      return bad;
    },
  });
}

// ---- running -------------------------------------------------------------------

if (!import.meta.main) {
  for (const c of cases) {
    Deno.bench({
      name: c.name,
      group: c.group,
      baseline: c.baseline ?? false,
      fn: c.fn as () => void,
    });
  }
} else {
  console.log(`${navigator.userAgent}, ${Deno.build.target}\n`);
  let group = "";
  const only = Deno.env.get("LARDER_BENCH_ONLY") ?? "";
  for (const c of cases) {
    if (!c.group.includes(only)) continue;
    if (c.group !== group) {
      group = c.group;
      console.log(
        `\n### ${group}\n\n| path | median | p10–p90 | throughput |\n| --- | ---: | ---: | ---: |`,
      );
    }
    const s = sample(c.fn);
    console.log(
      `| ${c.name} | ${fmtTime(s.median)} | ${fmtTime(s.p10)}–${
        fmtTime(s.p90)
      } | ${rate(c, s.median)} |`,
    );
  }
}

/** Median and spread of per-call times, in ms; calls batched to ≥ 2 ms a sample. */
function sample(
  fn: () => unknown,
): { median: number; p10: number; p90: number } {
  let reps = 1;
  const warmUntil = performance.now() + 300;
  while (performance.now() < warmUntil) {
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) fn();
    if (performance.now() - t0 < 2) reps *= 2;
  }
  const times: number[] = [];
  const stopAt = performance.now() + 1500;
  while (
    times.length < 15 || (times.length < 101 && performance.now() < stopAt)
  ) {
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) fn();
    times.push((performance.now() - t0) / reps);
  }
  times.sort((a, b) => a - b);
  const at = (q: number) =>
    times[Math.min(times.length - 1, Math.floor(q * times.length))]!;
  return { median: at(0.5), p10: at(0.1), p90: at(0.9) };
}

function fmtTime(ms: number): string {
  if (ms >= 1) return `${ms.toFixed(2)} ms`;
  if (ms >= 1e-3) return `${(ms * 1e3).toFixed(2)} µs`;
  return `${(ms * 1e6).toFixed(0)} ns`;
}

function rate(c: Case, ms: number): string {
  const perSec = c.per / (ms / 1e3);
  if (c.unit === "B") return `${(perSec / 1e9).toFixed(2)} GB/s`;
  return `${(perSec / 1e6).toFixed(2)} M ${c.unit}/s`;
}
