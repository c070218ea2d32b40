/**
 * An incremental eviction of a large table: its selection is not one
 * synchronous pass over the table but a walk through it in bounded
 * slices, against a threshold key that a sample estimates once, so that
 * neither selecting nor removing holds the event loop long.
 *
 * Each slice collects the entries whose key is at most the threshold
 * (the least used, about as many as the targets need and a margin) and
 * keeps them as {@linkcode PendingVictims} (by key hash and usage), to be
 * removed in steps; the next slice is collected when they are taken.
 * The order is approximate: victims are among the least used of the
 * whole table, but taken in table order, not strictly best first, and an
 * entry that a swap-remove moves behind the walk is missed by it. A
 * victim is never wrong: it is still what was chosen when removed.
 *
 * @module
 */
import type { IndexMemory } from "./index_memory.ts";
import { PendingVictims } from "./_eviction_pending.ts";

/**
 * Entries one slice looks at: `evict_collect` reads ~2–5 ns an entry, so
 * a slice holds the event loop well under a millisecond or two.
 */
export const PASS_SLICE = 1 << 13;
/**
 * Walks through the table (a fresh threshold each) before giving up on
 * the targets: a sample's estimate falls short rarely, and entries moved
 * behind a walk are few.
 */
const MAX_WALKS = 3;

/** What an incremental eviction aims at, asked afresh at each slice. */
export interface PassTargets {
  /** Element bytes and entries still to free (≤ 0: none). */
  left(): { bytes: number; entries: number };
}

/** Time incremental passes spent selecting (benchmarks read it). */
export interface PassTiming {
  /** In all, samples and slices, ms. */
  selectMs: number;
  /** The longest one slice (with its sample, when it starts a walk), ms. */
  longestMs: number;
}

/** An incremental eviction under way: its walk and the victims in hand. */
export class EvictionPass {
  #mem: IndexMemory;
  #targets: PassTargets;
  #threshold = Infinity;
  #cursor = 0;
  #walks = 0;
  #slice: PendingVictims | undefined;
  #settling = false;
  #timing: PassTiming;
  /** Key hash of the entry whose put started the pass (it stays). */
  #keptLo = 0;
  #keptHi = 0;
  #kept = false;

  /**
   * @param mem The index.
   * @param targets What is left to free.
   * @param timing Where time spent selecting adds up.
   * @param keep The entry whose put starts the pass (-1: none): no slice
   *   takes it, however long the pass goes on after the put.
   */
  constructor(
    mem: IndexMemory,
    targets: PassTargets,
    timing: PassTiming = { selectMs: 0, longestMs: 0 },
    keep = -1,
  ) {
    this.#mem = mem;
    this.#targets = targets;
    this.#timing = timing;
    if (keep >= 0) {
      this.#kept = true;
      this.#keptLo = mem.hashLo(keep);
      this.#keptHi = mem.hashHi(keep);
    }
  }

  /** 0 once the eviction is over: targets met, or the walks done. */
  get left(): number {
    if (this.#settling) return this.#slice?.left ?? 0;
    if (this.#met()) return 0;
    if (this.#slice !== undefined && this.#slice.left > 0) return 1;
    return this.#walks < MAX_WALKS || this.#cursor < this.#mem.count ? 1 : 0;
  }

  /** Stops collecting: only the victims in hand are left (close). */
  settle(): void {
    this.#settling = true;
  }

  #met(): boolean {
    const { bytes, entries } = this.#targets.left();
    return bytes <= 0 && entries <= 0;
  }

  /**
   * The current indices of up to `n` next victims, in descending order,
   * never `keep` (-1: none); may be empty while the walk goes on (a slice
   * without victims). One slice's collection at most.
   */
  take(n: number, keep: number): number[] {
    // A slice may hold more than is left to free (many keys tie at the
    // threshold): the rest of it stays.
    if (!this.#settling && this.#met()) this.#slice = undefined;
    if (this.#slice === undefined || this.#slice.left === 0) {
      this.#slice = undefined;
      if (this.#settling || this.#met()) return [];
      this.#collect(keep);
      if (this.#slice === undefined) return [];
    }
    return this.#slice.take(n, keep);
  }

  // The next slice's victims, starting a walk (a threshold for what is
  // left) when the last one reached the end.
  #collect(keep: number): void {
    const mem = this.#mem;
    const t0 = performance.now();
    if (this.#walks === 0 || this.#cursor >= mem.count) {
      if (this.#walks >= MAX_WALKS) return;
      const { bytes, entries } = this.#targets.left();
      this.#threshold = mem.sampleThreshold(
        Math.max(0, bytes),
        Math.max(0, entries),
        keep,
      );
      this.#cursor = 0;
      this.#walks++;
    }
    const start = this.#cursor;
    const end = Math.min(mem.count, start + PASS_SLICE);
    let found = mem.collectRange(start, end, this.#threshold, keep);
    this.#cursor = Math.min(end, start + Math.max(1, mem.maxCandidates));
    if (this.#kept) {
      const lo = this.#keptLo;
      const hi = this.#keptHi;
      found = found.filter((i) => mem.hashLo(i) !== lo || mem.hashHi(i) !== hi);
    }
    if (found.length > 0) this.#slice = new PendingVictims(mem, found);
    const ms = performance.now() - t0;
    this.#timing.selectMs += ms;
    this.#timing.longestMs = Math.max(this.#timing.longestMs, ms);
  }
}
