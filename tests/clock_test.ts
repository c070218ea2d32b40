import assert from "node:assert/strict";
import { MOD_URL, tempDir } from "./_helpers.ts";

const DAY_MS = 86_400_000;

// A child that runs a little script of operations on a store, with its
// wall clock (Date.now) shifted by the `clock:` operations: the store sees
// a clock set back while it is open, or between runs. Prints the keys
// present at a final `report`, as JSON. Every entry is stored once and
// never fetched before that, so eviction goes by last use alone.
const CHILD = `
import { BackingStore } from "${MOD_URL}";
const realNow = Date.now;
let shift = 0;
Date.now = () => realNow() + shift;
const [dir, ...ops] = Deno.args;
const store = await BackingStore.open(dir, { limit: 10_000, hysteresis: 2_500 });
const keys = [];
const present = [];
for (const op of ops) {
  const [what, arg, size] = op.split(":");
  if (what === "clock") shift = Number(arg);
  else if (what === "store") {
    keys.push(arg);
    await store.store(arg, new Uint8Array(Number(size)).fill(keys.length));
  } else if (what === "report") {
    // Fetching bumps use counts: only ever the last operation of a run.
    for (const k of JSON.parse(Deno.env.get("KEYS"))) {
      using hit = await store.fetch(k);
      if (hit !== undefined) present.push(k);
    }
  } else throw new Error("bad op " + op);
}
await store.close();
console.log(JSON.stringify(present));
`;

const ALL = [
  "a0",
  "a1",
  "a2",
  "a3",
  "b0",
  "b1",
  "b2",
  "b3",
  "new",
];

/** Runs CHILD on `dir` with `ops`; a hang fails after 60 s. */
async function run(dir: string, ops: string[]): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "-",
      dir,
      ...ops,
    ],
    env: { KEYS: JSON.stringify(ALL) },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000), // kills the child
  }).spawn();
  const w = out.stdin.getWriter();
  await w.write(new TextEncoder().encode(CHILD));
  await w.close();
  const r = await out.output();
  const err = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, `child failed (signal ${r.signal}): ${err}`);
  return JSON.parse(new TextDecoder().decode(r.stdout));
}

const stores = (prefix: string, n: number, size = 1000) =>
  Array.from({ length: n }, (_, i) => `store:${prefix}${i}:${size}`);

Deno.test("eviction order survives the clock set back a day while the store is open", async () => {
  await using d = await tempDir();
  // 8 entries of 1000 bytes, then 2000 more reach the 10,000 limit: an
  // eviction frees more than 2,500, three entries of one use each, the
  // oldest uses first. Those are the a-entries, stored before the clock
  // went back, not the b-entries stored after it.
  const present = await run(d.path, [
    ...stores("a", 4),
    `clock:${-DAY_MS}`,
    ...stores("b", 4),
    "store:new:2000",
    "report",
  ]);
  assert.deepEqual(present, ["a3", "b0", "b1", "b2", "b3", "new"]);
});

Deno.test("eviction order survives the clock set back between runs", async () => {
  await using d = await tempDir();
  assert.deepEqual(await run(d.path, stores("a", 4)), []);
  // Reopened a day earlier: the b-entries are still newer than the a-ones.
  assert.deepEqual(
    await run(d.path, [
      `clock:${-DAY_MS}`,
      ...stores("b", 4),
      "store:new:2000",
      "report",
    ]),
    ["a3", "b0", "b1", "b2", "b3", "new"],
  );
});

Deno.test("eviction order survives the clock set back at each of several runs", async () => {
  await using d = await tempDir();
  await run(d.path, stores("a", 4));
  await run(d.path, [`clock:${-DAY_MS}`, ...stores("b", 4)]);
  // Two days before the first run: the oldest uses are still the a-ones.
  assert.deepEqual(
    await run(d.path, [`clock:${-2 * DAY_MS}`, "store:new:2000", "report"]),
    ["a3", "b0", "b1", "b2", "b3", "new"],
  );
});

Deno.test("the clock set forward and back again keeps eviction order", async () => {
  await using d = await tempDir();
  // Forward a day, then back to the real time: entries stored after the
  // return are newer than those stored while it was ahead.
  const present = await run(d.path, [
    `clock:${DAY_MS}`,
    ...stores("a", 4),
    "clock:0",
    ...stores("b", 4),
    "store:new:2000",
    "report",
  ]);
  assert.deepEqual(present, ["a3", "b0", "b1", "b2", "b3", "new"]);
});
