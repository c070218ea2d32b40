/**
 * Disk use: what a store's directory takes on disk (`du`: allocated
 * blocks of every file and directory, index and journal included) next
 * to what it holds (data + metadata + key bytes), for 1,000,000 entries
 * of 100 B and the peer comparison's `small` and `mixed` workloads
 * (bench/compare/workload.ts), and for a store written far past its limit.
 *
 *   deno run -A bench/disk_use.ts [--quick] [--only=NAME]
 *
 * Prints one table row per case: entries held, bytes held, allocated
 * bytes, amplification (allocated / held) and allocated / limit.
 * @module
 */
import { BackingStore } from "../mod.ts";
import { makeWorkload, type WorkloadName } from "./compare/workload.ts";

const quick = Deno.args.includes("--quick");
const only = Deno.args.find((a) => a.startsWith("--only="))?.slice(7);
const enc = new TextEncoder();

/** Allocated bytes under `path` (st_blocks × 512 of every name, as du). */
export function allocatedBytes(path: string): number {
  const st = Deno.lstatSync(path);
  let total = (st.blocks ?? 0) * 512;
  if (st.isDirectory) {
    for (const e of Deno.readDirSync(path)) {
      total += allocatedBytes(`${path}/${e.name}`);
    }
  }
  return total;
}

interface Row {
  name: string;
  entries: number;
  held: number;
  allocated: number;
  limit: number;
  ms: number;
}

async function run(
  name: string,
  limit: number,
  entryBits: number,
  fill: (store: BackingStore) => Promise<number>,
): Promise<Row> {
  const dir = await Deno.makeTempDir({ prefix: "larder-disk-" });
  const t0 = performance.now();
  const store = await BackingStore.open(`${dir}/s`, { limit, entryBits });
  const keyBytes = await fill(store);
  const st = store.stats();
  // Keys count while nothing was evicted (their bytes are not kept apart).
  const held = st.bytes + (st.evictions === 0 ? keyBytes : 0);
  const entries = st.entries;
  await store.close();
  const ms = performance.now() - t0;
  const allocated = allocatedBytes(`${dir}/s`);
  await Deno.remove(dir, { recursive: true });
  return { name, entries, held, allocated, limit, ms };
}

function workload(name: WorkloadName) {
  return async (store: BackingStore) => {
    const w = makeWorkload(name, { scale: quick ? 0.1 : 1 });
    let keys = 0;
    for (let i = 0; i < w.objects.length; i++) {
      await store.storeEntry(w.objects[i]!.key, w.body(i), w.meta(i));
      keys += enc.encode(w.objects[i]!.key).length;
    }
    return keys;
  };
}

const n100 = quick ? 100_000 : 1_000_000;
const body100 = new Uint8Array(100).fill(7);
// Keys as the peer comparison's (~60 characters).
const key = (i: number) =>
  `https://host${i % 16}.example/static/js/${
    i.toString(36).padStart(8, "0")
  }.js?v=${(i * 2654435761 >>> 0).toString(16).padStart(8, "0")}`;

const cases: [string, () => Promise<Row>][] = [
  [
    "1M x 100 B",
    () =>
      run(`${n100} x 100 B`, 2 ** 30, 20, async (s) => {
        let keys = 0;
        for (let i = 0; i < n100; i++) {
          const k = key(i);
          await s.store(k, body100);
          keys += k.length;
        }
        return keys;
      }),
  ],
  ["small", () => run("small", 2 ** 30, 17, workload("small"))],
  ["mixed", () => run("mixed", 2 ** 31, 16, workload("mixed"))],
  [
    "past limit",
    () =>
      run(
        "size mix 1 B-4 MiB, 8x the 64 MiB limit",
        64 * 2 ** 20,
        16,
        async (s) => {
          let x = 12345;
          const next = () => (x = (x * 1103515245 + 12345) >>> 0);
          const pool = new Uint8Array(4 * 2 ** 20).map(() => next() & 255);
          let written = 0;
          for (let i = 0; written < 8 * 64 * 2 ** 20; i++) {
            const r = next() % 100;
            const size = r < 60
              ? 1 + next() % 512
              : r < 90
              ? 1 + next() % 65536
              : 1 + next() % (4 * 2 ** 20);
            await s.store(`k${i}`, pool.subarray(0, size));
            written += size;
          }
          return 0;
        },
      ),
  ],
];

console.log(
  "| case | entries | held MB | allocated MB | amplification | allocated / limit | s |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const [name, f] of cases) {
  if (only !== undefined && only !== name) continue;
  const r = await f();
  console.log(
    `| ${r.name} | ${r.entries} | ${(r.held / 1e6).toFixed(1)} | ${
      (r.allocated / 1e6).toFixed(1)
    } | ${(r.allocated / r.held).toFixed(2)}× | ${
      (r.allocated / r.limit).toFixed(2)
    } | ${(r.ms / 1000).toFixed(1)} |`,
  );
}
