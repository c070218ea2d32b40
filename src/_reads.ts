/**
 * The read path: finding a key's element, reading and verifying it (with
 * metadata stored after the data read in the same read), pinning what
 * was read, and counting hits and misses. Damaged or foreign bytes are
 * never returned: the element is dropped and the read is a miss.
 *
 * @module
 */
import {
  type ElementFiles,
  type Expected,
  headerKeyMatches,
  type ReadResult,
} from "./elements.ts";
import { ELEMENT_HEADER, readElementHeader } from "./format.ts";
import {
  type ElementRecord,
  type IndexMemory,
  MAX_KEY_BYTES,
  recordSlots,
} from "./index_memory.ts";
import type { NormalKey } from "./key.ts";
import { DATA, type ElementKind, META } from "./kinds.ts";
import { expected, type Found, type KeyLookup, originOf } from "./_lookup.ts";
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
  data?: { rec: ElementRecord; want: Expected },
): [ReadResult, ReadResult] {
  // Open and replay ensure both are in the data's slot; `data` is the
  // data's record and expectation when the caller has them already.
  const d = data?.rec ?? mem.element(i, DATA)!;
  const m = mem.element(i, META)!;
  return files.readSlotPair(
    d.loc,
    data?.want ?? expected(DATA, key, h, d, originOf(mem, i, DATA)),
    expected(META, key, h, m, originOf(mem, i, META)),
    recordSlots(d),
  );
}

/**
 * Filled by fetchPin when it read the metadata stored after the data in
 * one read: entry `i`'s metadata result.
 */
export interface Paired {
  i: number;
  r?: ReadResult;
}

/**
 * An entry's data element opened for an entry reader: its pin, and for a
 * large file its id, the open descriptor, where the element starts in it,
 * its length and its CRC-32.
 */
export interface OpenedData {
  pin: Pin;
  /** The length of a slot element pinned unread. */
  size?: number;
  file?: {
    id: number;
    fd: number;
    start: number;
    size: number;
    crc: number;
  };
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
  /**
   * Fetches that returned an element, fetches that did not, bytes served,
   * and data element bytes read from disk.
   */
  readonly counters = { hits: 0, misses: 0, hitBytes: 0, dataBytesRead: 0 };
  #mem: IndexMemory;
  #files: ElementFiles;
  #pins: PinTable;
  #lookup: KeyLookup;
  #hooks: ReadHooks;
  /** The key being fetched, copied out of the key region. */
  #key = new Uint8Array(MAX_KEY_BYTES);
  /**
   * When the fetch in progress started (performance.now()): the time of
   * the pins it creates, read once for both elements of an entry.
   */
  #now = 0;

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
    this.#now = performance.now();
    return this.#fetchPin(nk, this.#lookup.hash(nk), kind);
  }

  /** Both elements of `nk`'s entry with one lookup, each pinned or not. */
  entry(nk: NormalKey): [Pin | undefined, Pin | undefined] {
    this.#now = performance.now();
    const h = this.#lookup.hash(nk);
    const paired: Paired = { i: -1 };
    const data = this.#fetchPin(nk, h, DATA, paired);
    return [data, this.#metaOf(nk, data, paired)];
  }

  /**
   * `nk`'s metadata pinned (or undefined), after its data `data` was
   * pinned with `paired`: metadata read with the data (one read for both)
   * is pinned from that read, anything else looked up and read.
   */
  metaOf(
    nk: NormalKey,
    data: Pin | undefined,
    paired: Paired,
  ): Pin | undefined {
    this.#now = performance.now();
    return this.#metaOf(nk, data, paired);
  }

  #metaOf(
    nk: NormalKey,
    data: Pin | undefined,
    paired: Paired,
  ): Pin | undefined {
    return paired.r !== undefined && paired.i === data?.entry
      ? this.#pinPaired(nk, paired.i, paired.r)
      : this.#fetchPin(nk, this.#lookup.hash(nk), META);
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
      // A pin without bytes (entry readers of a large file, or deferred
      // readers of a slot element yet to read it) is filled in by the read
      // below.
      if (
        pin !== undefined && (pin.bytes !== undefined || pin.text !== nk.text)
      ) {
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
        const want = expected(kind, keyBytes, h, rec, originOf(mem, i, kind));
        if (kind === DATA) this.counters.dataBytesRead += rec.size;
        if (rec.inFile) r = this.#files.readFile(kind, rec.loc, want);
        else if (rec.withData === true) r = this.#pairedMeta(i, h, keyBytes);
        else if (
          paired !== undefined && mem.metaWithData(i) &&
          !this.#pins.get(i, META)
        ) {
          const [d, m] = readPair(mem, this.#files, i, h, keyBytes, {
            rec,
            want,
          });
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

  /**
   * Entry `i`'s metadata stored after its data, read alone (the data may
   * be a 2 MiB body); when that fails, both are read, as the data's header
   * tells a collision from damage.
   */
  #pairedMeta(i: number, h: Found, key: Uint8Array): ReadResult {
    const mem = this.#mem;
    const d = mem.element(i, DATA)!; // open and replay ensure it is a slot
    const m = mem.element(i, META)!;
    const r = this.#files.readSlotPairMeta(
      d.loc,
      expected(DATA, key, h, d, originOf(mem, i, DATA)),
      expected(META, key, h, m, originOf(mem, i, META)),
      recordSlots(d),
    );
    if (r.ok) return r;
    this.counters.dataBytesRead += d.size;
    return readPair(mem, this.#files, i, h, key)[1];
  }

  /** Pins bytes just read and verified as entry `i`'s element of `kind`. */
  #pinRead(
    i: number,
    kind: ElementKind,
    nk: NormalKey,
    bytes: Uint8Array,
  ): Pin {
    const current = this.#pins.get(i, kind);
    if (current !== undefined && current.bytes === undefined) {
      current.bytes = bytes;
      current.fill = undefined;
      current.refs++;
      return this.#use(i, current);
    }
    return this.#use(i, this.#pins.create(i, kind, nk.text, bytes, this.#now));
  }

  /**
   * `nk`'s data element opened as {@linkcode ReadPath.openData} does, with
   * its metadata pinned beside it (read with the data when they lie
   * together): what an entry reader or an entry read is made of. When the
   * metadata's read throws, the data's file and pin are let go first.
   */
  openEntry(
    nk: NormalKey,
    defer: boolean,
  ): { data: OpenedData; meta: Pin | undefined } | undefined {
    const paired: Paired = { i: -1 };
    const data = this.openData(nk, defer, paired);
    if (data === undefined) return undefined;
    try {
      // openData read the clock for both pins.
      return { data, meta: this.#metaOf(nk, data.pin, paired) };
    } catch (err) {
      if (data.file !== undefined) this.#files.closeFile(data.file.fd);
      this.#pins.release(data.pin);
      throw err;
    }
  }

  /**
   * `nk`'s data element for an entry reader: a large file opened, its
   * header and length checked, and pinned without its bytes (the reader
   * reads and verifies them piece by piece); any other element read and
   * verified whole, as fetch does, or with `defer` pinned unread, to be
   * read and verified whole at its first use (`Pin.fill`). Undefined when
   * the entry has no (valid) data element.
   */
  openData(
    nk: NormalKey,
    defer = false,
    paired?: Paired,
  ): OpenedData | undefined {
    this.#now = performance.now();
    const mem = this.#mem;
    const found = this.#lookup.find(nk);
    const i = found.entry;
    const rec = i < 0 ? undefined : mem.element(i, DATA);
    const pinned = i < 0 ? undefined : this.#pins.get(i, DATA);
    if (
      defer && rec !== undefined && !rec.inFile &&
      pinned?.bytes === undefined && (pinned ?? nk).text === nk.text
    ) {
      return { pin: this.#pinUnread(nk, i, rec, pinned), size: rec.size };
    }
    if (
      rec === undefined || !rec.inFile || pinned?.bytes !== undefined
    ) {
      // Given `paired`, metadata stored after the data is read with it.
      // `found` is the key's hash, its bytes still in the key region.
      const pin = rec === undefined
        ? undefined
        : this.#fetchPin(nk, found, DATA, paired);
      if (rec === undefined) this.counters.misses++;
      return pin && { pin };
    }
    const h = this.#lookup.hash(nk); // the key's bytes, in the key region
    const want = expected(
      DATA,
      mem.keyBytes(h.keyLen),
      h,
      rec,
      originOf(mem, i, DATA),
    );
    const key = want.key;
    const fd = this.#files.openFile(DATA, rec.loc);
    const start = ELEMENT_HEADER + key.length;
    if (fd !== undefined) {
      let ok = false;
      try {
        const head = new Uint8Array(start);
        ok = this.#files.readAt(fd, head, 0) === start &&
          headerKeyMatches(head, want) === true &&
          readElementHeader(head)?.length === rec.size &&
          readElementHeader(head)?.crc === rec.crc &&
          this.#files.sizeOf(fd) === start + rec.size;
      } finally {
        if (!ok) this.#files.closeFile(fd);
      }
      if (ok) {
        const pin = pinned ??
          this.#pins.create(i, DATA, nk.text, undefined, performance.now());
        if (pinned !== undefined) pin.refs++;
        this.#use(i, pin, rec.size);
        return {
          pin,
          file: { id: rec.loc, fd, start, size: rec.size, crc: rec.crc },
        };
      }
    }
    // Missing, foreign or damaged: dropped, as fetch drops it.
    this.#hooks.dropCorrupt(i, DATA);
    this.counters.misses++;
    return undefined;
  }

  /**
   * Pins the slot element `rec` of `nk`'s entry `i` without
   * reading it (or shares `pinned`, another reader's unread pin): its
   * first use reads and verifies it into the pin's bytes. The pin keeps
   * the slot allocated until it ends, and reads it before ending with
   * references live.
   */
  #pinUnread(
    nk: NormalKey,
    i: number,
    rec: ElementRecord,
    pinned: Pin | undefined,
  ): Pin {
    if (pinned !== undefined) {
      pinned.refs++;
      return this.#use(i, pinned, rec.size);
    }
    const pin = this.#pins.create(
      i,
      DATA,
      nk.text,
      undefined,
      performance.now(),
    );
    const h = this.#lookup.hash(nk); // the key's bytes, in the key region
    const want = expected(
      DATA,
      this.#mem.keyBytes(h.keyLen),
      h,
      rec,
      originOf(this.#mem, i, DATA),
    );
    const loc = rec.loc;
    const slots = recordSlots(rec);
    pin.fill = () => {
      if (pin.bytes !== undefined) return true;
      this.counters.dataBytesRead += want.size;
      const r = this.#files.readSlot(DATA, loc, want, slots);
      if (!r.ok) return false;
      pin.bytes = r.bytes;
      pin.fill = undefined;
      return true;
    };
    return this.#use(i, pin, rec.size);
  }

  /** Counts a hit on entry `i` and bumps its usage. */
  #use(i: number, pin: Pin, size = pin.bytes?.length ?? 0): Pin {
    this.#mem.setPinned(i, true);
    this.counters.hits++;
    this.counters.hitBytes += size;
    this.#hooks.used(i);
    return pin;
  }
}
