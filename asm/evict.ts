// Eviction ordering over the entries table. FORMAT.md §4 for the record.
//
// Each candidate gets a 49-bit sort key, pinned << 48 | useCount << 32 |
// lastUsed, so "best victim first" is ascending key, ties by entry index.
// Rather than sorting the whole table, a most-significant-digit radix
// select, weighted by disk bytes, finds the threshold key where the
// byte and entry targets are met; only the victims below it are then
// sorted (stable LSD radix sort, so equal keys stay in index order).
import {
  E_FLAGS, E_LAST_USED, E_USE_COUNT, ENTRY_SIZE, F_HAS, F_PINNED,
} from "./layout";
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

// @ts-ignore: decorator
@inline function sortKey(e: usize): u64 {
  const pinned = <u64>((load<u8>(e, E_FLAGS) & F_PINNED) != 0);
  return (pinned << 48) | (<u64>load<u16>(e, E_USE_COUNT) << 32) | <u64>load<u32>(e, E_LAST_USED);
}

// @ts-ignore: decorator
@inline function topBit(x: u64): u64 {
  return 63 - clz<u64>(x);
}

// @ts-ignore: decorator
@inline function satSub(a: u64, b: u64): u64 {
  return a > b ? a - b : 0;
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
  // Bytes are integers, so "bytes >= target" is "bytes >= ceil(target)".
  let needBytes: u64 = 0;
  if (byteTarget >= 18446744073709551615.0) needBytes = u64.MAX_VALUE;
  else if (byteTarget > 0) needBytes = <u64>Math.ceil(byteTarget);
  let needCount = <u64>entryTarget;

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

  // Radix select: narrow the candidates S to the digit bucket where the
  // running totals first meet both targets. Lower buckets are victims:
  // they are compacted to the front of keys/idx (whose other slots are no
  // longer needed), S to keys2/idx2, both keeping index order. Equal keys
  // share every digit, so they always move together, in index order.
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
    tieBytes += recordDisk(entries + <usize>load<u32>(si + (<usize>ties << 2)) * ENTRY_SIZE);
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
  return sortInto(idx, keys, idx, keys2, idx2, v + ties, vlo, vhi);
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
