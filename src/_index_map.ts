/**
 * The address map in WASM memory: open addressing with linear probing from
 * an entry's hash, each slot holding entry index + 1 (0 = empty), deleted
 * by backward shift so that probe runs stay short.
 *
 * @module
 */
import { ENTRY_SIZE } from "./format.ts";
import type { Regions } from "./_index_layout.ts";
import { C, type IndexWasm, inKernelChunks } from "./_index_wasm.ts";

/** One index's address map over its entry records. */
export class AddressMap {
  #w: IndexWasm;
  #map: number;
  #mapMask: number;
  #mapSize: number;
  #entries: number;
  /** False while every cell is still 0 (fresh memory, or just cleared). */
  #dirty = false;
  /** Scratch for `load`: a u32 and a u32 pair an entry (the shared scratch). */
  #homes: number;
  #pairs: number;
  /**
   * The entries and kept flags whose homes `expandNoting` noted for the
   * next `load` (undefined: none; `clear` forgets them).
   */
  #noted: { count: number; keepFlags: number } | undefined;

  /**
   * @param w The instance and its views.
   * @param r Its regions.
   */
  constructor(w: IndexWasm, r: Regions) {
    this.#w = w;
    this.#map = r.map;
    this.#mapSize = r.mapSize;
    this.#mapMask = r.mapSize - 1;
    this.#entries = r.entries;
    // The eviction scratch, unused while a table is loaded.
    this.#homes = r.loadHomes;
    this.#pairs = r.loadPairs;
  }

  // Low 32 bits of entry `i`'s key hash: its home is that & mask.
  #hashLo(i: number): number {
    return this.#w.u32[(this.#entries + i * ENTRY_SIZE + C.E_HASH_LO) >>> 2]!;
  }

  #hashHi(i: number): number {
    return this.#w.u32[(this.#entries + i * ENTRY_SIZE + C.E_HASH_HI) >>> 2]!;
  }

  /** The first candidate for hash [lo, hi] (see IndexMemory.lookupFirst). */
  first(lo: number, hi: number): number {
    return this.#scan(lo, hi, lo & this.#mapMask);
  }

  /** The next candidate after map position `pos`, or -1. */
  next(lo: number, hi: number, pos: number): number {
    return this.#scan(lo, hi, (pos + 1) & this.#mapMask);
  }

  #scan(lo: number, hi: number, pos: number): number {
    const map = this.#map >>> 2;
    for (;;) {
      const v = this.#w.u32[map + pos]!;
      if (v === 0) return -1;
      const i = v - 1;
      if (this.#hashLo(i) === lo && this.#hashHi(i) === hi) return pos;
      pos = (pos + 1) & this.#mapMask;
    }
  }

  /** Entry index stored at map position `pos`. */
  entryAt(pos: number): number {
    return this.#w.u32[(this.#map >>> 2) + pos]! - 1;
  }

  /** Points map position `pos` at entry `i`. */
  repoint(pos: number, i: number): void {
    this.#dirty = true;
    this.#w.u32[(this.#map >>> 2) + pos] = i + 1;
  }

  /** Inserts entry `i` at the first empty position from its home. */
  insert(i: number): void {
    this.#dirty = true;
    const map = this.#map >>> 2;
    let pos = this.#hashLo(i) & this.#mapMask;
    while (this.#w.u32[map + pos] !== 0) pos = (pos + 1) & this.#mapMask;
    this.#w.u32[map + pos] = i + 1;
  }

  /** The map position of entry `i` (which must be in the map). */
  posOf(i: number): number {
    const map = this.#map >>> 2;
    let pos = this.#hashLo(i) & this.#mapMask;
    while (this.#w.u32[map + pos] !== i + 1) {
      if (this.#w.u32[map + pos] === 0) {
        throw new Error(`index map lost entry ${i}`);
      }
      pos = (pos + 1) & this.#mapMask;
    }
    return pos;
  }

  // Backward-shift deletion: no tombstones, so probe runs stay short.
  /** Empties map position `pos`, moving later entries of its run back. */
  delete(pos: number): void {
    const map = this.#map >>> 2;
    const mask = this.#mapMask;
    const u32 = this.#w.u32;
    let hole = pos;
    let j = pos;
    for (;;) {
      j = (j + 1) & mask;
      const v = u32[map + j]!;
      if (v === 0) break;
      const home = this.#hashLo(v - 1) & mask;
      // Move v into the hole unless its home lies cyclically in (hole, j].
      const inRange = hole <= j
        ? hole < home && home <= j
        : hole < home || home <= j;
      if (!inRange) {
        u32[map + hole] = v;
        hole = j;
      }
    }
    u32[map + hole] = 0;
  }

  /**
   * Inserts entries `0 … count−1` into an empty map (the whole table, at
   * open) and keeps only the `keepFlags` bits of their flags, by the
   * kernel's steps (`asm/load.ts`, each a chunk of entries a call: V8
   * swaps in a function's optimized code only between calls, so one call
   * over the whole table ran in its baseline tier): in the order of their
   * home cells, so the map's writes are nearly sequential instead of a
   * cache miss each (a 1M-entry table's map is 16 MiB). The order of insertion changes no
   * lookup. Uses the eviction scratch, unused while a table is loaded.
   * The first step is skipped when {@linkcode expandNoting} did it for
   * these entries.
   */
  load(count: number, keepFlags: number): void {
    this.#dirty = true;
    const k = this.#w.k;
    const bits = Math.log2(this.#mapSize);
    const noted = this.#noted;
    this.#noted = undefined;
    if (noted?.count !== count || noted.keepFlags !== keepFlags) {
      k.load_begin(bits);
      inKernelChunks(count, (at, n) => {
        k.load_homes(this.#entries, at, n, keepFlags, bits, this.#homes);
      });
    }
    k.load_starts(bits);
    inKernelChunks(count, (at, n) => {
      k.load_scatter(at, n, bits, this.#homes, this.#pairs);
    });
    inKernelChunks(count, (at, n) => {
      k.load_insert(this.#pairs, at, n, this.#map, bits);
    });
  }

  /**
   * Expands `count` packed records lying from byte `p` to `end` into
   * entries `0 … count−1` and notes their homes for the next
   * {@linkcode load} of as many entries with `keepFlags` (its first pass
   * over the entries, done as they are written: asm/load.ts
   * `records_expand_homes`). Returns where the packed records ended, or
   * `overrun` when one ran past `end` (then nothing is noted).
   */
  expandNoting(
    count: number,
    range: { p: number; end: number; keepFlags: number; overrun: number },
  ): number {
    const k = this.#w.k;
    const bits = Math.log2(this.#mapSize);
    const { end, keepFlags, overrun } = range;
    let p = range.p;
    k.load_begin(bits);
    const ok = inKernelChunks(count, (at, n) => {
      p = k.records_expand_homes(
        this.#entries,
        at,
        n,
        p,
        end,
        keepFlags,
        bits,
        this.#homes,
      );
      return p !== overrun;
    });
    this.#noted = ok ? { count, keepFlags } : undefined;
    return p;
  }

  /** Empties the whole map (nothing to do while it is still empty). */
  clear(): void {
    this.#noted = undefined;
    if (!this.#dirty) return;
    this.#w.u8.fill(0, this.#map, this.#map + this.#mapSize * 4);
    this.#dirty = false;
  }
}
