/**
 * Reference slot allocator over a plain boolean array, with the same
 * contract as the WASM use-map kernels; used only by tests and benches.
 * @module
 */

/** One use map as booleans. */
export class RefBitmap {
  /** used[s] is true when slot s is in use. */
  readonly used: boolean[];

  /** @param slots Number of slots. */
  constructor(slots: number) {
    this.used = new Array<boolean>(slots).fill(false);
  }

  /** The first free slot at or after `hint`, wrapping once; -1 if none. */
  claim(hint: number): number {
    const n = this.used.length;
    if (n === 0) return -1;
    const start = hint >= n ? 0 : hint;
    for (let k = 0; k < n; k++) {
      const s = (start + k) % n;
      if (!this.used[s]) {
        this.used[s] = true;
        return s;
      }
    }
    return -1;
  }

  /**
   * The first run of `n` free slots starting at or after `hint` (wrapping
   * once), none crossing a multiple of `group`, marked used; -1 if none.
   */
  claimRun(hint: number, n: number, group: number): number {
    const slots = this.used.length;
    if (n === 0 || n > group || n > slots) return -1;
    const start = hint >= slots ? 0 : hint;
    for (let k = 0; k < slots; k++) {
      const s = (start + k) % slots;
      if (
        s + n > slots ||
        Math.floor(s / group) !== Math.floor((s + n - 1) / group)
      ) continue;
      if (this.used.slice(s, s + n).some((u) => u)) continue;
      for (let i = s; i < s + n; i++) this.used[i] = true;
      return s;
    }
    return -1;
  }

  /** Marks `slot` free. */
  free(slot: number): void {
    this.used[slot] = false;
  }

  /** Number of used slots. */
  count(): number {
    return this.used.filter((u) => u).length;
  }

  /** The map as bytes, bit i of byte b being slot 8b + i. */
  bytes(): Uint8Array {
    const out = new Uint8Array(Math.ceil(this.used.length / 8));
    this.used.forEach((u, s) => {
      if (u) out[s >> 3]! |= 1 << (s & 7);
    });
    return out;
  }
}
