/**
 * `deno task bench:netsurf`: NetSurf's C backing store (the anchor in
 * /work/shared/anchors/netsurf-c, built unmodified from the seed) against
 * larder on the anchor's exact workload, in one run, on one tmpfs this
 * script mounts (root only) and unmounts. See bench/README.md.
 *
 * Flags: --rounds R (default 3; the order of C and larder alternates per
 * round), --anchor DIR (default /work/shared/anchors/netsurf-c), --seed
 * FILE (default the anchor's seed in /work/shared/seeds), --out FILE
 * (default bench/results/netsurf-latest.md).
 *
 * @module
 */
import { join } from "node:path";
import { flag } from "../_flags.ts";
import { CHECK_VALUES } from "./workload.ts";

const HERE = new URL(".", import.meta.url).pathname;
const REPO = new URL("../../", import.meta.url).pathname;
const ROUNDS = Number(flag("rounds", "3"));
const ANCHOR = flag("anchor", "/work/shared/anchors/netsurf-c");
const SEED = flag("seed", "/work/shared/seeds/000_2e4dcb5023f86c7f.txt");
const OUT = flag("out", join(REPO, "bench/results/netsurf-latest.md"));
const CASES = [
  ["mixed", "20000", "noevict"],
  ["mixed", "20000", "evict"],
  ["small", "60000", "noevict"],
  ["small", "60000", "evict"],
] as const;
const IMPLS = ["c", "entry", "element"] as const;
type Impl = typeof IMPLS[number];

/** One case's figures from one implementation. */
interface Figures {
  storeObjs: number;
  fetchObjs: number;
  hits: number;
  wrong: number;
  bad: number;
  storeFail: number;
}

async function run(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<string> {
  const out = await new Deno.Command(cmd, { args, env, stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed: ${text}${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  return text;
}

function field(text: string, line: string, name: string): number {
  const l = text.split("\n").find((s) => s.startsWith(line));
  const m = l?.match(new RegExp(`\\b${name}=([0-9.]+)`));
  if (m === undefined || m === null) {
    throw new Error(`Cannot read ${line} ${name} from the anchor: ${text}`);
  }
  return Number(m[1]);
}

async function runC(dir: string, c: readonly string[]): Promise<Figures> {
  const text = await run("sh", [join(ANCHOR, "run.sh"), SEED, ...c], {
    TMPDIR: dir,
  });
  // The anchor's first line must carry the check values larder's side
  // asserts too: both run the same workload.
  const want = CHECK_VALUES[`${c[0]} ${c[1]}`]!;
  const first = text.split("\n")[0]!;
  for (
    const part of [
      `workload_bytes=${want.workloadBytes}`,
      `data_bytes=${want.dataBytes}`,
      `size_fingerprint=${want.sizeFingerprint}`,
      ...(want.buckets === undefined ? [] : [`buckets=${want.buckets}`]),
    ]
  ) {
    if (!first.includes(part)) {
      throw new Error(`Cannot compare: the anchor printed ${first}`);
    }
  }
  return {
    storeObjs: field(text, "store:", "objs_per_s"),
    fetchObjs: field(text, "fetch:", "objs_per_s"),
    hits: field(text, "fetch:", "hits"),
    wrong: field(text, "fetch:", "wrong_url"),
    bad: field(text, "fetch:", "bad_data"),
    storeFail: field(text, "store:", "fail_collision") +
      field(text, "store:", "fail_other"),
  };
}

async function runLarder(
  dir: string,
  c: readonly string[],
  api: "entry" | "element",
): Promise<Figures> {
  const text = await run(Deno.execPath(), [
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    join(HERE, "larder.ts"),
    ...c,
    dir,
    api,
  ]);
  const r = JSON.parse(text.trim().split("\n").at(-1)!);
  return {
    storeObjs: r.store.objsPerS,
    fetchObjs: r.fetch.objsPerS,
    hits: r.fetch.hits,
    wrong: r.fetch.wrong,
    bad: r.fetch.bad,
    storeFail: r.store.fail,
  };
}

const uptime = async () => (await run("uptime", [])).trim();
const dir = await Deno.makeTempDir({ prefix: "larder-netsurf-" });
await run("mount", ["-t", "tmpfs", "-o", "size=8g", "tmpfs", dir]);
const results = new Map<string, Figures[]>();
const loadBefore = await uptime();
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of CASES) {
      // Alternate who goes first, so drift in the machine's load falls
      // on each side in turn.
      const order: Impl[] = round % 2 === 0
        ? ["c", "entry", "element"]
        : ["element", "entry", "c"];
      for (const impl of order) {
        const f = impl === "c"
          ? await runC(dir, c)
          : await runLarder(dir, c, impl);
        const key = `${c.join(" ")}|${impl}`;
        results.set(key, [...(results.get(key) ?? []), f]);
        console.error(
          `round ${round + 1} ${c.join(" ")} ${impl}: store ${
            f.storeObjs.toFixed(0)
          } fetch ${
            f.fetchObjs.toFixed(0)
          } obj/s hits ${f.hits} wrong ${f.wrong} bad ${f.bad}`,
        );
      }
    }
  }
} finally {
  await run("umount", [dir]);
  await Deno.remove(dir);
}
const loadAfter = await uptime();

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (x: number) => Math.round(x).toLocaleString("en-US");
const range = (xs: number[]) =>
  `${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}`;
const NAMES: Record<Impl, string> = {
  c: "NetSurf C",
  entry: "larder storeEntry/fetchEntry",
  element: "larder store/fetch ×2",
};

const lines: string[] = [
  `NetSurf anchor vs larder, ${new Date().toISOString().slice(0, 16)}Z, ` +
  `${ROUNDS} rounds on tmpfs, Deno ${Deno.version.deno}.`,
  "",
  `Load before: \`${loadBefore}\`; after: \`${loadAfter}\`.`,
  "",
  "Medians over rounds, [min–max]; ratio = larder median / C median.",
  "",
  "| case | impl | store obj/s | ratio | fetch obj/s | ratio | hits / N | wrong | store refused |",
  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
];
for (const c of CASES) {
  const base = results.get(`${c.join(" ")}|c`)!;
  for (const impl of IMPLS) {
    const fs = results.get(`${c.join(" ")}|${impl}`)!;
    const st = fs.map((f) => f.storeObjs);
    const fe = fs.map((f) => f.fetchObjs);
    const hits = fs.map((f) => f.hits);
    const ratio = (xs: number[], bs: number[]) =>
      impl === "c" ? "" : `${(median(xs) / median(bs)).toFixed(2)}×`;
    const hitText = Math.min(...hits) === Math.max(...hits)
      ? fmt(hits[0]!)
      : range(hits);
    lines.push(
      `| ${c.join(" ")} | ${NAMES[impl]} | ${fmt(median(st))} [${
        range(st)
      }] | ${ratio(st, base.map((f) => f.storeObjs))} | ${fmt(median(fe))} [${
        range(fe)
      }] | ${ratio(fe, base.map((f) => f.fetchObjs))} | ${hitText} / ${
        c[1]
      } | ${Math.max(...fs.map((f) => f.wrong + f.bad))} | ${
        Math.max(...fs.map((f) => f.storeFail))
      } |`,
    );
  }
}
const table = lines.join("\n") + "\n";
console.log(table);
await Deno.mkdir(join(REPO, "bench/results"), { recursive: true });
await Deno.writeTextFile(OUT, table);
