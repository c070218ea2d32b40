// Helpers for check-store and rebuild tests: build a store through the
// public API, damage its files directly (following FORMAT.md), and prove
// what survives through BackingStore.fetch.
import { deepStrictEqual, equal, ok } from "node:assert/strict";
import { BackingStore } from "../mod.ts";
import {
  decodeBlocks,
  decodeEntries,
  encodeBlocksHeader,
  encodeEntries,
  SLOT_SIZE,
} from "../src/format.ts";
import { bytesFor, FILE_SIZED, largeFiles, tempDir } from "./_helpers.ts";

/** The original bytes of every key of a built store. */
export type Values = Map<string, { data: Uint8Array; meta: Uint8Array }>;

/** A store built in a temp dir; disposing removes it. */
export interface Built extends AsyncDisposable {
  dir: string;
  values: Values;
  /** Keys whose data element is a large file / a run of slots / a slot. */
  large: string[];
  runs: string[];
  small: string[];
}

/** The key of item `i`. */
export function keyOf(i: number): string {
  return `https://example.com/item/${i}`;
}

/**
 * Builds a closed store of `n` entries: every third one's data element is
 * a large file, every third from the second a run of two data slots, the
 * rest fit one data slot; every entry has metadata.
 */
export async function buildStore(n = 24): Promise<Built> {
  const tmp = await tempDir();
  const values: Values = new Map();
  const large: string[] = [];
  const runs: string[] = [];
  const small: string[] = [];
  const store = await BackingStore.open(tmp.path, { entryBits: 8 });
  try {
    for (let i = 0; i < n; i++) {
      const key = keyOf(i);
      const sizes = [FILE_SIZED + i * 13, 9000 + i * 13, 100 + i * 37];
      const data = bytesFor(`d${i}`, sizes[i % 3]!);
      const meta = bytesFor(`m${i}`, 40 + i);
      await store.store(key, data);
      await store.store(key, meta, { meta: true });
      values.set(key, { data, meta });
      [large, runs, small][i % 3]!.push(key);
    }
  } finally {
    await store.close();
  }
  return {
    dir: tmp.path,
    values,
    large,
    runs,
    small,
    [Symbol.asyncDispose]: () => tmp[Symbol.asyncDispose](),
  };
}

/**
 * Opens the store and fetches both elements of every key: each must return
 * its original bytes or miss, both elements of the keys in `mustSurvive`
 * must hit, every entry must hit, and the open must not have had to repair
 * anything. Returns how many keys hit.
 */
export async function assertSurvivors(
  dir: string,
  values: Values,
  mustSurvive: Iterable<string> = values.keys(),
): Promise<number> {
  const store = await BackingStore.open(dir);
  let hits = 0;
  try {
    equal(store.stats().repairedOnOpen, 0, "open found nothing to repair");
    const entries = store.stats().entries;
    const must = new Set(mustSurvive);
    for (const [key, v] of values) {
      using data = await store.fetch(key);
      using meta = await store.fetch(key, { meta: true });
      if (data !== undefined) deepStrictEqual(data.data, v.data, key);
      if (meta !== undefined) deepStrictEqual(meta.data, v.meta, key);
      if (must.has(key)) ok(data !== undefined && meta !== undefined, key);
      if (data !== undefined || meta !== undefined) hits++;
    }
    equal(store.stats().corruptions, 0, "no element failed verification");
    equal(hits, entries, "every entry in the index hits");
  } finally {
    await store.close();
  }
  return hits;
}

/** Offset of `needle` in the file at `path` (-1 if absent). */
export function findInFile(path: string, needle: string | Uint8Array): number {
  const hay = Deno.readFileSync(path);
  const n = typeof needle === "string"
    ? new TextEncoder().encode(needle)
    : needle;
  for (let i = hay.indexOf(n[0]!); i >= 0; i = hay.indexOf(n[0]!, i + 1)) {
    let k = 1;
    while (k < n.length && hay[i + k] === n[k]) k++;
    if (k === n.length) return i;
  }
  return -1;
}

/** Flips bit `bit` of the byte at `offset` of `path`. */
export function flipBit(path: string, offset: number, bit = 0): void {
  const file = Deno.openSync(path, { read: true, write: true });
  try {
    const b = new Uint8Array(1);
    file.seekSync(offset, Deno.SeekMode.Start);
    file.readSync(b);
    b[0]! ^= 1 << bit;
    file.seekSync(offset, Deno.SeekMode.Start);
    file.writeSync(b);
  } finally {
    file.close();
  }
}

/** The large file (relative path) holding `key`'s data element. */
export function largeFileOf(dir: string, key: string): string {
  const rel = largeFiles(dir).find((p) =>
    p.startsWith("d/") && findInFile(`${dir}/${p}`, key) === 32
  );
  if (rel === undefined) throw new Error(`no large file holds ${key}`);
  return rel;
}

/** Byte offset of record field (FORMAT.md §4). */
export const REC = { flags: 14, dataSize: 16, dataLoc: 20, metaLoc: 32 };
/** Entry records are 40 bytes (FORMAT.md §4). */
export const RECORD = 40;

/**
 * Rewrites `entries` after `edit` changes its records (a copy) and
 * perhaps the count; the header keeps its journal tag and nextFileId.
 */
export function editEntries(
  dir: string,
  edit: (records: Uint8Array, view: DataView) => Uint8Array | void,
): void {
  const { header, records } = decodeEntries(
    Deno.readFileSync(`${dir}/entries`),
  );
  let recs: Uint8Array = records.slice();
  recs = edit(recs, new DataView(recs.buffer)) ?? recs;
  const count = recs.length / RECORD;
  Deno.writeFileSync(
    `${dir}/entries`,
    encodeEntries({ ...header, count }, recs),
  );
}

/** Index of the record whose data element is `loc` (slot or file id). */
export function recordWithDataLoc(records: Uint8Array, loc: number): number {
  const v = new DataView(records.buffer, records.byteOffset);
  for (let i = 0; i * RECORD < records.length; i++) {
    // Data in slots only (flag bit 2 clear): a large file's id may equal it.
    const inFile = (records[i * RECORD + REC.flags]! & 0x04) !== 0;
    if (!inFile && v.getUint32(i * RECORD + REC.dataLoc, true) === loc) {
      return i;
    }
  }
  return -1;
}

/** Rewrites `blocks` after `edit` changes the data use map (a copy). */
export function editDataUseMap(
  dir: string,
  edit: (map: Uint8Array) => void,
): void {
  const { slots, maps } = decodeBlocks(Deno.readFileSync(`${dir}/blocks`));
  const data = maps[0].slice();
  const meta = maps[1].slice();
  edit(data);
  Deno.writeFileSync(
    `${dir}/blocks`,
    concat(encodeBlocksHeader(slots, data, meta), data, meta),
  );
}

/** The first set bit of a use map. */
export function firstSetBit(map: Uint8Array): number {
  for (let s = 0; s < map.length * 8; s++) {
    if (map[s >> 3]! & (1 << (s & 7))) return s;
  }
  return -1;
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The slot number of the data element holding `key` (slot files only). */
export function dataSlotOf(dir: string, key: string): number {
  const at = findInFile(`${dir}/dblk/A`, key);
  if (at < 0) throw new Error(`no data slot holds ${key}`);
  return Math.floor((at - 4096) / SLOT_SIZE[0]);
}
