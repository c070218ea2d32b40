/**
 * Hit objects: what a fetch returns. A hit holds pins on the elements it
 * returns; releasing it (or disposing of it, or its being collected
 * unreleased) ends them.
 *
 * @module
 */
import type { Pin, PinTable } from "./pins.ts";

/**
 * A fetched element. Its bytes stay valid after release; releasing ends
 * the reference that keeps the entry pinned. Treat `data` as read-only:
 * concurrent fetches of one element share it.
 */
export interface Hit extends Disposable {
  /** The element's bytes. */
  readonly data: Uint8Array;
  /** The canonical key. */
  readonly key: string;
  /** True for a metadata element. */
  readonly meta: boolean;
  /** Ends this reference (idempotent). */
  release(): void;
}

/**
 * Both elements of an entry from `BackingStore.fetchEntry`. The bytes
 * stay valid after release; releasing ends the references that keep the
 * entry pinned. Treat the bytes as read-only: concurrent fetches share
 * them.
 */
export interface EntryHit extends Disposable {
  /** The data element, or undefined when the entry has none. */
  readonly data: Uint8Array | undefined;
  /** The metadata element, or undefined when the entry has none. */
  readonly meta: Uint8Array | undefined;
  /** The canonical key. */
  readonly key: string;
  /** Ends this reference (idempotent). */
  release(): void;
}

/** What a hit's finalizer releases if the hit is dropped unreleased. */
interface HitToken {
  pins: Pin[];
  released: boolean;
}

/**
 * Makes hits holding pins of one store's table.
 *
 * @example Illustrative only (the parts are wired by `store.ts`):
 * ```ts ignore
 * const hits = new Hits(pins, () => closed);
 * using hit = hits.element(pin, false);
 * ```
 */
export class Hits {
  #pins: PinTable;
  #finalizer: FinalizationRegistry<HitToken>;

  /** @param closed True once the store is closed (its pins are ended). */
  constructor(pins: PinTable, closed: () => boolean) {
    this.#pins = pins;
    this.#finalizer = new FinalizationRegistry((token) => {
      if (token.released || closed()) return;
      for (const pin of token.pins) pins.release(pin);
    });
  }

  /** A hit on one element, holding `pin`. */
  element(pin: Pin, meta: boolean): Hit {
    return this.#holding([pin], (release) => ({
      data: pin.bytes!, // the read path fills a reader's pin
      key: pin.text,
      meta,
      release,
      [Symbol.dispose]: release,
    }));
  }

  /** A hit on the elements of entry `key`, holding their pins. */
  entry(key: string, data: Pin | undefined, meta: Pin | undefined): EntryHit {
    const pins = data === undefined
      ? [meta!] // fetchEntry returns no hit for neither
      : meta === undefined
      ? [data]
      : [data, meta];
    return this.#holding(pins, (release) => ({
      data: data?.bytes,
      meta: meta?.bytes,
      key,
      release,
      [Symbol.dispose]: release,
    }));
  }

  /**
   * Makes the hit holding `pins`, given its idempotent release; a hit
   * garbage-collected unreleased releases them too.
   */
  #holding<T extends object>(pins: Pin[], make: (release: () => void) => T): T {
    const token: HitToken = { pins, released: false };
    const table = this.#pins;
    const finalizer = this.#finalizer;
    const hit = make(() => {
      if (token.released) return;
      token.released = true;
      finalizer.unregister(token);
      for (const pin of token.pins) table.release(pin);
    });
    finalizer.register(hit, token, token);
    return hit;
  }
}
