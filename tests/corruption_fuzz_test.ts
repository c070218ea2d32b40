// Corruption fuzz: a real store image (snapshot, non-empty journal, block
// files, large files) is damaged one way at a time — single-bit flips in
// the first 4 KiB of every file (every bit of the first 512 bytes, then
// every 7th bit; block files also in their first slots), every truncation
// length of the journal's used part, appended garbage, zeroed 4 KiB pages —
// and opened. The store must open (or refuse with a typed StoreError where
// that is right), never return bytes a key was not given, keep working, and
// never hang (each worker reports progress; a silent one fails the test).
import assert from "node:assert/strict";
import { BackingStore } from "../mod.ts";
import { FaultFS } from "./_fault_fs.ts";
import { cellOf } from "./_crash_model.ts";
import {
  buildCases,
  FUZZ_OPTIONS,
  ROOT,
  type Target,
} from "./_corruption_cases.ts";
import type { Job } from "./_corruption_worker.ts";
import { bytesFor, FILE_SIZED, tempDir } from "./_helpers.ts";
import { readEntries } from "../src/journal.ts";

const WORKERS = 2;
/** A worker silent for this long is stuck in a case. */
const HANG_MS = 30_000;

type Values = Map<string, { key: string; meta: boolean; values: Uint8Array[] }>;

/** Builds a store on the real file system; returns the values it was given. */
async function buildImage(dir: string, imageDir: string): Promise<Values> {
  const values: Values = new Map();
  const st = await BackingStore.open(dir, FUZZ_OPTIONS);
  const put = async (key: string, size: number, meta = false, n = 1) => {
    const v = bytesFor(`${key}/${meta}/${n}`, size);
    await st.store(key, v, { meta });
    const cell = cellOf(key, meta);
    const entry = values.get(cell) ?? { key, meta, values: [] };
    entry.values.push(v);
    values.set(cell, entry);
  };
  // In the snapshot: small, run and large data; small and large metadata.
  for (let i = 0; i < 8; i++) {
    await put(`https://s.example/${i}`, 200 + i * 700);
  }
  for (let i = 0; i < 4; i++) {
    await put(`https://s.example/${i}`, 100 + i * 200, true);
  }
  await put("https://s.example/large", FILE_SIZED + 3000);
  await put("https://s.example/large", 5000, true);
  await put("https://s.example/run", 30000);
  await st.flush();
  // In the journal only: new keys, replacements, an invalidation.
  for (let i = 8; i < 12; i++) await put(`https://s.example/${i}`, 1000);
  await put("https://s.example/1", 3000, false, 2);
  await put("https://s.example/2", 700, true, 2);
  await put("https://s.example/large2", FILE_SIZED + 2000);
  await put("https://s.example/run2", 20000);
  await put("https://s.example/large2", 1500, true);
  await st.invalidate("https://s.example/3");
  // The image is the disk as a process dying now leaves it.
  FaultFS.load(dir, ROOT).writeTo(ROOT, imageDir);
  await st.close();
  return values;
}

function targetsOf(fs: FaultFS): Target[] {
  const v: [number, number][] = [[8, 12]];
  const targets: Target[] = [];
  for (const path of fs.files()) {
    const name = path.slice(ROOT.length + 1);
    const length = fs.fileLength(path);
    const whole: [number, number] = [0, Math.min(length, 4096)];
    if (name === "control" || name === "entries" || name === "blocks") {
      targets.push({ kind: name, path, versionBytes: v, regions: [whole] });
    } else if (name === "CACHEDIR.TAG") {
      targets.push({ kind: name, path, versionBytes: [], regions: [whole] });
    } else if (name.startsWith("journal-")) {
      targets.push({
        kind: "journal",
        path,
        versionBytes: v,
        regions: [whole],
      });
    } else if (name === "dblk/A" || name === "mblk/A") {
      // The header page, and the first slots (element headers, keys, bytes).
      targets.push({
        kind: `${name} block file`,
        path,
        versionBytes: [[8, 12], [4100, 4101]],
        regions: [[0, 4096], [4096, 4096 + 4096]],
      });
    } else if (
      name.startsWith("d/") && !targets.some((t) => t.kind === "large data")
    ) {
      targets.push({
        kind: "large data",
        path,
        versionBytes: [[4, 5]],
        regions: [whole],
      });
    } else if (
      name.startsWith("m/") && !targets.some((t) => t.kind === "large meta")
    ) {
      targets.push({
        kind: "large meta",
        path,
        versionBytes: [[4, 5]],
        regions: [whole],
      });
    }
  }
  return targets;
}

function sizesOf(fs: FaultFS, targets: Target[]) {
  return targets.map((t) => {
    const { length, data } = fs.contentOf(t.path);
    const used = t.kind === "journal" ? readEntries(data).end : data.length;
    return { length, used };
  });
}

Deno.test("corruption fuzz: every file kind damaged opens or is refused with a typed error, never wrong bytes", async () => {
  await using src = await tempDir();
  await using img = await tempDir();
  const values = await buildImage(src.path, img.path);
  const image = FaultFS.load(img.path, ROOT);
  const targets = targetsOf(image);
  assert.deepEqual(
    targets.map((t) => t.kind).sort(),
    [
      "CACHEDIR.TAG",
      "blocks",
      "control",
      "dblk/A block file",
      "entries",
      "journal",
      "large data",
      "large meta",
      "mblk/A block file",
    ],
  );
  const sizes = sizesOf(image, targets);
  const total = buildCases(targets, sizes).length;
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: WORKERS }, (_, shard) =>
      new Promise<{
        tally: Record<string, number>;
        problems: string[];
        slowest: number;
        ran: number;
      }>((resolve, reject) => {
        const w = new Worker(
          new URL("./_corruption_worker.ts", import.meta.url),
          { type: "module" },
        );
        let lastCase = -1;
        let timer = setTimeout(hung, HANG_MS);
        function hung() {
          w.terminate();
          reject(
            new Error(
              `worker ${shard} made no progress for ${HANG_MS} ms after case ${lastCase}`,
            ),
          );
        }
        w.onmessage = (e) => {
          clearTimeout(timer);
          if (e.data.type === "progress") {
            lastCase = e.data.case;
            timer = setTimeout(hung, HANG_MS);
          } else {
            w.terminate();
            resolve(e.data);
          }
        };
        w.onerror = (e) => {
          clearTimeout(timer);
          w.terminate();
          reject(new Error(`worker ${shard}: ${e.message}`));
        };
        const job: Job = {
          dir: img.path,
          targets,
          sizes,
          values: [...values],
          shard,
          shards: WORKERS,
        };
        w.postMessage(job);
      })),
  );
  const problems = results.flatMap((r) => r.problems);
  assert.deepEqual(problems, [], problems.join("\n"));
  const ran = results.reduce((a, r) => a + r.ran, 0);
  assert.equal(ran, total);
  const tally: Record<string, number> = {};
  for (const r of results) {
    for (const [k, n] of Object.entries(r.tally)) {
      tally[k] = (tally[k] ?? 0) + n;
    }
  }
  const byOp: Record<string, number> = {};
  for (const [k, n] of Object.entries(tally)) {
    const op = k.split(" ").at(-2)!;
    byOp[op] = (byOp[op] ?? 0) + n;
  }
  const refused = Object.entries(tally).filter(([k]) => !k.endsWith("opened"))
    .map(([k, n]) => `${k}: ${n}`).join(", ");
  console.log(
    `corruption_fuzz_test: ${ran} cases (${
      Object.entries(byOp).map(([k, n]) => `${n} ${k}`).join(", ")
    }) over ${targets.length} files; refused: ${
      refused || "none"
    }; slowest case ${
      Math.max(...results.map((r) => r.slowest)).toFixed(0)
    } ms; ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
});
