/**
 * Victim selection at the largest table (issue 16 goal 4): an index of
 * entryBits 24 filled with `--entries` (default 2^24) entries of typical
 * usage (use counts 1–40, last uses over 30 days, 1% pinned, 100 B
 * bodies), timing `selectVictims` for the targets a store asks for: a
 * full table's 1/64 of the entries (a put past it), 5% of the bytes, one
 * entry, a fifth of the entries (a reopen under a lower limit). Each
 * runs `--runs` times (min and median). Tables of up to the scratch's
 * candidates (half the capacity) also time the exact selection
 * (`exactSelectionMax` raised), for the ratio in one run.
 *
 *   deno run -A bench/evict_select.ts [--entries 16777216] [--runs 5]
 *
 * Also reports the index's WASM memory per entry (`memoryBytes`).
 * @module
 */
import { DATA, IndexMemory } from "../src/index_memory.ts";
import { rng } from "../tests/_reference/rng.ts";

function arg(name: string, dflt: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(Deno.args[i + 1]);
  if (!Number.isInteger(v) || v <= 0) {
    throw new RangeError(`Cannot run: --${name} must be a positive integer`);
  }
  return v;
}
const n = arg("entries", 2 ** 24);
const runs = arg("runs", 5);
const entryBits = 24;

const t0 = performance.now();
const mem = new IndexMemory({ entryBits, identBits: entryBits + 1 });
const rand = rng(n);
let total = 0;
for (let k = 0; k < n; k++) {
  const i = mem.add((k * 2654435761) >>> 0, k, 0);
  mem.setUsage(i, 1 + rand(40), 1_700_000_000 + rand(86400 * 30));
  if (rand(100) === 0) mem.setPinned(i, true);
  mem.setElement(i, DATA, { size: 100, loc: k * 2, crc: 0, inFile: false });
  total += 128; // two 64-byte data slots
}
const load = () => Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
console.error(
  `built ${n} entries in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
);
console.log(
  `entries ${n}, capacity ${mem.capacity}: WASM memory ${
    (mem.memoryBytes / 2 ** 20).toFixed(0)
  } MiB, ${
    (mem.memoryBytes / mem.capacity).toFixed(1)
  } B per capacity slot; load ${load()}`,
);

const cases: [string, number, number][] = [
  ["1/64 of the entries", 0, Math.ceil(mem.capacity / 64)],
  ["5% of the bytes", Math.floor(total / 20), 0],
  ["one entry", 0, 1],
  ["a fifth of the entries", 0, Math.ceil(n / 5)],
];
const exact = mem.count <= mem.maxCandidates;
console.log(
  "\n| target | victims | sampled: min / median ms | partial |" +
    (exact ? " exact: min / median ms | same victims |" : ""),
);
console.log("| --- | ---: | ---: | --- |" + (exact ? " ---: | --- |" : ""));
function time(f: () => Uint32Array): [number[], Uint32Array, boolean] {
  const ts: number[] = [];
  let r: Uint32Array = new Uint32Array();
  for (let k = 0; k < runs; k++) {
    const t = performance.now();
    r = f();
    ts.push(performance.now() - t);
  }
  ts.sort((a, b) => a - b);
  return [ts, r, mem.selectionComplete];
}
const fmt = (ts: number[]) =>
  `${ts[0]!.toFixed(1)} / ${ts[Math.floor(ts.length / 2)]!.toFixed(1)}`;
for (const [name, bytes, entries] of cases) {
  mem.exactSelectionMax = 2 ** 20;
  const [ts, got, complete] = time(() => mem.selectVictims(bytes, entries, 7));
  let row = `| ${name} | ${got.length} | ${fmt(ts)} | ${
    complete ? "no" : "yes"
  } |`;
  if (exact) {
    mem.exactSelectionMax = Infinity;
    const [te, want] = time(() => mem.selectVictims(bytes, entries, 7));
    const same = complete && want.length === got.length &&
      want.every((v, j) => v === got[j]);
    row += ` ${fmt(te)} | ${same ? "yes" : "no"} |`;
  }
  console.log(row);
}
console.log(`\nload ${load()}`);
