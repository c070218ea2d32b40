/**
 * The index's WASM instance (`asm/`, embedded in `_wasm_bytes.ts`): the
 * kernels' signatures, the record constants they export, and the views of
 * their memory. Only the `index_memory.ts` family (`_index_*.ts`) imports
 * this; views of the memory never leave it.
 *
 * @module
 */
import { WASM_BASE64 } from "./_wasm_bytes.ts";
import { ENTRY_SIZE } from "./format.ts";

// Signatures of asm/; pointers and lengths are byte offsets and counts.
export interface Kernels {
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
  bitmap_free_run(map: number, sum: number, slot: number, n: number): void;
  bitmap_set_run(map: number, sum: number, slot: number, n: number): void;
  bitmap_count_range(map: number, from: number, to: number): number;
  bitmap_last_used(map: number, from: number, to: number): number;
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
  evict_threshold(
    entries: number,
    count: number,
    keep: number,
    strata: number,
    windowLen: number,
    seed: number,
    byteTarget: number,
    entryTarget: number,
    keys: number,
    keys2: number,
    idx: number,
    idx2: number,
  ): number;
  evict_collect(
    entries: number,
    count: number,
    keep: number,
    threshold: number,
    maxCandidates: number,
    byteTarget: number,
    entryTarget: number,
    keys: number,
    keys2: number,
    idx: number,
    idx2: number,
    out: number,
  ): number;
  evict_met(): number;
  load_begin(mapBits: number): void;
  load_homes(
    entries: number,
    first: number,
    n: number,
    keep: number,
    mapBits: number,
    homes: number,
  ): void;
  load_starts(mapBits: number): void;
  load_scatter(
    first: number,
    n: number,
    mapBits: number,
    homes: number,
    pairs: number,
  ): void;
  load_insert(
    pairs: number,
    first: number,
    n: number,
    map: number,
    mapBits: number,
  ): void;
  table_totals(entries: number, count: number, out: number): void;
  use_mark(
    entries: number,
    first: number,
    n: number,
    kind: number,
    map: number,
    nbits: number,
    out: number,
  ): number;
  use_mark_both(
    entries: number,
    first: number,
    n: number,
    dataMap: number,
    dataBits: number,
    metaMap: number,
    metaBits: number,
    out: number,
  ): void;
  use_mark_sound(
    entries: number,
    first: number,
    n: number,
    dataMap: number,
    dataBits: number,
    metaMap: number,
    metaBits: number,
    dataSlots: number,
    metaSlots: number,
    out: number,
  ): number;
  use_summary(map: number, sum: number, sumBytes: number, top: number): void;
  records_expand(
    entries: number,
    first: number,
    n: number,
    p: number,
    end: number,
  ): number;
  records_expand_homes(
    entries: number,
    first: number,
    n: number,
    p: number,
    end: number,
    keep: number,
    mapBits: number,
    homes: number,
  ): number;
  table_sound(
    entries: number,
    count: number,
    dataSlots: number,
    metaSlots: number,
    out: number,
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

/** The record layout and flag bits the kernels were built with. */
export const { consts: C } = instantiate();

/**
 * Records a call of a whole-table kernel takes at open (`table_sound`,
 * `table_totals`, the map load's steps, `use_mark`, `use_mark_sound`,
 * `records_expand`, `records_expand_homes`).
 * V8 runs a WASM function's first calls in its baseline tier and swaps in
 * optimized code only between calls, so one call over 16M records ran
 * unoptimized throughout (1.8x the time of a later open's call in the
 * same process); in chunks, the later ones run optimized.
 */
export const KERNEL_CHUNK = 1 << 16;

/**
 * Calls `step(first, n)` for records `0 … count−1` a chunk of
 * {@linkcode KERNEL_CHUNK} at a time, in order, until a step returns
 * false. Returns false when one did.
 */
export function inKernelChunks(
  count: number,
  step: (first: number, n: number) => boolean | void,
): boolean {
  for (let at = 0; at < count; at += KERNEL_CHUNK) {
    if (step(at, Math.min(KERNEL_CHUNK, count - at)) === false) return false;
  }
  return true;
}
// Invariant: the kernels' record is the one FORMAT.md §4 (and format.ts)
// describes.
if (C.ENTRY_SIZE !== ENTRY_SIZE) {
  throw new Error(
    `Cannot load kernels: entry record of ${C.ENTRY_SIZE} bytes, expected ${ENTRY_SIZE}`,
  );
}
export const F_HAS = C.F_HAS;
export const F_IN_FILE = C.F_IN_FILE;
export const F_PINNED = C.F_PINNED;
export const F_META_WITH_DATA = C.F_META_WITH_DATA;
/** Flag bits that are persisted; the rest are runtime state. */
export const PERSISTED_FLAGS: number = (F_HAS | F_IN_FILE) * 3 |
  F_META_WITH_DATA;
export const SIZE_OFF = [C.E_DATA_SIZE, C.E_META_SIZE] as const;
export const LOC_OFF = [C.E_DATA_LOC, C.E_META_LOC] as const;
export const CRC_OFF = [C.E_DATA_CRC, C.E_META_CRC] as const;

/**
 * Views of one instance's memory, refreshed whenever it grows (growing
 * detaches every view taken before).
 */
export class IndexWasm {
  /** The instance's kernels. */
  readonly k: Kernels;
  /** Byte view of the memory. */
  u8!: Uint8Array;
  /** 16-bit view of the memory. */
  u16!: Uint16Array;
  /** 32-bit view of the memory. */
  u32!: Uint32Array;

  constructor() {
    this.k = instantiate().kernels;
    this.#refreshViews();
  }

  // Memory grows only here; views detach when it does, so refresh them.
  growTo(end: number): void {
    const memory = this.k.memory;
    const need = Math.ceil(end / 65536) - memory.buffer.byteLength / 65536;
    if (need > 0) memory.grow(need);
    this.#refreshViews();
  }

  // Views detach when memory grows; every grow is followed by this.
  #refreshViews(): void {
    const buf = this.k.memory.buffer;
    this.u8 = new Uint8Array(buf);
    this.u16 = new Uint16Array(buf);
    this.u32 = new Uint32Array(buf);
  }
}
