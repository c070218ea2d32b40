/**
 * Open and close times (issue 16, goal 2): creating a store, opening an
 * empty one, opening a 60,000-entry store and its first get, and opening
 * and closing a 1,000,000-entry store (clean, and after 1,000 puts).
 *
 *   deno run -A bench/open_close.ts [--runs 7] [--big 1000000]
 *     [--module path/to/mod.ts ...] [--profile PHASE]
 *
 * Every sample runs in a fresh child process, as a user's first open would
 * (the module is imported before the clock starts: its load and WASM
 * compile are reported apart, as `import`); the child then closes, opens
 * again and reports that second open as the warm figure. With several
 * `--module` (e.g. `git archive` exports of two commits) the children of
 * each module alternate, so both see the same load; the stores are built
 * once (under `--dir`, default a temp dir) and shared. `--profile PHASE`
 * runs that phase once with `--cpu-prof` and prints the profile's path.
 * Beside wall times the table gives the CPU time (user + system) of open
 * and close: on a loaded machine wall time mostly measures the wait for a
 * core, CPU time what the call itself costs (waits for fsync and the disk
 * count in wall time only).
 *
 * @module
 */
import { cpuUsage } from "node:process";
import { parseArgs } from "node:util";

const PHASES = [
  "create",
  "empty",
  "open60k",
  "open1m",
  "close1m",
] as const;
type Phase = typeof PHASES[number];

interface Sample {
  importMs: number;
  openMs: number;
  /** CPU time (user + system) of the open, ms: less sensitive to load. */
  openCpuMs: number;
  firstGetMs?: number;
  putsMs?: number;
  closeMs: number;
  closeCpuMs: number;
  warmOpenMs: number;
  warmOpenCpuMs: number;
  warmFirstGetMs?: number;
}

const keyOf = (i: number) =>
  `https://host${i % 97}.example/static/${i}/item.js?v=${i.toString(36)}`;
const body = new Uint8Array(100).map((_, i) => i * 7);
const meta = new Uint8Array(32).map((_, i) => i * 3);

function bitsFor(n: number): number {
  let bits = 16;
  while (bits < 24 && 2 ** bits < n * 2) bits++;
  return bits;
}

// deno-lint-ignore no-explicit-any
type Mod = any;

/** CPU time (user + system) since `from`, ms. */
function cpuMs(from: { user: number; system: number }): number {
  const d = cpuUsage(from);
  return (d.user + d.system) / 1000;
}

async function child(
  mod: string,
  phase: Phase,
  dir: string,
  big: number,
): Promise<Sample> {
  const t0 = performance.now();
  const { BackingStore } = (await import(mod)) as Mod;
  const importMs = performance.now() - t0;
  const n = phase === "open60k" ? 60_000 : big;
  const options = phase === "create" || phase === "empty"
    ? {}
    : { entryBits: bitsFor(n), limit: 2 ** 34 };
  const path = phase === "create" ? `${dir}/new-${crypto.randomUUID()}` : dir;
  let c = cpuUsage();
  let t = performance.now();
  let store = await BackingStore.open(path, options);
  const openMs = performance.now() - t;
  const openCpuMs = cpuMs(c);
  const s: Sample = {
    importMs,
    openMs,
    openCpuMs,
    closeMs: 0,
    closeCpuMs: 0,
    warmOpenMs: 0,
    warmOpenCpuMs: 0,
  };
  const probe = keyOf(Math.floor(Math.random() * n));
  const hasEntries = phase === "open60k" || phase === "open1m" ||
    phase === "close1m";
  if (hasEntries) {
    t = performance.now();
    const hit = await store.fetchEntry(probe);
    s.firstGetMs = performance.now() - t;
    if (hit === undefined) throw new Error(`miss for ${probe}`);
    hit.release();
  }
  if (phase === "close1m") {
    t = performance.now();
    for (let i = 0; i < 1000; i++) {
      const k = Math.floor(Math.random() * n);
      await store.storeEntry(keyOf(k), body, meta);
    }
    s.putsMs = performance.now() - t;
  }
  c = cpuUsage();
  t = performance.now();
  await store.close();
  s.closeMs = performance.now() - t;
  s.closeCpuMs = cpuMs(c);
  c = cpuUsage();
  t = performance.now();
  store = await BackingStore.open(path, options);
  s.warmOpenMs = performance.now() - t;
  s.warmOpenCpuMs = cpuMs(c);
  if (hasEntries) {
    t = performance.now();
    const hit = await store.fetchEntry(probe);
    s.warmFirstGetMs = performance.now() - t;
    hit?.release();
  }
  await store.close();
  if (phase === "create") await Deno.remove(path, { recursive: true });
  return s;
}

async function populate(mod: string, dir: string, n: number): Promise<void> {
  const { BackingStore } = (await import(mod)) as Mod;
  const store = await BackingStore.open(dir, {
    entryBits: bitsFor(n),
    limit: 2 ** 34,
  });
  for (let i = 0; i < n; i++) await store.storeEntry(keyOf(i), body, meta);
  await store.close();
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function runChild(
  args: string[],
  flags: string[] = [],
): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...flags, new URL(import.meta.url).pathname, ...args],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`child ${args.join(" ")} failed`);
  return new TextDecoder().decode(out.stdout);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function fmt(xs: number[]): string {
  if (xs.length === 0) return "—";
  const s = [...xs].sort((a, b) => a - b);
  const d = (x: number) => x < 10 ? x.toFixed(2) : x.toFixed(1);
  const p90 = s[Math.min(s.length - 1, Math.ceil(0.9 * s.length) - 1)]!;
  return `${d(median(s))} / ${d(p90)} (${d(s[0]!)}–${d(s[s.length - 1]!)})`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      child: { type: "string" },
      populate: { type: "string" },
      mod: { type: "string" },
      dir: { type: "string" },
      runs: { type: "string", default: "7" },
      big: { type: "string", default: "1000000" },
      module: { type: "string", multiple: true },
      profile: { type: "string" },
      phases: { type: "string" },
    },
  });
  const big = Number(values.big);
  if (values.child !== undefined) {
    const s = await child(
      values.mod!,
      values.child as Phase,
      values.dir!,
      big,
    );
    console.log(JSON.stringify(s));
    return;
  }
  if (values.populate !== undefined) {
    await populate(values.mod!, values.dir!, Number(values.populate));
    return;
  }
  const modules = (values.module ?? [
    new URL("../mod.ts", import.meta.url)
      .pathname,
  ]).map((m) => new URL(m, `file://${Deno.cwd()}/`).href);
  const root = values.dir ??
    await Deno.makeTempDir({ prefix: "larder-openbench-" });
  await Deno.mkdir(root, { recursive: true });
  const dirs: Record<Phase, string> = {
    create: root,
    empty: `${root}/empty`,
    open60k: `${root}/s60k`,
    open1m: `${root}/s${big}`,
    close1m: `${root}/s${big}`,
  };
  for (
    const [path, n] of [[dirs.open60k, 60_000], [dirs.open1m, big]] as const
  ) {
    if (await exists(`${path}/control`)) continue;
    const t = performance.now();
    await runChild([
      "--populate",
      String(n),
      "--mod",
      modules[0]!,
      "--dir",
      path,
    ]);
    console.error(
      `built ${path}: ${n} entries in ${
        ((performance.now() - t) / 1000).toFixed(1)
      } s`,
    );
  }
  if (!await exists(`${dirs.empty}/control`)) {
    await runChild(["--child", "create", "--mod", modules[0]!, "--dir", root]);
    await runChild([
      "--child",
      "empty",
      "--mod",
      modules[0]!,
      "--dir",
      dirs.empty,
    ]);
  }
  const phases = values.phases === undefined
    ? [...PHASES]
    : values.phases.split(",") as Phase[];
  if (values.profile !== undefined) {
    const phase = values.profile as Phase;
    const profDir = await Deno.makeTempDir({ prefix: "larder-prof-" });
    const out = await runChild([
      "--child",
      phase,
      "--mod",
      modules[0]!,
      "--dir",
      dirs[phase],
      "--big",
      String(big),
    ], ["--cpu-prof", `--cpu-prof-dir=${profDir}`]);
    console.log(out.trim());
    for await (const e of Deno.readDir(profDir)) {
      console.log(`${profDir}/${e.name}`);
    }
    return;
  }
  const runs = Number(values.runs);
  const results = new Map<string, Sample[]>();
  for (let r = 0; r < runs; r++) {
    for (const phase of phases) {
      for (const mod of modules) {
        const out = await runChild([
          "--child",
          phase,
          "--mod",
          mod,
          "--dir",
          dirs[phase],
          "--big",
          String(big),
        ]);
        const key = `${phase}\t${mod}`;
        const list = results.get(key) ?? [];
        list.push(JSON.parse(out) as Sample);
        results.set(key, list);
      }
    }
  }
  const load = await Deno.readTextFile("/proc/loadavg").catch(() => "?");
  console.log(
    `# open_close: ${runs} runs, median / p90 (min–max) ms; load ${
      load.split(" ").slice(0, 3).join(" ")
    }`,
  );
  console.log(
    "| phase | module | import | open | open CPU | first get | puts | close | close CPU | warm open | warm open CPU | warm first get |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const phase of phases) {
    for (const mod of modules) {
      const xs = results.get(`${phase}\t${mod}`)!;
      const col = (f: (s: Sample) => number | undefined) =>
        fmt(xs.map(f).filter((x): x is number => x !== undefined));
      console.log(
        `| ${phase} | ${mod.replace(/^file:\/\//, "")} | ${
          col((s) => s.importMs)
        } | ${col((s) => s.openMs)} | ${col((s) => s.openCpuMs)} | ${
          col((s) => s.firstGetMs)
        } | ${col((s) => s.putsMs)} | ${col((s) => s.closeMs)} | ${
          col((s) => s.closeCpuMs)
        } | ${col((s) => s.warmOpenMs)} | ${col((s) => s.warmOpenCpuMs)} | ${
          col((s) => s.warmFirstGetMs)
        } |`,
      );
    }
  }
}

await main();
