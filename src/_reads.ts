/**
 * The read path: finding a key's element, reading and verifying it (with
 * metadata stored after the data read in the same read), pinning what
 * was read, and counting hits and misses. Damaged or foreign bytes are
 * never returned: the element is dropped and the read is a miss.
 *
 * @module
 */
import type { ElementFiles, ReadResult } from "./elements.ts";
import {
  type IndexMemory,
  MAX_KEY_BYTES,
  recordSlots,
} from "./index_memory.ts";
import type { NormalKey } from "./key.ts";
import { DATA, type ElementKind, META } from "./kinds.ts";
import { expected, type Found, type KeyLookup } from "./_lookup.ts";
import type { Pin, PinTable } from "./pins.ts";

/**
 * Reads entry `i`'s data and the metadata stored after it in its slot,
 * in one read, as the key hashed as `h` whose bytes are `key`.
 */
export function readPair(
  mem: IndexMemory,
  files: ElementFiles,
  i: number,
  h: Found,
  key: Uint8Array,
): [ReadResult, ReadResult] {
  const d = mem.element(i, DATA)!; // open and replay ensure it is a slot
  const m = mem.element(i, META)!;
  return files.readSlotPair(
    d.loc,
    expected(DATA, key, h, d),
    expected(META, key, h, m),
    recordSlots(d),
  );
}

/**
 * Filled by fetchPin when it read the metadata stored after the data in
 * one read: entry `i`'s metadata result.
 */
interface Paired {
  i: number;
  r?: ReadResult;
}

/** What the read path asks of the rest of the store. */
export interface ReadHooks {
  /**
   * Drops entry `i`'s element of `kind` after it failed verification (the
   * whole entry when `kind` is undefined or it was the only element);
   * false when that could not be journaled.
   */
  dropCorrupt(i: number, kind?: ElementKind): boolean;
  /** Entry `i` was used now (its usage is to be journaled). */
  used(i: number): void;
}

/**
 * Fetches of one store: elements found, read, verified and pinned.
 *
 * @example Illustrative only (the parts are wired by `store.ts`):
 * ```ts ignore
 * const reads = new ReadPath(mem, files, pins, lookup, hooks);
 * const pin = reads.element(normaliseKey(url), DATA);
 * ```
 */
export class ReadPath {
  /** Fetches that returned an element, fetches that did not, bytes served. */
  readonly counters = { hits: 0, misses: 0, hitBytes: 0 };
  #mem: IndexMemory;
  #files: ElementFiles;
  #pins: PinTable;
  #lookup: KeyLookup;
  #hooks: ReadHooks;
  /** The key being fetched, copied out of the key region. */
  #key = new Uint8Array(MAX_KEY_BYTES);

  constructor(
    mem: IndexMemory,
    files: ElementFiles,
    pins: PinTable,
    lookup: KeyLookup,
    hooks: ReadHooks,
  ) {
    this.#mem = mem;
    this.#files = files;
    this.#pins = pins;
    this.#lookup = lookup;
    this.#hooks = hooks;
  }

  /** `nk`'s element of `kind`, pinned; undefined on a miss. */
  element(nk: NormalKey, kind: ElementKind): Pin | undefined {
    return this.#fetchPin(nk, this.#lookup.hash(nk), kind);
  }

  /** Both elements of `nk`'s entry with one lookup, each pinned or not. */
  entry(nk: NormalKey): [Pin | undefined, Pin | undefined] {
    const h = this.#lookup.hash(nk);
    const paired: Paired = { i: -1 };
    const data = this.#fetchPin(nk, h, DATA, paired);
    // Metadata read with the data (one read for both) is pinned from that.
    const meta = paired.r !== undefined && paired.i === data?.entry
      ? this.#pinPaired(nk, paired.i, paired.r)
      : this.#fetchPin(nk, h, META);
    return [data, meta];
  }

  /**
   * Entry `i`'s metadata as read together with its data (`Paired`):
   * pinned, or dropped as damage (a miss).
   */
  #pinPaired(nk: NormalKey, i: number, r: ReadResult): Pin | undefined {
    if (r.ok) return this.#pinRead(i, META, nk, r.bytes);
    this.#hooks.dropCorrupt(i, META);
    this.counters.misses++;
    return undefined;
  }

  /**
   * Finds and pins the element of `kind` of the key hashed as `h` (whose
   * encoded bytes are still in the key region), or counts a miss. Given
   * `paired`, data read with metadata stored after it leaves the
   * metadata's result there for the caller.
   */
  #fetchPin(
    nk: NormalKey,
    h: Found,
    kind: ElementKind,
    paired?: Paired,
  ): Pin | undefined {
    const mem = this.#mem;
    const keyBytes = mem.keyInto(h.keyLen, this.#key);
    let pos = mem.lookupFirst(h.lo, h.hi);
    while (pos >= 0) {
      const i = mem.entryAt(pos);
      const pin = this.#pins.get(i, kind);
      if (pin !== undefined) {
        if (pin.text === nk.text) {
          pin.refs++;
          return this.#use(i, pin);
        }
        pos = mem.lookupNext(h.lo, h.hi, pos);
        continue;
      }
      const rec = mem.element(i, kind);
      let r: ReadResult | "absent";
      if (rec === undefined) {
        const mine = this.#lookup.isKeyOf(i, nk.text, keyBytes);
        r = mine === true
          ? "absent"
          : { ok: false, reason: mine === false ? "other-key" : "corrupt" };
      } else {
        const want = expected(kind, keyBytes, h, rec);
        if (rec.inFile) r = this.#files.readFile(kind, rec.loc, want);
        else if (rec.withData === true) {
          r = readPair(mem, this.#files, i, h, keyBytes)[1];
        } else if (
          paired !== undefined && mem.metaWithData(i) &&
          !this.#pins.get(i, META)
        ) {
          const [d, m] = readPair(mem, this.#files, i, h, keyBytes);
          if (d.ok) {
            paired.i = i;
            paired.r = m;
          }
          r = d;
        } else {
          r = this.#files.readSlot(kind, rec.loc, want, recordSlots(rec));
        }
      }
      if (r === "absent") break;
      if (r.ok) return this.#pinRead(i, kind, nk, r.bytes);
      if (r.reason === "corrupt") {
        // Never return damaged or foreign bytes: drop the element (or the
        // entry, when nothing else of it is valid), report a miss.
        pos = this.#hooks.dropCorrupt(i, rec === undefined ? undefined : kind)
          ? mem.lookupFirst(h.lo, h.hi)
          : mem.lookupNext(h.lo, h.hi, pos);
        continue;
      }
      pos = mem.lookupNext(h.lo, h.hi, pos);
    }
    this.counters.misses++;
    return undefined;
  }

  /** Pins bytes just read and verified as entry `i`'s element of `kind`. */
  #pinRead(
    i: number,
    kind: ElementKind,
    nk: NormalKey,
    bytes: Uint8Array,
  ): Pin {
    return this.#use(
      i,
      this.#pins.create(i, kind, nk.text, bytes, performance.now()),
    );
  }

  /** Counts a hit on entry `i` and bumps its usage. */
  #use(i: number, pin: Pin): Pin {
    this.#mem.setPinned(i, true);
    this.counters.hits++;
    this.counters.hitBytes += pin.bytes.length;
    this.#hooks.used(i);
    return pin;
  }
}
