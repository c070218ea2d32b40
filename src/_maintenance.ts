/**
 * Maintenance: the deferred work of an open store. Use counts bumped by
 * hits are journaled in batches by a timer (as the seed's 10 s timer),
 * `flush` and `close`; in fsync mode, calls made in one tick share one
 * fsync (group commit).
 *
 * @module
 */
import { nowSeconds } from "./_clock.ts";
import { toStoreError } from "./errors.ts";
import type { IndexMemory } from "./index_memory.ts";
import {
  itemsPerEntry,
  OP,
  type Op,
  type Touch,
  TOUCH_ITEM_BYTES,
} from "./ops.ts";
import type { PinTable } from "./pins.ts";
import type { StoreState } from "./_state.ts";

/** Entries per journaled `touch` batch (16 bytes each: 64 KiB a batch). */
const TOUCH_BATCH = 4096;

/** How maintenance runs and what it asks of the store. */
export interface MaintenanceOptions {
  /** Delay of the timer that journals use counts. */
  delayMs: number;
  /** True in fsync mode: `commit` syncs. */
  fsync: boolean;
  /** Journals `op` and applies it to the table. */
  logApply: (op: Op) => void;
  /** True once the store is closed. */
  closed: () => boolean;
}

/**
 * The deferred work of one store.
 *
 * @example Illustrative only (the parts are wired by `store.ts`):
 * ```ts ignore
 * const upkeep = new Maintenance(state, pins, options);
 * upkeep.used(i); // a hit: its usage is journaled within delayMs
 * await upkeep.commit(); // fsync mode: durable
 * ```
 */
export class Maintenance {
  #state: StoreState;
  #mem: IndexMemory;
  #pins: PinTable;
  #opt: MaintenanceOptions;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Entries whose usage changed since it was last journaled. */
  #touched = new Set<number>();
  #syncing: Promise<void> | undefined;

  constructor(state: StoreState, pins: PinTable, options: MaintenanceOptions) {
    this.#state = state;
    this.#mem = state.mem;
    this.#pins = pins;
    this.#opt = options;
  }

  /** Records a use of entry `i` now, to be journaled by the timer. */
  used(i: number): void {
    this.#mem.touch(i, nowSeconds());
    this.#touched.add(i);
    this.#schedule();
  }

  /** Entry `i` was removed and entry `moved` (-1: none) took its index. */
  removed(i: number, moved: number): void {
    this.#touched.delete(i);
    if (moved >= 0 && this.#touched.delete(moved)) this.#touched.add(i);
  }

  /** A rotation's snapshot holds the current usage: nothing is pending. */
  rotated(): void {
    this.#touched.clear();
  }

  /** Runs the deferred work now. */
  run(): void {
    this.#state.checkDir("maintain store");
    this.#pins.expire(performance.now());
    this.#logTouches();
  }

  /** Cancels the timer. */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * In fsync mode, resolves once everything written so far is on stable
   * storage. Calls made in one tick share one fsync (group commit).
   */
  commit(): Promise<void> {
    if (!this.#opt.fsync) return Promise.resolve();
    this.#syncing ??= Promise.resolve().then(() => {
      this.#syncing = undefined;
      if (this.#opt.closed()) return; // close synced everything
      try {
        this.#state.sync();
      } catch (err) {
        throw toStoreError("sync store", err);
      }
      this.#state.synced();
    });
    return this.#syncing;
  }

  /** Schedules the deferred work: journaling use counts. */
  #schedule(): void {
    if (this.#timer !== undefined || this.#opt.closed()) return;
    const timer = setTimeout(() => {
      this.#timer = undefined;
      try {
        this.run();
      } catch {
        // Deferred work retries at the next fetch, flush or close; a failure
        // here must not crash the host process.
      }
    }, this.#opt.delayMs);
    // Pending index writes must not keep a server process alive.
    Deno.unrefTimer(timer as unknown as number);
    this.#timer = timer;
  }

  /** Journals the use counts bumped since the last call, in batches. */
  #logTouches(): void {
    if (this.#touched.size === 0) return;
    const mem = this.#mem;
    const items: Touch[] = [];
    for (const i of this.#touched) {
      items.push({
        index: i,
        hashLo: mem.hashLo(i),
        lastUsed: mem.lastUsed(i),
        useCount: mem.useCount(i),
      });
    }
    // Batches that each fit an empty journal (a small one holds fewer).
    const per = Math.min(
      TOUCH_BATCH,
      itemsPerEntry(this.#state.maxEntry, TOUCH_ITEM_BYTES),
    );
    for (let at = 0; at < items.length; at += per) {
      this.#opt.logApply({
        tag: OP.touch,
        time: nowSeconds(),
        items: items.slice(at, at + per),
      });
    }
    this.#touched.clear();
  }
}
