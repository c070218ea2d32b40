/**
 * The index tables in WASM linear memory, and the only module that touches
 * that memory. It owns the WASM instance, the layout of every region, and
 * all reads and writes of entry records, the address map and the slot use
 * maps; everything else goes through its methods.
 *
 * Regions (each 8-byte aligned, above the kernels' static data; D is the
 * number of data slots, `2^dataSlotBits`):
 *
 * | region   | size                      | holds                             |
 * | -------- | ------------------------- | --------------------------------- |
 * | key      | MAX_KEY_BYTES             | the key being hashed              |
 * | sipkey   | 16                        | the store's SipHash key           |
 * | out      | 16                        | hash and audit results            |
 * | lens     | BATCH_KEYS × 8 × 4        | batch hashing: key ends / lengths |
 * | hashes   | BATCH_KEYS × 8            | batch hashing: results            |
 * | entries  | 2^entryBits × ENTRY_SIZE  | entry records (FORMAT.md §4)      |
 * | addrmap  | 2^identBits × 4           | entry index + 1, 0 = empty        |
 * | usemap   | (D + 2^entryBits) / 8     | slot use bits, data then meta     |
 * | usesum   | (D + 2^entryBits) / 512   | per use-map word: has a free slot |
 * | claims   | max(D, 2^entryBits) / 8   | slot audit: slots entries claim   |
 * | order    | 2^entryBits × 4           | eviction order output             |
 * | order2   | 2^entryBits × 4           | eviction scratch                  |
 * | sortkeys | 2 × 2^entryBits × 8       | eviction sort keys and scratch    |
 * | stage    | STAGE_BYTES, can grow     | bytes copied in: key batches, CRC |
 *
 * The stage is last so that {@linkcode IndexMemory.stage} can grow it;
 * growing detaches every view this module handed out before.
 *
 * Invariant: entries 0..count-1 are live and dense; removal moves the last
 * record into the hole (as the seed does) and repoints its map slot.
 *
 * @module
 */
import { WASM_BASE64 } from "./_wasm_bytes.ts";
import { ENTRY_SIZE } from "./format.ts";
import { DATA, type ElementKind, META } from "./kinds.ts";

export { DATA, type ElementKind, META };

/** Longest key, in UTF-8 bytes, that a store accepts. */
export const MAX_KEY_BYTES = 16384;

/** Keys hashed per kernel call by the batch hashes. */
const BATCH_KEYS = 4096;
/** Most components a URL key has (scheme, user, password, host, port, path, query). */
const MAX_COMPONENTS = 7;
/** Initial stage size: a batch of keys or one copy-in step of a CRC. */
const STAGE_BYTES = 1 << 20;

// Signatures of asm/; pointers and lengths are byte offsets and counts.
interface Kernels {
  memory: WebAssembly.Memory;
  heap_base(): number;
  bitmap_claim(map: number, sum: number, nbits: number, hint: number): number;
  bitmap_claim_run(
    map: number,
    sum: number,
    nbits: number,
    n: number,
    hint: number,
    group: number,
  ): number;
  bitmap_free(map: number, sum: number, slot: number): void;
  bitmap_set(map: number, sum: number, slot: number): void;
  bitmap_test(map: number, slot: number): number;
  bitmap_count(map: number, nbits: number): number;
  slots_claimed(
    entries: number,
    count: number,
    kind: number,
    claims: number,
    nbits: number,
  ): number;
  bitmap_diff(a: number, b: number, nbits: number, out: number): void;
  crc32(ptr: number, len: number, crc: number): number;
  fnv1_signed(ptr: number, len: number): number;
  nsurl_hash(ptr: number, count: number): number;
  nsurl_hash_many(bytes: number, lens: number, n: number, out: number): void;
  siphash13(ptr: number, len: number, key: number, out: number): void;
  siphash13_many(
    bytes: number,
    ends: number,
    n: number,
    key: number,
    out: number,
  ): void;
  evict_select(
    entries: number,
    count: number,
    keep: number,
    byteTarget: number,
    entryTarget: number,
    keys: number,
    keys2: number,
    idx: number,
    idx2: number,
  ): number;
}

type ConstName =
  | "ENTRY_SIZE"
  | "E_HASH_LO"
  | "E_HASH_HI"
  | "E_LAST_USED"
  | "E_USE_COUNT"
  | "E_FLAGS"
  | "E_DATA_SLOTS"
  | "E_DATA_SIZE"
  | "E_DATA_LOC"
  | "E_DATA_CRC"
  | "E_META_SIZE"
  | "E_META_LOC"
  | "E_META_CRC"
  | "F_HAS"
  | "F_IN_FILE"
  | "F_META_WITH_DATA"
  | "F_PINNED";

let compiled: WebAssembly.Module | undefined;

function instantiate(): {
  kernels: Kernels;
  consts: Record<ConstName, number>;
} {
  compiled ??= new WebAssembly.Module(Uint8Array.fromBase64(WASM_BASE64));
  const exports = new WebAssembly.Instance(compiled, {}).exports;
  const consts = {} as Record<ConstName, number>;
  for (const [name, value] of Object.entries(exports)) {
    if (value instanceof WebAssembly.Global) {
      consts[name as ConstName] = value.value as number;
    }
  }
  return { kernels: exports as unknown as Kernels, consts };
}

const { consts: C } = instantiate();
// Invariant: the kernels' record is the one FORMAT.md §4 (and format.ts)
// describes.
if (C.ENTRY_SIZE !== ENTRY_SIZE) {
  throw new Error(
    `Cannot load kernels: entry record of ${C.ENTRY_SIZE} bytes, expected ${ENTRY_SIZE}`,
  );
}
export { ENTRY_SIZE };
const F_HAS = C.F_HAS;
const F_IN_FILE = C.F_IN_FILE;
const F_PINNED = C.F_PINNED;
const F_META_WITH_DATA = C.F_META_WITH_DATA;
/** Flag bits that are persisted; the rest are runtime state. */
export const PERSISTED_FLAGS: number = (F_HAS | F_IN_FILE) * 3 |
  F_META_WITH_DATA;
const SIZE_OFF = [C.E_DATA_SIZE, C.E_META_SIZE] as const;
const LOC_OFF = [C.E_DATA_LOC, C.E_META_LOC] as const;
const CRC_OFF = [C.E_DATA_CRC, C.E_META_CRC] as const;
const USE_COUNT_MAX = 0xffff;

function tooLong(i: number): RangeError {
  return new RangeError(
    `Cannot hash key ${i}: longer than ${MAX_KEY_BYTES} UTF-8 bytes`,
  );
}

// Arithmetic, not `& ~7`: offsets pass 2^31 at the largest tables
// (entryBits 24, identBits 28), where 32-bit bit operations go negative.
function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

/** A wasm32 memory's limit: 65,536 pages of 64 KiB. */
const WASM_MEMORY_MAX = 2 ** 32;

const encoder = new TextEncoder();

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

/** Where an element is stored, as recorded in its entry. */
export interface ElementRecord {
  /** Length of the element in bytes. */
  size: number;
  /** Slot number (block files) or file id (large files). */
  loc: number;
  /** CRC-32 of the element's bytes. */
  crc: number;
  /** True when the element has its own large file. */
  inFile: boolean;
  /**
   * Metadata only: true when it is stored in the data's slot, right after
   * the data element (`loc` is then the data's slot; FORMAT.md §6.1).
   */
  withData?: boolean;
  /**
   * Data in slots only: how many consecutive data slots, from `loc`, its
   * run spans (FORMAT.md §5.3); 1 when absent.
   */
  slots?: number;
}

/** Slots an element record occupies from its `loc` (1 unless a data run). */
export function recordSlots(rec: ElementRecord): number {
  return rec.slots ?? 1;
}

/**
 * True when `rec` occupies a slot of its own kind: not a large file, and
 * not metadata stored in its data's slot.
 */
export function claimsSlot(
  rec: ElementRecord | undefined,
): rec is ElementRecord {
  return rec !== undefined && !rec.inFile && rec.withData !== true;
}

/**
 * Table dimensions: `2^entryBits` entries (and metadata slots),
 * `2^identBits` map slots, `2^dataSlotBits` data slots.
 */
export interface TableShape {
  /** log2 of the entry capacity. */
  entryBits: number;
  /** log2 of the address-map size. */
  identBits: number;
  /** log2 of the data slot count; `entryBits` when absent. */
  dataSlotBits?: number;
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
  /** Maximum number of entries (`2^entryBits`). */
  readonly capacity: number;
  /** Number of address-map slots (`2^identBits`). */
  readonly mapSize: number;
  /** Slots of each kind: data (`2^dataSlotBits`), metadata (capacity). */
  readonly slotCounts: readonly [number, number];
  /** Live entries; records 0..count-1. */
  count = 0;

  #k: Kernels;
  #u8!: Uint8Array;
  #u16!: Uint16Array;
  #u32!: Uint32Array;
  #keyPtr: number;
  #sipKeyPtr: number;
  #outPtr: number;
  #entries: number;
  #map: number;
  #mapMask: number;
  #use: [number, number];
  #useBytes: [number, number];
  #sum: [number, number];
  #sumBytes: [number, number];
  #claims: number;
  #order: number;
  #order2: number;
  #sortKeys: number;
  #sortKeys2: number;
  #lens: number;
  #hashes: number;
  #stage: number;
  #stageBytes = STAGE_BYTES;
  #hint: [number, number] = [0, 0];

  /** @param shape The table dimensions. */
  constructor(shape: TableShape) {
    this.#k = instantiate().kernels;
    this.capacity = 2 ** shape.entryBits;
    this.mapSize = 2 ** shape.identBits;
    this.#mapMask = this.mapSize - 1;
    let at = align8(this.#k.heap_base());
    const take = (n: number) => {
      const p = at;
      at = align8(at + n);
      return p;
    };
    this.#keyPtr = take(MAX_KEY_BYTES);
    this.#sipKeyPtr = take(16);
    this.#outPtr = take(16);
    this.#lens = take(BATCH_KEYS * (MAX_COMPONENTS + 1) * 4);
    this.#hashes = take(BATCH_KEYS * 8);
    this.#entries = take(this.capacity * ENTRY_SIZE);
    this.#map = take(this.mapSize * 4);
    this.slotCounts = [
      2 ** (shape.dataSlotBits ?? shape.entryBits),
      this.capacity,
    ];
    const mapBytes = (slots: number) => align8(Math.ceil(slots / 8));
    this.#useBytes = [mapBytes(this.slotCounts[0]), mapBytes(this.capacity)];
    this.#use = [take(this.#useBytes[0]), take(this.#useBytes[1])];
    this.#sumBytes = [
      align8(Math.ceil(this.#useBytes[0] / 64)),
      align8(Math.ceil(this.#useBytes[1] / 64)),
    ];
    this.#sum = [take(this.#sumBytes[0]), take(this.#sumBytes[1])];
    this.#claims = take(Math.max(...this.#useBytes));
    this.#order = take(this.capacity * 4);
    this.#order2 = take(this.capacity * 4);
    this.#sortKeys = take(this.capacity * 8);
    this.#sortKeys2 = take(this.capacity * 8);
    this.#stage = take(0);
    if (this.#stage + STAGE_BYTES > WASM_MEMORY_MAX) {
      throw new RangeError(
        `Cannot create index memory: ${
          this.#stage + STAGE_BYTES
        } bytes exceed the 4 GiB of WebAssembly memory`,
      );
    }
    this.#growTo(this.#stage + STAGE_BYTES);
    this.clearUseMaps();
  }

  // Memory grows only here; views detach when it does, so refresh them.
  #growTo(end: number): void {
    const memory = this.#k.memory;
    const need = Math.ceil(end / 65536) - memory.buffer.byteLength / 65536;
    if (need > 0) memory.grow(need);
    this.#refreshViews();
  }

  // Views detach when memory grows; every grow is followed by this.
  #refreshViews(): void {
    const buf = this.#k.memory.buffer;
    this.#u8 = new Uint8Array(buf);
    this.#u16 = new Uint16Array(buf);
    this.#u32 = new Uint32Array(buf);
  }

  // ---- keys and hashing ---------------------------------------------------

  /**
   * Encodes `key` as UTF-8 into the key region.
   * @returns its length in bytes, or -1 when it exceeds MAX_KEY_BYTES.
   */
  encodeKey(key: string): number {
    const dest = this.#u8.subarray(this.#keyPtr, this.#keyPtr + MAX_KEY_BYTES);
    const { read, written } = encoder.encodeInto(key, dest);
    return read === key.length ? written : -1;
  }

  /** A copy of the key region's first `len` bytes (the encoded key). */
  keyBytes(len: number): Uint8Array {
    return this.#u8.slice(this.#keyPtr, this.#keyPtr + len);
  }

  /**
   * Copies the key region's first `len` bytes into the caller's `dest`
   * (at least `len` bytes) and returns that prefix of it: the hot paths'
   * way to the encoded key without allocating.
   */
  keyInto(len: number, dest: Uint8Array): Uint8Array {
    dest.set(this.#u8.subarray(this.#keyPtr, this.#keyPtr + len));
    return dest.subarray(0, len);
  }

  /** Puts raw `bytes` (not necessarily UTF-8) in the key region. */
  loadKey(bytes: Uint8Array): void {
    if (bytes.length > MAX_KEY_BYTES) {
      throw new RangeError(`Cannot load key: over ${MAX_KEY_BYTES} bytes`);
    }
    this.#u8.set(bytes, this.#keyPtr);
  }

  /** Sets the 16-byte SipHash key used by {@linkcode hashSip}. */
  setSipKey(key: Uint8Array): void {
    if (key.length !== 16) {
      throw new RangeError("Cannot set SipHash key: need 16 bytes");
    }
    this.#u8.set(key, this.#sipKeyPtr);
  }

  /** SipHash-1-3 of the first `len` key-region bytes: [low, high] words. */
  hashSip(len: number): [number, number] {
    this.#k.siphash13(this.#keyPtr, len, this.#sipKeyPtr, this.#outPtr);
    const o = this.#outPtr >>> 2;
    return [this.#u32[o]!, this.#u32[o + 1]!];
  }

  /**
   * NetSurf's nsurl hash over URL components (already normalised, present
   * ones only). Components are written into the key region, so this
   * clobbers an encoded key.
   */
  hashNsurl(components: readonly string[]): number {
    const enc = encoder;
    const end = this.#keyPtr + MAX_KEY_BYTES;
    let p = this.#keyPtr;
    for (const c of components) {
      const { read, written } = enc.encodeInto(
        c,
        this.#u8.subarray(p + 4, end),
      );
      if (read !== c.length) {
        throw new RangeError("Cannot hash key: longer than MAX_KEY_BYTES");
      }
      // Records are packed back to back, so lengths may be unaligned:
      // write them byte by byte, little-endian (WASM loads allow this).
      for (let b = 0; b < 4; b++) {
        this.#u8[p + b] = (written >>> (8 * b)) & 0xff;
      }
      p += 4 + written;
    }
    return this.#k.nsurl_hash(this.#keyPtr, components.length) >>> 0;
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
    if (out.length < keys.length * 2) {
      throw new RangeError(
        "Cannot hash keys: output holds fewer than 2 words a key",
      );
    }
    for (let i = 0; i < keys.length;) {
      const n = this.#stageKeys(keys, i);
      this.#k.siphash13_many(
        this.#stage,
        this.#lens,
        n,
        this.#sipKeyPtr,
        this.#hashes,
      );
      const h = this.#hashes >>> 2;
      out.set(this.#u32.subarray(h, h + 2 * n), 2 * i);
      i += n;
    }
    return out;
  }

  // Copies UTF-8 of keys[from..] to the stage and their end offsets to
  // lens, as many as fit; returns how many. ASCII batches (the usual URL)
  // take one join and one encodeInto; others are encoded key by key.
  #stageKeys(keys: readonly string[], from: number): number {
    let n = 0;
    let chars = 0;
    const max = Math.min(keys.length - from, BATCH_KEYS);
    while (n < max) {
      const len = keys[from + n]!.length;
      if (len > MAX_KEY_BYTES) throw tooLong(from + n);
      if (chars + len > STAGE_BYTES) break;
      chars += len;
      n++;
    }
    const text = n === keys.length
      ? keys.join("")
      : keys.slice(from, from + n).join("");
    const stage = this.#u8.subarray(this.#stage, this.#stage + STAGE_BYTES);
    const lens = this.#lens >>> 2;
    if (encoder.encodeInto(text, stage).written === text.length) {
      let end = 0;
      for (let j = 0; j < n; j++) {
        end += keys[from + j]!.length;
        this.#u32[lens + j] = end;
      }
      return n;
    }
    let end = 0;
    for (let j = 0; j < n; j++) {
      const key = keys[from + j]!;
      const { read, written } = encoder.encodeInto(key, stage.subarray(end));
      if (read < key.length) return j; // the stage is full: the rest next time
      if (written > MAX_KEY_BYTES) throw tooLong(from + j);
      end += written;
      this.#u32[lens + j] = end;
    }
    return n;
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
    if (out.length < keys.length) {
      throw new RangeError(
        "Cannot hash keys: output holds fewer than 1 word a key",
      );
    }
    for (let i = 0; i < keys.length;) {
      const n = this.#stageComponents(keys, i);
      this.#k.nsurl_hash_many(this.#stage, this.#lens, n, this.#hashes);
      const h = this.#hashes >>> 2;
      out.set(this.#u32.subarray(h, h + n), i);
      i += n;
    }
    return out;
  }

  // As #stageKeys, for component lists: lens gets per key its component
  // count, then each component's byte length.
  #stageComponents(keys: readonly (readonly string[])[], from: number): number {
    const u32 = this.#u32;
    const lens = this.#lens >>> 2;
    const max = Math.min(keys.length - from, BATCH_KEYS);
    // Concatenation (a rope, flattened once by encodeInto) is cheaper here
    // than collecting the components in an array to join.
    let text = "";
    let chars = 0;
    let n = 0;
    let l = lens;
    for (; n < max; n++) {
      const comps = keys[from + n]!;
      const count = comps.length;
      if (count > MAX_COMPONENTS) {
        throw new RangeError(
          `Cannot hash key ${from + n}: more than ${MAX_COMPONENTS} components`,
        );
      }
      let len = 0;
      for (let c = 0; c < count; c++) len += comps[c]!.length;
      if (len > MAX_KEY_BYTES) throw tooLong(from + n);
      if (chars + len > STAGE_BYTES) break;
      chars += len;
      u32[l++] = count;
      for (let c = 0; c < count; c++) {
        const s = comps[c]!;
        u32[l++] = s.length;
        text += s;
      }
    }
    const stage = this.#u8.subarray(this.#stage, this.#stage + STAGE_BYTES);
    if (encoder.encodeInto(text, stage).written === text.length) return n;
    // Not ASCII: encode component by component for their byte lengths.
    let end = 0;
    l = lens;
    for (let j = 0; j < n; j++) {
      const comps = keys[from + j]!;
      const start = end;
      u32[l++] = comps.length;
      for (const c of comps) {
        const { read, written } = encoder.encodeInto(c, stage.subarray(end));
        if (read < c.length) return j; // the stage is full: the rest next time
        u32[l++] = written;
        end += written;
      }
      if (end - start > MAX_KEY_BYTES) throw tooLong(from + j);
    }
    return n;
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
      this.#u8.set(part, this.#stage);
      c = this.#k.crc32(this.#stage, part.length, c) >>> 0;
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
      this.#growTo(this.#stage + len);
      this.#stageBytes = this.#k.memory.buffer.byteLength - this.#stage;
    }
    return this.#u8.subarray(this.#stage, this.#stage + len);
  }

  /**
   * CRC-32 of `bytes`, which must lie in the stage (a view from
   * {@linkcode stage} or part of one), continuing from `crc`. No copy.
   */
  crc32Staged(bytes: Uint8Array, crc = 0): number {
    const start = bytes.byteOffset;
    if (
      bytes.buffer !== this.#u8.buffer || start < this.#stage ||
      start + bytes.length > this.#stage + this.#stageBytes
    ) {
      throw new RangeError("Cannot checksum: bytes are not in the stage");
    }
    return this.#k.crc32(start, bytes.length, crc) >>> 0;
  }

  // ---- entry records ------------------------------------------------------

  #base(i: number): number {
    return this.#entries + i * ENTRY_SIZE;
  }

  /** Low 32 bits of entry `i`'s key hash (its ident). */
  hashLo(i: number): number {
    return this.#u32[(this.#base(i) + C.E_HASH_LO) >>> 2]!;
  }

  /** High 32 bits of entry `i`'s key hash. */
  hashHi(i: number): number {
    return this.#u32[(this.#base(i) + C.E_HASH_HI) >>> 2]!;
  }

  /** Last use of entry `i`, seconds since the Unix epoch. */
  lastUsed(i: number): number {
    return this.#u32[(this.#base(i) + C.E_LAST_USED) >>> 2]!;
  }

  /** Use count of entry `i` (saturates at 65535). */
  useCount(i: number): number {
    return this.#u16[(this.#base(i) + C.E_USE_COUNT) >>> 1]!;
  }

  /** Records a use of entry `i` at `now` (seconds). */
  touch(i: number, now: number): void {
    const b = this.#base(i);
    const u = (b + C.E_USE_COUNT) >>> 1;
    if (this.#u16[u]! < USE_COUNT_MAX) this.#u16[u]!++;
    this.#u32[(b + C.E_LAST_USED) >>> 2] = now;
  }

  /** Sets use count and last use of entry `i` directly (replay, tests). */
  setUsage(i: number, useCount: number, lastUsed: number): void {
    const b = this.#base(i);
    this.#u16[(b + C.E_USE_COUNT) >>> 1] = Math.min(useCount, USE_COUNT_MAX);
    this.#u32[(b + C.E_LAST_USED) >>> 2] = lastUsed;
  }

  /** True when entry `i` has an element of `kind`. */
  has(i: number, kind: ElementKind): boolean {
    return (this.#u8[this.#base(i) + C.E_FLAGS]! & (F_HAS << kind)) !== 0;
  }

  /** The element of `kind` in entry `i`, or undefined when absent. */
  element(i: number, kind: ElementKind): ElementRecord | undefined {
    const b = this.#base(i);
    const flags = this.#u8[b + C.E_FLAGS]!;
    if ((flags & (F_HAS << kind)) === 0) return undefined;
    const rec: ElementRecord = {
      size: this.#u32[(b + SIZE_OFF[kind]) >>> 2]!,
      loc: this.#u32[(b + LOC_OFF[kind]) >>> 2]!,
      crc: this.#u32[(b + CRC_OFF[kind]) >>> 2]!,
      inFile: (flags & (F_IN_FILE << kind)) !== 0,
    };
    if (kind === META && (flags & F_META_WITH_DATA) !== 0) rec.withData = true;
    const extra = kind === DATA ? this.#u8[b + C.E_DATA_SLOTS]! : 0;
    if (extra !== 0) rec.slots = extra + 1;
    return rec;
  }

  /** True when entry `i`'s metadata is stored in its data's slot (§6.1). */
  metaWithData(i: number): boolean {
    return (this.#u8[this.#base(i) + C.E_FLAGS]! & F_META_WITH_DATA) !== 0;
  }

  /** Size of entry `i`'s element of `kind` (0 when absent). */
  elementSize(i: number, kind: ElementKind): number {
    return this.has(i, kind)
      ? this.#u32[(this.#base(i) + SIZE_OFF[kind]) >>> 2]!
      : 0;
  }

  /** Records where entry `i`'s element of `kind` now lives. */
  setElement(i: number, kind: ElementKind, rec: ElementRecord): void {
    const b = this.#base(i);
    this.#u32[(b + SIZE_OFF[kind]) >>> 2] = rec.size;
    this.#u32[(b + LOC_OFF[kind]) >>> 2] = rec.loc;
    this.#u32[(b + CRC_OFF[kind]) >>> 2] = rec.crc;
    let flags = this.#u8[b + C.E_FLAGS]! | (F_HAS << kind);
    flags = rec.inFile
      ? flags | (F_IN_FILE << kind)
      : flags & ~(F_IN_FILE << kind);
    if (kind === META) {
      flags = rec.withData === true
        ? flags | F_META_WITH_DATA
        : flags & ~F_META_WITH_DATA;
    } else {
      this.#u8[b + C.E_DATA_SLOTS] = recordSlots(rec) - 1;
    }
    this.#u8[b + C.E_FLAGS] = flags;
  }

  /** Marks entry `i` as having no element of `kind`. */
  clearElement(i: number, kind: ElementKind): void {
    const b = this.#base(i);
    this.#u32[(b + SIZE_OFF[kind]) >>> 2] = 0;
    this.#u32[(b + LOC_OFF[kind]) >>> 2] = 0;
    this.#u32[(b + CRC_OFF[kind]) >>> 2] = 0;
    this.#u8[b + C.E_FLAGS] = this.#u8[b + C.E_FLAGS]! &
      ~(((F_HAS | F_IN_FILE) << kind) | (kind === META ? F_META_WITH_DATA : 0));
    if (kind === DATA) this.#u8[b + C.E_DATA_SLOTS] = 0;
  }

  /** True when entry `i` is marked as holding a live reference. */
  pinned(i: number): boolean {
    return (this.#u8[this.#base(i) + C.E_FLAGS]! & F_PINNED) !== 0;
  }

  /** Marks or unmarks entry `i` as holding a live reference. */
  setPinned(i: number, on: boolean): void {
    const f = this.#base(i) + C.E_FLAGS;
    this.#u8[f] = on ? this.#u8[f]! | F_PINNED : this.#u8[f]! & ~F_PINNED;
  }

  // ---- address map (open addressing, linear probing) ----------------------

  /**
   * First map position at or after `from` (in probe order from the hash's
   * home) whose entry has hash [lo, hi]; -1 when the probe run ends.
   * Walk candidates with `lookupNext`; the caller compares full keys.
   */
  lookupFirst(lo: number, hi: number): number {
    return this.#scan(lo, hi, lo & this.#mapMask);
  }

  /** The next candidate after map position `pos`, or -1. */
  lookupNext(lo: number, hi: number, pos: number): number {
    return this.#scan(lo, hi, (pos + 1) & this.#mapMask);
  }

  #scan(lo: number, hi: number, pos: number): number {
    const map = this.#map >>> 2;
    for (;;) {
      const v = this.#u32[map + pos]!;
      if (v === 0) return -1;
      const i = v - 1;
      if (this.hashLo(i) === lo && this.hashHi(i) === hi) return pos;
      pos = (pos + 1) & this.#mapMask;
    }
  }

  /** Entry index stored at map position `pos`. */
  entryAt(pos: number): number {
    return this.#u32[(this.#map >>> 2) + pos]! - 1;
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
    this.#u8.fill(0, b, b + ENTRY_SIZE);
    this.#u32[(b + C.E_HASH_LO) >>> 2] = lo;
    this.#u32[(b + C.E_HASH_HI) >>> 2] = hi;
    this.setUsage(i, 1, now);
    this.#mapInsert(i);
    return i;
  }

  #mapInsert(i: number): void {
    const map = this.#map >>> 2;
    let pos = this.hashLo(i) & this.#mapMask;
    while (this.#u32[map + pos] !== 0) pos = (pos + 1) & this.#mapMask;
    this.#u32[map + pos] = i + 1;
  }

  #mapPosOf(i: number): number {
    const map = this.#map >>> 2;
    let pos = this.hashLo(i) & this.#mapMask;
    while (this.#u32[map + pos] !== i + 1) {
      if (this.#u32[map + pos] === 0) {
        throw new Error(`index map lost entry ${i}`);
      }
      pos = (pos + 1) & this.#mapMask;
    }
    return pos;
  }

  // Backward-shift deletion: no tombstones, so probe runs stay short.
  #mapDelete(pos: number): void {
    const map = this.#map >>> 2;
    const mask = this.#mapMask;
    let hole = pos;
    let j = pos;
    for (;;) {
      j = (j + 1) & mask;
      const v = this.#u32[map + j]!;
      if (v === 0) break;
      const home = this.hashLo(v - 1) & mask;
      // Move v into the hole unless its home lies cyclically in (hole, j].
      const inRange = hole <= j
        ? hole < home && home <= j
        : hole < home || home <= j;
      if (!inRange) {
        this.#u32[map + hole] = v;
        hole = j;
      }
    }
    this.#u32[map + hole] = 0;
  }

  /**
   * Removes entry `i`: the last record moves into its place.
   * @returns the index the moved record had (now `i`), or -1 if none moved.
   */
  remove(i: number): number {
    this.#mapDelete(this.#mapPosOf(i));
    const last = this.count - 1;
    this.count = last;
    if (i === last) return -1;
    const lastPos = this.#mapPosOf(last);
    this.#u8.copyWithin(
      this.#base(i),
      this.#base(last),
      this.#base(last) + ENTRY_SIZE,
    );
    this.#u32[(this.#map >>> 2) + lastPos] = i + 1;
    return last;
  }

  // ---- slot use maps ------------------------------------------------------

  /** Claims a free slot of `kind` among the first `slots`; -1 if none. */
  claimSlot(kind: ElementKind, slots: number): number {
    const s = this.#k.bitmap_claim(
      this.#use[kind],
      this.#sum[kind],
      slots,
      this.#hint[kind],
    );
    if (s >= 0) this.#hint[kind] = s + 1;
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
    const s = this.#k.bitmap_claim_run(
      this.#use[kind],
      this.#sum[kind],
      slots,
      n,
      hint,
      group,
    );
    // Free slots below a run found further on may still take single claims.
    if (s === hint) this.#hint[kind] = s + n;
    return s;
  }

  /** Frees slot `slot` of `kind`. */
  freeSlot(kind: ElementKind, slot: number): void {
    this.#k.bitmap_free(this.#use[kind], this.#sum[kind], slot);
    if (slot < this.#hint[kind]) this.#hint[kind] = slot;
  }

  /** Marks slot `slot` of `kind` used. */
  markSlot(kind: ElementKind, slot: number): void {
    this.#k.bitmap_set(this.#use[kind], this.#sum[kind], slot);
  }

  /** Frees the run of `n` slots of `kind` from `slot`. */
  freeRun(kind: ElementKind, slot: number, n: number): void {
    for (let s = slot + n - 1; s >= slot; s--) this.freeSlot(kind, s);
  }

  /** Marks the run of `n` slots of `kind` from `slot` used. */
  markRun(kind: ElementKind, slot: number, n: number): void {
    for (let s = slot; s < slot + n; s++) this.markSlot(kind, s);
  }

  /** True when any slot of the run of `n` from `slot` is marked used. */
  runUsed(kind: ElementKind, slot: number, n: number): boolean {
    for (let s = slot; s < slot + n; s++) {
      if (this.slotUsed(kind, s)) return true;
    }
    return false;
  }

  /** True when slot `slot` of `kind` is marked used. */
  slotUsed(kind: ElementKind, slot: number): boolean {
    return this.#k.bitmap_test(this.#use[kind], slot) !== 0;
  }

  /** Number of used slots of `kind` among the first `slots`. */
  usedSlots(kind: ElementKind, slots: number): number {
    return this.#k.bitmap_count(this.#use[kind], slots);
  }

  /**
   * A copy of the use map of `kind` (`slotCounts[kind] / 8` bytes, padded),
   * for writing `blocks` or comparing with it.
   */
  useMap(kind: ElementKind): Uint8Array {
    return this.#u8.slice(
      this.#use[kind],
      this.#use[kind] + this.#useBytes[kind],
    );
  }

  /**
   * How many of the `n` slots of `kind` from `first` lie up to the last
   * used one (0 when none is used): a block file's used extent.
   */
  usedPrefix(kind: ElementKind, first: number, n: number): number {
    const map = this.#use[kind];
    let used = n;
    // Down to the highest used slot, a byte of the map at a time.
    while (used > 0) {
      const s = first + used - 1;
      const byte = this.#u8[map + (s >>> 3)]!;
      if (byte === 0 && (s & 7) === 7) {
        used -= 8;
        continue;
      }
      if ((byte >>> (s & 7)) & 1) break;
      used--;
    }
    return Math.max(0, used);
  }

  /**
   * Checks the use map of `kind` against the entries (check-store): every
   * slot an entry claims should be marked, and every marked slot claimed,
   * among the first `slots`. One pass over the entries and one over the map.
   */
  auditSlots(kind: ElementKind, slots: number): SlotAudit {
    const nbits = Math.min(slots, this.slotCounts[kind]);
    const badClaims = this.#k.slots_claimed(
      this.#entries,
      this.count,
      kind,
      this.#claims,
      nbits,
    );
    this.#k.bitmap_diff(this.#claims, this.#use[kind], nbits, this.#outPtr);
    const o = this.#outPtr >>> 2;
    const first = (v: number) => (v === 0xffffffff ? -1 : v);
    return {
      badClaims,
      claimedUnmarked: this.#u32[o]!,
      firstClaimedUnmarked: first(this.#u32[o + 1]!),
      markedUnclaimed: this.#u32[o + 2]!,
      firstMarkedUnclaimed: first(this.#u32[o + 3]!),
      claimed: this.#u8.slice(
        this.#claims,
        this.#claims + this.#useBytes[kind],
      ),
    };
  }

  /** Clears both use maps. */
  clearUseMaps(): void {
    this.#u8.fill(0, this.#use[0], this.#use[1] + this.#useBytes[1]);
    // Invariant: summary bit w is set iff map word w has a free slot.
    this.#u8.fill(0xff, this.#sum[0], this.#sum[1] + this.#sumBytes[1]);
    this.#hint = [0, 0];
  }

  // ---- eviction and persistence -------------------------------------------

  /**
   * Entry indices ordered best victim first (no live reference, lowest use
   * count, oldest use; ties by index). A copy.
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
    const n = this.#k.evict_select(
      this.#entries,
      this.count,
      keep,
      byteTarget,
      entries,
      this.#sortKeys,
      this.#sortKeys2,
      this.#order,
      this.#order2,
    );
    return this.#u32.slice(this.#order >>> 2, (this.#order >>> 2) + n);
  }

  /**
   * Calls `f` with the live records as bytes, for writing the entries
   * file without a copy (up to 640 MiB at the largest table): the view is
   * valid only during the call and must not be kept.
   */
  withRecords<T>(f: (records: Uint8Array) => T): T {
    return f(
      this.#u8.subarray(this.#entries, this.#entries + this.count * ENTRY_SIZE),
    );
  }

  /**
   * Replaces the table with `count` records from `bytes`, clearing runtime
   * flags and rebuilding the address map. Records are not validated here.
   */
  loadRecords(bytes: Uint8Array, count: number): void {
    if (count > this.capacity) {
      throw new RangeError("Cannot load entries: more than capacity");
    }
    this.#u8.set(bytes.subarray(0, count * ENTRY_SIZE), this.#entries);
    this.#u8.fill(0, this.#map, this.#map + this.mapSize * 4);
    this.count = count;
    for (let i = 0; i < count; i++) {
      const f = this.#base(i) + C.E_FLAGS;
      this.#u8[f] = this.#u8[f]! & PERSISTED_FLAGS;
      this.#mapInsert(i);
    }
  }
}
