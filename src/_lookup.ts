/**
 * Finding a key's entry: hashing the key (keyed SipHash-1-3, nsurl, or a
 * test's override), walking the address map, and telling which of the
 * entries with that hash is the key's when hashes can collide.
 *
 * @module
 */
import {
  type ElementFiles,
  type Expected,
  headerKeyMatches,
} from "./elements.ts";
import type { HashName } from "./format.ts";
import {
  type ElementRecord,
  type IndexMemory,
  MAX_KEY_BYTES,
} from "./index_memory.ts";
import { type NormalKey, nsurlComponents } from "./key.ts";
import { type ElementKind, KINDS } from "./kinds.ts";
import type { PinTable } from "./pins.ts";
import { sameBytes } from "./_bytes.ts";
import type { ElementOrigin } from "./_origins.ts";

/**
 * A key as looked up: its hash, the length of its UTF-8 bytes (left
 * encoded in the index memory's key region), and its entry (-1: none).
 */
export interface Found {
  entry: number;
  lo: number;
  hi: number;
  keyLen: number;
}

/**
 * What a read of entry element `rec` of the key hashed as `h` expects:
 * a header for that key, or for `origin`'s when the element was written
 * for another key (moved, copied or deduplicated onto this entry).
 */
export function expected(
  kind: ElementKind,
  key: Uint8Array,
  h: Found,
  rec: ElementRecord,
  origin?: ElementOrigin,
): Expected {
  return {
    kind,
    key: origin?.key ?? key,
    hashLo: origin?.hashLo ?? h.lo,
    hashHi: origin?.hashHi ?? h.hi,
    size: rec.size,
    crc: rec.crc,
  };
}

/** The origin of entry `i`'s element of `kind`, if another key's. */
export function originOf(
  mem: IndexMemory,
  i: number,
  kind: ElementKind,
): ElementOrigin | undefined {
  return mem.origins(i)?.of[kind];
}

/** How a store hashes its keys. */
export interface LookupOptions {
  /** The store's key hash (FORMAT.md §3). */
  hash: HashName;
  /** Tests only: a 32-bit hash of the key text replacing the store's. */
  hashOverride?: ((key: string) => number) | undefined;
  /**
   * Drops entry `i` as damaged (no element of it is valid); false when
   * that could not be journaled.
   */
  dropCorrupt: (i: number) => boolean;
}

/**
 * The key to entry lookup of an open store.
 *
 * @example Illustrative only (the parts are wired by `store.ts`):
 * ```ts ignore
 * const lookup = new KeyLookup(mem, files, pins, { hash: "siphash13", dropCorrupt });
 * const { entry } = lookup.find(normaliseKey("https://example.com/"));
 * ```
 */
export class KeyLookup {
  #mem: IndexMemory;
  #files: ElementFiles;
  #pins: PinTable;
  #override: ((key: string) => number) | undefined;
  #nsurl: boolean;
  /** True when equal 64-bit keyed hashes identify a key (see find). */
  #trustHash: boolean;
  #dropCorrupt: (i: number) => boolean;

  constructor(
    mem: IndexMemory,
    files: ElementFiles,
    pins: PinTable,
    options: LookupOptions,
  ) {
    this.#mem = mem;
    this.#files = files;
    this.#pins = pins;
    this.#override = options.hashOverride;
    this.#nsurl = this.#override === undefined && options.hash === "nsurl";
    this.#trustHash = this.#override === undefined &&
      options.hash === "siphash13";
    this.#dropCorrupt = options.dropCorrupt;
  }

  /** Hashes `nk`, leaving its UTF-8 bytes in the key region. */
  hash(nk: NormalKey): Found {
    const mem = this.#mem;
    const override = this.#override;
    let lo = 0;
    let hi = 0;
    // The nsurl hash stages its components in the key region, so the key
    // itself is encoded after it.
    if (override !== undefined) lo = override(nk.text) >>> 0;
    else if (this.#nsurl) lo = mem.hashNsurl(nsurlComponents(nk));
    const keyLen = mem.encodeKey(nk.text);
    if (keyLen < 0) {
      throw new RangeError(
        `Cannot use key: longer than ${MAX_KEY_BYTES} UTF-8 bytes`,
      );
    }
    if (override === undefined && !this.#nsurl) {
      [lo, hi] = mem.hashSip(keyLen);
    }
    return { entry: -1, lo, hi, keyLen };
  }

  /** True when entry `i` belongs to `text` (whose bytes are `key`). */
  isKeyOf(i: number, text: string, key: Uint8Array): boolean | "corrupt" {
    const want = {
      key,
      hashLo: this.#mem.hashLo(i),
      hashHi: this.#mem.hashHi(i),
    };
    for (const kind of KINDS) {
      const pin = this.#pins.get(i, kind);
      if (pin !== undefined) return pin.text === text;
    }
    // Attributes and origins keep the entry's key (its elements' headers
    // may name another, or it may have no element).
    const origins = this.#mem.origins(i);
    if (origins !== undefined) return sameBytes(origins.key, key);
    const attrs = this.#mem.attrs(i);
    if (attrs !== undefined) return sameBytes(attrs.key, key);
    // The entry is damaged only when every element it has is: one damaged
    // element (say, of a replacement a crash interrupted) does not decide
    // for the other, which fetch verifies on its own.
    for (const kind of KINDS) {
      const rec = this.#mem.element(i, kind);
      // Metadata in the data's slot has no header of its own to go by.
      if (rec === undefined || rec.withData === true) continue;
      const head = rec.inFile
        ? this.#files.readFileHeader(kind, rec.loc, key.length)
        : this.#files.readSlotHeader(kind, rec.loc, key.length);
      const mine = headerKeyMatches(head, { ...want, kind });
      if (mine !== "corrupt") return mine;
    }
    return "corrupt";
  }

  /** Finds the entry for `nk`; `entry` is -1 when absent. */
  find(nk: NormalKey): Found {
    const mem = this.#mem;
    const h = this.hash(nk);
    let pos = mem.lookupFirst(h.lo, h.hi);
    // With the store's secret-keyed 64-bit SipHash, equal hashes are taken
    // as the same key here (a collision, about 2^-64 a pair and not
    // craftable without the key, could at worst replace or drop an entry:
    // fetch still compares full keys, so it can never serve wrong bytes).
    // The 32-bit nsurl hash and test overrides collide for real: their
    // stored keys are read back and compared.
    if (pos >= 0 && this.#trustHash) return { ...h, entry: mem.entryAt(pos) };
    if (pos < 0) return h;
    const key = mem.keyBytes(h.keyLen);
    while (pos >= 0) {
      const i = mem.entryAt(pos);
      const mine = this.isKeyOf(i, nk.text, key);
      if (mine === true) return { ...h, entry: i };
      if (mine === "corrupt") {
        pos = this.#dropCorrupt(i)
          ? mem.lookupFirst(h.lo, h.hi) // the map changed: rescan
          : mem.lookupNext(h.lo, h.hi, pos);
        continue;
      }
      pos = mem.lookupNext(h.lo, h.hi, pos);
    }
    return h;
  }
}
