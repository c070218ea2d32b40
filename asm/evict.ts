// Eviction ordering over the entries table. FORMAT.md §4 for the record.
//
// Each candidate gets a 49-bit sort key, pinned << 48 | useCount << 32 |
// lastUsed, so "best victim first" is ascending key, ties by entry index.
// Rather than sorting the whole table, a most-significant-digit radix
// select, weighted by disk bytes, finds the threshold key where the
// byte and entry targets are met; only the victims below it are then
// sorted (stable LSD radix sort, so equal keys stay in index order).
import {
  E_FLAGS, E_LAST_USED, E_USE_COUNT, ENTRY_SIZE, F_PINNED,
} from "./layout";

// sortKey reads the three fields as one u64: they must sit as it assumes.
assert(E_USE_COUNT == E_LAST_USED + 4 && E_FLAGS == E_LAST_USED + 6 && F_PINNED == 0x80);
import { recordDisk } from "./run";

const DIGIT_BITS: u64 = 11;
const RADIX: usize = 1 << <usize>DIGIT_BITS;
const MASK: u64 = <u64>RADIX - 1;
/** A 49-bit key needs at most five 11-bit digits (disjoint windows). */
const MAX_DIGITS: usize = 5;
/** Below this many victims an insertion sort beats the radix passes. */
const SMALL: u32 = 48;

const COUNTS = memory.data(<i32>(RADIX * 4), 16);
const BYTES = memory.data(<i32>(RADIX * 8), 16);
const SORT_COUNTS = memory.data(<i32>(MAX_DIGITS * RADIX * 4), 16);
const SHIFTS = memory.data(<i32>(MAX_DIGITS * 8), 8);

// One load of bytes 8–15 (lastUsed, useCount, flags, run code: FORMAT.md
// §4): the low 48 bits are the key's, and the pinned flag (bit 7 of the
// flags byte, bit 55 here) moves to bit 48.
// @ts-ignore: decorator
@inline function sortKey(e: usize): u64 {
  const v = load<u64>(e, E_LAST_USED);
  return (v & 0xffffffffffff) | ((v >> 7) & (<u64>1 << 48));
}

// @ts-ignore: decorator
@inline function topBit(x: u64): u64 {
  return 63 - clz<u64>(x);
}

// @ts-ignore: decorator
@inline function satSub(a: u64, b: u64): u64 {
  return a > b ? a - b : 0;
}

/** Whether the last `evict_collect` met its targets (1) or not (0). */
let collectMet: u32 = 1;
/** Smallest and largest key of the victims the last `narrow` chose. */
let victimLo: u64 = u64.MAX_VALUE;
let victimHi: u64 = 0;

// Bytes are integers, so "bytes >= target" is "bytes >= ceil(target)".
function bytesNeeded(byteTarget: f64): u64 {
  if (byteTarget >= 18446744073709551615.0) return u64.MAX_VALUE;
  return byteTarget > 0 ? <u64>Math.ceil(byteTarget) : 0;
}

/**
 * Chooses eviction victims and writes their indices, best first, to
 * `idx`: entries other than `keep` (-1 for none), ordered by sort key and
 * then index, as many as the shortest such prefix whose disk bytes reach
 * `byteTarget` and whose length reaches `entryTarget` (all of them when
 * the table cannot meet both). Returns the number of victims.
 *
 * `keys` and `keys2` are scratch of 8 bytes an entry, `idx2` of 4; `idx`
 * (4 bytes an entry) receives the result.
 */
export function evict_select(
  entries: usize, count: u32, keep: i32, byteTarget: f64, entryTarget: u32,
  keys: usize, keys2: usize, idx: usize, idx2: usize,
): u32 {
  const needBytes = bytesNeeded(byteTarget);
  const needCount = <u64>entryTarget;

  // Candidates (every entry but keep) in index order: keys in `keys`,
  // indices in `idx`, element bytes in `keys2` (free until narrowing
  // starts, and read before it is overwritten).
  let m: u32 = 0;
  let lo: u64 = u64.MAX_VALUE;
  let hi: u64 = 0;
  let totalBytes: u64 = 0;
  let e = entries;
  for (let i: u32 = 0; i < count; i++, e += ENTRY_SIZE) {
    if (<i32>i == keep) continue;
    const k = sortKey(e);
    const size = recordDisk(e);
    store<u64>(keys + (<usize>m << 3), k);
    store<u32>(idx + (<usize>m << 2), i);
    store<u64>(keys2 + (<usize>m << 3), size);
    if (k < lo) lo = k;
    if (k > hi) hi = k;
    totalBytes += size;
    m++;
  }
  if (m == 0 || (needBytes == 0 && needCount == 0)) return 0;
  if (totalBytes < needBytes || <u64>m < needCount) {
    return sortInto(idx, keys, idx, keys2, idx2, m, lo, hi);
  }
  const v = narrow(entries, m, lo, hi, needBytes, needCount, keys, keys2, idx, idx2);
  return sortInto(idx, keys, idx, keys2, idx2, v, victimLo, victimHi);
}

/**
 * The threshold key of a selection from a sample (for `evict_collect`):
 * `strata` windows of `windowLen` consecutive entries, one at a random
 * place (xorshift from `seed`) in each of `strata` equal stretches of
 * the table, as the candidates (`keep` left out); the targets scaled to
 * the sample's share of the `count` − (keep ≥ 0) candidates, with a
 * margin (15% and four standard deviations of a binomial count), so
 * that the table's entries with keys up to the returned one meet the
 * targets with high probability. Returns the largest key the sample's
 * victims hold, or -1 when the sample cannot meet the scaled targets.
 * Scratch as for `evict_select`, 8 + 8 + 4 + 4 bytes a sampled entry.
 */
export function evict_threshold(
  entries: usize, count: u32, keep: i32, strata: u32, windowLen: u32, seed: u32,
  byteTarget: f64, entryTarget: u32,
  keys: usize, keys2: usize, idx: usize, idx2: usize,
): f64 {
  let x: u32 = seed | 1;
  const stretch = count / strata;
  let m: u32 = 0;
  let lo: u64 = u64.MAX_VALUE;
  let hi: u64 = 0;
  let sampleBytes: u64 = 0;
  for (let s: u32 = 0; s < strata; s++) {
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    const room = stretch > windowLen ? stretch - windowLen : 0;
    const first = s * stretch + (room > 0 ? x % (room + 1) : 0);
    const last = min(first + windowLen, s * stretch + stretch);
    let e = entries + <usize>first * ENTRY_SIZE;
    for (let i = first; i < last; i++, e += ENTRY_SIZE) {
      if (<i32>i == keep) continue;
      const k = sortKey(e);
      const size = recordDisk(e);
      store<u64>(keys + (<usize>m << 3), k);
      store<u32>(idx + (<usize>m << 2), i);
      store<u64>(keys2 + (<usize>m << 3), size);
      if (k < lo) lo = k;
      if (k > hi) hi = k;
      sampleBytes += size;
      m++;
    }
  }
  if (m == 0) return -1;
  const candidates = <f64>(keep >= 0 && <u32>keep < count ? count - 1 : count);
  const share = <f64>m / candidates;
  const avg = <f64>sampleBytes / <f64>m;
  const kc = <f64>entryTarget * share;
  const needCount = kc > 0 ? <u64>Math.ceil(kc * 1.15 + 4 * Math.sqrt(kc) + 8) : 0;
  let needBytes: u64 = 0;
  if (byteTarget > 0 && avg > 0) {
    const kb = byteTarget * share / avg;
    needBytes = bytesNeeded((kb * 1.15 + 4 * Math.sqrt(kb) + 8) * avg);
  }
  if (needBytes == 0 && needCount == 0) return <f64>lo;
  if (sampleBytes < needBytes || <u64>m < needCount) return -1;
  narrow(entries, m, lo, hi, needBytes, needCount, keys, keys2, idx, idx2);
  return <f64>victimHi;
}

/**
 * `evict_select` over the prefix of the order up to `threshold` (a key,
 * below 2^49): the candidates are every entry but `keep` whose key is
 * below it and, while room lasts among `maxCandidates`, those whose key
 * equals it, in index order (so they are a prefix of the whole order).
 * Writes the victims to `idx` as `evict_select` does and returns their
 * number; `evict_met` then tells whether they meet the targets (else
 * they are all that prefix holds, and the caller removes them and selects
 * again). Returns 0xffffffff when the keys below the threshold alone
 * pass `maxCandidates`; `out` then holds the table's smallest key (u64),
 * a threshold that cannot overflow.
 *
 * Scratch: keys, keys2 of 8 bytes and idx, idx2 of 4 bytes a candidate.
 */
export function evict_collect(
  entries: usize, count: u32, keep: i32, threshold: f64, maxCandidates: u32,
  byteTarget: f64, entryTarget: u32,
  keys: usize, keys2: usize, idx: usize, idx2: usize, out: usize,
): u32 {
  const needBytes = bytesNeeded(byteTarget);
  const needCount = <u64>entryTarget;
  const thr: u64 = threshold >= 562949953421312.0 ? u64.MAX_VALUE : <u64>threshold;
  collectMet = 1;
  // Keys below thr fill from the front; ties (key == thr) from the back
  // (in descending index order there), the latest dropped for a key
  // below thr when they meet, and later ties ignored once one is.
  let m: u32 = 0;
  let t: u32 = 0;
  let tiesFull = false;
  let skipped = false;
  let lo: u64 = u64.MAX_VALUE;
  let hi: u64 = 0;
  let tableLo: u64 = u64.MAX_VALUE;
  let lessBytes: u64 = 0;
  let tieBytes: u64 = 0;
  let e = entries;
  for (let i: u32 = 0; i < count; i++, e += ENTRY_SIZE) {
    if (<i32>i == keep) continue;
    const k = sortKey(e);
    if (k < tableLo) tableLo = k;
    if (k > thr) {
      skipped = true;
      continue;
    }
    const size = recordDisk(e);
    if (k < thr) {
      if (m + t >= maxCandidates) {
        if (t == 0) {
          store<u64>(out, tableLo);
          // The rest of the table may hold a smaller key still.
          for (i++, e += ENTRY_SIZE; i < count; i++, e += ENTRY_SIZE) {
            if (<i32>i == keep) continue;
            const k2 = sortKey(e);
            if (k2 < tableLo) tableLo = k2;
          }
          store<u64>(out, tableLo);
          return 0xffffffff;
        }
        t--;
        tieBytes -= load<u64>(keys2 + (<usize>(maxCandidates - 1 - t) << 3));
        tiesFull = true;
      }
      store<u64>(keys + (<usize>m << 3), k);
      store<u32>(idx + (<usize>m << 2), i);
      store<u64>(keys2 + (<usize>m << 3), size);
      if (k < lo) lo = k;
      if (k > hi) hi = k;
      lessBytes += size;
      m++;
    } else if (tiesFull || m + t >= maxCandidates) {
      tiesFull = true;
    } else {
      const at = <usize>(maxCandidates - 1 - t);
      store<u64>(keys + (at << 3), k);
      store<u32>(idx + (at << 2), i);
      store<u64>(keys2 + (at << 3), size);
      tieBytes += size;
      t++;
    }
  }
  // The ties, back in index order (reversed in place), right after the
  // keys below thr (moved down: the two stretches may overlap).
  const back = <usize>(maxCandidates - t);
  for (let a = back, b = <usize>maxCandidates - 1; a < b; a++, b--) {
    const ka = load<u64>(keys + (a << 3));
    store<u64>(keys + (a << 3), load<u64>(keys + (b << 3)));
    store<u64>(keys + (b << 3), ka);
    const ia = load<u32>(idx + (a << 2));
    store<u32>(idx + (a << 2), load<u32>(idx + (b << 2)));
    store<u32>(idx + (b << 2), ia);
    const sa = load<u64>(keys2 + (a << 3));
    store<u64>(keys2 + (a << 3), load<u64>(keys2 + (b << 3)));
    store<u64>(keys2 + (b << 3), sa);
  }
  if (t > 0 && back != <usize>m) {
    memory.copy(keys + (<usize>m << 3), keys + (back << 3), <usize>t << 3);
    memory.copy(idx + (<usize>m << 2), idx + (back << 2), <usize>t << 2);
    memory.copy(keys2 + (<usize>m << 3), keys2 + (back << 3), <usize>t << 3);
  }
  if (t > 0) {
    if (thr < lo) lo = thr;
    if (thr > hi) hi = thr;
  }
  const n = m + t;
  if (n == 0 || (needBytes == 0 && needCount == 0)) return 0;
  if (lessBytes + tieBytes < needBytes || <u64>n < needCount) {
    // All of the prefix goes; it is all the table holds unless some was
    // left out.
    if (skipped || tiesFull) collectMet = 0;
    return sortInto(idx, keys, idx, keys2, idx2, n, lo, hi);
  }
  const v = narrow(entries, n, lo, hi, needBytes, needCount, keys, keys2, idx, idx2);
  return sortInto(idx, keys, idx, keys2, idx2, v, victimLo, victimHi);
}

/** 1 when the last `evict_collect` met its targets, else 0. */
export function evict_met(): u32 {
  return collectMet;
}

/**
 * Radix select over the `n` candidates at keys/idx (their sizes in
 * keys2), which as a whole meet the targets: leaves the victims, in
 * index order within equal keys, at keys/idx[0..v) and returns v; their
 * smallest and largest keys in victimLo, victimHi.
 */
function narrow(
  entries: usize, m: u32, lo: u64, hi: u64, needBytes: u64, needCount: u64,
  keys: usize, keys2: usize, idx: usize, idx2: usize,
): u32 {
  // Narrow the candidates S to the digit bucket where the running totals
  // first meet both targets. Lower buckets are victims: they are
  // compacted to the front of keys/idx (whose other slots are no longer
  // needed), S to keys2/idx2, both keeping index order. Equal keys share
  // every digit, so they always move together, in index order.
  let sk = keys;
  let si = idx;
  let n = m;
  let v: u32 = 0; // victims so far, at keys/idx[0..v)
  let vlo: u64 = u64.MAX_VALUE;
  let vhi: u64 = 0;
  let first = true;
  while (lo != hi) {
    const shift = satSub(topBit(lo ^ hi) + 1, DIGIT_BITS);
    memory.fill(COUNTS, 0, RADIX * 4);
    memory.fill(BYTES, 0, RADIX * 8);
    for (let j: u32 = 0; j < n; j++) {
      const d = <usize>((load<u64>(sk + (<usize>j << 3)) >> shift) & MASK);
      const size = first
        ? load<u64>(keys2 + (<usize>j << 3))
        : recordDisk(entries + <usize>load<u32>(si + (<usize>j << 2)) * ENTRY_SIZE);
      store<u32>(COUNTS + (d << 2), load<u32>(COUNTS + (d << 2)) + 1);
      store<u64>(BYTES + (d << 3), load<u64>(BYTES + (d << 3)) + size);
    }
    let cumCount: u64 = 0;
    let cumBytes: u64 = 0;
    let bucket: usize = 0;
    for (; bucket < RADIX; bucket++) {
      const c = <u64>load<u32>(COUNTS + (bucket << 2));
      const b = load<u64>(BYTES + (bucket << 3));
      if (cumCount + c >= needCount && cumBytes + b >= needBytes) break;
      cumCount += c;
      cumBytes += b;
    }
    // Invariant: S as a whole meets the remaining need, so a bucket does.
    needCount = satSub(needCount, cumCount);
    needBytes = satSub(needBytes, cumBytes);
    let w: u32 = 0;
    lo = u64.MAX_VALUE;
    hi = 0;
    for (let j: u32 = 0; j < n; j++) {
      const k = load<u64>(sk + (<usize>j << 3));
      const d = <usize>((k >> shift) & MASK);
      if (d > bucket) continue;
      const i = load<u32>(si + (<usize>j << 2));
      if (d < bucket) {
        store<u64>(keys + (<usize>v << 3), k);
        store<u32>(idx + (<usize>v << 2), i);
        if (k < vlo) vlo = k;
        if (k > vhi) vhi = k;
        v++;
      } else {
        store<u64>(keys2 + (<usize>w << 3), k);
        store<u32>(idx2 + (<usize>w << 2), i);
        if (k < lo) lo = k;
        if (k > hi) hi = k;
        w++;
      }
    }
    sk = keys2;
    si = idx2;
    n = w;
    first = false;
  }
  // All of S share the threshold key: the first few, in index order, are
  // the last victims.
  let ties: u32 = 0;
  let tieBytes: u64 = 0;
  while (ties < n && ((<u64>ties) < needCount || tieBytes < needBytes)) {
    tieBytes += first
      ? load<u64>(keys2 + (<usize>ties << 3))
      : recordDisk(entries + <usize>load<u32>(si + (<usize>ties << 2)) * ENTRY_SIZE);
    ties++;
  }
  if (ties > 0) {
    // When no narrowing ran, S is keys/idx itself and already in place.
    if (sk != keys) {
      memory.copy(keys + (<usize>v << 3), sk, <usize>ties << 3);
      memory.copy(idx + (<usize>v << 2), si, <usize>ties << 2);
    }
    if (lo < vlo) vlo = lo;
    if (lo > vhi) vhi = lo;
  }
  victimLo = vlo;
  victimHi = vhi;
  return v + ties;
}

/**
 * Stable sort of the `n` (key, index) pairs in ak/ai by key, using bk/bi as
 * scratch; lo and hi bound the keys. The indices end up at `out`, which is
 * ai or bi. Returns n.
 */
function sortInto(
  out: usize, ak: usize, ai: usize, bk: usize, bi: usize, n: u32, lo: u64, hi: u64,
): u32 {
  if (n <= SMALL || lo == hi) {
    if (lo != hi) insertionSort(ak, ai, n);
    if (ai != out) memory.copy(out, ai, <usize>n << 2);
    return n;
  }
  // Only bits that differ somewhere need sorting: digits start at the
  // lowest such bit not yet covered, so constant stretches (say the high
  // bits of lastUsed when all uses fall in one month) cost no pass.
  let diff: u64 = 0;
  for (let j: u32 = 0; j < n; j++) diff |= load<u64>(ak + (<usize>j << 3)) ^ lo;
  let digits: usize = 0;
  while (diff != 0) {
    const shift = ctz<u64>(diff);
    store<u64>(SHIFTS + (digits << 3), shift);
    digits++;
    diff = shift + DIGIT_BITS >= 64 ? 0 : diff & (u64.MAX_VALUE << (shift + DIGIT_BITS));
  }
  memory.fill(SORT_COUNTS, 0, digits * RADIX * 4);
  for (let j: u32 = 0; j < n; j++) {
    const k = load<u64>(ak + (<usize>j << 3));
    for (let d: usize = 0; d < digits; d++) {
      const shift = load<u64>(SHIFTS + (d << 3));
      const p = SORT_COUNTS + ((d * RADIX + <usize>((k >> shift) & MASK)) << 2);
      store<u32>(p, load<u32>(p) + 1);
    }
  }
  let sk = ak;
  let si = ai;
  let dk = bk;
  let di = bi;
  for (let d: usize = 0; d < digits; d++) {
    const counts = SORT_COUNTS + d * RADIX * 4;
    // Counts become starting positions.
    let sum: u32 = 0;
    for (let b: usize = 0; b < RADIX; b++) {
      const c = load<u32>(counts + (b << 2));
      store<u32>(counts + (b << 2), sum);
      sum += c;
    }
    const shift = load<u64>(SHIFTS + (d << 3));
    for (let j: u32 = 0; j < n; j++) {
      const k = load<u64>(sk + (<usize>j << 3));
      const p = counts + (<usize>((k >> shift) & MASK) << 2);
      const at = load<u32>(p);
      store<u32>(p, at + 1);
      store<u64>(dk + (<usize>at << 3), k);
      store<u32>(di + (<usize>at << 2), load<u32>(si + (<usize>j << 2)));
    }
    const tk = sk; sk = dk; dk = tk;
    const ti = si; si = di; di = ti;
  }
  if (si != out) memory.copy(out, si, <usize>n << 2);
  return n;
}

// Stable: an element moves left only past strictly greater keys.
function insertionSort(keys: usize, idx: usize, n: u32): void {
  for (let j: u32 = 1; j < n; j++) {
    const k = load<u64>(keys + (<usize>j << 3));
    const i = load<u32>(idx + (<usize>j << 2));
    let h = j;
    while (h > 0 && load<u64>(keys + (<usize>(h - 1) << 3)) > k) {
      store<u64>(keys + (<usize>h << 3), load<u64>(keys + (<usize>(h - 1) << 3)));
      store<u32>(idx + (<usize>h << 2), load<u32>(idx + (<usize>(h - 1) << 2)));
      h--;
    }
    store<u64>(keys + (<usize>h << 3), k);
    store<u32>(idx + (<usize>h << 2), i);
  }
}
