// The corruption fuzz's cases and how one is judged: a store image (loaded
// into the fault layer from a real store directory) is damaged in one way,
// opened, and every element fetched. Shared by corruption_fuzz_test.ts and
// the workers it starts (_corruption_worker.ts).
import { type BackingStore, type OpenOptions, StoreError } from "../mod.ts";
import { BudgetError, type FaultFS } from "./_fault_fs.ts";
import { shortKey } from "./_crash_model.ts";
import { sameBytes } from "./_helpers.ts";
import { openForTest } from "../src/_testing.ts";

/** Where the image's store lives inside the fault layer. */
export const ROOT = "/store";

/** Options every case opens the store with (those it was made with). */
export const FUZZ_OPTIONS: OpenOptions = {
  entryBits: 8,
  identBits: 9,
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
}

/** One way of damaging one file. */
export type Damage =
  | { op: "flip"; bit: number }
  | { op: "truncate"; length: number }
  | { op: "append"; bytes: number; seed: number }
  | { op: "zero"; page: number };

/** A case: a target and its damage. */
export interface Case {
  target: number;
  damage: Damage;
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

/** Every bit of the first 512 bytes of a region, then every 7th bit to 4 KiB. */
function sampledBits([start, end]: [number, number]): number[] {
  const bits: number[] = [];
  const dense = Math.min(end, start + 512) * 8;
  const sparse = Math.min(end, start + 4096) * 8;
  for (let b = start * 8; b < dense; b++) bits.push(b);
  for (let b = dense; b < sparse; b += 7) bits.push(b);
  return bits;
}

/** The damage cases for `targets`, given each file's length and used end. */
export function buildCases(
  targets: Target[],
  sizes: { length: number; used: number }[],
): Case[] {
  const cases: Case[] = [];
  targets.forEach((t, target) => {
    const { length, used } = sizes[target]!;
    for (const region of t.regions) {
      for (const bit of sampledBits(region)) {
        cases.push({ target, damage: { op: "flip", bit } });
      }
    }
    if (t.kind === "journal") {
      // Every length of the used part, plus a bit.
      for (let n = 0; n <= Math.min(length - 1, used + 64); n++) {
        cases.push({ target, damage: { op: "truncate", length: n } });
      }
    } else {
      for (const n of new Set([0, 1, used >> 1, used - 1])) {
        if (n >= 0 && n < length) {
          cases.push({ target, damage: { op: "truncate", length: n } });
        }
      }
    }
    for (const [bytes, seed] of [[1, 1], [100, 2], [4096, 3]]) {
      cases.push({
        target,
        damage: { op: "append", bytes: bytes!, seed: seed! },
      });
    }
    for (let page = 0; page * 4096 < Math.max(used, 1); page++) {
      cases.push({ target, damage: { op: "zero", page } });
    }
  });
  return cases;
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

/** A short description of a case. */
export function describeCase(targets: Target[], c: Case): string {
  const t = targets[c.target]!;
  const d = c.damage;
  const what = d.op === "flip"
    ? `bit ${d.bit & 7} of byte ${d.bit >> 3} flipped`
    : d.op === "truncate"
    ? `truncated to ${d.length} bytes`
    : d.op === "append"
    ? `${d.bytes} bytes of garbage appended`
    : `page ${d.page} zeroed`;
  return `${t.kind} (${t.path}): ${what}`;
}

/** True when the case flips a bit of a format-version field. */
export function hitsVersion(targets: Target[], c: Case): boolean {
  if (c.damage.op !== "flip") return false;
  const byte = c.damage.bit >> 3;
  return targets[c.target]!.versionBytes.some(([a, b]) =>
    byte >= a && byte < b
  );
}

/**
 * Damages a copy of `image`, opens it and fetches every element. Every
 * fetch must return a value the key was given, or a miss; the store must
 * then take and return a new element.
 */
export async function runDamageCase(
  image: FaultFS,
  targets: Target[],
  c: Case,
  values: Map<string, { key: string; meta: boolean; values: Uint8Array[] }>,
): Promise<Outcome> {
  const fs = image.clone();
  fs.tracksDurability = false; // no power loss here: faster
  damage(fs, targets[c.target]!.path, c.damage);
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
    for (const { key, meta, values: allowed } of values.values()) {
      let got: Uint8Array | undefined;
      try {
        using hit = await st.fetch(key, { meta });
        got = hit?.data.slice();
      } catch (err) {
        return {
          result: "opened",
          misses,
          problem: `fetch ${shortKey(key)} threw ${
            err instanceof StoreError ? err.code : "untyped"
          }: ${err instanceof Error ? err.message : String(err)}`,
        };
      }
      if (got === undefined) misses++;
      else if (!allowed.some((v) => sameBytes(v, got))) {
        return {
          result: "opened",
          misses,
          problem: `fetch ${shortKey(key)}${
            meta ? " (meta)" : ""
          } returned ${got.length} bytes it was never given`,
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
