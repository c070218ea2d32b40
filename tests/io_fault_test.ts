// I/O error and full-disk sweeps: for every call N of a small workload, the
// fault layer fails call N with EIO (any call) or ENOSPC (any mutating
// call), once or until cleared. The call that meets it must fail with a
// typed StoreError (IO, NO_SPACE), everything acknowledged before must stay
// readable, and once the fault is gone the same handle must work again;
// then a reopen (after the process dies, and after a clean close) must
// show every acknowledged value.
import assert from "node:assert/strict";
import { type BackingStore, type OpenOptions, StoreError } from "../mod.ts";
import { FaultFS, type FaultScope } from "./_fault_fs.ts";
import { ATTR_NAMES, attrCell, cellOf, shortKey } from "./_crash_model.ts";
import { bytesFor, sameBytes } from "./_helpers.ts";
import { openForTest } from "../src/_testing.ts";

const DIR = "/store";
const BASE: OpenOptions = {
  entryBits: 8,
  identBits: 9,
  // Room for every workload without eviction, and a small use map
  // (2^21 data slots; FORMAT.md §3).
  limit: 64 * 2 ** 20,
  maintenanceDelayMs: 2 ** 30,
  journalBytes: 65536,
};

type Op =
  | ["open"]
  | ["close"]
  | ["flush"]
  | ["store", string, Uint8Array, boolean]
  | ["invalidate", string]
  | ["setAttr", string, string, Uint8Array]
  | ["unsetAttr", string, string]
  | ["move", string, string]
  | ["copy", string, string]
  | ["dedup"]
  | ["fetch", string, boolean]
  | ["batch", Op[]];

const v = (key: string, n: number, size: number) =>
  bytesFor(`${key}#${n}`, size);
// A key long enough that a few stores fill the 64 KiB journal's remainder
// and make the workload rotate on its own.
const LONG = `https://example.com/${"x".repeat(12000)}`;

const WORKLOAD: Op[] = [
  ["open"],
  ["store", "a", v("a", 1, 100), false],
  ["store", "b", v("b", 1, 20000), false],
  ["store", "a", v("am", 1, 300), true],
  ["store", "c", v("cm", 1, 3000), true],
  ["fetch", "a", false],
  ["fetch", "b", false],
  ["flush"],
  ["store", "a", v("a", 2, 5000), false],
  ["store", "b", v("b", 2, 9000), false],
  ["invalidate", "c"],
  ["setAttr", "a", "x", v("ax", 1, 200)],
  ["setAttr", "h", "y", v("hy", 1, 3000)],
  ["store", "d", v("d", 1, 10), false],
  ["fetch", "a", false],
  ["fetch", "d", true],
  ["batch", [
    ["store", "e", v("e", 1, 700), false],
    ["store", "f", v("f", 1, 40000), false],
  ]],
  ["close"],
  ["open"],
  ["fetch", "a", false],
  ["store", LONG, v("long", 1, 10), false],
  ["store", LONG, v("long", 2, 10), false],
  ["store", LONG, v("long", 3, 10), false],
  ["store", LONG, v("long", 4, 10), false],
  ["store", LONG, v("long", 5, 10), false],
  ["store", "g", v("g", 1, 1000), false],
  ["invalidate", "d"],
  ["unsetAttr", "h", "y"],
  ["setAttr", "a", "x", v("ax", 2, 50)],
  ["fetch", "e", false],
  ["fetch", "f", false],
  // Moves, copies and dedup (issue 15).
  ["copy", "b", "b2"],
  ["move", "e", "e2"],
  ["store", "i", v("g", 1, 1000), false],
  ["dedup"],
  ["store", "b", v("b", 3, 700), false],
  ["fetch", "b2", false],
  ["fetch", "g", false],
];

/**
 * The disk bound's copies and trims (FORMAT.md §5.4): large entries
 * between small ones, each replaced by a larger value that fits no freed
 * run (1.2 MB of free slots below used ones), then one more large store:
 * the allocated blocks pass the limit and a tenth, so data block file 0 is
 * copied without its free slots (`dblk/A.tmp`, renamed over it). Then the
 * last entry is invalidated, so the file's free tail is truncated away.
 * Replacements, not invalidations, make the holes: whichever calls fail,
 * the live bytes stay under the limit and nothing is evicted.
 */
const DISK_LIMIT = 2 * 2 ** 20;
const DISK_WORKLOAD: Op[] = [
  ["open"],
  ...[0, 1, 2, 3].flatMap((i): Op[] => [
    ["store", `h${i}`, v(`h${i}`, 1, 300_000), false],
    ["store", `s${i}`, v(`s${i}`, 1, 300), false],
  ]),
  ...[0, 1, 2, 3].map((i): Op => [
    "store",
    `h${i}`,
    v(`h${i}`, 2, 320_000),
    false,
  ]),
  ["store", "j", v("j", 1, 320_000), false],
  ["fetch", "s1", false],
  ["fetch", "h0", false],
  ["invalidate", "j"],
  ["close"],
  ["open"],
  ["fetch", "h3", false],
  ["store", "s1", v("s1", 2, 700), false],
];

type Value = Uint8Array | undefined;

/** The model: acknowledged values, and cells a failed call left uncertain. */
class Model {
  acked = new Map<string, Uint8Array>();
  /** Cells whose last call failed: either value is right. */
  uncertain = new Map<string, Value[]>();

  effects(op: Op): [string, Value][] {
    if (op[0] === "store") return [[cellOf(op[1], op[3]), op[2]]];
    if (op[0] === "invalidate") {
      return [
        [cellOf(op[1]), undefined],
        [cellOf(op[1], true), undefined],
        ...ATTR_NAMES.map((
          n,
        ): [string, Value] => [attrCell(op[1], n), undefined]),
      ];
    }
    if (op[0] === "setAttr") return [[attrCell(op[1], op[2]), op[3]]];
    if (op[0] === "unsetAttr") return [[attrCell(op[1], op[2]), undefined]];
    return [];
  }

  /**
   * A move or copy: the destination's cells take the source's values (each
   * still uncertain if the source's was); a move empties the source. When
   * the call failed, or the source may have had no entry (the call then
   * changes nothing), the old values stay possible too.
   */
  transfer(op: ["move" | "copy", string, string], ok: boolean): void {
    const [kind, from, to] = op;
    if (from === to) return;
    const cells = (k: string) => [
      cellOf(k),
      cellOf(k, true),
      ...ATTR_NAMES.map((n) => attrCell(k, n)),
    ];
    const options = (c: string) => this.uncertain.get(c) ?? [this.acked.get(c)];
    const src = cells(from);
    const dst = cells(to);
    const srcOpts = src.map(options);
    if (srcOpts.every((o) => o.every((x) => x === undefined))) return;
    const mayBeAbsent = srcOpts.every((o) => o.includes(undefined));
    const keepOld = !ok || mayBeAbsent;
    const put = (c: string, vals: Value[]) => {
      const uniq = vals.filter((x, i) =>
        vals.findIndex((y) => sameBytes(x, y)) === i
      );
      if (uniq.length === 1) {
        this.uncertain.delete(c);
        if (uniq[0] === undefined) this.acked.delete(c);
        else this.acked.set(c, uniq[0]);
      } else this.uncertain.set(c, uniq);
    };
    const before = dst.map(options);
    dst.forEach((c, j) =>
      put(c, keepOld ? [...before[j]!, ...srcOpts[j]!] : srcOpts[j]!)
    );
    if (kind === "move") {
      src.forEach((c, j) =>
        put(c, keepOld ? [...srcOpts[j]!, undefined] : [undefined])
      );
    }
  }

  succeeded(op: Op): void {
    if (op[0] === "move" || op[0] === "copy") return this.transfer(op, true);
    for (const [cell, val] of this.effects(op)) {
      this.uncertain.delete(cell);
      if (val === undefined) this.acked.delete(cell);
      else this.acked.set(cell, val);
    }
  }

  failed(op: Op): void {
    if (op[0] === "move" || op[0] === "copy") return this.transfer(op, false);
    for (const [cell, val] of this.effects(op)) {
      const before = this.uncertain.get(cell) ?? [this.acked.get(cell)];
      this.uncertain.set(cell, [...before, val]);
    }
  }

  allows(cell: string, got: Value): boolean {
    const options = this.uncertain.get(cell) ?? [this.acked.get(cell)];
    return options.some((o) => sameBytes(o, got));
  }

  cells(): string[] {
    return [...new Set([...this.acked.keys(), ...this.uncertain.keys()])];
  }
}

function keyOfCell(cell: string): [string, boolean] {
  return [cell.slice(2), cell[0] === "m"];
}

class WrongValue extends Error {}

class Driver {
  store: BackingStore | undefined;
  model = new Model();
  failures = 0;

  constructor(
    readonly fs: FaultFS,
    readonly expectCode: "IO" | "NO_SPACE",
    readonly options: OpenOptions,
  ) {}

  #check(err: unknown, what: string): void {
    if (err instanceof WrongValue) throw new Error(`${what}: ${err.message}`);
    if (!(err instanceof StoreError) || err.code !== this.expectCode) {
      throw new Error(
        `${what} failed with ${
          err instanceof StoreError ? err.code : "an untyped error"
        }, expected ${this.expectCode}: ${
          err instanceof Error ? err.stack : err
        }`,
      );
    }
    this.failures++;
  }

  #start(op: Op): Promise<unknown> {
    const st = this.store;
    switch (op[0]) {
      case "open":
        return openForTest(DIR, this.options, { io: this.fs }).then(
          (s) => {
            this.store = s;
          },
        );
      case "close":
        this.store = undefined;
        return st!.close();
      case "flush":
        return st!.flush();
      case "store":
        return st!.store(op[1], op[2], { meta: op[3] });
      case "invalidate":
        return st!.invalidate(op[1]);
      case "setAttr":
        return st!.setAttr(op[1], op[2], op[3]);
      case "unsetAttr":
        return st!.unsetAttr(op[1], op[2]);
      case "move":
        return st!.move(op[1], op[2]);
      case "copy":
        return st!.copy(op[1], op[2]);
      case "dedup":
        return st!.dedup({ sliceBytes: 4096 });
      case "fetch":
        return st!.fetch(op[1], { meta: op[2] }).then((hit) => {
          const got = hit?.data.slice();
          hit?.release();
          const cell = cellOf(op[1], op[2]);
          if (!this.model.allows(cell, got)) {
            throw new WrongValue(
              `fetch ${shortKey(op[1])}${op[2] ? " (meta)" : ""} read ${
                got === undefined ? "a miss" : `${got.length} bytes`
              }, acknowledged ${
                this.model.acked.get(cell)?.length ?? "nothing"
              }`,
            );
          }
        });
      case "batch":
        throw new Error("batch is run by do()");
    }
  }

  /** Runs `op`; returns false when it failed (with the expected code). */
  async do(op: Op, what: string): Promise<boolean> {
    if (op[0] === "batch") {
      const results = await Promise.allSettled(op[1].map((o) => {
        try {
          return this.#start(o);
        } catch (err) {
          return Promise.reject(err);
        }
      }));
      let ok = true;
      results.forEach((r, i) => {
        if (r.status === "fulfilled") this.model.succeeded(op[1][i]!);
        else {
          this.#check(r.reason, `${what} (batch ${i})`);
          this.model.failed(op[1][i]!);
          ok = false;
        }
      });
      return ok;
    }
    if (op[0] !== "open" && op[0] !== "close" && this.store === undefined) {
      // An earlier open failed: open first (the fault may still be on).
      if (!(await this.do(["open"], `${what} (reopen)`))) {
        this.model.failed(op);
        return false;
      }
    }
    try {
      await this.#start(op);
    } catch (err) {
      this.#check(err, what);
      this.model.failed(op);
      return false;
    }
    this.model.succeeded(op);
    return true;
  }

  /** Every cell reads back as the model allows. */
  async verify(st: BackingStore, label: string): Promise<void> {
    for (const cell of this.model.cells()) {
      if (cell[0] === "a") {
        const end = cell.indexOf("\u0000", 2);
        const [name, key] = [cell.slice(2, end), cell.slice(end + 1)];
        const got = await st.getAttr(key, name);
        assert.ok(
          (got === undefined || got instanceof Uint8Array) &&
            this.model.allows(cell, got),
          `${label}: ${shortKey(key)} attribute ${name} reads ${
            got === undefined ? "nothing" : "another value"
          }, acknowledged ${this.model.acked.get(cell)?.length ?? "nothing"}`,
        );
        continue;
      }
      const [key, meta] = keyOfCell(cell);
      using hit = await st.fetch(key, { meta });
      assert.ok(
        this.model.allows(cell, hit?.data),
        `${label}: ${shortKey(key)}${meta ? " (meta)" : ""} reads ${
          hit === undefined ? "a miss" : `${hit.data.length} bytes`
        }, acknowledged ${this.model.acked.get(cell)?.length ?? "nothing"}`,
      );
    }
  }
}

/** The disk as the process dying now leaves it must read as the model says. */
async function reopenAfterDeath(
  fs: FaultFS,
  d: Driver,
  label: string,
): Promise<void> {
  // With fsync durability, a power loss (unsynced writes dropped) too.
  const modes = d.options.durability === "fsync"
    ? ["process", "drop"] as const
    : ["process"] as const;
  for (const mode of modes) {
    const img = fs.image(mode);
    const again = await openForTest(DIR, d.options, { io: img });
    await d.verify(again, `${label}, reopened after ${mode} crash`);
    await again.close();
    assert.deepEqual(img.openFds, [], `${label}: descriptors left open`);
  }
}

async function runCase(
  workload: Op[],
  code: "EIO" | "ENOSPC",
  scope: FaultScope,
  n: number,
  persistent: boolean,
  options: OpenOptions,
): Promise<{ hit: boolean; failures: number }> {
  const fs = new FaultFS();
  const d = new Driver(fs, code === "EIO" ? "IO" : "NO_SPACE", options);
  fs.failAt(n, code, { persistent, scope });
  let faulty = true;
  let stepsSinceHit = -1;
  let checkedDeath = false;
  for (const [i, op] of workload.entries()) {
    const what = `${code} at ${scope} call ${n}${
      persistent ? " (persistent)" : ""
    }, step ${i} ${op[0]}`;
    const ok = await d.do(op, what);
    if (!faulty) {
      assert.ok(ok, `${what}: failed after the fault was cleared`);
      if (
        !checkedDeath && d.store !== undefined && d.model.effects(op).length
      ) {
        // The first change acknowledged after the failure must survive the
        // process dying right away, before any later rotation repairs things.
        checkedDeath = true;
        await reopenAfterDeath(fs, d, `${what}, process died after it`);
      }
      continue;
    }
    if (fs.faultHits > 0) stepsSinceHit++;
    // A one-off fault is gone once it bit; a persistent one stays for two
    // more steps.
    if (stepsSinceHit >= (persistent ? 2 : 0)) {
      fs.clearFault();
      faulty = false;
    }
  }
  fs.clearFault();
  const hit = fs.faultHits > 0;
  const label = `${code} at ${scope} call ${n}${
    persistent ? " (persistent)" : ""
  }`;
  // Without reopening: acknowledged data is intact, and the handle works.
  if (d.store === undefined) {
    assert.ok(await d.do(["open"], `${label}: final open`));
  }
  const st = d.store!;
  await d.verify(st, `${label}, same handle`);
  const probe = v("probe", 1, 2000);
  await st.store("probe", probe);
  d.model.succeeded(["store", "probe", probe, false]);
  await d.verify(st, `${label}, same handle after a store`);
  // The process dies now: a reopen shows everything acknowledged.
  await reopenAfterDeath(fs, d, label);
  // A clean close and reopen too.
  await st.close();
  assert.deepEqual(fs.openFds, [], `${label}: descriptors left open`);
  const last = await openForTest(DIR, options, { io: fs });
  await d.verify(last, `${label}, reopened after close`);
  await last.close();
  return { hit, failures: d.failures };
}

async function callCounts(
  workload: Op[],
  options: OpenOptions,
): Promise<{ any: number; mutating: number; trace: string[] }> {
  const fs = new FaultFS();
  fs.trace = [];
  const d = new Driver(fs, "IO", options);
  for (const op of workload) assert.ok(await d.do(op, "dry run"));
  await d.store?.close();
  return { ...fs.counts, trace: fs.trace };
}

Deno.test("the disk workload copies a block file without its free slots and trims its tail", async () => {
  const { trace } = await callCounts(DISK_WORKLOAD, {
    ...BASE,
    limit: DISK_LIMIT,
  });
  const copied = trace.indexOf("rename /store/dblk/A.tmp /store/dblk/A");
  assert.ok(copied > 0, "a copy of dblk/A replaced it");
  // A tail trim: the file cut after its last used slot, then extended to
  // its full extent again (a hole).
  const trim = trace.findIndex((c, i) =>
    i > copied && /^ftruncate \/store\/dblk\/A [1-9]/.test(c) &&
    /^ftruncate \/store\/dblk\/A [1-9]/.test(trace[i + 1] ?? "") &&
    Number(c.split(" ")[2]) < Number(trace[i + 1]!.split(" ")[2])
  );
  assert.ok(trim > copied, "the copy's free tail was truncated");
});

const summary: string[] = [];

const WORKLOADS = [
  ["", WORKLOAD, BASE],
  [" of the disk workload", DISK_WORKLOAD, { ...BASE, limit: DISK_LIMIT }],
] as const;

for (const [which, workload, base] of WORKLOADS) {
  for (
    const [code, scope, durability] of [
      ["EIO", "any", "process"],
      ["ENOSPC", "mutating", "process"],
      ["EIO", "any", "fsync"],
      ["ENOSPC", "mutating", "fsync"],
    ] as const
  ) {
    const options: OpenOptions = { ...base, durability };
    Deno.test(`${code} at every ${scope} call${which} fails that call with a typed error and loses nothing acknowledged (${durability} durability)`, async () => {
      const counts = await callCounts(workload, options);
      const total = counts[scope];
      let cases = 0;
      let bitten = 0;
      const problems: string[] = [];
      for (let n = 1; n <= total && problems.length < 12; n++) {
        for (const persistent of [false, true]) {
          try {
            const r = await runCase(
              workload,
              code,
              scope,
              n,
              persistent,
              options,
            );
            if (r.hit) bitten++;
          } catch (err) {
            problems.push(
              String(err instanceof Error ? err.message : err).split("\n")[0]!,
            );
          }
          cases++;
        }
      }
      assert.deepEqual(problems, [], problems.join("\n"));
      // Every call of the dry run is reached (the workload is deterministic),
      // though a failure swallowed on purpose (removing a superseded file)
      // need not surface.
      assert.ok(bitten >= total, `${bitten} of ${cases} cases saw an error`);
      summary.push(
        `${code}/${durability}${which}: N = 1..${total} (${scope} calls), ${cases} cases, ${bitten} surfaced`,
      );
    });
  }
}

Deno.test("I/O fault sweeps: summary", () => {
  console.log(`io_fault_test: ${summary.join("; ")}`);
});
