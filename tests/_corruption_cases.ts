// The corruption fuzz's cases, the daily sample of them, and how one is
// judged: a store image (loaded into the fault layer from a real store
// directory) is damaged in one way (or both control copies at once),
// opened, and every element fetched. Shared by corruption_fuzz_test.ts and
// the workers it starts (_corruption_worker.ts).
import { type BackingStore, type OpenOptions, StoreError } from "../mod.ts";
import { BudgetError, type FaultFS, rng } from "./_fault_fs.ts";
import { shortKey } from "./_crash_model.ts";
import { sameBytes } from "./_helpers.ts";
import { openForTest } from "../src/_testing.ts";

/** Where the image's store lives inside the fault layer. */
export const ROOT = "/store";

/** Options every case opens the store with (those it was made with). */
export const FUZZ_OPTIONS: OpenOptions = {
  entryBits: 8,
  identBits: 9,
  // Room for every value the image holds, and a small use map (FORMAT.md §3).
  limit: 64 * 2 ** 20,
  journalBytes: 65536,
  maintenanceDelayMs: 2 ** 30,
};

/** A file of the image, by what it is. */
export interface Target {
  /** What kind of file (control, entries, journal, …). */
  kind: string;
  /** Its path in the fault layer. */
  path: string;
  /** Byte offsets of format-version fields (a flip there may be refused). */
  versionBytes: [number, number][];
  /** Byte ranges sampled for bit flips: [start, end). */
  regions: [number, number][];
  /**
   * Every bit of the regions flipped and every truncation length tried
   * (the small control copies), rather than a sample.
   */
  exhaustive?: boolean;
}

/** The two copies of the control record (src/_control.ts). */
export const CONTROL_KINDS = ["control", "control.bak"];

/** A store image the cases damage, as the workers need it. */
export interface ImageSpec {
  /** The key hash it was made with (decides what a lost control costs). */
  hash: "siphash13" | "nsurl";
  /** Its files that cases damage. */
  targets: Target[];
  /** Each target's length and used end (the journal's last valid entry). */
  sizes: { length: number; used: number }[];
  /**
   * `all`: every kind of damage to every target. `both-controls`: only
   * both control copies damaged at once.
   */
  scope: "all" | "both-controls";
}

/** One way of damaging one file. */
export type Damage =
  | { op: "flip"; bit: number }
  | { op: "truncate"; length: number }
  | { op: "append"; bytes: number; seed: number }
  | { op: "zero"; page: number }
  | { op: "remove" };

/** A file and its damage. */
export interface Hit {
  target: number;
  damage: Damage;
}

/** A case: an image and the damage done to one or two of its files. */
export interface Case {
  image: number;
  hits: Hit[];
}

/** How a case ended. */
export interface Outcome {
  /** "opened", or the StoreError code the open failed with. */
  result: string;
  /** Cells that read as a miss. */
  misses: number;
  /** What went wrong, if anything (an untyped error, wrong bytes, …). */
  problem?: string;
}

/**
 * Every bit of the first 512 bytes of a region, then every 7th bit to
 * 4 KiB; every bit to 4 KiB when `exhaustive`.
 */
function sampledBits(
  [start, end]: [number, number],
  exhaustive: boolean,
): number[] {
  const bits: number[] = [];
  const sparse = Math.min(end, start + 4096) * 8;
  const dense = exhaustive ? sparse : Math.min(end, start + 512) * 8;
  for (let b = start * 8; b < dense; b++) bits.push(b);
  for (let b = dense; b < sparse; b += 7) bits.push(b);
  return bits;
}

/**
 * Damage that leaves a control copy unreadable in every part of the
 * record (magic, version, dimensions, SipHash key, checksum), cut
 * anywhere, grown, zeroed or gone: the pairs of these make the "both
 * copies lost" cases.
 */
function controlLosses(length: number): Damage[] {
  return [
    ...[0, 8 * 8, 12 * 8 + 1, 14 * 8, 20 * 8 + 5, (length - 3) * 8 + 7]
      .filter((bit) => bit < length * 8)
      .map((bit): Damage => ({ op: "flip", bit })),
    ...[0, 11, length >> 1, length - 1].map((n): Damage => ({
      op: "truncate",
      length: n,
    })),
    { op: "append", bytes: 1, seed: 1 },
    { op: "zero", page: 0 },
    { op: "remove" },
  ];
}

function singleCases(t: Target, size: { length: number; used: number }) {
  const { length, used } = size;
  const out: Damage[] = [];
  const exhaustive = t.exhaustive === true;
  for (const region of t.regions) {
    for (const bit of sampledBits(region, exhaustive)) {
      out.push({ op: "flip", bit });
    }
  }
  if (exhaustive) {
    for (let n = 0; n < length; n++) out.push({ op: "truncate", length: n });
  } else if (t.kind === "journal") {
    // Every length of the used part, plus a bit.
    for (let n = 0; n <= Math.min(length - 1, used + 64); n++) {
      out.push({ op: "truncate", length: n });
    }
  } else {
    for (const n of new Set([0, 1, used >> 1, used - 1])) {
      if (n >= 0 && n < length) out.push({ op: "truncate", length: n });
    }
  }
  for (const [bytes, seed] of [[1, 1], [100, 2], [4096, 3]]) {
    out.push({ op: "append", bytes: bytes!, seed: seed! });
  }
  for (let page = 0; page * 4096 < Math.max(used, 1); page++) {
    out.push({ op: "zero", page });
  }
  if (exhaustive) out.push({ op: "remove" });
  return out;
}

/** Every damage case of `images`, in a fixed order (a case's index names it). */
export function buildCases(images: ImageSpec[]): Case[] {
  const cases: Case[] = [];
  images.forEach(({ targets, sizes, scope }, image) => {
    if (scope === "all") {
      targets.forEach((t, target) => {
        for (const damage of singleCases(t, sizes[target]!)) {
          cases.push({ image, hits: [{ target, damage }] });
        }
      });
    }
    const [a, b] = CONTROL_KINDS.map((k) =>
      targets.findIndex((t) => t.kind === k)
    );
    if (a! < 0 || b! < 0) return;
    for (const da of controlLosses(sizes[a!]!.length)) {
      for (const db of controlLosses(sizes[b!]!.length)) {
        cases.push({
          image,
          hits: [{ target: a!, damage: da }, { target: b!, damage: db }],
        });
      }
    }
  });
  return cases;
}

/**
 * What a case's kind is, for the sample's strata and the tally: the
 * image's hash when it is not the default, the file kind (or both control
 * copies) and the damage.
 */
export function groupOf(images: ImageSpec[], c: Case): string {
  const spec = images[c.image]!;
  const kind = c.hits.length > 1
    ? "both controls"
    : spec.targets[c.hits[0]!.target]!.kind;
  const prefix = spec.hash === "siphash13" ? "" : `${spec.hash} `;
  return `${prefix}${kind} ${c.hits[0]!.damage.op}`;
}

/** Today's sample seed: the UTC date as a number (20261203). */
export function seedOfToday(now = new Date()): number {
  return Number(now.toISOString().slice(0, 10).replaceAll("-", ""));
}

/**
 * The indices of a sample of `cases`, chosen by `seed`: from every group
 * (`groupOf`: file kind and damage) `fraction` of its cases, at least
 * `minimum` of them, so every kind of file and of damage is in every
 * sample. Sorted, so the workers' shards stay even.
 */
export function sampleCases(
  images: ImageSpec[],
  cases: Case[],
  options: { seed: number; fraction: number; minimum: number },
): number[] {
  const groups = new Map<string, number[]>();
  cases.forEach((c, i) => {
    const g = groupOf(images, c);
    groups.set(g, [...groups.get(g) ?? [], i]);
  });
  const random = rng(options.seed);
  const chosen: number[] = [];
  for (const members of groups.values()) {
    const n = Math.min(
      members.length,
      Math.max(options.minimum, Math.ceil(members.length * options.fraction)),
    );
    // A partial Fisher–Yates shuffle: the first n are the sample.
    for (let i = 0; i < n; i++) {
      const j = i + Math.floor(random() * (members.length - i));
      [members[i], members[j]] = [members[j]!, members[i]!];
      chosen.push(members[i]!);
    }
  }
  return chosen.sort((a, b) => a - b);
}

function garbage(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed * 0x9e3779b1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** Applies `damage` to `path` in `fs` (durably, outside the counted calls). */
export function damage(fs: FaultFS, path: string, d: Damage): void {
  if (d.op === "remove") {
    fs.removeFile(path);
    return;
  }
  const { length, data } = fs.contentOf(path);
  const grown = (n: number) => {
    const out = new Uint8Array(Math.max(data.length, Math.min(n, length)));
    out.set(data);
    return out;
  };
  switch (d.op) {
    case "flip": {
      const bytes = grown((d.bit >> 3) + 1);
      bytes[d.bit >> 3]! ^= 1 << (d.bit & 7);
      fs.setFile(path, bytes, length);
      return;
    }
    case "truncate":
      fs.setFile(path, data.subarray(0, d.length), d.length);
      return;
    case "append": {
      const out = new Uint8Array(length + d.bytes);
      out.set(data);
      out.set(garbage(d.bytes, d.seed), length);
      fs.setFile(path, out);
      return;
    }
    case "zero":
      data.fill(0, d.page * 4096, (d.page + 1) * 4096);
      fs.setFile(path, data, length);
      return;
  }
}

function describeDamage(d: Damage): string {
  switch (d.op) {
    case "flip":
      return `bit ${d.bit & 7} of byte ${d.bit >> 3} flipped`;
    case "truncate":
      return `truncated to ${d.length} bytes`;
    case "append":
      return `${d.bytes} bytes of garbage appended`;
    case "zero":
      return `page ${d.page} zeroed`;
    case "remove":
      return "removed";
  }
}

/** A short description of a case. */
export function describeCase(images: ImageSpec[], c: Case): string {
  const spec = images[c.image]!;
  const what = c.hits.map(({ target, damage }) => {
    const t = spec.targets[target]!;
    return `${t.kind} (${t.path}): ${describeDamage(damage)}`;
  }).join(" and ");
  return `${spec.hash} image: ${what}`;
}

/** True when the case flips a bit of a format-version field. */
export function hitsVersion(images: ImageSpec[], c: Case): boolean {
  return c.hits.some(({ target, damage }) => {
    if (damage.op !== "flip") return false;
    const byte = damage.bit >> 3;
    return images[c.image]!.targets[target]!.versionBytes.some(([a, b]) =>
      byte >= a && byte < b
    );
  });
}

/**
 * What every fetch after the open must return. `given`: a value the key
 * was given, or a miss. `exact`: the cell's last value (a miss only where
 * the entry was invalidated). `empty`: a miss.
 */
export type Expect = "given" | "exact" | "empty";

/**
 * What a case must lead to. Damage to the control copies alone never
 * stops an open and costs no element: the other copy serves, and with
 * both lost the record is rebuilt from the other files. Only a SipHash
 * store loses its elements then, as its key was only in the copies
 * (src/_control.ts `rebuildControl`: the index starts empty). Every kind
 * of damage used here leaves a 44-byte control copy unreadable (its
 * length and CRC-32 cover every byte), so a damaged copy is a lost one.
 */
export function expectationOf(
  images: ImageSpec[],
  c: Case,
): { fetch: Expect; mayRefuse: boolean } {
  const spec = images[c.image]!;
  const kinds = c.hits.map((h) => spec.targets[h.target]!.kind);
  if (!kinds.every((k) => CONTROL_KINDS.includes(k))) {
    // A flipped version field may be refused: a newer format must not be
    // misread.
    return { fetch: "given", mayRefuse: hitsVersion(images, c) };
  }
  const bothLost = CONTROL_KINDS.every((k) => kinds.includes(k));
  return {
    fetch: bothLost && spec.hash === "siphash13" ? "empty" : "exact",
    mayRefuse: false,
  };
}

/** Every value a cell was given, and whether its entry still exists. */
export interface CellValues {
  key: string;
  meta: boolean;
  /** An attribute's name (its binary value is the cell's), if one. */
  attr?: string;
  values: Uint8Array[];
  live: boolean;
}

/** The image's cells, by `cellOf`. */
export type Values = Map<string, CellValues>;

/**
 * Damages a copy of `image` as `c` says, opens it and fetches every
 * element, which must come back as `expect` says; the store must then
 * take and return a new element.
 */
export async function runDamageCase(
  image: FaultFS,
  spec: ImageSpec,
  c: Case,
  values: Values,
  expect: Expect,
): Promise<Outcome> {
  const fs = image.clone();
  fs.tracksDurability = false; // no power loss here: faster
  for (const hit of c.hits) {
    damage(fs, spec.targets[hit.target]!.path, hit.damage);
  }
  // An I/O loop shows as a flood of calls long before any time bound.
  fs.setBudget(200_000);
  let st: BackingStore;
  try {
    st = await openForTest(ROOT, FUZZ_OPTIONS, { io: fs });
  } catch (err) {
    if (err instanceof StoreError) return { result: err.code, misses: 0 };
    return {
      result: "untyped",
      misses: 0,
      problem: `open threw an untyped error: ${
        err instanceof Error ? err.stack : String(err)
      }`,
    };
  }
  let misses = 0;
  try {
    for (const { key, meta, attr, values: given, live } of values.values()) {
      const cell = `${shortKey(key)}${meta ? " (meta)" : ""}${
        attr === undefined ? "" : ` (attribute ${attr})`
      }`;
      let got: Uint8Array | undefined;
      try {
        if (attr !== undefined) {
          const v = await st.getAttr(key, attr);
          if (v !== undefined && !(v instanceof Uint8Array)) {
            throw new Error("not a binary value");
          }
          got = v;
        } else {
          using hit = await st.fetch(key, { meta });
          got = hit?.data.slice();
        }
      } catch (err) {
        return {
          result: "opened",
          misses,
          problem: `fetch ${cell} threw ${
            err instanceof StoreError ? err.code : "untyped"
          }: ${err instanceof Error ? err.message : String(err)}`,
        };
      }
      if (got === undefined) misses++;
      const last = live ? given.at(-1) : undefined;
      let problem: string | undefined;
      if (got !== undefined && !given.some((v) => sameBytes(v, got))) {
        problem = `returned ${got.length} bytes it was never given`;
      } else if (expect === "exact" && !sameBytes(got, last)) {
        problem = got === undefined
          ? `is a miss, but its elements are intact`
          : last === undefined
          ? `returned ${got.length} bytes of an invalidated entry`
          : `returned an older value (${got.length} bytes, not ${last.length})`;
      } else if (expect === "empty" && got !== undefined) {
        problem =
          `returned ${got.length} bytes, but the index must start empty`;
      }
      if (problem !== undefined) {
        return {
          result: "opened",
          misses,
          problem: `fetch ${cell} ${problem}`,
        };
      }
    }
    const probe = new TextEncoder().encode("probe after damage");
    try {
      await st.store("\u0001probe", probe);
      using hit = await st.fetch("\u0001probe");
      if (!sameBytes(hit?.data, probe)) {
        return { result: "opened", misses, problem: "a new element is lost" };
      }
    } catch (err) {
      return {
        result: "opened",
        misses,
        problem: `the store no longer works: ${
          err instanceof BudgetError ? "looping" : String(err)
        }`,
      };
    }
  } finally {
    await st.close().catch(() => {});
  }
  return { result: "opened", misses };
}
