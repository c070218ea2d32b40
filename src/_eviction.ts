/**
 * Eviction: keeping a store under its byte limit and its table below
 * full by removing what is least used (the kernels' `evict_select`),
 * with hysteresis so a store at the limit does not evict on every call.
 *
 * @module
 */
import type { IndexMemory } from "./index_memory.ts";
import type { NormalKey } from "./key.ts";
import type { Found, KeyLookup } from "./_lookup.ts";
import { REMOVE_REASON } from "./ops.ts";
import type { PinTable } from "./pins.ts";
import { PendingVictims } from "./_eviction_pending.ts";
import { EvictionPass, type PassTiming } from "./_eviction_pass.ts";

/**
 * Victims removed in one step of a long eviction: at ~3–10 µs a removal
 * (journal, slot frees), a step holds the event loop a few ms.
 */
export const EVICTION_STEP = 256;
/**
 * An eviction of more victims than this goes on in steps, the event loop
 * turning (a macrotask: timers and I/O run) between them.
 */
export const STEPPED_VICTIMS = 4 * EVICTION_STEP;

/**
 * The bytes a store holds, as eviction weighs them: disk bytes, as the
 * limit counts them (FORMAT.md §5.4).
 */
export interface HeldBytes {
  /** Disk bytes of the elements entries refer to. */
  readonly liveDisk: number;
  /** Disk bytes of superseded elements that references still pin. */
  readonly deferredDisk: number;
  /** True when elements may be shared (eviction may free less). */
  readonly sharing: boolean;
}

/**
 * Where entry `keep` (-1: none) is after removing `victims` (highest
 * first) from a table of `count` by swap-remove: the last entry takes
 * each hole.
 */
function keptIndex(keep: number, victims: readonly number[], count: number) {
  let k = keep;
  let n = count;
  for (const v of victims) {
    n--;
    if (k === n) k = v;
  }
  return k;
}

/** Limits, and what eviction asks of the store. */
export interface EvictionOptions {
  limit: number;
  hysteresis: number;
  /**
   * Removes entries (indices in descending order) as `reason`; returns
   * the bytes they held.
   */
  remove: (
    indices: readonly number[],
    reason: number,
    trim?: boolean,
  ) => number;
  /** Makes removals durable (a stepped eviction's, after each step). */
  commit?: () => Promise<void>;
}

/**
 * The eviction policy of one store.
 *
 * @example Illustrative only (the parts are wired by `store.ts`):
 * ```ts ignore
 * const eviction = new Eviction(mem, pins, lookup, held, options);
 * const { found, i } = eviction.makeRoom(nk, body.length, (i) => mem.elementSize(i, DATA));
 * ```
 */
export class Eviction {
  /**
   * Tables of more entries than this evict incrementally (EvictionPass):
   * a whole selection over 2^17 entries takes ~5–10 ms, over 2^20 ~60.
   * Tests lower it to cover that path on small tables.
   */
  static incrementalAbove: number = 1 << 17;
  /** Entries and element bytes removed by eviction. */
  readonly counters = { evictions: 0, evictedBytes: 0 };
  /** Time incremental passes spent selecting, ms (benchmarks read it). */
  readonly timing: PassTiming = { selectMs: 0, longestMs: 0 };
  #mem: IndexMemory;
  #pins: PinTable;
  #lookup: KeyLookup;
  #held: HeldBytes;
  #opt: EvictionOptions;
  /**
   * A stepped eviction's victims still to remove (or, for a large table,
   * its incremental pass), and its next step.
   */
  #pending: PendingVictims | EvictionPass | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    mem: IndexMemory,
    pins: PinTable,
    lookup: KeyLookup,
    held: HeldBytes,
    options: EvictionOptions,
  ) {
    this.#mem = mem;
    this.#pins = pins;
    this.#lookup = lookup;
    this.#held = held;
    this.#opt = options;
  }

  /**
   * Evicts entries, never `keep`, until `incoming` more bytes fit under
   * the limit with more than the hysteresis freed, and (when the table is
   * full) until the same fraction of entries is free.
   *
   * Only live bytes count: superseded elements a reference still pins
   * (`deferredDisk`) are freed when it ends, or after `pinTimeoutMs`, and
   * no eviction can free them sooner. Counting them would make every store
   * evict every unpinned entry while they outweigh the limit's room.
   */
  evict(incoming: number, keep: number, whole = false): void {
    const mem = this.#mem;
    const opt = this.#opt;
    this.#pins.expire(performance.now());
    // A stepped eviction under way may free the room first, without a
    // selection.
    if (this.#pending !== undefined) {
      // Steps move entries: `keep` is where its entry is afterwards.
      keep = this.#stepUntilRoom(incoming, keep);
      if (this.#hasRoom(incoming)) return;
      this.#dropPending();
    }
    const total = this.#held.liveDisk;
    const overBytes = total + incoming >= opt.limit;
    const full = mem.count >= mem.capacity;
    if (!overBytes && !full) return;
    // A full table of small entries frees a share of entries, not
    // hysteresis bytes (which would empty it).
    const entryTarget = full
      ? Math.max(1, Math.ceil(mem.capacity * opt.hysteresis / opt.limit))
      : 0;
    if (
      !whole && !this.#held.sharing && mem.count > Eviction.incrementalAbove
    ) {
      // A large table: no selection over all of it now. Room for this
      // call in bounded slices, the rest to the targets between turns of
      // the event loop (see EvictionPass).
      const byteGoal = opt.limit - opt.hysteresis;
      const countGoal = mem.capacity - entryTarget + 1;
      this.#pending = new EvictionPass(
        mem,
        {
          left: () => ({
            bytes: overBytes ? this.#held.liveDisk - byteGoal + 1 : 0,
            entries: full ? mem.count - countGoal : 0,
          }),
        },
        this.timing,
        keep,
      );
      const k = this.#stepUntilRoom(incoming, keep);
      if (this.#hasRoom(incoming)) {
        this.#schedule();
        return;
      }
      // The walks found too little (entries moved behind them, or the
      // estimates fell short): the whole selection, for what is left.
      this.#dropPending();
      const stillFull = mem.count >= mem.capacity;
      const over = this.#held.liveDisk + incoming >= opt.limit;
      this.#evictSelected(incoming, k, over, stillFull, entryTarget);
      return;
    }
    this.#evictSelected(incoming, keep, overBytes, full, entryTarget, whole);
  }

  // The exact (or sampled, whole-table) selection, its victims removed now
  // or, when many, in steps.
  #evictSelected(
    incoming: number,
    keep: number,
    overBytes: boolean,
    full: boolean,
    entryTarget: number,
    whole = true,
  ): void {
    const mem = this.#mem;
    const opt = this.#opt;
    // Down to limit - hysteresis with the incoming bytes counted: more than
    // the hysteresis freed, however far over the store was (a reopen with a
    // smaller limit).
    const byteTarget = overBytes
      ? this.#held.liveDisk + incoming - (opt.limit - opt.hysteresis) + 1
      : 0;
    if (!full) entryTarget = 0;
    const chosen = mem.selectVictims(byteTarget, entryTarget, keep);
    if (!whole && chosen.length > STEPPED_VICTIMS && !this.#held.sharing) {
      // Removed in steps, best first: as many now as the caller needs
      // room for, the rest between turns of the event loop.
      this.#pending = new PendingVictims(mem, chosen);
      this.#stepUntilRoom(incoming, keep);
      this.#schedule();
      return;
    }
    let victims = Array.from(chosen);
    let entriesLeft = entryTarget;
    let k = keep;
    for (;;) {
      // A large table's selection may return a prefix of the victims
      // (IndexMemory.selectVictims): select again for the rest.
      const complete = mem.selectionComplete;
      // Swap-remove keeps lower indices valid, so remove highest first.
      victims.sort((a, b) => b - a);
      this.counters.evictedBytes += opt.remove(victims, REMOVE_REASON.evict);
      this.counters.evictions += victims.length;
      entriesLeft -= victims.length;
      // The kernel counts an entry's element bytes whole; a shared element
      // is freed only with its last reference, so evicting its sharers may
      // free less than it counted: select again until under the target.
      if (victims.length === 0 || mem.count === 0) return;
      if (complete && !this.#held.sharing) return;
      k = keptIndex(k, victims, mem.count + victims.length);
      const left = overBytes
        ? this.#held.liveDisk + incoming - (opt.limit - opt.hysteresis) + 1
        : 0;
      const more = complete ? 0 : Math.max(0, entriesLeft);
      if (left <= 0 && more === 0) return;
      victims = Array.from(mem.selectVictims(Math.max(0, left), more, k));
    }
  }

  /** True while a stepped eviction has victims left to remove. */
  get stepping(): boolean {
    return this.#pending !== undefined;
  }

  /**
   * Removes what a stepped eviction has left, now (close). An incremental
   * pass removes the victims it holds and collects no more: the store is
   * under its limit already, only the hysteresis is left unfreed.
   */
  finish(): void {
    if (this.#pending instanceof EvictionPass) this.#pending.settle();
    while (this.#pending !== undefined) this.#step(-1);
  }

  // Room for `incoming` more bytes, and an entry.
  #hasRoom(incoming: number): boolean {
    return this.#mem.count < this.#mem.capacity &&
      this.#held.liveDisk + incoming < this.#opt.limit;
  }

  // Entry `keep` (-1: none) stays, wherever the removals move it;
  // returns where it is afterwards.
  #stepUntilRoom(incoming: number, keep: number): number {
    let k = keep;
    while (this.#pending !== undefined && !this.#hasRoom(incoming)) {
      k = this.#step(k);
    }
    return k;
  }

  /**
   * One step: the next victims that are still what was chosen, never
   * `keep`. Returns where entry `keep` is afterwards.
   */
  #step(keep: number): number {
    const pending = this.#pending!;
    const victims = pending.take(EVICTION_STEP, keep);
    if (pending.left === 0) this.#dropPending();
    if (victims.length === 0) {
      if (this.#pending === undefined) {
        this.#opt.remove([], REMOVE_REASON.evict);
      }
      return keep;
    }
    const count = this.#mem.count;
    // Files give freed blocks back at the last step (or the next removal).
    this.counters.evictedBytes += this.#opt.remove(
      victims,
      REMOVE_REASON.evict,
      this.#pending === undefined,
    );
    this.counters.evictions += victims.length;
    return keptIndex(keep, victims, count);
  }

  #dropPending(): void {
    this.#pending = undefined;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  // The next step in a macrotask of its own (a microtask would keep the
  // event loop from timers and I/O until the eviction ends).
  #schedule(): void {
    if (this.#pending === undefined || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#pending === undefined) return;
      try {
        this.#step(-1);
      } catch {
        // A step that cannot journal (a full disk) ends the eviction; the
        // next store that needs room evicts again.
        this.#dropPending();
        return;
      }
      this.#opt.commit?.().catch(() => {});
      this.#schedule();
    }, 0);
  }

  /**
   * Finds `nk`'s entry and, when `incoming` bytes (replacing the entry's
   * `held(i)` bytes) would pass the limit or a new entry would overfill
   * the table, evicts first, so the new element is not its own victim.
   * The key stays encoded in the key region for the caller.
   */
  makeRoom(
    nk: NormalKey,
    incoming: number,
    held: (i: number) => number,
  ): { found: Found; i: number } {
    const mem = this.#mem;
    const bytes = this.#held;
    const limit = this.#opt.limit;
    const found = this.#lookup.find(nk);
    let i = found.entry;
    const old = i >= 0 ? held(i) : 0;
    const full = i < 0 && mem.count >= mem.capacity;
    const over = bytes.liveDisk - old + incoming + bytes.deferredDisk;
    if (bytes.deferredDisk > 0 && over >= limit) {
      // What pins hold past the limit goes once they time out.
      this.#pins.expire(performance.now());
    }
    // Live bytes only decide (see evict).
    if (full || bytes.liveDisk - old + incoming >= limit) {
      if (full) this.evict(incoming, -1);
      else this.evict(incoming - old, i);
      i = this.#lookup.find(nk).entry; // eviction may have moved it
    }
    return { found, i };
  }
}
