// Block-slot use maps: one bit a slot, bit i of byte b is slot 8*b + i
// (FORMAT.md §5.1 states it as 32-bit little-endian words; read as 64-bit
// little-endian words here it is the same bits). A map's byte length is a
// multiple of 8, so whole 64-bit words can always be read.
import {
  E_DATA_LOC, E_DATA_SLOTS, E_FLAGS, E_META_LOC, ENTRY_SIZE, F_HAS, F_IN_FILE,
  F_META_WITH_DATA,
} from "./layout";
import { runSlots } from "./run";
import { HAS_FILE, recordSound, UNSOUND } from "./sound";

// Each map has a summary beside it (runtime only): bit w is set when map
// word w (64 slots) has a free slot. Claims read the summary to skip full
// words 64 at a time, so a claim after a low free on a nearly full map
// costs slots/4096 reads, not slots/64. Every write to a map goes through
// the functions below, which keep the summary exact.

// @ts-ignore: decorator
@inline function markFull(sum: usize, w: u32): void {
  const p = sum + (<usize>(w >>> 6) << 3);
  store<u64>(p, load<u64>(p) & ~(<u64>1 << (w & 63)));
}

// @ts-ignore: decorator
@inline function markNotFull(sum: usize, w: u32): void {
  const p = sum + (<usize>(w >>> 6) << 3);
  store<u64>(p, load<u64>(p) | (<u64>1 << (w & 63)));
}

// The first word in [from, to) whose summary bit is set, or -1.
function nextNotFull(sum: usize, from: u32, to: u32): i32 {
  if (from >= to) return -1;
  let sw = from >>> 6;
  const last = (to - 1) >>> 6;
  let bits = load<u64>(sum + (<usize>sw << 3)) & (u64.MAX_VALUE << (from & 63));
  while (true) {
    if (bits != 0) {
      const w = (sw << 6) + <u32>ctz<u64>(bits);
      return w < to ? <i32>w : -1;
    }
    if (sw >= last) return -1;
    sw++;
    bits = load<u64>(sum + (<usize>sw << 3));
  }
}

// Claims the lowest free slot of word w among the bits in `allow` and
// below nbits; -1 when there is none.
function claimIn(map: usize, sum: usize, w: u32, nbits: u32, allow: u64): i32 {
  const p = map + (<usize>w << 3);
  const word = load<u64>(p);
  const free = ~word & allow;
  if (free == 0) return -1;
  const bit = (w << 6) + <u32>ctz<u64>(free);
  if (bit >= nbits) return -1;
  const now = word | (<u64>1 << (bit & 63));
  store<u64>(p, now);
  if (now == u64.MAX_VALUE) markFull(sum, w);
  return <i32>bit;
}

/**
 * Claims the first free slot at or after `hint` (wrapping once) among the
 * first `nbits` slots of `map`, whose summary is `sum`. Returns the slot,
 * or -1 when every slot is in use. A run of claims with hint = last slot
 * + 1 costs O(1) each, not O(n).
 */
export function bitmap_claim(map: usize, sum: usize, nbits: u32, hint: u32): i32 {
  if (nbits == 0) return -1;
  if (hint >= nbits) hint = 0;
  const nwords = (nbits + 63) >>> 6;
  const hw = hint >>> 6;
  let slot = claimIn(map, sum, hw, nbits, u64.MAX_VALUE << (hint & 63));
  if (slot >= 0) return slot;
  // Later words, then from the start up to and including the hint's word
  // (its bits below the hint, this time).
  for (let w = nextNotFull(sum, hw + 1, nwords); w >= 0; w = nextNotFull(sum, w + 1, nwords)) {
    slot = claimIn(map, sum, w, nbits, u64.MAX_VALUE);
    if (slot >= 0) return slot;
  }
  for (let w = nextNotFull(sum, 0, hw + 1); w >= 0; w = nextNotFull(sum, w + 1, hw + 1)) {
    slot = claimIn(map, sum, w, nbits, u64.MAX_VALUE);
    if (slot >= 0) return slot;
  }
  return -1;
}

// The first used slot in [from, to), or -1.
function firstUsed(map: usize, from: u32, to: u32): i32 {
  let w = from >>> 6;
  let bits = load<u64>(map + (<usize>w << 3)) & (u64.MAX_VALUE << (from & 63));
  while (true) {
    if (bits != 0) {
      const s = (w << 6) + <u32>ctz<u64>(bits);
      return s < to ? <i32>s : -1;
    }
    w++;
    if ((w << 6) >= to) return -1;
    bits = load<u64>(map + (<usize>w << 3));
  }
}

// The first free slot in [from, to), or -1 (full words skipped through the
// summary).
function firstFree(map: usize, sum: usize, from: u32, to: u32): i32 {
  if (from >= to) return -1;
  const w0 = from >>> 6;
  const free0 = ~load<u64>(map + (<usize>w0 << 3)) & (u64.MAX_VALUE << (from & 63));
  if (free0 != 0) {
    const s = (w0 << 6) + <u32>ctz<u64>(free0);
    return s < to ? <i32>s : -1;
  }
  const w = nextNotFull(sum, w0 + 1, (to + 63) >>> 6);
  if (w < 0) return -1;
  const s = (<u32>w << 6) + <u32>ctz<u64>(~load<u64>(map + (<usize>w << 3)));
  return s < to ? <i32>s : -1;
}

// The first run of n free slots starting in [from, to) and ending before
// `end`, none crossing a multiple of `group`; -1 when there is none.
function findRun(
  map: usize, sum: usize, from: u32, to: u32, end: u32, n: u32, group: u32,
): i32 {
  let start = firstFree(map, sum, from, to);
  while (start >= 0) {
    const s = <u32>start;
    const groupEnd = (s / group + 1) * group;
    if (s + n > groupEnd) {
      // Would cross into the next block file: start again at its first slot.
      start = firstFree(map, sum, groupEnd, to);
      continue;
    }
    if (s + n > end) return -1;
    const used = firstUsed(map, s, s + n);
    if (used < 0) return start;
    start = firstFree(map, sum, <u32>used + 1, to);
  }
  return -1;
}

/**
 * Claims `n` consecutive free slots (1 ≤ n ≤ `group`) among the first
 * `nbits` of `map`, none crossing a multiple of `group` (a block file's
 * slot count), the first such run starting at or after `hint`, wrapping
 * once. Returns the run's first slot, or -1 when no run is free.
 */
export function bitmap_claim_run(
  map: usize, sum: usize, nbits: u32, n: u32, hint: u32, group: u32,
): i32 {
  if (n == 0 || n > group || n > nbits) return -1;
  if (hint >= nbits) hint = 0;
  let s = findRun(map, sum, hint, nbits, nbits, n, group);
  if (s < 0) s = findRun(map, sum, 0, hint, min(nbits, hint + n - 1), n, group);
  if (s < 0) return -1;
  bitmap_set_run(map, sum, <u32>s, n);
  return s;
}

// The bits of word `w` among slots [from, to): a mask, and where the next
// word's slots begin.
// @ts-ignore: decorator
@inline function wordMask(from: u32, to: u32): u64 {
  const lo = from & 63;
  const width = min<u32>(64 - lo, to - from);
  return width == 64 ? u64.MAX_VALUE : ((<u64>1 << width) - 1) << lo;
}

/** Marks the `n` slots from `slot` free, a word at a time. */
export function bitmap_free_run(map: usize, sum: usize, slot: u32, n: u32): void {
  const end = slot + n;
  for (let s = slot; s < end;) {
    const w = s >>> 6;
    const p = map + (<usize>w << 3);
    store<u64>(p, load<u64>(p) & ~wordMask(s, end));
    markNotFull(sum, w);
    s = (w + 1) << 6;
  }
}

/** Marks the `n` slots from `slot` used, a word at a time. */
export function bitmap_set_run(map: usize, sum: usize, slot: u32, n: u32): void {
  const end = slot + n;
  for (let s = slot; s < end;) {
    const w = s >>> 6;
    const p = map + (<usize>w << 3);
    const now = load<u64>(p) | wordMask(s, end);
    store<u64>(p, now);
    if (now == u64.MAX_VALUE) markFull(sum, w);
    s = (w + 1) << 6;
  }
}

/** Number of used slots in [from, to). */
export function bitmap_count_range(map: usize, from: u32, to: u32): u32 {
  let total: u64 = 0;
  for (let s = from; s < to;) {
    const w = s >>> 6;
    total += popcnt<u64>(load<u64>(map + (<usize>w << 3)) & wordMask(s, to));
    s = (w + 1) << 6;
  }
  return <u32>total;
}

/** The highest used slot in [from, to), or -1 when none is. */
export function bitmap_last_used(map: usize, from: u32, to: u32): i32 {
  if (from >= to) return -1;
  const first = from >>> 6;
  let w = (to - 1) >>> 6;
  while (true) {
    const lo = w == first ? from : w << 6;
    const hi = min<u32>(to, (w + 1) << 6);
    const bits = load<u64>(map + (<usize>w << 3)) & wordMask(lo, hi);
    if (bits != 0) return <i32>((w << 6) + 63 - <u32>clz<u64>(bits));
    if (w == first) return -1;
    w--;
  }
}

/** Marks `slot` free. */
export function bitmap_free(map: usize, sum: usize, slot: u32): void {
  const p = map + (<usize>(slot >>> 3));
  store<u8>(p, <u32>load<u8>(p) & ~(<u32>1 << (slot & 7)));
  markNotFull(sum, slot >>> 6);
}

/** Marks `slot` used. */
export function bitmap_set(map: usize, sum: usize, slot: u32): void {
  const p = map + (<usize>(slot >>> 6) << 3);
  const now = load<u64>(p) | (<u64>1 << (slot & 63));
  store<u64>(p, now);
  if (now == u64.MAX_VALUE) markFull(sum, slot >>> 6);
}

/** 1 when `slot` is marked used, else 0. */
export function bitmap_test(map: usize, slot: u32): u32 {
  return (<u32>load<u8>(map + (<usize>(slot >>> 3))) >>> (slot & 7)) & 1;
}

/** Number of used slots among the first `nbits`. */
export function bitmap_count(map: usize, nbits: u32): u32 {
  const full = nbits >>> 6;
  let total: u64 = 0;
  for (let w: u32 = 0; w < full; w++) {
    total += popcnt<u64>(load<u64>(map + (<usize>w << 3)));
  }
  const rest = nbits & 63;
  if (rest != 0) {
    total += popcnt<u64>(load<u64>(map + (<usize>full << 3)) & ((<u64>1 << rest) - 1));
  }
  return <u32>total;
}

/**
 * Builds at `claims` the map of the first `nbits` slots that entries
 * 0..count-1 claim for element `kind` (0 data, 1 meta; elements in large
 * files claim no slot). A data element claims the run of slots its record
 * names (the run code in its E_DATA_SLOTS byte). `claims` is cleared first; its byte
 * length is nbits/8 rounded up to a multiple of 8. Metadata stored in its
 * data's slot claims no metadata slot. Returns how many claims could not be
 * marked: a slot out of range, or one a lower entry already claims.
 */
export function slots_claimed(
  entries: usize, count: u32, kind: u32, claims: usize, nbits: u32,
): u32 {
  memory.fill(claims, 0, <usize>((nbits + 63) >>> 6) << 3);
  const has = <u8>(F_HAS << kind);
  // Elsewhere than a slot of its own kind: a large file, or (metadata) the
  // data's slot.
  const inFile = <u8>((F_IN_FILE << kind) | (kind == 1 ? F_META_WITH_DATA : 0));
  const locOff: usize = kind == 0 ? E_DATA_LOC : E_META_LOC;
  let bad: u32 = 0;
  let e = entries;
  for (let i: u32 = 0; i < count; i++, e += ENTRY_SIZE) {
    const flags = load<u8>(e, E_FLAGS);
    if ((flags & (has | inFile)) != has) continue;
    const slot = load<u32>(e + locOff);
    const n: u32 = kind == 0 ? runSlots(<u32>load<u8>(e, E_DATA_SLOTS)) : 1;
    if (slot >= nbits || n > nbits - slot) {
      bad++;
      continue;
    }
    let clash = false;
    for (let s = slot; s < slot + n; s++) {
      const p = claims + (<usize>(s >>> 3));
      const bit = <u32>1 << (s & 7);
      const old = <u32>load<u8>(p);
      if (old & bit) clash = true;
      else store<u8>(p, old | bit);
    }
    if (clash) bad++;
  }
  return bad;
}

/**
 * Compares maps `a` and `b` over the first `nbits` slots. Writes four u32s
 * to `out`: the number of slots set in a but not b, the first such slot
 * (or 0xffffffff), the number set in b but not a, the first such slot.
 */
export function bitmap_diff(a: usize, b: usize, nbits: u32, out: usize): void {
  let onlyA: u64 = 0;
  let onlyB: u64 = 0;
  let firstA: u32 = 0xffffffff;
  let firstB: u32 = 0xffffffff;
  const nwords = (nbits + 63) >>> 6;
  for (let w: u32 = 0; w < nwords; w++) {
    let x = load<u64>(a + (<usize>w << 3));
    let y = load<u64>(b + (<usize>w << 3));
    if (x == y) continue;
    if (w == nwords - 1 && (nbits & 63) != 0) {
      const mask = (<u64>1 << (nbits & 63)) - 1;
      x &= mask;
      y &= mask;
    }
    const da = x & ~y;
    const db = y & ~x;
    if (da != 0) {
      if (onlyA == 0) firstA = (w << 6) + <u32>ctz<u64>(da);
      onlyA += popcnt<u64>(da);
    }
    if (db != 0) {
      if (onlyB == 0) firstB = (w << 6) + <u32>ctz<u64>(db);
      onlyB += popcnt<u64>(db);
    }
  }
  store<u32>(out, <u32>onlyA);
  store<u32>(out, firstA, 4);
  store<u32>(out, <u32>onlyB, 8);
  store<u32>(out, firstB, 12);
}

/**
 * As {@linkcode slots_claimed}, straight into the use map at `map` (all
 * zero to begin with), for entries first … first+n−1 (a caller goes a
 * chunk at a time: V8 swaps in a function's optimized code only between
 * calls): marks the slots they claim of `kind` and returns how many
 * claims could not be marked. Raises the u32 at `out` to the slot after
 * the highest claim marked (0 for none): the map is zero from there on,
 * so neither the clearing nor {@linkcode use_summary} goes through the
 * whole of a large map.
 */
export function use_mark(
  entries: usize, first: u32, n: u32, kind: u32, map: usize, nbits: u32,
  out: usize,
): u32 {
  markTop = load<u32>(out);
  let bad: u32 = 0;
  let e = entries + <usize>first * ENTRY_SIZE;
  for (let i: u32 = 0; i < n; i++, e += ENTRY_SIZE) {
    bad += markClaim(e, kind, map, nbits);
  }
  store<u32>(out, markTop);
  return bad;
}

/**
 * {@linkcode use_mark} of both kinds in one pass over the entries: the
 * data map at `dataMap` (`dataBits` slots), the metadata map at `metaMap`
 * (`metaBits`); the u32s at `out` and `out + 4` are each kind's top, those
 * at `out + 8` and `out + 12` are raised by each kind's claims that could
 * not be marked.
 */
export function use_mark_both(
  entries: usize, first: u32, n: u32, dataMap: usize, dataBits: u32,
  metaMap: usize, metaBits: u32, out: usize,
): void {
  let dataTop = load<u32>(out);
  let metaTop = load<u32>(out, 4);
  let dataBad: u32 = 0;
  let metaBad: u32 = 0;
  let e = entries + <usize>first * ENTRY_SIZE;
  for (let i: u32 = 0; i < n; i++, e += ENTRY_SIZE) {
    markTop = dataTop;
    dataBad += markClaim(e, 0, dataMap, dataBits);
    dataTop = markTop;
    markTop = metaTop;
    metaBad += markClaim(e, 1, metaMap, metaBits);
    metaTop = markTop;
  }
  store<u32>(out, dataTop);
  store<u32>(out, metaTop, 4);
  store<u32>(out, load<u32>(out, 8) + dataBad, 8);
  store<u32>(out, load<u32>(out, 12) + metaBad, 12);
}

/**
 * As {@linkcode use_mark_both}, for records that pass the checks an open
 * makes of each record on its own (asm/sound.ts `recordSound`, against the
 * block files' `dataSlots` and `metaSlots`), in one pass instead of
 * `table_sound` and then this: each record is checked before its claims
 * are marked. Returns 0 at the first unsound record (what was marked
 * before it stays, with the tops at `out` raised), else 1 and raises the
 * u32 at `out + 16` to 1 when some element is a large file and the one at
 * `out + 20` to the greatest large-file id.
 */
export function use_mark_sound(
  entries: usize, first: u32, n: u32, dataMap: usize, dataBits: u32,
  metaMap: usize, metaBits: u32, dataSlots: u32, metaSlots: u32, out: usize,
): u32 {
  let dataTop = load<u32>(out);
  let metaTop = load<u32>(out, 4);
  let dataBad: u32 = 0;
  let metaBad: u32 = 0;
  let anyFile = load<u32>(out, 16);
  let maxId = load<u32>(out, 20);
  let sound: u32 = 1;
  let e = entries + <usize>first * ENTRY_SIZE;
  for (let i: u32 = 0; i < n; i++, e += ENTRY_SIZE) {
    const r = recordSound(e, dataSlots, metaSlots);
    if (r == UNSOUND) {
      sound = 0;
      break;
    }
    if (r & HAS_FILE) {
      anyFile = 1;
      if (<u32>r > maxId) maxId = <u32>r;
    }
    markTop = dataTop;
    dataBad += markClaim(e, 0, dataMap, dataBits);
    dataTop = markTop;
    markTop = metaTop;
    metaBad += markClaim(e, 1, metaMap, metaBits);
    metaTop = markTop;
  }
  store<u32>(out, dataTop);
  store<u32>(out, metaTop, 4);
  store<u32>(out, load<u32>(out, 8) + dataBad, 8);
  store<u32>(out, load<u32>(out, 12) + metaBad, 12);
  store<u32>(out, anyFile, 16);
  store<u32>(out, maxId, 20);
  return sound;
}

/** The slot after the highest claim `markClaim` marked. */
let markTop: u32 = 0;

/**
 * Marks the slots the record at `e` claims of `kind` in the use map at
 * `map` (`nbits` slots), raising `markTop`; 1 when its claim could not be
 * marked (out of range, or a slot already marked), else 0.
 */
// @ts-ignore: decorator
@inline function markClaim(e: usize, kind: u32, map: usize, nbits: u32): u32 {
  const has = <u8>(F_HAS << kind);
  const inFile = <u8>((F_IN_FILE << kind) | (kind == 1 ? F_META_WITH_DATA : 0));
  const flags = load<u8>(e, E_FLAGS);
  if ((flags & (has | inFile)) != has) return 0;
  const slot = load<u32>(e + (kind == 0 ? E_DATA_LOC : E_META_LOC));
  const k: u32 = kind == 0 ? runSlots(<u32>load<u8>(e, E_DATA_SLOTS)) : 1;
  if (slot >= nbits || k > nbits - slot) return 1;
  const end = slot + k;
  if (end > markTop) markTop = end;
  // A word at a time: a run is up to 32,768 slots, most within one word.
  let clash: u32 = 0;
  for (let s = slot; s < end;) {
    const w = s >>> 6;
    const p = map + (<usize>w << 3);
    const mask = wordMask(s, end);
    const old = load<u64>(p);
    if (old & mask) clash = 1;
    store<u64>(p, old | mask);
    s = (w + 1) << 6;
  }
  return clash;
}

/**
 * Makes the summary at `sum` (`sumBytes` long) exact for the use map at
 * `map`, which is zero from slot `top` on ({@linkcode use_mark}).
 */
export function use_summary(map: usize, sum: usize, sumBytes: u32, top: u32): void {
  memory.fill(sum, 0xff, sumBytes);
  const nwords = (top + 63) >>> 6;
  for (let w: u32 = 0; w < nwords; w++) {
    if (load<u64>(map + (<usize>w << 3)) == u64.MAX_VALUE) markFull(sum, w);
  }
}
