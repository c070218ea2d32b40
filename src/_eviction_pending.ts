/**
 * Victims an eviction chose but has not removed yet: a long eviction
 * removes them in steps, and between steps the table changes (entries
 * move as others are removed, are used, replaced or removed), so each is
 * kept by what identifies it rather than by index: its key hash, the
 * usage it was chosen for and its elements' tag (a replacement in the
 * same second keeps the usage).
 *
 * @module
 */
import type { IndexMemory } from "./index_memory.ts";

/** Chosen victims, best first, each found again when its step comes. */
export class PendingVictims {
  #mem: IndexMemory;
  #lo: Uint32Array;
  #hi: Uint32Array;
  #used: Uint32Array;
  #uses: Uint16Array;
  #tags: Uint32Array;
  #next = 0;

  /**
   * @param mem The index the victims are in.
   * @param victims Their indices now, best first.
   */
  constructor(mem: IndexMemory, victims: ArrayLike<number>) {
    const n = victims.length;
    this.#mem = mem;
    this.#lo = new Uint32Array(n);
    this.#hi = new Uint32Array(n);
    this.#used = new Uint32Array(n);
    this.#uses = new Uint16Array(n);
    this.#tags = new Uint32Array(n);
    for (let k = 0; k < n; k++) {
      const i = victims[k]!;
      this.#lo[k] = mem.hashLo(i);
      this.#hi[k] = mem.hashHi(i);
      this.#used[k] = mem.lastUsed(i);
      this.#uses[k] = mem.useCount(i);
      this.#tags[k] = mem.elementsTag(i);
    }
  }

  /** Victims not yet taken. */
  get left(): number {
    return this.#lo.length - this.#next;
  }

  /**
   * The current indices of the next (up to) `n` victims, in descending
   * order (as removal wants them). A victim that is gone, or was used or
   * replaced since it was chosen (its usage or elements differ), is skipped: it is no
   * longer what the selection chose; so is entry `keep` (-1: none), or
   * any with its hash.
   */
  take(n: number, keep: number): number[] {
    const mem = this.#mem;
    const out: number[] = [];
    const end = Math.min(this.#lo.length, this.#next + n);
    for (let k = this.#next; k < end; k++) {
      const lo = this.#lo[k]!;
      const hi = this.#hi[k]!;
      if (keep >= 0 && mem.hashLo(keep) === lo && mem.hashHi(keep) === hi) {
        continue; // the caller's own entry (it was chosen for another)
      }
      for (let pos = mem.lookupFirst(lo, hi); pos >= 0;) {
        const i = mem.entryAt(pos);
        if (
          mem.lastUsed(i) === this.#used[k] &&
          mem.useCount(i) === this.#uses[k] &&
          mem.elementsTag(i) === this.#tags[k]
        ) {
          out.push(i);
          break;
        }
        pos = mem.lookupNext(lo, hi, pos);
      }
    }
    this.#next = end;
    out.sort((a, b) => b - a);
    // Two victims with one hash and usage (a 64-bit hash collision) find
    // the same entry: it goes once.
    return out.filter((v, j) => j === 0 || out[j - 1] !== v);
  }
}
