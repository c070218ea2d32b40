/**
 * The slot use maps in WASM memory: one bit per slot of each element kind
 * with a summary bit per map word (has a free slot), claimed and freed by
 * the kernels, and their audit against the entries (check-store).
 *
 * @module
 */
import type { ElementKind, PerKind } from "./kinds.ts";
import type { Regions } from "./_index_layout.ts";
import { type IndexWasm, inKernelChunks } from "./_index_wasm.ts";

/** What {@linkcode IndexMemory.auditSlots} found for one element kind. */
export interface SlotAudit {
  /**
   * Entries claiming a slot they cannot have: at or past the slot count,
   * or one a lower-numbered entry already claims.
   */
  badClaims: number;
  /** Slots some entry claims that the use map does not mark. */
  claimedUnmarked: number;
  /** The lowest such slot, or -1. */
  firstClaimedUnmarked: number;
  /** Slots the use map marks that no entry claims. */
  markedUnclaimed: number;
  /** The lowest such slot, or -1. */
  firstMarkedUnclaimed: number;
  /**
   * The claimed-slots map the audit built (same layout as
   * {@linkcode IndexMemory.useMap}), to list every disagreement when the
   * counts are not zero. A copy.
   */
  claimed: Uint8Array;
}

/** One index's slot use maps. */
export class SlotUseMaps {
  #w: IndexWasm;
  #r: Regions;
  #hint: [number, number] = [0, 0];
  /**
   * Bytes of each map below which a slot may be marked: every byte from
   * there on is zero (a new instance's memory is), so clearing and loading
   * a large, mostly free map stop there.
   */
  #dirty: [number, number] = [0, 0];

  /**
   * @param w The instance and its views.
   * @param r Its regions.
   */
  constructor(w: IndexWasm, r: Regions) {
    this.#w = w;
    this.#r = r;
  }

  /** Claims a free slot of `kind` among the first `slots`; -1 if none. */
  claimSlot(kind: ElementKind, slots: number): number {
    const s = this.#w.k.bitmap_claim(
      this.#r.use[kind],
      this.#r.sum[kind],
      slots,
      this.#hint[kind],
    );
    if (s >= 0) {
      this.#hint[kind] = s + 1;
      this.#marked(kind, s + 1);
    }
    return s;
  }

  /**
   * Claims `n` consecutive free slots of `kind` among the first `slots`,
   * none crossing a multiple of `group` (a block file's slots); returns
   * the first, or -1 if no such run is free.
   */
  claimRun(
    kind: ElementKind,
    slots: number,
    n: number,
    group: number,
  ): number {
    if (n === 1) return this.claimSlot(kind, slots);
    const hint = this.#hint[kind];
    const s = this.#w.k.bitmap_claim_run(
      this.#r.use[kind],
      this.#r.sum[kind],
      slots,
      n,
      hint,
      group,
    );
    // Free slots below a run found further on may still take single claims.
    if (s === hint) this.#hint[kind] = s + n;
    if (s >= 0) this.#marked(kind, s + n);
    return s;
  }

  /** Frees slot `slot` of `kind`. */
  freeSlot(kind: ElementKind, slot: number): void {
    this.#w.k.bitmap_free(this.#r.use[kind], this.#r.sum[kind], slot);
    if (slot < this.#hint[kind]) this.#hint[kind] = slot;
  }

  /** Marks slot `slot` of `kind` used. */
  markSlot(kind: ElementKind, slot: number): void {
    this.#w.k.bitmap_set(this.#r.use[kind], this.#r.sum[kind], slot);
    this.#marked(kind, slot + 1);
  }

  /** Notes that slots below `end` of `kind` may now be marked. */
  #marked(kind: ElementKind, end: number): void {
    const bytes = Math.min(this.#r.useBytes[kind], Math.ceil(end / 64) * 8);
    if (bytes > this.#dirty[kind]) this.#dirty[kind] = bytes;
  }

  /**
   * Frees the run of `n` slots of `kind` from `slot` (a word at a time: a
   * run of 64-byte slots is up to 32,768 of them).
   */
  freeRun(kind: ElementKind, slot: number, n: number): void {
    if (n <= 0) return;
    this.#w.k.bitmap_free_run(this.#r.use[kind], this.#r.sum[kind], slot, n);
    if (slot < this.#hint[kind]) this.#hint[kind] = slot;
  }

  /** Marks the run of `n` slots of `kind` from `slot` used. */
  markRun(kind: ElementKind, slot: number, n: number): void {
    if (n <= 0) return;
    this.#w.k.bitmap_set_run(this.#r.use[kind], this.#r.sum[kind], slot, n);
    this.#marked(kind, slot + n);
  }

  /** True when any slot of the run of `n` from `slot` is marked used. */
  runUsed(kind: ElementKind, slot: number, n: number): boolean {
    return this.usedIn(kind, slot, n) !== 0;
  }

  /** Number of used slots of `kind` among the `n` from `first`. */
  usedIn(kind: ElementKind, first: number, n: number): number {
    if (n <= 0) return 0;
    return this.#w.k.bitmap_count_range(this.#r.use[kind], first, first + n);
  }

  /** True when slot `slot` of `kind` is marked used. */
  slotUsed(kind: ElementKind, slot: number): boolean {
    return this.#w.k.bitmap_test(this.#r.use[kind], slot) !== 0;
  }

  /**
   * Slots of `kind` past which every slot is free (a bound: what may have
   * been marked, not the last used slot), so that a scan of the map can
   * stop there rather than at its end.
   */
  markedEnd(kind: ElementKind): number {
    return Math.min(this.#r.slotCounts[kind], this.#dirty[kind] * 8);
  }

  /** Number of used slots of `kind` among the first `slots`. */
  usedSlots(kind: ElementKind, slots: number): number {
    return this.#w.k.bitmap_count(this.#r.use[kind], slots);
  }

  /**
   * A copy of the use map of `kind` (`slotCounts[kind] / 8` bytes, padded),
   * for writing `blocks` or comparing with it.
   */
  useMap(kind: ElementKind): Uint8Array {
    return this.#w.u8.slice(
      this.#r.use[kind],
      this.#r.use[kind] + this.#r.useBytes[kind],
    );
  }

  /**
   * A copy of the use map of `kind` up to a point past which every slot
   * is free (at least its last used word; the rest of
   * {@linkcode useMap} is zeros), and the bytes of the whole map.
   */
  usedMapPrefix(kind: ElementKind): { prefix: Uint8Array; bytes: number } {
    const at = this.#r.use[kind];
    return {
      prefix: this.#w.u8.slice(at, at + this.#dirty[kind]),
      bytes: this.#r.useBytes[kind],
    };
  }

  /**
   * How many of the `n` slots of `kind` from `first` lie up to the last
   * used one (0 when none is used): a block file's used extent.
   */
  usedPrefix(kind: ElementKind, first: number, n: number): number {
    if (n <= 0) return 0;
    const last = this.#w.k.bitmap_last_used(
      this.#r.use[kind],
      first,
      first + n,
    );
    return last < 0 ? 0 : last + 1 - first;
  }

  /**
   * Checks the use map of `kind` against the entries (check-store): every
   * slot an entry claims should be marked, and every marked slot claimed,
   * among the first `slots`. One pass over the entries and one over the map.
   */
  audit(kind: ElementKind, slots: number, count: number): SlotAudit {
    const nbits = Math.min(slots, this.#r.slotCounts[kind]);
    // The claims share the scratch: bits past nbits, which the kernel
    // leaves, must read as unclaimed in the copy below.
    this.#w.u8.fill(0, this.#r.claims, this.#r.claims + this.#r.useBytes[kind]);
    const badClaims = this.#w.k.slots_claimed(
      this.#r.entries,
      count,
      kind,
      this.#r.claims,
      nbits,
    );
    this.#w.k.bitmap_diff(
      this.#r.claims,
      this.#r.use[kind],
      nbits,
      this.#r.outPtr,
    );
    const o = this.#r.outPtr >>> 2;
    const first = (v: number) => (v === 0xffffffff ? -1 : v);
    return {
      badClaims,
      claimedUnmarked: this.#w.u32[o]!,
      firstClaimedUnmarked: first(this.#w.u32[o + 1]!),
      markedUnclaimed: this.#w.u32[o + 2]!,
      firstMarkedUnclaimed: first(this.#w.u32[o + 3]!),
      claimed: this.#w.u8.slice(
        this.#r.claims,
        this.#r.claims + this.#r.useBytes[kind],
      ),
    };
  }

  /**
   * Sets the use map of `kind` to the slots that entries `0 … count−1`
   * claim (each element in slots of its kind: its slot, or a data run),
   * by one kernel pass over the entries (a chunk a call) and one over the
   * map, its summary made exact. Returns how many claims could not be
   * marked: a slot out of range, or one a lower entry already claims
   * (then the map holds the others, and a caller that needs to know which
   * entry to drop marks slot by slot instead).
   */
  loadClaims(kind: ElementKind, count: number): number {
    const k = this.#w.k;
    const map = this.#r.use[kind];
    this.#w.u8.fill(0, map, map + this.#dirty[kind]);
    const out = this.#r.outPtr;
    this.#w.u32[out >>> 2] = 0;
    let bad = 0;
    const nbits = this.#r.slotCounts[kind];
    inKernelChunks(count, (at, n) => {
      bad += k.use_mark(this.#r.entries, at, n, kind, map, nbits, out);
    });
    const top = this.#w.u32[out >>> 2]!;
    k.use_summary(map, this.#r.sum[kind], this.#r.sumBytes[kind], top);
    this.#dirty[kind] = 0;
    this.#marked(kind, top);
    this.#hint[kind] = 0;
    return bad;
  }

  /**
   * {@linkcode loadClaims} of both kinds in one pass over the entries (a
   * chunk a kernel call); returns each kind's claims that could not be
   * marked.
   */
  loadAllClaims(count: number): [number, number] {
    const o = this.#beginClaims();
    inKernelChunks(count, (at, n) => {
      this.#w.k.use_mark_both(
        this.#r.entries,
        at,
        n,
        this.#r.use[0],
        this.#r.slotCounts[0],
        this.#r.use[1],
        this.#r.slotCounts[1],
        this.#r.outPtr,
      );
    });
    return this.#endClaims(o);
  }

  /**
   * {@linkcode loadAllClaims} for entries `0 … count−1` that are each
   * sound on their own (asm/sound.ts `recordSound`, given the block files'
   * `fileSlots`), checked in the same pass: `sound` is false at the first
   * that is not (the maps then hold some claims; clear them), else
   * `maxFileId` is the greatest large-file id (-1 for none).
   */
  loadSoundClaims(
    count: number,
    fileSlots: PerKind<number>,
  ): { sound: boolean; maxFileId: number; bad: [number, number] } {
    const o = this.#beginClaims();
    const sound = inKernelChunks(count, (at, n) =>
      this.#w.k.use_mark_sound(
        this.#r.entries,
        at,
        n,
        this.#r.use[0],
        this.#r.slotCounts[0],
        this.#r.use[1],
        this.#r.slotCounts[1],
        fileSlots[0],
        fileSlots[1],
        this.#r.outPtr,
      ) === 1);
    const u32 = this.#w.u32;
    const maxFileId = sound && u32[o + 4] !== 0 ? u32[o + 5]! : -1;
    return { sound, maxFileId, bad: this.#endClaims(o) };
  }

  // Empties both maps and the kernels' tops and counts; returns `out`'s
  // u32 index.
  #beginClaims(): number {
    const r = this.#r;
    for (const kind of [0, 1] as const) {
      this.#w.u8.fill(0, r.use[kind], r.use[kind] + this.#dirty[kind]);
    }
    const o = r.outPtr >>> 2;
    this.#w.u32.fill(0, o, o + 6);
    return o;
  }

  // Makes both summaries exact up to the tops the kernel left at u32 `o`
  // (so a later clear covers every slot marked); returns the bad claims.
  #endClaims(o: number): [number, number] {
    const k = this.#w.k;
    const r = this.#r;
    for (const kind of [0, 1] as const) {
      const top = this.#w.u32[o + kind]!;
      k.use_summary(r.use[kind], r.sum[kind], r.sumBytes[kind], top);
      this.#dirty[kind] = 0;
      this.#marked(kind, top);
      this.#hint[kind] = 0;
    }
    return [this.#w.u32[o + 2]!, this.#w.u32[o + 3]!];
  }

  /** Clears both use maps. */
  clear(): void {
    // Only the bytes that may be marked: the rest is zero already.
    for (const kind of [0, 1] as const) {
      const at = this.#r.use[kind];
      this.#w.u8.fill(0, at, at + this.#dirty[kind]);
    }
    this.#dirty = [0, 0];
    // Invariant: summary bit w is set iff map word w has a free slot.
    this.#w.u8.fill(0xff, this.#r.sum[0], this.#r.sum[1] + this.#r.sumBytes[1]);
    this.#hint = [0, 0];
  }
}
