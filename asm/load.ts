// Loading a table at open (FORMAT.md §4 for the record, §4 "address map"
// for the map): the runtime flags cleared, the address map rebuilt, and
// the totals the store starts from, each in one call rather than a
// JavaScript loop that runs unoptimised for most of a mid-sized table.
import {
  E_DATA_SIZE, E_FLAGS, E_HASH_LO, E_LAST_USED, E_META_SIZE, ENTRY_SIZE,
  F_HAS,
} from "./layout";
import { recordDisk } from "./run";
import { HAS_FILE, recordSound, UNSOUND } from "./sound";

/** At most 2^12 buckets of home cells, each at least 2^11 cells (8 KiB). */
const MAX_BUCKET_BITS: u32 = 12;
const MIN_BUCKET_CELL_BITS: u32 = 11;
const STARTS = memory.data(<i32>(((1 << MAX_BUCKET_BITS) + 1) * 4), 16);

/** Buckets of home cells for a map of 2^mapBits cells, as a shift. */
function bucketShift(mapBits: u32): u32 {
  const bucketBits: u32 = mapBits > MIN_BUCKET_CELL_BITS
    ? min(MAX_BUCKET_BITS, mapBits - MIN_BUCKET_CELL_BITS)
    : 0;
  return mapBits - bucketBits;
}

function homeMask(mapBits: u32): u32 {
  return mapBits >= 32 ? 0xffffffff : (<u32>1 << mapBits) - 1;
}

/*
 * Loading a table keeps only the `keep` flag bits of records 0 … count−1 and inserts them
 * into the address map at `map` (2^mapBits u32 cells, all 0: entry index
 * + 1, linear probing from hash low word & (2^mapBits − 1)).
 *
 * The entries go in in the order of their home cells, bucketed by the
 * top bits of the home (a counting sort into `pairs`, 8 bytes an entry,
 * through `homes`, 4 bytes an entry), so the map is written nearly
 * sequentially instead of taking a cache miss an entry. The order of
 * insertion changes no lookup: every cell on an entry's probe path before
 * its own is occupied whatever the order.
 *
 * In five steps, `load_begin`, `load_homes`, `load_starts`,
 * `load_scatter` and `load_insert`: the entries' and the pairs' steps are
 * called a chunk at a time (V8 swaps in a function's optimized code only
 * between calls; src/_index_map.ts `load`).
 */

/** Step 1 of loading: no entries counted in any bucket yet. */
export function load_begin(mapBits: u32): void {
  const buckets: usize = <usize>1 << (mapBits - bucketShift(mapBits));
  memory.fill(STARTS, 0, (buckets + 1) * 4);
}

/**
 * Step 2 of loading, for entries first … first+n−1: keeps their
 * `keep` flag bits, writes their home cells to `homes` and counts them
 * in their buckets.
 */
export function load_homes(
  entries: usize,
  first: u32,
  n: u32,
  keep: u32,
  mapBits: u32,
  homes: usize,
): void {
  const mask = homeMask(mapBits);
  const shift = bucketShift(mapBits);
  const last = first + n;
  for (let i: u32 = first; i < last; i++) {
    noteHome(entries + <usize>i * ENTRY_SIZE, i, keep, mask, shift, homes);
  }
}

/** Step 2 of loading for the one record `i`, at `e`. */
// @ts-ignore: decorator
@inline function noteHome(
  e: usize,
  i: u32,
  keep: u32,
  mask: u32,
  shift: u32,
  homes: usize,
): void {
  store<u8>(e, load<u8>(e, E_FLAGS) & <u8>keep, E_FLAGS);
  const home = load<u32>(e, E_HASH_LO) & mask;
  store<u32>(homes + (<usize>i << 2), home);
  const s = STARTS + ((<usize>(home >> shift) + 1) << 2);
  store<u32>(s, load<u32>(s) + 1);
}

/** Step 3 of loading: each bucket's counts become its start. */
export function load_starts(mapBits: u32): void {
  const buckets: usize = <usize>1 << (mapBits - bucketShift(mapBits));
  for (let b: usize = 1; b <= buckets; b++) {
    const s = STARTS + (b << 2);
    store<u32>(s, load<u32>(s) + load<u32>(s - 4));
  }
}

/**
 * Step 4 of loading, for entries first … first+n−1 (in order): each
 * entry's home and index + 1 to its place in `pairs`.
 */
export function load_scatter(
  first: u32,
  n: u32,
  mapBits: u32,
  homes: usize,
  pairs: usize,
): void {
  const shift = bucketShift(mapBits);
  const last = first + n;
  for (let i: u32 = first; i < last; i++) {
    const home = load<u32>(homes + (<usize>i << 2));
    const s = STARTS + (<usize>(home >> shift) << 2);
    const k = load<u32>(s);
    store<u32>(s, k + 1);
    const p = pairs + (<usize>k << 3);
    store<u32>(p, home);
    store<u32>(p, i + 1, 4);
  }
}

/**
 * Step 5 of loading, for pairs first … first+n−1 (in order): each
 * entry into the first free cell from its home.
 */
export function load_insert(
  pairs: usize,
  first: u32,
  n: u32,
  map: usize,
  mapBits: u32,
): void {
  const mask = homeMask(mapBits);
  const end = pairs + (<usize>(first + n) << 3);
  for (let p = pairs + (<usize>first << 3); p < end; p += 8) {
    let pos = load<u32>(p);
    while (load<u32>(map + (<usize>pos << 2)) != 0) pos = (pos + 1) & mask;
    store<u32>(map + (<usize>pos << 2), load<u32>(p, 4));
  }
}

/**
 * Writes to `out` the latest last-use time of records 0 … count−1 (u32,
 * 0 for none), at `out + 8` the bytes of every element they hold and at
 * `out + 16` their disk bytes as the limit counts them (FORMAT.md §5.4;
 * f64s: exact, as the sums stay below 2^53).
 */
export function table_totals(entries: usize, count: u32, out: usize): void {
  let latest: u32 = 0;
  let bytes: u64 = 0;
  let disk: u64 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const e = entries + <usize>i * ENTRY_SIZE;
    const used = load<u32>(e, E_LAST_USED);
    if (used > latest) latest = used;
    const flags = load<u8>(e, E_FLAGS);
    if (flags & F_HAS) bytes += <u64>load<u32>(e, E_DATA_SIZE);
    if (flags & (F_HAS << 1)) bytes += <u64>load<u32>(e, E_META_SIZE);
    disk += recordDisk(e);
  }
  store<u32>(out, latest);
  store<f64>(out, <f64>bytes, 8);
  store<f64>(out, <f64>disk, 16);
}

/**
 * True (1) when every record of 0 … count−1 passes the checks an open
 * makes of each record on its own (asm/sound.ts `recordSound`; src/_open.ts
 * `recordsSoundJs` is the reference). Then writes at `out` 1 when some
 * element is a large file and at `out + 4` the greatest large-file id; 0
 * at the first unsound record.
 */
export function table_sound(
  entries: usize,
  count: u32,
  dataSlots: u32,
  metaSlots: u32,
  out: usize,
): u32 {
  let anyFile: u32 = 0;
  let maxId: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const r = recordSound(entries + <usize>i * ENTRY_SIZE, dataSlots, metaSlots);
    if (r == UNSOUND) return 0;
    if (r & HAS_FILE) {
      anyFile = 1;
      if (<u32>r > maxId) maxId = <u32>r;
    }
  }
  store<u32>(out, anyFile);
  store<u32>(out, maxId, 4);
  return 1;
}

/** Flag bits of a packed record's word 3 (src/_entry_pack.ts). */
const P_HAS_META: u32 = 0x02 << 16;
const P_META_WITH_DATA: u32 = 0x10 << 16;
/** Bytes every packed record has: bytes 0 … 27 of the record. */
const P_CORE: usize = 28;

/**
 * Expands records first … first+n−1 of the table at `entries` from the
 * packed records (FORMAT.md §4, entries version 6) at byte `p`, lying
 * before `end`, in place (src/_entry_pack.ts `unpackInPlace` is the
 * reference): each packed record is read whole before its record is
 * written, which never overtakes what is still to be read. Returns where
 * the next packed record starts, or 0xffffffff when one runs past `end`.
 */
export function records_expand(
  entries: usize,
  first: u32,
  n: u32,
  p: usize,
  end: usize,
): u32 {
  let d = entries + <usize>first * ENTRY_SIZE;
  for (let i: u32 = 0; i < n; i++, d += ENTRY_SIZE) {
    p = expandOne(d, p, end);
    if (p == OVERRUN) return OVERRUN;
  }
  return <u32>p;
}

/**
 * {@linkcode records_expand} and step 2 of loading ({@linkcode load_homes},
 * after {@linkcode load_begin}) in one pass: each record has its flags
 * kept and its home noted as it is written, rather than in a second pass
 * over the table. Returns as records_expand does.
 */
export function records_expand_homes(
  entries: usize,
  first: u32,
  n: u32,
  p: usize,
  end: usize,
  keep: u32,
  mapBits: u32,
  homes: usize,
): u32 {
  const mask = homeMask(mapBits);
  const shift = bucketShift(mapBits);
  let d = entries + <usize>first * ENTRY_SIZE;
  const last = first + n;
  for (let i: u32 = first; i < last; i++, d += ENTRY_SIZE) {
    p = expandOne(d, p, end);
    if (p == OVERRUN) return OVERRUN;
    noteHome(d, i, keep, mask, shift, homes);
  }
  return <u32>p;
}

/** What the expanding kernels return when a packed record runs past `end`. */
const OVERRUN: u32 = 0xffffffff;

/**
 * Expands the packed record at `p` (before `end`) into the record at `d`;
 * returns where the next packed record starts, or {@linkcode OVERRUN}.
 */
// @ts-ignore: decorator
@inline function expandOne(d: usize, p: usize, end: usize): usize {
  if (p + P_CORE > end) return OVERRUN;
  const w3 = load<u32>(p, 12);
  let metaSize: u32 = 0, metaLoc: u32 = 0, metaCrc: u32 = 0;
  const w5 = load<u32>(p, 20);
  let size: usize = P_CORE;
  if (w3 & P_HAS_META) {
    if (w3 & P_META_WITH_DATA) {
      size += 8;
      if (p + size > end) return OVERRUN;
      metaSize = load<u32>(p, 28);
      metaLoc = w5;
      metaCrc = load<u32>(p, 32);
    } else {
      size += 12;
      if (p + size > end) return OVERRUN;
      metaSize = load<u32>(p, 28);
      metaLoc = load<u32>(p, 32);
      metaCrc = load<u32>(p, 36);
    }
  }
  const w0 = load<u64>(p);
  const w2 = load<u32>(p, 8);
  const w4 = load<u32>(p, 16);
  const w6 = load<u32>(p, 24);
  store<u64>(d, w0);
  store<u32>(d, w2, 8);
  store<u32>(d, w3, 12);
  store<u32>(d, w4, 16);
  store<u32>(d, w5, 20);
  store<u32>(d, w6, 24);
  store<u32>(d, metaSize, 28);
  store<u32>(d, metaLoc, 32);
  store<u32>(d, metaCrc, 36);
  return p + size;
}
