/**
 * Live references to fetched elements (NetSurf's element `ref` counts).
 *
 * A fetched element stays pinned while a reference is live: concurrent
 * fetches share its bytes, eviction takes it last, and if it is replaced,
 * invalidated or evicted meanwhile, its storage is freed only when the last
 * reference ends. Unlike the seed's counts, which could stay non-zero
 * forever, a pin ends by itself after `pinTimeoutMs` or when its holders
 * are garbage-collected; the holders keep their bytes either way.
 *
 * @module
 */
import type { ElementKind, ElementRecord } from "./index_memory.ts";

/** One pinned element. */
export interface Pin {
  readonly kind: ElementKind;
  /** Canonical key text. */
  readonly text: string;
  /**
   * The element bytes, shared by every reference; undefined while only
   * entry readers of a large file hold it (they read it from their own
   * descriptor) or deferred readers of a slot element have not read it
   * yet (`fill`), until a fetch reads them.
   */
  bytes: Uint8Array | undefined;
  /** Entry index while current; -1 once superseded. */
  entry: number;
  /** Live references. */
  refs: number;
  /** When the pin was created (ms, monotonic). */
  readonly since: number;
  /** Storage to free when the pin ends (set when superseded). */
  deferred: ElementRecord | undefined;
  /**
   * Set while a slot element is pinned unread (a deferred entry reader
   * reads it at first use): reads and verifies it into `bytes`, false when
   * it is damaged. A pin ending with references live (expiry, close) calls
   * it first, since its slot may be reused once it ends.
   */
  fill: (() => boolean) | undefined;
  /** True once ended; later releases are no-ops. */
  done: boolean;
}

/** What the pin table asks of its store. */
export interface PinHost {
  /** Entry `entry` no longer has a current pin of any kind. */
  unpinned(entry: number): void;
  /** Frees storage whose release was deferred. */
  freeDeferred(kind: ElementKind, rec: ElementRecord): void;
}

/**
 * The pins of one store.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PinTable } from "./pins.ts";
 *
 * const unpinned: number[] = [];
 * const host = { unpinned: (e: number) => unpinned.push(e), freeDeferred() {} };
 * const pins = new PinTable(host, 60_000);
 * const bytes = new Uint8Array([1, 2, 3]);
 * const pin = pins.create(3, 0, "https://a/", bytes, performance.now());
 * pins.release(pin); // the last reference
 * assert.deepEqual(unpinned, [3]);
 * ```
 */
export class PinTable {
  #host: PinHost;
  #timeoutMs: number;
  #current = new Map<number, [Pin | undefined, Pin | undefined]>();
  #all = new Set<Pin>();

  /** @param host Callbacks into the store. @param timeoutMs Pin lifetime bound. */
  constructor(host: PinHost, timeoutMs: number) {
    this.#host = host;
    this.#timeoutMs = timeoutMs;
  }

  /** Number of pins with live references. */
  get size(): number {
    return this.#all.size;
  }

  /** The current pin of `kind` on `entry`, if any. */
  get(entry: number, kind: ElementKind): Pin | undefined {
    return this.#current.get(entry)?.[kind];
  }

  /** Pins `bytes` as entry `entry`'s element of `kind`, with one reference. */
  create(
    entry: number,
    kind: ElementKind,
    text: string,
    bytes: Uint8Array | undefined,
    now: number,
  ): Pin {
    const pin: Pin = {
      kind,
      text,
      bytes,
      entry,
      refs: 1,
      since: now,
      deferred: undefined,
      fill: undefined,
      done: false,
    };
    const slots = this.#current.get(entry) ?? [undefined, undefined];
    slots[kind] = pin;
    this.#current.set(entry, slots);
    this.#all.add(pin);
    return pin;
  }

  /** Ends one reference to `pin`. */
  release(pin: Pin): void {
    if (pin.done) return;
    if (--pin.refs <= 0) this.#end(pin);
  }

  #end(pin: Pin): void {
    if (pin.refs > 0 && pin.fill !== undefined && pin.bytes === undefined) {
      try {
        pin.fill();
      } catch { /* its holders find it unread and fail their reads */ }
    }
    pin.fill = undefined;
    pin.done = true;
    pin.refs = 0;
    this.#all.delete(pin);
    if (pin.entry >= 0) this.#detach(pin);
    if (pin.deferred !== undefined) {
      const rec = pin.deferred;
      pin.deferred = undefined;
      this.#host.freeDeferred(pin.kind, rec);
    }
  }

  #detach(pin: Pin): void {
    const entry = pin.entry;
    const slots = this.#current.get(entry);
    pin.entry = -1;
    if (slots === undefined || slots[pin.kind] !== pin) return;
    slots[pin.kind] = undefined;
    if (slots[0] === undefined && slots[1] === undefined) {
      this.#current.delete(entry);
      this.#host.unpinned(entry);
    }
  }

  /**
   * The element of `kind` on `entry` is being replaced or removed, with its
   * old storage `rec`. If it is pinned, the pin keeps the storage until it
   * ends and this returns true; otherwise the caller frees it now.
   */
  supersede(entry: number, kind: ElementKind, rec: ElementRecord): boolean {
    const pin = this.get(entry, kind);
    if (pin === undefined) return false;
    this.#detach(pin);
    pin.deferred = rec;
    return true;
  }

  /** Entry `from` was moved to index `to` (the table's swap-remove). */
  moved(from: number, to: number): void {
    const slots = this.#current.get(from);
    if (slots === undefined) return;
    this.#current.delete(from);
    this.#current.set(to, slots);
    for (const p of slots) if (p !== undefined) p.entry = to;
  }

  /** Ends every pin older than the timeout. */
  expire(now: number): void {
    for (const pin of this.#all) {
      if (now - pin.since >= this.#timeoutMs) this.#end(pin);
    }
  }

  /** Ends every pin (the store is closing). */
  endAll(): void {
    for (const pin of [...this.#all]) this.#end(pin);
  }
}
