/**
 * check-store speed: verifying a store next to reading its bytes once.
 *
 *   deno run -A bench/check_store_bench.ts [--dir DIR] [--keep]
 *
 * builds (or reuses, with `--dir` of an existing store) a store of 60,000
 * small entries plus 20,000 of mixed sizes (256 B to 512 KiB, log-uniform;
 * entryBits 17), then times, with a warm page cache, `cat` of every file of
 * the store to /dev/null and `checkStore` (best of 3), and prints both in
 * MB/s. Under `deno task bench` it times a 2,000-entry store against
 * reading all of that store's files in-process.
 *
 * @module
 */
import { BackingStore } from "../mod.ts";
import { checkStore } from "../src/check.ts";

const SMALL = 60_000;
const MIXED = 20_000;

/** A fixed pool of pseudo-random bytes elements are cut from. */
const pool = new Uint8Array(1 << 20);
for (let i = 0, s = 0x9e3779b9; i < pool.length; i++) {
  s = (s ^ (s << 13)) >>> 0;
  s = (s ^ (s >>> 17)) >>> 0;
  s = (s ^ (s << 5)) >>> 0;
  pool[i] = s & 0xff;
}

function bytes(seed: number, size: number): Uint8Array {
  if (size <= pool.length) {
    const at = (seed * 7919) % (pool.length - size + 1);
    return pool.subarray(at, at + size);
  }
  const out = new Uint8Array(size);
  for (let at = 0; at < size; at += pool.length) {
    out.set(pool.subarray(0, Math.min(pool.length, size - at)), at);
  }
  return out;
}

/** Fills `dir` with `small` small entries and `mixed` of mixed sizes. */
async function build(dir: string, small: number, mixed: number) {
  const store = await BackingStore.open(dir, {
    entryBits: 17,
    limit: 2 ** 34,
  });
  let rnd = 12345;
  const next = () => {
    rnd = (Math.imul(rnd, 1103515245) + 12345) >>> 0;
    return rnd / 2 ** 32;
  };
  try {
    for (let i = 0; i < small + mixed; i++) {
      const key = `https://cdn${i % 17}.example.com/assets/${i}/file-${
        i.toString(36)
      }.js?v=${i % 7}`;
      const size = i < small
        ? 500 + Math.floor(next() * 1500)
        : Math.floor(256 * 2 ** (next() * 11));
      await store.store(key, bytes(i, size));
      await store.store(key, bytes(i + 1, 100 + (i % 200)), { meta: true });
    }
  } finally {
    await store.close();
  }
}

function mbps(bytes: number, ms: number): string {
  return (bytes / 1e6 / (ms / 1000)).toFixed(0);
}

async function full(args: string[]): Promise<void> {
  const at = args.indexOf("--dir");
  const keep = args.includes("--keep") || at >= 0;
  const dir = at >= 0
    ? args[at + 1]!
    : await Deno.makeTempDir({ prefix: "larder-check-bench-" });
  try {
    let exists = false;
    try {
      exists = Deno.statSync(`${dir}/control`).isFile;
    } catch { /* build it */ }
    if (!exists) {
      const t = performance.now();
      await build(dir, SMALL, MIXED);
      console.log(
        `built ${SMALL} small + ${MIXED} mixed entries in ${
          ((performance.now() - t) / 1000).toFixed(1)
        } s`,
      );
    }
    const du = new Deno.Command("du", { args: ["-sb", dir] }).outputSync();
    const duk = new Deno.Command("du", { args: ["-sk", dir] }).outputSync();
    const apparent = Number(new TextDecoder().decode(du.stdout).split("\t")[0]);
    const allocated =
      Number(new TextDecoder().decode(duk.stdout).split("\t")[0]) * 1024;
    const cat = () => {
      const t = performance.now();
      const r = new Deno.Command("sh", {
        args: ["-c", `find "$1" -type f -exec cat {} + > /dev/null`, "-", dir],
      }).outputSync();
      if (!r.success) throw new Error("cat failed");
      return performance.now() - t;
    };
    cat(); // warm the page cache
    const catMs = Math.min(cat(), cat(), cat());
    let best = Infinity;
    let report;
    for (let k = 0; k < 3; k++) {
      report = await checkStore(dir);
      best = Math.min(best, report.durationMs);
    }
    const r = report!;
    if (!r.ok) throw new Error(`store not clean: ${r.problems[0]?.code}`);
    const s = r.stats!;
    console.log(
      `store: ${s.entries} entries, ${s.elements.data + s.elements.meta} ` +
        `elements, ${(s.bytes / 1e6).toFixed(0)} MB of elements; files ` +
        `${(apparent / 1e6).toFixed(0)} MB apparent (sparse block files and ` +
        `journal), ${(allocated / 1e6).toFixed(0)} MB allocated`,
    );
    console.log(
      `cat of every file to /dev/null: ${catMs.toFixed(0)} ms ` +
        `(${mbps(apparent, catMs)} MB/s of apparent bytes, ` +
        `${mbps(allocated, catMs)} MB/s of allocated)`,
    );
    console.log(
      `checkStore: ${best.toFixed(0)} ms, ${(r.bytesRead / 1e6).toFixed(0)} ` +
        `MB read (${mbps(r.bytesRead, best)} MB/s read, ` +
        `${mbps(s.bytes, best)} MB/s of element bytes verified)`,
    );
  } finally {
    if (!keep) await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  await full(Deno.args);
} else {
  const dir = await Deno.makeTempDir({ prefix: "larder-check-bench-" });
  await build(dir, 1500, 500);
  globalThis.addEventListener("unload", () => {
    Deno.removeSync(dir, { recursive: true });
  });
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of Deno.readDirSync(d)) {
      if (e.isDirectory) walk(`${d}/${e.name}`);
      else files.push(`${d}/${e.name}`);
    }
  };
  walk(dir);
  Deno.bench({
    name: "read every file of the store",
    group: "check 2,000 entries",
    baseline: true,
  }, () => {
    for (const f of files) Deno.readFileSync(f);
  });
  Deno.bench({ name: "checkStore", group: "check 2,000 entries" }, async () => {
    await checkStore(dir);
  });
}
