// Corruption fuzz: a real store image (snapshot, non-empty journal, block
// files, large files) is damaged one way at a time — single-bit flips in
// the first 4 KiB of every file (every bit of the first 512 bytes, then
// every 7th bit; block files also in their first slots; every bit of both
// control copies), every truncation length of the journal's used part and
// of both control copies, appended garbage, zeroed 4 KiB pages — or both
// control copies at once (also in an nsurl image), and opened. The store
// must open (a flipped version field may be refused with
// VERSION_MISMATCH), never return bytes a key was not given, keep working,
// and never hang (each worker reports each case; a silent one fails the
// test). Damage to the control copies must cost no element, except both
// lost in a SipHash store, which opens empty (`expectationOf`).
//
// `deno task test` runs a sample chosen by a seed, today's UTC date unless
// LARDER_FUZZ_SEED=<n> is set; `deno task test:fuzz` (LARDER_FUZZ_FULL=1)
// runs every case; LARDER_FUZZ_CASE=<i>[,<j>…] runs just those cases. A
// case's index names the same damage in every run, but the images differ
// in their random SipHash key and creation time: a failure keeps its
// images and names the LARDER_FUZZ_IMAGE=<dir> that reuses them.
import assert from "node:assert/strict";
import { BackingStore } from "../mod.ts";
import { FaultFS } from "./_fault_fs.ts";
import { attrCell, cellOf } from "./_crash_model.ts";
import {
  buildCases,
  type Case,
  CONTROL_KINDS,
  describeCase,
  FUZZ_OPTIONS,
  groupOf,
  type ImageSpec,
  ROOT,
  runDamageCase,
  sampleCases,
  seedOfToday,
  type Target,
  type Values,
} from "./_corruption_cases.ts";
import type { Job, JobImage, Problem } from "./_corruption_worker.ts";
import { bytesFor, FILE_SIZED, tempDir } from "./_helpers.ts";
import { readEntries } from "../src/journal.ts";

const WORKERS = 2;
/**
 * A worker silent for this long is stuck in a case. A case takes well
 * under a second alone; 30 s was seen to pass without progress at load
 * 15 on 2 cores (several suites at once), so the watchdog waits longer.
 */
const HANG_MS = 120_000;
/**
 * The sample's share of each group of cases, and its least size: about
 * 16 s alone and under 40 s in `deno task test` on a busy 2-core machine (the
 * full set is 2–3 min).
 */
const SAMPLE = { fraction: 0.1, minimum: 4 };

/** Builds a store on the real file system; returns the values it was given. */
async function buildImage(
  dir: string,
  imageDir: string,
  hash: ImageSpec["hash"],
): Promise<Values> {
  const values: Values = new Map();
  const st = await BackingStore.open(dir, { ...FUZZ_OPTIONS, hash });
  const put = async (key: string, size: number, meta = false, n = 1) => {
    const v = bytesFor(`${key}/${meta}/${n}`, size);
    await st.store(key, v, { meta });
    const cell = cellOf(key, meta);
    const entry = values.get(cell) ?? { key, meta, values: [], live: true };
    entry.values.push(v);
    entry.live = true;
    values.set(cell, entry);
  };
  const attr = async (key: string, name: string, size: number, n = 1) => {
    const v = bytesFor(`${key}/${name}/${n}`, size);
    await st.setAttr(key, name, v);
    const cell = attrCell(key, name);
    const entry = values.get(cell) ??
      { key, meta: false, attr: name, values: [], live: true };
    entry.values.push(v);
    entry.live = true;
    values.set(cell, entry);
  };
  // In the snapshot: attributes, on an entry and on a key with no element.
  await attr("https://s.example/0", "x", 40);
  await attr("https://s.example/attrs", "y", 60);
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
  // Attributes in the journal: new, replaced, on an invalidated entry.
  await attr("https://s.example/1", "x", 30);
  await attr("https://s.example/attrs", "y", 50, 2);
  await attr("https://s.example/3", "x", 20);
  await st.invalidate("https://s.example/3");
  values.get(attrCell("https://s.example/3", "x"))!.live = false;
  for (const meta of [false, true]) {
    const entry = values.get(cellOf("https://s.example/3", meta));
    if (entry) entry.live = false;
  }
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
    if (CONTROL_KINDS.includes(name)) {
      targets.push({
        kind: name,
        path,
        versionBytes: v,
        regions: [whole],
        exhaustive: true,
      });
    } else if (name === "entries" || name === "blocks") {
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

/** Which cases to run, and how the choice can be made again. */
function chooseCases(specs: ImageSpec[], cases: Case[]) {
  const env = (name: string) => Deno.env.get(name)?.trim() || undefined;
  const seedText = env("LARDER_FUZZ_SEED");
  const seed = seedText === undefined ? seedOfToday() : Number(seedText);
  if (!Number.isSafeInteger(seed)) {
    throw new TypeError(`Cannot run the fuzz: LARDER_FUZZ_SEED=${seedText}`);
  }
  const only = env("LARDER_FUZZ_CASE");
  if (only !== undefined) {
    const chosen = only.split(",").map(Number);
    if (!chosen.every((i) => Number.isInteger(i) && cases[i] !== undefined)) {
      throw new RangeError(`Cannot run the fuzz: LARDER_FUZZ_CASE=${only}`);
    }
    return { chosen, mode: `cases ${only}`, seed };
  }
  if (env("LARDER_FUZZ_FULL") === "1") {
    return { chosen: cases.map((_, i) => i), mode: "full", seed };
  }
  return {
    chosen: sampleCases(specs, cases, { seed, ...SAMPLE }),
    mode: `sampled, seed ${seed}${
      seedText === undefined ? " (today, UTC)" : ""
    }`,
    seed,
  };
}

/**
 * Copies the images to a directory that outlives the test (the SipHash
 * key is random, so a failure may need its image to recur); returns the
 * setting that reuses it.
 */
function keepImages(images: JobImage[]): string {
  try {
    const kept = Deno.makeTempDirSync({ prefix: "larder-fuzz-image-" });
    for (const { dir, spec } of images) {
      Deno.mkdirSync(`${kept}/${spec.hash}`);
      FaultFS.load(dir, ROOT).writeTo(ROOT, `${kept}/${spec.hash}`);
    }
    return `LARDER_FUZZ_IMAGE=${kept}`;
  } catch (err) {
    // Never hide the failure being reported behind this one.
    return `(images not kept: ${err})`;
  }
}

type Result = {
  tally: Record<string, number>;
  problems: Problem[];
  slowest: number;
  ran: number;
};

Deno.test("corruption fuzz: damage to any file opens (a flipped version may be refused) and never returns wrong bytes; control damage costs no element", async () => {
  await using src = await tempDir();
  await using img = await tempDir();
  await using nsurlSrc = await tempDir();
  await using nsurlImg = await tempDir();
  const images: JobImage[] = [];
  const reuse = Deno.env.get("LARDER_FUZZ_IMAGE")?.trim() || undefined;
  for (
    const [hash, from, to] of [
      ["siphash13", src.path, img.path],
      ["nsurl", nsurlSrc.path, nsurlImg.path],
    ] as const
  ) {
    const values = await buildImage(from, to, hash);
    // A kept image replays a failure exactly (its SipHash key included).
    const dir = reuse === undefined ? to : `${reuse}/${hash}`;
    const image = FaultFS.load(dir, ROOT);
    const targets = targetsOf(image).filter((t) =>
      hash === "siphash13" || CONTROL_KINDS.includes(t.kind)
    );
    const spec: ImageSpec = {
      hash,
      targets,
      sizes: sizesOf(image, targets),
      scope: hash === "siphash13" ? "all" : "both-controls",
    };
    // The undamaged image serves every element and attribute exactly; the
    // misses are the invalidated entry's data, metadata and attribute.
    const out = await runDamageCase(
      image,
      spec,
      { image: 0, hits: [] },
      values,
      "exact",
    );
    assert.deepEqual(out, { result: "opened", misses: 3 }, `${hash} image`);
    images.push({ dir, spec, values: [...values] });
  }
  const specs = images.map((i) => i.spec);
  assert.deepEqual(
    specs[0]!.targets.map((t) => t.kind).sort(),
    [
      "CACHEDIR.TAG",
      "blocks",
      "control",
      "control.bak",
      "dblk/A block file",
      "entries",
      "journal",
      "large data",
      "large meta",
      "mblk/A block file",
    ],
  );
  const cases = buildCases(specs);
  const { chosen, mode, seed } = chooseCases(specs, cases);
  const rerun = `LARDER_FUZZ_SEED=${seed}`;
  console.log(
    `corruption_fuzz_test: ${mode}: ${chosen.length} of ${cases.length} cases${
      mode.startsWith("sampled")
        ? ` (${rerun} repeats this sample; LARDER_FUZZ_FULL=1 runs all)`
        : ""
    }`,
  );
  const started = performance.now();
  const workers: Worker[] = [];
  const timers: ReturnType<typeof setTimeout>[] = [];
  let settled = false;
  const run = Promise.all(
    Array.from(
      { length: WORKERS },
      (_, shard) =>
        new Promise<Result>((resolve, reject) => {
          const w = new Worker(
            new URL("./_corruption_worker.ts", import.meta.url),
            { type: "module" },
          );
          workers.push(w);
          let current = -1;
          let timer = setTimeout(hung, HANG_MS);
          timers[shard] = timer;
          function hung() {
            if (settled) return;
            w.terminate();
            reject(
              new Error(
                `worker ${shard} made no progress for ${HANG_MS} ms in case ${current}${
                  current < 0
                    ? ""
                    : ` (${describeCase(specs, cases[current]!)})`
                }; ${rerun}, LARDER_FUZZ_CASE=${current} runs it alone, ${
                  keepImages(images)
                } on this image`,
              ),
            );
          }
          w.onmessage = (e) => {
            clearTimeout(timer);
            if (e.data.type === "progress") {
              current = e.data.case;
              timer = timers[shard] = setTimeout(hung, HANG_MS);
            } else {
              w.terminate();
              resolve(e.data);
            }
          };
          w.onerror = (e) => {
            clearTimeout(timer);
            w.terminate();
            reject(
              new Error(
                `worker ${shard} in case ${current} (${rerun}, ${
                  keepImages(images)
                }): ${e.message}`,
              ),
            );
          };
          const job: Job = { images, chosen, shard, shards: WORKERS };
          w.postMessage(job);
        }),
    ),
  );
  // A failing worker must not leave the others running, nor their
  // watchdogs firing after the images are gone.
  const results = await run.finally(() => {
    settled = true;
    timers.forEach((t) => clearTimeout(t));
    workers.forEach((w) => w.terminate());
  });
  const problems = results.flatMap((r) => r.problems)
    .sort((a, b) => a.case - b.case);
  assert.deepEqual(
    problems.map((p) => p.case),
    [],
    problems.length === 0
      ? ""
      : `${mode}; ${rerun}, LARDER_FUZZ_CASE=${
        problems.map((p) => p.case).join(",")
      } runs the failing cases alone, ${keepImages(images)} on this image:\n${
        problems.map((p) => `case ${p.case}: ${p.what}`).join("\n")
      }`,
  );
  const ran = results.reduce((a, r) => a + r.ran, 0);
  assert.equal(ran, chosen.length);
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
  const byGroup = new Map<string, number>();
  for (const i of chosen) {
    const g = groupOf(specs, cases[i]!).split(" ").slice(0, -1).join(" ");
    byGroup.set(g, (byGroup.get(g) ?? 0) + 1);
  }
  const refused = Object.entries(tally).filter(([k]) => !k.endsWith("opened"))
    .map(([k, n]) => `${k}: ${n}`).join(", ");
  console.log(
    `corruption_fuzz_test: ${ran} cases (${
      Object.entries(byOp).map(([k, n]) => `${n} ${k}`).join(", ")
    }; ${[...byGroup].map(([k, n]) => `${n} ${k}`).join(", ")}); refused: ${
      refused || "none"
    }; slowest case ${
      Math.max(...results.map((r) => r.slowest)).toFixed(0)
    } ms; ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
});
