// The model a crash or fault test keeps beside a store: what each element
// should hold, which operations are in flight, and the checks a reopened
// store must pass (FORMAT.md §10.4).
import assert from "node:assert/strict";
import { type BackingStore, type OpenOptions, StoreError } from "../mod.ts";
import type { FileIO } from "../src/io.ts";
import { sameBytes } from "./_helpers.ts";
import { openForTest } from "../src/_testing.ts";

/** An element: a key and whether it is the metadata element. */
export type Cell = string;

/** The cell of `key`'s data (or metadata) element. */
export function cellOf(key: string, meta = false): Cell {
  return `${meta ? "m" : "d"}\u0000${key}`;
}

/** A key short enough for a message. */
export function shortKey(key: string): string {
  return key.length <= 40 ? key : `${key.slice(0, 6)}…${key.slice(-10)}`;
}

/** Attribute names the workloads use (invalidate clears each). */
export const ATTR_NAMES = ["x", "y"] as const;

/** The cell of attribute `name` of `key` (a binary value). */
export function attrCell(key: string, name: string): Cell {
  return `a\u0000${name}\u0000${key}`;
}

function keyOf(cell: Cell): { key: string; meta: boolean; attr?: string } {
  if (cell[0] === "a") {
    const end = cell.indexOf("\u0000", 2);
    return { key: cell.slice(end + 1), meta: false, attr: cell.slice(2, end) };
  }
  return { key: cell.slice(2), meta: cell[0] === "m" };
}

function label(cell: Cell): string {
  const { key, meta, attr } = keyOf(cell);
  return `${shortKey(key)}${meta ? " (meta)" : ""}${
    attr === undefined ? "" : ` (attribute ${attr})`
  }`;
}

/** What `st` holds for `cell`: element bytes, or an attribute's bytes. */
async function readCell(
  st: BackingStore,
  cell: Cell,
): Promise<Uint8Array | undefined> {
  const { key, meta, attr } = keyOf(cell);
  if (attr !== undefined) {
    const v = await st.getAttr(key, attr);
    if (v !== undefined && !(v instanceof Uint8Array)) {
      throw new Error(`attribute ${attr} of ${key} is not binary`);
    }
    return v;
  }
  using hit = await st.fetch(key, { meta });
  return hit?.data.slice();
}

function describe(b: Uint8Array | undefined): string {
  if (b === undefined) return "a miss";
  const head = Array.from(b.subarray(0, 6)).join(",");
  return `${b.length} bytes [${head}${b.length > 6 ? ",…" : ""}]`;
}

/** Thrown inside a workload once its file system has crashed. */
export class Stopped extends Error {
  constructor() {
    super("the file system crashed");
    this.name = "Stopped";
  }
}

type Effect = [Cell, Uint8Array | undefined];

/**
 * Drives a store and tracks what it acknowledged. Every call is awaited;
 * when it resolves, its effect enters the model; when it fails on a
 * crashed file system, it stays "in flight" and the run stops.
 */
export class ModelRun {
  /** The acknowledged value of every cell (absent: a miss). */
  readonly model = new Map<Cell, Uint8Array>();
  /** Every value ever given to a cell, acknowledged or not. */
  readonly ever = new Map<Cell, Uint8Array[]>();
  /** Effects of the calls in flight when the run stopped. */
  inFlight: Effect[] = [];
  /**
   * `storeEntry` calls in flight, by key, with the pair acknowledged
   * before: a reopen must show one pair or the other, never a mix.
   */
  inFlightEntries = new Map<string, { old: Pair; new: Pair }>();
  /** The open store, if any. */
  store: BackingStore | undefined;
  /** Operations acknowledged. */
  acked = 0;
  /** True when the store may evict: any fetch may miss. */
  evicts = false;

  constructor(
    readonly io: FileIO & { crashed: boolean },
    readonly dir: string,
    readonly options: OpenOptions,
  ) {}

  #note(effects: Effect[]): void {
    for (const [cell, v] of effects) {
      if (v === undefined) continue;
      let list = this.ever.get(cell);
      if (list === undefined) this.ever.set(cell, list = []);
      if (!list.some((x) => sameBytes(x, v))) list.push(v);
    }
  }

  #apply(effects: Effect[]): void {
    for (const [cell, v] of effects) {
      if (v === undefined) this.model.delete(cell);
      else this.model.set(cell, v);
    }
    this.acked++;
  }

  /**
   * Runs one call with `effects` (those of `ops`, if it runs operations);
   * stops the run if the file system crashed.
   */
  async #call<T>(
    effects: Effect[],
    call: () => Promise<T>,
    ops: Op[] = [],
  ): Promise<T> {
    this.#note(effects);
    try {
      const r = await call();
      this.#apply(effects);
      return r;
    } catch (err) {
      if (this.io.crashed) {
        this.#stopWith(effects, ops);
        throw new Stopped();
      }
      throw err;
    }
  }

  /** Records `effects` as in flight, and the pairs of `ops`' entry stores. */
  #stopWith(effects: Effect[], ops: Op[]): void {
    this.inFlight = effects;
    for (const op of ops) {
      if (op[0] !== "entry") continue;
      const [, key, data, meta] = op;
      this.inFlightEntries.set(key, {
        old: [this.model.get(cellOf(key)), this.model.get(cellOf(key, true))],
        new: [data, meta],
      });
    }
  }

  /** Opens the store (a crash here loses nothing acknowledged). */
  async open(): Promise<void> {
    this.store = await this.#call(
      [],
      () => openForTest(this.dir, this.options, { io: this.io }),
    );
  }

  #effectsOf(op: Op): Effect[] {
    if (op[0] === "store" || op[0] === "stream") {
      return [[cellOf(op[1], op[3]), op[2]]];
    }
    if (op[0] === "entry") {
      return [[cellOf(op[1]), op[2]], [cellOf(op[1], true), op[3]]];
    }
    if (op[0] === "invalidate") {
      return [
        [cellOf(op[1]), undefined],
        [cellOf(op[1], true), undefined],
        ...ATTR_NAMES.map((n): Effect => [attrCell(op[1], n), undefined]),
      ];
    }
    if (op[0] === "setAttr") return [[attrCell(op[1], op[2]), op[3]]];
    if (op[0] === "unsetAttr") return [[attrCell(op[1], op[2]), undefined]];
    if (op[0] === "move" || op[0] === "copy") {
      // The destination gets every cell of the source (a missing source
      // changes nothing); a move empties the source.
      const [, from, to] = op;
      const cells = (k: string) => [
        cellOf(k),
        cellOf(k, true),
        ...ATTR_NAMES.map((n) => attrCell(k, n)),
      ];
      const src = cells(from);
      if (from === to || src.every((c) => !this.model.has(c))) return [];
      const dst = cells(to);
      const effects = dst.map((c, j): Effect => [c, this.model.get(src[j]!)]);
      if (op[0] === "move") {
        for (const c of src) effects.push([c, undefined]);
      }
      return effects;
    }
    return [];
  }

  #start(op: Op): Promise<unknown> {
    const st = this.store!;
    switch (op[0]) {
      case "store":
        return st.store(op[1], op[2], { meta: op[3] });
      case "stream":
        return st.store(op[1], chunked(op[2]), { meta: op[3] });
      case "entry":
        return st.storeEntry(op[1], op[2], op[3]);
      case "invalidate":
        return st.invalidate(op[1]);
      case "setAttr":
        return st.setAttr(op[1], op[2], op[3]);
      case "unsetAttr":
        return st.unsetAttr(op[1], op[2]);
      case "move":
        return st.move(op[1], op[2]);
      case "copy":
        return st.copy(op[1], op[2]);
      case "dedup":
        // Changes no value: only how they are stored.
        return st.dedup({ sliceBytes: 4096 });
      case "flush":
        return st.flush();
      case "close":
        return st.close();
    }
  }

  /** Runs `op` and awaits it. */
  async do(op: Op): Promise<void> {
    await this.#call(this.#effectsOf(op), () => this.#start(op), [op]);
    if (op[0] === "close") this.store = undefined;
  }

  /**
   * Starts `ops` (on distinct keys) together, as concurrent callers would,
   * then awaits them all: those that resolved are acknowledged.
   */
  async batch(ops: Op[]): Promise<void> {
    const effects = ops.map((op) => this.#effectsOf(op));
    for (const e of effects) this.#note(e);
    const results = await Promise.allSettled(ops.map((op) => {
      try {
        return this.#start(op);
      } catch (err) {
        return Promise.reject(err);
      }
    }));
    const failed: Effect[] = [];
    const failedOps: Op[] = [];
    results.forEach((r, i) => {
      if (r.status === "fulfilled") this.#apply(effects[i]!);
      else {
        failed.push(...effects[i]!);
        failedOps.push(ops[i]!);
      }
    });
    if (failed.length > 0) {
      if (this.io.crashed) {
        this.#stopWith(failed, failedOps);
        throw new Stopped();
      }
      throw (results.find((r) =>
        r.status === "rejected"
      ) as PromiseRejectedResult)
        .reason;
    }
  }

  /** Fetches a cell and checks it against the model. */
  async fetch(key: string, meta = false): Promise<void> {
    const got = await this.#call([], async () => {
      using hit = await this.store!.fetch(key, { meta });
      return hit?.data.slice();
    });
    const want = this.model.get(cellOf(key, meta));
    assert.ok(
      sameBytes(got, want) || (this.evicts && got === undefined),
      `fetch ${shortKey(key)}${meta ? " (meta)" : ""} while running: ${
        describe(got)
      }, expected ${describe(want)}`,
    );
  }

  /** Closes the store if open, ignoring failures (after a crash). */
  async abandon(): Promise<void> {
    const st = this.store;
    this.store = undefined;
    await st?.close().catch(() => {});
  }

  /** Every cell the run ever touched. */
  cells(): Cell[] {
    return [...new Set([...this.ever.keys(), ...this.model.keys()])].sort();
  }
}

/** `bytes` as a stream of 256 KiB chunks, each after a pause. */
function chunked(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      await Promise.resolve();
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.slice(at, at + 262_144));
      at += 262_144;
    },
  });
}

/** An entry's data and metadata (undefined: absent). */
type Pair = [Uint8Array | undefined, Uint8Array | undefined];

/** An operation of a workload. */
export type Op =
  | ["store", string, Uint8Array, boolean]
  | ["stream", string, Uint8Array, boolean]
  | ["entry", string, Uint8Array, Uint8Array | undefined]
  | ["invalidate", string]
  | ["setAttr", string, string, Uint8Array]
  | ["unsetAttr", string, string]
  | ["move", string, string]
  | ["copy", string, string]
  | ["dedup"]
  | ["flush"]
  | ["close"];

/** What a reopened store may return for each cell. */
export interface Expectation {
  /**
   * "exact": acknowledged values, and for cells in flight the old or the
   * new value (and a miss too when `inFlightMiss`). "ever": any value the
   * cell was ever given, or a miss (power loss under "process" durability).
   */
  strictness: "exact" | "ever";
  /** A cell in flight may also be a miss. */
  inFlightMiss: boolean;
  /** Any cell may be a miss (the workload evicts). */
  anyMiss?: boolean;
}

/** Values a cell may have after reopening. */
export function allowed(
  run: ModelRun,
  cell: Cell,
  exp: Expectation,
): { values: Uint8Array[]; miss: boolean } {
  if (exp.strictness === "ever") {
    return { values: run.ever.get(cell) ?? [], miss: true };
  }
  const values: Uint8Array[] = [];
  let miss = exp.anyMiss === true;
  const acked = run.model.get(cell);
  if (acked === undefined) miss = true;
  else values.push(acked);
  for (const [c, v] of run.inFlight) {
    if (c !== cell) continue;
    if (v === undefined) miss = true;
    else values.push(v);
    if (exp.inFlightMiss) miss = true;
  }
  return { values, miss };
}

/**
 * Reopens the store on `io` and checks every cell against `exp`; then that
 * the store takes a new element, and that a second reopen (after a clean
 * close) returns exactly what the first one did. Returns a description of
 * the first failure, or undefined.
 */
export async function checkReopen(
  run: ModelRun,
  io: FileIO,
  exp: Expectation,
): Promise<string | undefined> {
  let st: BackingStore;
  try {
    st = await openForTest(run.dir, run.options, { io });
  } catch (err) {
    return `reopen failed: ${
      err instanceof StoreError ? `${err.code} ` : "untyped "
    }${err instanceof Error ? err.stack : String(err)}`;
  }
  const seen = new Map<Cell, Uint8Array | undefined>();
  try {
    for (const cell of run.cells()) {
      const got = await readCell(st, cell);
      seen.set(cell, got);
      const ok = allowed(run, cell, exp);
      if (
        got === undefined ? !ok.miss : !ok.values.some((v) => sameBytes(v, got))
      ) {
        return `${label(cell)}: got ${describe(got)}; allowed ${
          ok.values.map(describe).join(" or ") || "nothing"
        }${ok.miss ? " or a miss" : ""}`;
      }
    }
    for (const [key, pairs] of run.inFlightEntries) {
      // Each element may be lost (where a miss is allowed, checked above),
      // but never may one come from the old pair and the other the new.
      const side = (got: Uint8Array | undefined, k: 0 | 1) => {
        const o = sameBytes(got, pairs.old[k]);
        const n = sameBytes(got, pairs.new[k]);
        return got === undefined || o === n ? "either" : o ? "old" : "new";
      };
      const sides = [
        side(seen.get(cellOf(key)), 0),
        side(seen.get(cellOf(key, true)), 1),
      ];
      if (sides.includes("old") && sides.includes("new")) {
        return `${shortKey(key)}: storeEntry in flight left data from the ${
          sides[0]
        } pair with metadata from the ${sides[1]} pair`;
      }
    }
    const probe = new TextEncoder().encode("after the crash");
    await st.store("\u0001probe", probe);
    {
      using hit = await st.fetch("\u0001probe");
      if (!sameBytes(hit?.data, probe)) {
        return "a new element did not read back";
      }
    }
  } finally {
    await st.close();
  }
  const again = await openForTest(run.dir, run.options, { io });
  try {
    for (const [cell, before] of seen) {
      const got = await readCell(again, cell);
      if (!sameBytes(got, before)) {
        return `${label(cell)}: the second reopen got ${
          describe(got)
        }, the first ${describe(before)}`;
      }
    }
    // The counts agree with the references (moves, copies): removing
    // every entry frees every byte and slot, and none is freed early (the
    // reads above would have failed).
    const keys = new Set(run.cells().map((c) => keyOf(c).key));
    keys.add("\u0001probe");
    for (const key of keys) await again.invalidate(key);
    await again.flush();
    const s = again.stats();
    if (
      s.entries !== 0 || s.bytes !== 0 || s.dataSlotsUsed !== 0 ||
      s.metaSlotsUsed !== 0 || s.sharedElements !== 0
    ) {
      return `with every entry removed the store still counts ${s.entries} entries, ${s.bytes} bytes, ${s.dataSlotsUsed} data and ${s.metaSlotsUsed} metadata slots, ${s.sharedElements} shared elements`;
    }
  } finally {
    await again.close();
  }
  return undefined;
}
