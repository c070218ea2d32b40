/**
 * The index tables in WASM linear memory, and the one owner of that memory.
 * {@linkcode IndexMemory} holds the WASM instance and hands its concerns to
 * the `_index_*.ts` modules, the only others that touch the memory:
 * `_index_wasm.ts` (the instance, its constants and views),
 * `_index_layout.ts` (where each region lies), `_index_keys.ts` (the key
 * region and hashing), `_index_records.ts` (entry records),
 * `_index_map.ts` (the address map) and `_index_use_maps.ts` (slot use
 * maps). Views of the memory never leave them: callers get copies (or
 * bytes copied into their own buffers), or a callback scope
 * ({@linkcode IndexMemory.withRecords}); only
 * {@linkcode IndexMemory.stage}, for the kernels' tests and benchmarks, is
 * a view, and growing the stage detaches every view handed out before.
 *
 * Invariant: entries 0..count-1 are live and dense; removal moves the last
 * record into the hole (as the seed does) and repoints its map slot.
 *
 * @module
 */
import type { AttrSet } from "./_attrs.ts";
import { type Origins, withOrigin } from "./_origins.ts";
import { ENTRY_SIZE } from "./format.ts";
import { DATA, type ElementKind, META, type PerKind } from "./kinds.ts";
import { KeyHashing } from "./_index_keys.ts";
import {
  EXACT_SELECTION_MAX,
  layoutRegions,
  type Regions,
  STAGE_BYTES,
  type TableShape,
} from "./_index_layout.ts";
import { AddressMap } from "./_index_map.ts";
import {
  clearRecord,
  type ElementRecord,
  readRecord,
  readRecordInto,
  writeRecord,
} from "./_index_records.ts";
import { type SlotAudit, SlotUseMaps } from "./_index_use_maps.ts";
import {
  C,
  F_HAS,
  F_META_WITH_DATA,
  F_PINNED,
  IndexWasm,
  inKernelChunks,
  PERSISTED_FLAGS,
  SIZE_OFF,
} from "./_index_wasm.ts";

export { DATA, type ElementKind, ENTRY_SIZE, META, PERSISTED_FLAGS };
export { MAX_KEY_BYTES, type TableShape } from "./_index_layout.ts";
export {
  claimsSlot,
  type ElementRecord,
  recordSlots,
  scratchRecords,
} from "./_index_records.ts";
export type { SlotAudit } from "./_index_use_maps.ts";

const USE_COUNT_MAX = 0xffff;
/** Sampled selection: windows, one in each of this many stretches. */
const SAMPLE_STRATA = 1024;
/** Sampled selection: entries a window spans (64: 2,560 bytes). */
const SAMPLE_WINDOW = 64;
/** What `evict_collect` returns when the keys below its threshold overflow. */
const OVERFLOW = 0xffffffff;
/** What `records_expand` returns when a packed record runs past the end. */
const PACKED_OVERRUN = 0xffffffff;

/**
 * Sets `a[i]` to `v` (undefined: none), writing nothing when both are
 * undefined: a loaded table's arrays start empty and sparse (dictionary
 * elements), and storing undefined at every removed index would grow that
 * dictionary entry by entry, each doubling's rehash holding the event loop
 * (12 ms seen in one removal at 4M entries, 0.4 s at 1M removals).
 */
function setSparse<T>(a: (T | undefined)[], i: number, v: T | undefined) {
  if (v !== undefined || a[i] !== undefined) a[i] = v;
}

/**
 * An index living in its own WASM instance.
 *
 * @example
 * ```ts
 * const mem = new IndexMemory({ entryBits: 16, identBits: 20 });
 * const [lo, hi] = mem.hashSip(mem.encodeKey("https://example.com/"));
 * const i = mem.add(lo, hi, 0);
 * mem.lookupFirst(lo, hi); // map position holding entry i
 * ```
 */
export class IndexMemory {
  /** log2 of the entry capacity. */
  readonly entryBits: number;
  /** Maximum number of entries (`2^entryBits`). */
  readonly capacity: number;
  /** Number of address-map slots (`2^identBits`). */
  readonly mapSize: number;
  /** Slots of each kind: data (`2^dataSlotBits`), metadata (capacity). */
  readonly slotCounts: readonly [number, number];
  /** Live entries; records 0..count-1. */
  count = 0;

  #w: IndexWasm;
  #r: Regions;
  #keys: KeyHashing;
  #addr: AddressMap;
  #useMaps: SlotUseMaps;
  #stageBytes = STAGE_BYTES;
  /**
   * Entry attributes (FORMAT.md §4.1), beside the records in JS memory:
   * index i holds entry i's set or nothing. Moves with its record.
   */
  #attrs: (AttrSet | undefined)[] = [];
  /**
   * Element origins (FORMAT.md §4.3) of entries holding elements written
   * for another key (moved, copied, deduplicated), kept and moved as
   * attribute sets are.
   */
  #origins: (Origins | undefined)[] = [];
  /** Entries with origins (so a table without any is never walked). */
  #originCount = 0;

  /** @param shape The table dimensions. */
  constructor(shape: TableShape) {
    this.#w = new IndexWasm();
    this.#r = layoutRegions(this.#w.k.heap_base(), shape);
    this.entryBits = shape.entryBits;
    this.capacity = this.#r.capacity;
    this.mapSize = this.#r.mapSize;
    this.slotCounts = this.#r.slotCounts;
    this.maxCandidates = this.#r.candidates;
    this.#w.growTo(this.#r.stage + STAGE_BYTES);
    this.#keys = new KeyHashing(this.#w, this.#r);
    this.#addr = new AddressMap(this.#w, this.#r);
    this.#useMaps = new SlotUseMaps(this.#w, this.#r);
    this.clearUseMaps();
  }

  /**
   * Bytes of WASM linear memory this index holds: every region above
   * (records, address map, use maps, eviction scratch) and the stage.
   */
  get memoryBytes(): number {
    return this.#w.k.memory.buffer.byteLength;
  }

  // ---- keys and hashing (_index_keys.ts) ----------------------------------

  /**
   * Encodes `key` as UTF-8 into the key region.
   * @returns its length in bytes, or -1 when it exceeds MAX_KEY_BYTES.
   */
  encodeKey(key: string): number {
    return this.#keys.encodeKey(key);
  }

  /** A copy of the key region's first `len` bytes (the encoded key). */
  keyBytes(len: number): Uint8Array {
    return this.#keys.keyBytes(len);
  }

  /**
   * Copies the key region's first `len` bytes into the caller's `dest`
   * (at least `len` bytes) and returns that prefix of it: the hot paths'
   * way to the encoded key without allocating.
   */
  keyInto(len: number, dest: Uint8Array): Uint8Array {
    return this.#keys.keyInto(len, dest);
  }

  /** Puts raw `bytes` (not necessarily UTF-8) in the key region. */
  loadKey(bytes: Uint8Array): void {
    this.#keys.loadKey(bytes);
  }

  /** Sets the 16-byte SipHash key used by {@linkcode hashSip}. */
  setSipKey(key: Uint8Array): void {
    this.#keys.setSipKey(key);
  }

  /** SipHash-1-3 of the first `len` key-region bytes: [low, high] words. */
  hashSip(len: number): [number, number] {
    return this.#keys.hashSip(len);
  }

  /**
   * NetSurf's nsurl hash over URL components (already normalised, present
   * ones only). Components are written into the key region, so this
   * clobbers an encoded key.
   */
  hashNsurl(components: readonly string[]): number {
    return this.#keys.hashNsurl(components);
  }

  /**
   * SipHash-1-3 of many keys in few kernel calls (open, check-store): the
   * same results as {@linkcode encodeKey} then {@linkcode hashSip} per key.
   *
   * @param keys Key texts; each at most MAX_KEY_BYTES in UTF-8.
   * @param out Receives [low, high] words per key; allocated if omitted.
   * @returns `out`.
   * @throws {RangeError} when a key is longer than MAX_KEY_BYTES or `out`
   * is too short.
   */
  hashSipMany(
    keys: readonly string[],
    out: Uint32Array = new Uint32Array(keys.length * 2),
  ): Uint32Array {
    return this.#keys.hashSipMany(keys, out);
  }

  /**
   * NetSurf's nsurl hash of many keys in few kernel calls: the same results
   * as {@linkcode hashNsurl} per key.
   *
   * @param keys Per key, its present normalised components (at most 7).
   * @param out Receives one word per key; allocated if omitted.
   * @returns `out`.
   * @throws {RangeError} when a key has more than 7 components or more
   * than MAX_KEY_BYTES of them, or `out` is too short.
   */
  hashNsurlMany(
    keys: readonly (readonly string[])[],
    out: Uint32Array = new Uint32Array(keys.length),
  ): Uint32Array {
    return this.#keys.hashNsurlMany(keys, out);
  }

  // ---- checksums and the stage --------------------------------------------

  /**
   * CRC-32 (IEEE, as zlib) of `bytes` by the WASM kernel, copying them in
   * through the stage (which it clobbers); continues from `crc` (0 to
   * start).
   */
  crc32Wasm(bytes: Uint8Array, crc = 0): number {
    let c = crc;
    const step = this.#stageBytes;
    for (let off = 0; off < bytes.length; off += step) {
      const part = bytes.subarray(off, off + step);
      this.#w.u8.set(part, this.#r.stage);
      c = this.#w.k.crc32(this.#r.stage, part.length, c) >>> 0;
    }
    return c >>> 0;
  }

  /**
   * A view of `len` bytes of the stage, for bytes that should be
   * checksummed where they lie (read a file straight into it, then
   * {@linkcode crc32Staged}). Grows memory when needed, which detaches
   * every view this object returned before.
   */
  stage(len: number): Uint8Array {
    if (len > this.#stageBytes) {
      this.#w.growTo(this.#r.stage + len);
      this.#stageBytes = this.#w.k.memory.buffer.byteLength - this.#r.stage;
    }
    return this.#w.u8.subarray(this.#r.stage, this.#r.stage + len);
  }

  /**
   * CRC-32 of `bytes`, which must lie in the stage (a view from
   * {@linkcode stage} or part of one), continuing from `crc`. No copy.
   */
  crc32Staged(bytes: Uint8Array, crc = 0): number {
    const start = bytes.byteOffset;
    if (
      bytes.buffer !== this.#w.u8.buffer || start < this.#r.stage ||
      start + bytes.length > this.#r.stage + this.#stageBytes
    ) {
      throw new RangeError("Cannot checksum: bytes are not in the stage");
    }
    return this.#w.k.crc32(start, bytes.length, crc) >>> 0;
  }

  /**
   * CRC-32 of the `len` bytes at offset `at` of the stage (put there
   * through a view from {@linkcode stage}), continuing from `crc`. No copy
   * and no view made: for many short checksums in a row.
   */
  crc32StageAt(at: number, len: number, crc = 0): number {
    if (!(at >= 0 && len >= 0 && at + len <= this.#stageBytes)) {
      throw new RangeError("Cannot checksum: bytes are not in the stage");
    }
    return this.#w.k.crc32(this.#r.stage + at, len, crc) >>> 0;
  }

  // ---- entry records ------------------------------------------------------

  #base(i: number): number {
    return this.#r.entries + i * ENTRY_SIZE;
  }

  /** Low 32 bits of entry `i`'s key hash (its ident). */
  hashLo(i: number): number {
    return this.#w.u32[(this.#base(i) + C.E_HASH_LO) >>> 2]!;
  }

  /** High 32 bits of entry `i`'s key hash. */
  hashHi(i: number): number {
    return this.#w.u32[(this.#base(i) + C.E_HASH_HI) >>> 2]!;
  }

  /** Last use of entry `i`, seconds since the Unix epoch. */
  lastUsed(i: number): number {
    return this.#w.u32[(this.#base(i) + C.E_LAST_USED) >>> 2]!;
  }

  /** Use count of entry `i` (saturates at 65535). */
  useCount(i: number): number {
    return this.#w.u16[(this.#base(i) + C.E_USE_COUNT) >>> 1]!;
  }

  /**
   * A tag of entry `i`'s elements (their locations and CRCs): a
   * replacement changes it, though its usage may stay as it was (a last
   * use in the same second, its use count kept).
   */
  elementsTag(i: number): number {
    const u32 = this.#w.u32;
    const b = this.#base(i);
    const data = u32[(b + C.E_DATA_LOC) >>> 2]! ^
      u32[(b + C.E_DATA_CRC) >>> 2]!;
    const meta = u32[(b + C.E_META_LOC) >>> 2]! ^
      u32[(b + C.E_META_CRC) >>> 2]!;
    return (data ^ Math.imul(meta, 0x9e3779b1) ^
      u32[(b + C.E_DATA_SIZE) >>> 2]!) >>> 0;
  }

  /** Records a use of entry `i` at `now` (seconds). */
  touch(i: number, now: number): void {
    const b = this.#base(i);
    const u = (b + C.E_USE_COUNT) >>> 1;
    if (this.#w.u16[u]! < USE_COUNT_MAX) this.#w.u16[u]!++;
    this.#w.u32[(b + C.E_LAST_USED) >>> 2] = now;
  }

  /** Sets use count and last use of entry `i` directly (replay, tests). */
  setUsage(i: number, useCount: number, lastUsed: number): void {
    const b = this.#base(i);
    this.#w.u16[(b + C.E_USE_COUNT) >>> 1] = Math.min(useCount, USE_COUNT_MAX);
    this.#w.u32[(b + C.E_LAST_USED) >>> 2] = lastUsed;
  }

  /** True when entry `i` has an element of `kind`. */
  has(i: number, kind: ElementKind): boolean {
    return (this.#w.u8[this.#base(i) + C.E_FLAGS]! & (F_HAS << kind)) !== 0;
  }

  /** The element of `kind` in entry `i`, or undefined when absent. */
  element(i: number, kind: ElementKind): ElementRecord | undefined {
    return readRecord(this.#w, this.#base(i), kind);
  }

  /**
   * The element of `kind` in entry `i` read into `rec` (a pass over the
   * whole table reuses one object a kind); undefined when absent.
   */
  elementInto(
    i: number,
    kind: ElementKind,
    rec: Required<ElementRecord>,
  ): Required<ElementRecord> | undefined {
    return readRecordInto(this.#w, this.#base(i), kind, rec);
  }

  /** True when entry `i`'s metadata is stored in its data's slot (§6.1). */
  metaWithData(i: number): boolean {
    return (this.#w.u8[this.#base(i) + C.E_FLAGS]! & F_META_WITH_DATA) !== 0;
  }

  /** Size of entry `i`'s element of `kind` (0 when absent). */
  elementSize(i: number, kind: ElementKind): number {
    return this.has(i, kind)
      ? this.#w.u32[(this.#base(i) + SIZE_OFF[kind]) >>> 2]!
      : 0;
  }

  /** Records where entry `i`'s element of `kind` now lives. */
  setElement(i: number, kind: ElementKind, rec: ElementRecord): void {
    writeRecord(this.#w, this.#base(i), kind, rec);
  }

  /** Marks entry `i` as having no element of `kind`. */
  clearElement(i: number, kind: ElementKind): void {
    clearRecord(this.#w, this.#base(i), kind);
  }

  /** Entry `i`'s attributes, or undefined when it has none. */
  attrs(i: number): AttrSet | undefined {
    return this.#attrs[i];
  }

  /** Bytes of every entry's attributes, as the limit counts them. */
  attrBytes(): number {
    let total = 0;
    this.#attrs.forEach((set) => total += set?.bytes ?? 0);
    return total;
  }

  /** Sets entry `i`'s attributes (undefined: none). */
  setAttrs(i: number, set: AttrSet | undefined): void {
    const none = set === undefined || set.records.size === 0;
    setSparse(this.#attrs, i, none ? undefined : set);
  }

  /** Entry `i`'s element origins, or undefined when all are its own. */
  origins(i: number): Origins | undefined {
    // Most stores have none: skip the (sparse) array on the read path.
    return this.#originCount === 0 ? undefined : this.#origins[i];
  }

  /** Sets entry `i`'s element origins (undefined: all its own). */
  setOrigins(i: number, o: Origins | undefined): void {
    this.#originCount += (o === undefined ? 0 : 1) -
      (this.#origins[i] === undefined ? 0 : 1);
    setSparse(this.#origins, i, o);
  }

  /** Entry `i`'s element of `kind` (if any) is its own: no origin. */
  clearOrigin(i: number, kind: ElementKind): void {
    const now = this.#origins[i];
    if (now !== undefined) {
      this.setOrigins(i, withOrigin(now, now.key, kind, undefined));
    }
  }

  /** True when any entry holds an element written for another key. */
  anyOrigins(): boolean {
    return this.#originCount > 0;
  }

  /** True when entry `i` has an element or an attribute. */
  hasAnything(i: number): boolean {
    return this.has(i, DATA) || this.has(i, META) ||
      this.#attrs[i] !== undefined;
  }

  /** True when entry `i` is marked as holding a live reference. */
  pinned(i: number): boolean {
    return (this.#w.u8[this.#base(i) + C.E_FLAGS]! & F_PINNED) !== 0;
  }

  /** Marks or unmarks entry `i` as holding a live reference. */
  setPinned(i: number, on: boolean): void {
    const f = this.#base(i) + C.E_FLAGS;
    this.#w.u8[f] = on ? this.#w.u8[f]! | F_PINNED : this.#w.u8[f]! & ~F_PINNED;
  }

  // ---- address map (_index_map.ts) ---------------------------------------

  /**
   * First map position at or after `from` (in probe order from the hash's
   * home) whose entry has hash [lo, hi]; -1 when the probe run ends.
   * Walk candidates with `lookupNext`; the caller compares full keys.
   */
  lookupFirst(lo: number, hi: number): number {
    return this.#addr.first(lo, hi);
  }

  /** The next candidate after map position `pos`, or -1. */
  lookupNext(lo: number, hi: number, pos: number): number {
    return this.#addr.next(lo, hi, pos);
  }

  /** Entry index stored at map position `pos`. */
  entryAt(pos: number): number {
    return this.#addr.entryAt(pos);
  }

  /**
   * Appends a new entry with hash [lo, hi] and no elements.
   * The caller ensures `count < capacity`.
   * @returns the new entry's index.
   */
  add(lo: number, hi: number, now: number): number {
    // Invariant: the map is at most half full (identBits > entryBits), so
    // the probe below always finds an empty slot.
    if (this.count >= this.capacity) {
      throw new RangeError("Cannot add entry: table is full");
    }
    const i = this.count++;
    const b = this.#base(i);
    this.#w.u8.fill(0, b, b + ENTRY_SIZE);
    this.#w.u32[(b + C.E_HASH_LO) >>> 2] = lo;
    this.#w.u32[(b + C.E_HASH_HI) >>> 2] = hi;
    this.setUsage(i, 1, now);
    setSparse(this.#attrs, i, undefined);
    this.setOrigins(i, undefined);
    this.#addr.insert(i);
    return i;
  }

  /**
   * Removes entry `i`: the last record moves into its place.
   * @returns the index the moved record had (now `i`), or -1 if none moved.
   */
  remove(i: number): number {
    this.#addr.delete(this.#addr.posOf(i));
    const last = this.count - 1;
    this.count = last;
    setSparse(this.#attrs, i, this.#attrs[last]);
    setSparse(this.#attrs, last, undefined);
    this.setOrigins(i, undefined);
    setSparse(this.#origins, i, this.#origins[last]);
    setSparse(this.#origins, last, undefined);
    if (i === last) return -1;
    const lastPos = this.#addr.posOf(last);
    this.#w.u8.copyWithin(
      this.#base(i),
      this.#base(last),
      this.#base(last) + ENTRY_SIZE,
    );
    this.#addr.repoint(lastPos, i);
    return last;
  }

  // ---- slot use maps (_index_use_maps.ts) ---------------------------------

  /** Claims a free slot of `kind` among the first `slots`; -1 if none. */
  claimSlot(kind: ElementKind, slots: number): number {
    return this.#useMaps.claimSlot(kind, slots);
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
    return this.#useMaps.claimRun(kind, slots, n, group);
  }

  /** Frees slot `slot` of `kind`. */
  freeSlot(kind: ElementKind, slot: number): void {
    this.#useMaps.freeSlot(kind, slot);
  }

  /** Marks slot `slot` of `kind` used. */
  markSlot(kind: ElementKind, slot: number): void {
    this.#useMaps.markSlot(kind, slot);
  }

  /** Frees the run of `n` slots of `kind` from `slot`. */
  freeRun(kind: ElementKind, slot: number, n: number): void {
    this.#useMaps.freeRun(kind, slot, n);
  }

  /** Marks the run of `n` slots of `kind` from `slot` used. */
  markRun(kind: ElementKind, slot: number, n: number): void {
    this.#useMaps.markRun(kind, slot, n);
  }

  /** True when any slot of the run of `n` from `slot` is marked used. */
  runUsed(kind: ElementKind, slot: number, n: number): boolean {
    return this.#useMaps.runUsed(kind, slot, n);
  }

  /** True when slot `slot` of `kind` is marked used. */
  slotUsed(kind: ElementKind, slot: number): boolean {
    return this.#useMaps.slotUsed(kind, slot);
  }

  /** Slots of `kind` past which every slot is free (a bound). */
  markedEnd(kind: ElementKind): number {
    return this.#useMaps.markedEnd(kind);
  }

  /** Number of used slots of `kind` among the first `slots`. */
  usedSlots(kind: ElementKind, slots: number): number {
    return this.#useMaps.usedSlots(kind, slots);
  }

  /** Number of used slots of `kind` among the `n` from `first`. */
  usedIn(kind: ElementKind, first: number, n: number): number {
    return this.#useMaps.usedIn(kind, first, n);
  }

  /**
   * A copy of the use map of `kind` (`slotCounts[kind] / 8` bytes, padded),
   * for writing `blocks` or comparing with it.
   */
  useMap(kind: ElementKind): Uint8Array {
    return this.#useMaps.useMap(kind);
  }

  /**
   * How many of the `n` slots of `kind` from `first` lie up to the last
   * used one (0 when none is used): a block file's used extent.
   */
  usedPrefix(kind: ElementKind, first: number, n: number): number {
    return this.#useMaps.usedPrefix(kind, first, n);
  }

  /**
   * Checks the use map of `kind` against the entries (check-store): every
   * slot an entry claims should be marked, and every marked slot claimed,
   * among the first `slots`. One pass over the entries and one over the map.
   */
  auditSlots(kind: ElementKind, slots: number): SlotAudit {
    return this.#useMaps.audit(kind, slots, this.count);
  }

  /**
   * A copy of the use map of `kind` up to a point past which every slot
   * is free (the rest of {@linkcode useMap} is zeros), and the bytes of
   * the whole map: to compare with the blocks file without a copy of a
   * large, mostly free map.
   */
  usedMapPrefix(kind: ElementKind): { prefix: Uint8Array; bytes: number } {
    return this.#useMaps.usedMapPrefix(kind);
  }

  /**
   * Sets the use map of `kind` to the slots the entries claim, in one
   * kernel pass (open); returns the claims that could not be marked (out
   * of range, or a slot claimed twice).
   */
  loadUseMap(kind: ElementKind): number {
    return this.#useMaps.loadClaims(kind, this.count);
  }

  /**
   * {@linkcode loadUseMap} of both kinds in one kernel pass over the
   * entries; returns each kind's claims that could not be marked.
   */
  loadUseMaps(): PerKind<number> {
    return this.#useMaps.loadAllClaims(this.count);
  }

  /**
   * {@linkcode loadUseMaps} and {@linkcode recordsSound} in one kernel
   * pass (open): each entry is checked before its claims are marked.
   * When `sound` is false the use maps hold some claims: clear them.
   */
  loadUseMapsIfSound(
    slotCounts: PerKind<number>,
  ): { sound: boolean; maxFileId: number; bad: PerKind<number> } {
    return this.#useMaps.loadSoundClaims(this.count, slotCounts);
  }

  /** Clears both use maps. */
  clearUseMaps(): void {
    this.#useMaps.clear();
  }

  // ---- eviction and persistence -------------------------------------------

  /**
   * Entry indices ordered best victim first (no live reference, lowest use
   * count, oldest use; ties by index). A copy. Above
   * {@linkcode exactSelectionMax} entries, a prefix of the order as long
   * as the selection scratch holds (see {@linkcode selectionComplete}).
   */
  evictionOrder(): Uint32Array {
    return this.selectVictims(Infinity, this.count, -1);
  }

  /**
   * Chooses eviction victims, best first, never `keep` (-1 for none):
   * the shortest prefix of {@linkcode evictionOrder} whose element bytes
   * reach `byteTarget` and whose length reaches `entryTarget` (everything
   * when they cannot both be reached). Only the victims are sorted, so
   * this costs a few passes over the table, not a sort of it. A copy.
   *
   * A table above {@linkcode exactSelectionMax} entries is not copied
   * into the scratch whole: a sample of it (1,024 windows of 64 entries)
   * estimates the threshold key where the targets are met, with a margin,
   * and one pass collects the entries up to it, which are a prefix of the
   * order; selection among them gives the same victims. When the estimate
   * falls short, or the prefix would not fit in the scratch (a shorter
   * one is taken then), the victims are that whole prefix and
   * {@linkcode selectionComplete} is false: remove them and select again.
   */
  selectVictims(
    byteTarget: number,
    entryTarget: number,
    keep: number,
  ): Uint32Array {
    if (Number.isNaN(byteTarget) || Number.isNaN(entryTarget)) {
      throw new RangeError("Cannot select victims: target is NaN");
    }
    const entries = Math.min(Math.max(0, Math.ceil(entryTarget)), 0xffffffff);
    const r = this.#r;
    this.selectionComplete = true;
    const n = this.count <= Math.min(this.exactSelectionMax, r.candidates)
      ? this.#w.k.evict_select(
        r.entries,
        this.count,
        keep,
        byteTarget,
        entries,
        r.keys,
        r.keys2,
        r.idx,
        r.idx2,
      )
      : this.#selectSampled(byteTarget, entries, keep);
    return this.#w.u32.slice(r.idx >>> 2, (r.idx >>> 2) + n);
  }

  /**
   * False when the last {@linkcode selectVictims} returned only a prefix
   * of the victims its targets ask for (a table above
   * {@linkcode exactSelectionMax} entries): remove those and select again.
   */
  selectionComplete = true;

  /**
   * Tables of more entries than this select through a sampled threshold
   * (see {@linkcode selectVictims}); at most the scratch's candidates.
   * Tests lower it to cover that path on small tables.
   */
  exactSelectionMax: number = EXACT_SELECTION_MAX;
  /**
   * Most candidates a sampled selection collects: the scratch's, unless
   * lowered (tests, to cover the prefixes it returns when they overflow).
   */
  maxCandidates: number;
  #seed = 0x2545f491;

  // See selectVictims. Returns the victims' count, at r.idx.
  #selectSampled(byteTarget: number, entries: number, keep: number): number {
    const k = this.#w.k;
    const r = this.#r;
    const count = this.count;
    const max = Math.max(1, Math.min(this.maxCandidates, r.candidates));
    const threshold = (bytes: number, n: number) =>
      this.sampleThreshold(bytes, n, keep);
    const collect = (t: number) =>
      k.evict_collect(
        r.entries,
        count,
        keep,
        t,
        max,
        byteTarget,
        entries,
        r.keys,
        r.keys2,
        r.idx,
        r.idx2,
        r.outPtr,
      ) >>> 0;
    let n = collect(threshold(byteTarget, entries));
    if (n === OVERFLOW) {
      // More keys below the estimate than the scratch holds: a threshold
      // for about half of it, then the smallest key (its ties only).
      n = collect(threshold(0, Math.floor(max / 2)));
      if (n === OVERFLOW) {
        const o = r.outPtr >>> 2;
        n = collect(this.#w.u32[o]! + this.#w.u32[o + 1]! * 2 ** 32);
      }
    }
    this.selectionComplete = k.evict_met() === 1;
    return n;
  }

  /**
   * The threshold key of a selection meeting `byteTarget` and
   * `entryTarget` (with a margin), estimated from a sample of the whole
   * table, never `keep`, as {@linkcode selectVictims} estimates it for a
   * large table: entries with keys up to it are about the victims.
   * Infinity when the sample cannot meet the targets (the whole table may
   * have to go). For {@linkcode collectRange}.
   */
  sampleThreshold(byteTarget: number, entryTarget: number, keep: number) {
    const k = this.#w.k;
    const r = this.#r;
    const max = Math.max(1, Math.min(this.maxCandidates, r.candidates));
    const windowLen = Math.max(
      1,
      Math.min(SAMPLE_WINDOW, Math.floor(max / SAMPLE_STRATA)),
    );
    const entries = Math.min(Math.max(0, Math.ceil(entryTarget)), 0xffffffff);
    this.#seed = (Math.imul(this.#seed, 1103515245) + 12345) >>> 0;
    const t = k.evict_threshold(
      r.entries,
      this.count,
      keep,
      SAMPLE_STRATA,
      windowLen,
      this.#seed,
      byteTarget,
      entries,
      r.keys,
      r.keys2,
      r.idx,
      r.idx2,
    );
    return t < 0 ? Infinity : t;
  }

  /**
   * The entries of `[start, end)` but `keep` whose sort key is at most
   * `threshold` (from {@linkcode sampleThreshold}), best first (ties by
   * index), as indices: one bounded slice of an incremental eviction.
   * At most {@linkcode maxCandidates} entries are looked at: `end` is
   * lowered to fit. A copy.
   */
  collectRange(
    start: number,
    end: number,
    threshold: number,
    keep: number,
  ): Uint32Array {
    const r = this.#r;
    const max = Math.max(1, Math.min(this.maxCandidates, r.candidates));
    const to = Math.min(end, this.count, start + max);
    if (to <= start) return new Uint32Array(0);
    const rel = keep >= start && keep < to ? keep - start : -1;
    // Targets no slice meets: every candidate up to the threshold comes
    // back, sorted; they are fewer than the entries looked at, so the
    // scratch never overflows.
    const n = this.#w.k.evict_collect(
      r.entries + start * ENTRY_SIZE,
      to - start,
      rel,
      threshold,
      max,
      Infinity,
      0xffffffff,
      r.keys,
      r.keys2,
      r.idx,
      r.idx2,
      r.outPtr,
    ) >>> 0;
    const out = this.#w.u32.slice(r.idx >>> 2, (r.idx >>> 2) + n);
    for (let j = 0; j < n; j++) out[j] = out[j]! + start;
    return out;
  }

  /**
   * Calls `f` with the live records as bytes, for writing the entries
   * file without a copy (up to 640 MiB at the largest table): the view is
   * valid only during the call and must not be kept.
   */
  withRecords<T>(f: (records: Uint8Array) => T): T {
    return f(
      this.#w.u8.subarray(
        this.#r.entries,
        this.#r.entries + this.count * ENTRY_SIZE,
      ),
    );
  }

  /**
   * Replaces the table with `count` records from `bytes`, clearing runtime
   * flags and rebuilding the address map. Records are not validated here.
   */
  loadRecords(bytes: Uint8Array, count: number): void {
    this.loadRecordsWith(count, (dest) => {
      dest.set(bytes.subarray(0, dest.length));
    });
  }

  /**
   * Replaces the table with `count` records that `fill` writes into the
   * view it is given (`count` records' bytes, valid only during the call:
   * a snapshot is read straight into the table, with no copy), then clears
   * runtime flags and rebuilds the address map. Records are not validated
   * here. When `fill` throws, the table is left empty.
   */
  loadRecordsWith(count: number, fill: (dest: Uint8Array) => void): void {
    if (count > this.capacity) {
      throw new RangeError("Cannot load entries: more than capacity");
    }
    this.#addr.clear();
    this.#attrs = [];
    this.#origins = [];
    this.#originCount = 0;
    this.count = 0;
    fill(this.#w.u8.subarray(this.#base(0), this.#base(count)));
    this.count = count;
    this.#addr.load(count, PERSISTED_FLAGS);
  }

  /**
   * Expands `count` packed records (FORMAT.md §4, entries version 6) lying
   * in the last `length` bytes of the table's first `count` records into
   * those records, in place, a chunk of records a kernel call
   * (asm/load.ts `records_expand`; `_entry_pack.ts` `expandRecordsJs` is
   * the reference). For `loadRecordsWith`'s `fill`, whose view this
   * region is. False when the packed records do not fill exactly `length`
   * bytes (the table is then garbage: the caller leaves it empty).
   */
  expandRecords(count: number, length: number): boolean {
    const end = this.#base(count);
    let p = end - length;
    return inKernelChunks(count, (at, n) => {
      p = this.#w.k.records_expand(this.#r.entries, at, n, p, end);
      return p !== PACKED_OVERRUN;
    }) && p === end;
  }

  /**
   * {@linkcode expandRecords} for {@linkcode loadRecordsWith}'s `fill` of
   * `count` records, with the first step of the address map's load done
   * as each record is written (asm/load.ts `records_expand_homes`): the
   * records come out with only their persisted flags (which the load
   * would keep anyway), and the load makes one pass fewer over the table.
   */
  expandRecordsLoading(count: number, length: number): boolean {
    const end = this.#base(count);
    return this.#addr.expandNoting(count, {
      p: end - length,
      end,
      keepFlags: PERSISTED_FLAGS,
      overrun: PACKED_OVERRUN,
    }) === end;
  }

  /**
   * One kernel pass over the table (asm/load.ts `table_sound`): true when
   * every record passes the checks an open makes of each record on its own
   * (src/_open.ts `recordsSoundJs` is the reference), given the block
   * files' slot counts; then `maxFileId` is the greatest large-file id any
   * record names (-1 for none).
   */
  recordsSound(
    slotCounts: PerKind<number>,
  ): { sound: boolean; maxFileId: number } {
    const out = this.#r.outPtr;
    const o = out >>> 2;
    let maxFileId = -1;
    const sound = inKernelChunks(this.count, (at, n) => {
      const ok = this.#w.k.table_sound(
        this.#r.entries + at * ENTRY_SIZE,
        n,
        slotCounts[DATA],
        slotCounts[META],
        out,
      ) === 1;
      if (ok && this.#w.u32[o] !== 0) {
        maxFileId = Math.max(maxFileId, this.#w.u32[o + 1]!);
      }
      return ok;
    });
    return sound ? { sound, maxFileId } : { sound, maxFileId: -1 };
  }

  /**
   * The latest last-use time of any entry (0 for none), the bytes of
   * every element the entries hold and their disk bytes as the limit
   * counts them (FORMAT.md §5.4): one pass over the table.
   */
  totals(): { latestUse: number; elementBytes: number; elementDisk: number } {
    const out = this.#r.outPtr;
    let latestUse = 0;
    let elementBytes = 0;
    let elementDisk = 0;
    inKernelChunks(this.count, (at, n) => {
      this.#w.k.table_totals(this.#r.entries + at * ENTRY_SIZE, n, out);
      const sums = new Float64Array(this.#w.u8.buffer, out + 8, 2);
      latestUse = Math.max(latestUse, this.#w.u32[out >>> 2]!);
      elementBytes += sums[0]!;
      elementDisk += sums[1]!;
    });
    return { latestUse, elementBytes, elementDisk };
  }
}
