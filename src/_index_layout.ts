/**
 * Where each index region lies in WASM linear memory. Regions (each 8-byte
 * aligned, above the kernels' static data; D is the number of data slots,
 * `2^dataSlotBits`):
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
 * | scratch  | see below                 | load, eviction and audit scratch  |
 * | stage    | STAGE_BYTES, can grow     | bytes copied in: key batches, CRC |
 *
 * The stage is last so that `IndexMemory.stage` can grow it. The scratch
 * serves three uses, each within one synchronous call that copies out
 * what it keeps, so they never overlap: loading a table
 * (`AddressMap.load`: 4 + 8 bytes an entry), victim selection (8 + 8 + 4
 * + 4 bytes a candidate, at most {@linkcode Regions.candidates}) and the
 * slot audit (`claims`, max(D, 2^entryBits) / 8). Its size is the largest
 * of 12 × 2^entryBits, the claims and 24 × min(2^entryBits,
 * EXACT_SELECTION_MAX): a table above EXACT_SELECTION_MAX entries selects
 * through a threshold estimated from a sample (`IndexMemory.selectVictims`),
 * whose candidates are the prefix of the order up to it, so selection
 * never needs 24 bytes an entry of the whole table.
 *
 * @module
 */
import { ENTRY_SIZE } from "./format.ts";

/** Longest key, in UTF-8 bytes, that a store accepts. */
export const MAX_KEY_BYTES = 16384;

/** Keys hashed per kernel call by the batch hashes. */
export const BATCH_KEYS = 4096;
/** Most components a URL key has (scheme, user, password, host, port, path, query). */
export const MAX_COMPONENTS = 7;
/** Initial stage size: a batch of keys or one copy-in step of a CRC. */
export const STAGE_BYTES = 1 << 20;

/**
 * Tables of up to this many entries select victims among all of them
 * (`evict_select`); larger ones through a sampled threshold.
 */
export const EXACT_SELECTION_MAX = 1 << 20;
/** Scratch bytes a selection candidate takes (two u64 keys, two u32). */
const CANDIDATE_BYTES = 24;

/** A wasm32 memory's limit: 65,536 pages of 64 KiB. */
const WASM_MEMORY_MAX = 2 ** 32;

// Arithmetic, not `& ~7`: offsets pass 2^31 at the largest tables
// (entryBits 24, identBits 28), where 32-bit bit operations go negative.
function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
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

/** Byte offsets (and sizes) of the regions, as in the table above. */
export interface Regions {
  /** Maximum number of entries (`2^entryBits`). */
  capacity: number;
  /** Number of address-map slots (`2^identBits`). */
  mapSize: number;
  /** Slots of each kind: data (`2^dataSlotBits`), metadata (capacity). */
  slotCounts: readonly [number, number];
  keyPtr: number;
  sipKeyPtr: number;
  outPtr: number;
  lens: number;
  hashes: number;
  entries: number;
  map: number;
  use: [number, number];
  useBytes: [number, number];
  sum: [number, number];
  sumBytes: [number, number];
  /** Slot audit: slots entries claim (in the scratch). */
  claims: number;
  /** `AddressMap.load`: homes, 4 bytes an entry (in the scratch). */
  loadHomes: number;
  /** `AddressMap.load`: (home, entry + 1) pairs, 8 bytes an entry. */
  loadPairs: number;
  /** Selection: most candidates the scratch holds. */
  candidates: number;
  /** Selection: sort keys and sizes, 8 bytes a candidate each. */
  keys: number;
  keys2: number;
  /** Selection: candidate indices, 4 bytes each; `idx` gets the result. */
  idx: number;
  idx2: number;
  stage: number;
}

/**
 * Lays the regions out from `heapBase` (the kernels' first free byte) for
 * tables of `shape`.
 * @throws {RangeError} when they and the initial stage pass 4 GiB.
 */
export function layoutRegions(heapBase: number, shape: TableShape): Regions {
  const capacity = 2 ** shape.entryBits;
  const mapSize = 2 ** shape.identBits;
  let at = align8(heapBase);
  const take = (n: number) => {
    const p = at;
    at = align8(at + n);
    return p;
  };
  const keyPtr = take(MAX_KEY_BYTES);
  const sipKeyPtr = take(16);
  const outPtr = take(24); // table_totals writes 24 bytes
  const lens = take(BATCH_KEYS * (MAX_COMPONENTS + 1) * 4);
  const hashes = take(BATCH_KEYS * 8);
  const entries = take(capacity * ENTRY_SIZE);
  const map = take(mapSize * 4);
  const slotCounts = [
    2 ** (shape.dataSlotBits ?? shape.entryBits),
    capacity,
  ] as const;
  const mapBytes = (slots: number) => align8(Math.ceil(slots / 8));
  const useBytes: [number, number] = [
    mapBytes(slotCounts[0]),
    mapBytes(capacity),
  ];
  const use: [number, number] = [take(useBytes[0]), take(useBytes[1])];
  const sumBytes: [number, number] = [
    align8(Math.ceil(useBytes[0] / 64)),
    align8(Math.ceil(useBytes[1] / 64)),
  ];
  const sum: [number, number] = [take(sumBytes[0]), take(sumBytes[1])];
  const claimBytes = Math.max(...useBytes);
  const scratchBytes = Math.max(
    capacity * 12,
    claimBytes,
    CANDIDATE_BYTES * Math.min(capacity, EXACT_SELECTION_MAX),
  );
  const scratch = take(scratchBytes);
  // Multiples of 8, so every array below stays 8-byte aligned.
  const candidates = Math.floor(scratchBytes / CANDIDATE_BYTES / 8) * 8;
  const stage = take(0);
  if (stage + STAGE_BYTES > WASM_MEMORY_MAX) {
    throw new RangeError(
      `Cannot create index memory: ${
        stage + STAGE_BYTES
      } bytes exceed the 4 GiB of WebAssembly memory`,
    );
  }
  return {
    capacity,
    mapSize,
    slotCounts,
    keyPtr,
    sipKeyPtr,
    outPtr,
    lens,
    hashes,
    entries,
    map,
    use,
    useBytes,
    sum,
    sumBytes,
    claims: scratch,
    loadHomes: scratch,
    loadPairs: scratch + capacity * 4,
    candidates,
    keys: scratch,
    keys2: scratch + candidates * 8,
    idx: scratch + candidates * 16,
    idx2: scratch + candidates * 20,
    stage,
  };
}
