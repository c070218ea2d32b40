/**
 * Check steps across entries, once every element is judged: keys
 * (FORMAT.md §8 invariant 7: canonical, hashing to the entry, one entry
 * each), slots and files two entries claim, and which entries a repair
 * drops whole.
 *
 * @module
 */
import { hex, kindName, type PassState } from "./_check_state.ts";
import type { ProblemCode } from "./_check_report.ts";
import { blockFileCount, type Control, SLOTS_PER_FILE } from "./format.ts";
import type { IndexMemory } from "./index_memory.ts";
import { DATA, type ElementKind, KINDS, META, otherKinds } from "./kinds.ts";
import { normaliseKey, nsurlComponents } from "./key.ts";
import { blockFileParts, largeFileParts } from "./paths.ts";
import { sameElement } from "./_shares.ts";

const utf8 = new TextDecoder();

/** Compares keys across entries: mismatched, uncanonical, duplicated. */
export function checkKeys(pass: PassState): void {
  const { mem } = pass.index!;
  const control = pass.control!;
  pass.progress("keys");
  const entries: number[] = [];
  const keys: string[] = [];
  for (let i = 0; i < mem.count; i++) {
    const kd = pass.keyOf[DATA][i];
    const km = pass.keyOf[META][i];
    if (kd !== undefined && km !== undefined && kd !== km) {
      pass.drop.add(i);
      pass.report(
        "ELEMENT_KEY",
        "entries",
        `entry ${i}: data element is for ${JSON.stringify(kd)}, metadata for ${
          JSON.stringify(km)
        }`,
        { entry: i, key: kd },
      );
      continue;
    }
    // Attributes keep the entry's key too (it may have no element).
    const attrs = mem.attrs(i);
    const ka = attrs === undefined ? undefined : utf8.decode(attrs.key);
    const ke = kd ?? km;
    if (ka !== undefined && ke !== undefined && ka !== ke) {
      pass.dropAttrs.set(i, [...attrs!.records.keys()]);
      pass.report(
        "ATTR_CORRUPT",
        "entries",
        `entry ${i}: its attributes are for ${
          JSON.stringify(ka)
        }, its elements for ${JSON.stringify(ke)}`,
        { entry: i, key: ke },
      );
    }
    const key = ke ?? ka;
    if (key === undefined) continue;
    // A key that normalises to something else can never be looked up.
    const nk = normaliseKey(key);
    if (nk.text !== key) {
      keyProblem(
        pass,
        i,
        key,
        `key is not canonical (lookups use ${JSON.stringify(nk.text)})`,
      );
      continue;
    }
    entries.push(i);
    keys.push(key);
  }
  const hashes = hashKeys(pass, mem, control, keys);
  const byKey = new Map<string, number[]>();
  for (let j = 0; j < entries.length; j++) {
    const i = entries[j]!;
    const lo = hashes[2 * j]!, hi = hashes[2 * j + 1]!;
    if (lo !== mem.hashLo(i) || hi !== mem.hashHi(i)) {
      keyProblem(
        pass,
        i,
        keys[j]!,
        `key hashes to ${hex(hi)}${hex(lo).slice(2)}, the entry has ${
          hex(mem.hashHi(i))
        }${hex(mem.hashLo(i)).slice(2)}`,
      );
      continue;
    }
    if (pass.drop.has(i)) continue;
    const same = byKey.get(keys[j]!);
    if (same === undefined) byKey.set(keys[j]!, [i]);
    else same.push(i);
  }
  for (const [key, same] of byKey) {
    if (same.length < 2) continue;
    // Keep the most recently stored; ties keep the lowest index.
    let keep = same[0]!;
    for (const i of same) {
      if (pass.storedAt[i]! > pass.storedAt[keep]!) keep = i;
    }
    for (const i of same) {
      if (i === keep) continue;
      pass.drop.add(i);
      pass.report(
        "DUPLICATE_KEY",
        "entries",
        `entries ${same.join(", ")} have the same key; keeping ${keep}`,
        { entry: i, key },
      );
    }
  }
}

/** Entry `i`'s key cannot find it: the repair drops the entry. */
function keyProblem(
  pass: PassState,
  i: number,
  key: string,
  detail: string,
): void {
  pass.drop.add(i);
  pass.report("KEY_HASH", "entries", `entry ${i}: ${detail}`, {
    entry: i,
    key,
  });
}

/** [low, high] hash words of each key, by the store's hash, in batches. */
function hashKeys(
  pass: PassState,
  mem: IndexMemory,
  control: Control,
  keys: string[],
): Uint32Array {
  const override = pass.opt.hashOverride;
  if (override !== undefined) {
    const out = new Uint32Array(keys.length * 2);
    keys.forEach((k, j) => out[2 * j] = override(k) >>> 0);
    return out;
  }
  if (control.hash === "siphash13") return mem.hashSipMany(keys);
  const lows = mem.hashNsurlMany(
    keys.map((k) => nsurlComponents(normaliseKey(k))),
  );
  const out = new Uint32Array(keys.length * 2);
  lows.forEach((lo, j) => out[2 * j] = lo);
  return out;
}

/** Two entries claiming one slot or file: keep the first that verified. */
export function checkShared(pass: PassState): void {
  for (const kind of KINDS) {
    for (const [slot, extra] of pass.slotExtra[kind]) {
      const claimants = [pass.slotOwner[kind][slot]! - 1, ...extra];
      const rel = blockFileParts(
        kind,
        Math.floor(slot / SLOTS_PER_FILE[kind]),
        blockFileCount(kind, pass.index!.mem.slotCounts[kind]),
      ).join("/");
      resolveShared(
        pass,
        kind,
        "SLOT_SHARED",
        rel,
        claimants,
        `${kindName(kind)} slot ${slot}`,
        slot,
      );
    }
    for (const [id, claimants] of pass.fileOwners[kind]) {
      if (claimants.length < 2) continue;
      resolveShared(
        pass,
        kind,
        "FILE_SHARED",
        largeFileParts(kind, id).join("/"),
        claimants,
        `${kindName(kind)} large file ${id}`,
      );
    }
  }
}

/**
 * True when every claimant of one element claims it alike (same
 * location, run, size and checksum, and the same header hash: the
 * entry's own or its origin's): a share made by move, copy or dedup, whose
 * reference count is the number of claimants (FORMAT.md §4.3).
 */
function claimAlike(
  mem: IndexMemory,
  kind: ElementKind,
  claimants: readonly number[],
): boolean {
  const first = claimants[0]!;
  const a = mem.element(first, kind);
  if (a === undefined) return false;
  const hashOf = (i: number) => {
    const o = mem.origins(i)?.of[kind];
    return [o?.hashLo ?? mem.hashLo(i), o?.hashHi ?? mem.hashHi(i)];
  };
  const [lo, hi] = hashOf(first);
  return claimants.every((i) => {
    const b = mem.element(i, kind);
    const [l, h] = hashOf(i);
    return b !== undefined && sameElement(a, b) && l === lo && h === hi;
  });
}

/** Keeps the first claimant still sound; the others lose the element. */
function resolveShared(
  pass: PassState,
  kind: ElementKind,
  code: ProblemCode,
  rel: string,
  claimants: number[],
  what: string,
  slot?: number,
): void {
  const mem = pass.index!.mem;
  if (claimAlike(mem, kind, claimants)) {
    // A share: each claimant was judged on its own; one that failed loses
    // only its reference (the others keep theirs).
    return;
  }
  const keep = claimants.find((i) =>
    !pass.drop.has(i) && !pass.dropElement[kind].has(i)
  );
  for (const i of claimants) if (i !== keep) pass.dropElement[kind].add(i);
  pass.report(
    code,
    rel,
    `${what} is claimed by entries ${claimants.join(", ")}; ${
      keep === undefined ? "none verifies" : `keeping ${keep}`
    }`,
    slot === undefined ? {} : { slot },
  );
}

/**
 * An entry losing every element it has is dropped whole; so is one
 * losing the data its metadata is stored after.
 */
export function settleDrops(pass: PassState): void {
  const mem = pass.index!.mem;
  for (const i of pass.dropElement[DATA]) {
    if (mem.metaWithData(i)) pass.drop.add(i);
  }
  for (const kind of KINDS) {
    for (const i of pass.dropElement[kind]) {
      if (pass.drop.has(i)) continue;
      const keepsOne = otherKinds(kind).some((other) =>
        mem.has(i, other) && !pass.dropElement[other].has(i)
      ) || mem.attrs(i) !== undefined;
      if (!keepsOne) {
        pass.drop.add(i);
      }
    }
  }
  for (const kind of KINDS) {
    for (const i of pass.drop) pass.dropElement[kind].delete(i);
  }
}

/** Names the key of entry-level problems whose element did not say. */
export function fillKeys(pass: PassState): void {
  for (const problem of pass.problems) {
    if (problem.entry === undefined || problem.key !== undefined) continue;
    const key = pass.keyOf[DATA][problem.entry] ??
      pass.keyOf[META][problem.entry];
    if (key !== undefined) problem.key = key;
  }
}
