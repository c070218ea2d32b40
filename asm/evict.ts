// Eviction ordering over the entries table. FORMAT.md §4 for the record.
import {
  E_FLAGS, E_LAST_USED, E_USE_COUNT, ENTRY_SIZE, F_PINNED,
} from "./layout";

// Invariant: the order is total (ties fall back to the entry index), so the
// same table always yields the same victims.
// @ts-ignore: decorator
@inline function before(entries: usize, a: u32, b: u32): bool {
  const pa = entries + <usize>a * ENTRY_SIZE;
  const pb = entries + <usize>b * ENTRY_SIZE;
  const fa = load<u8>(pa + E_FLAGS) & F_PINNED;
  const fb = load<u8>(pb + E_FLAGS) & F_PINNED;
  if (fa != fb) return fa < fb;
  const ua = load<u16>(pa + E_USE_COUNT);
  const ub = load<u16>(pb + E_USE_COUNT);
  if (ua != ub) return ua < ub;
  const la = load<u32>(pa + E_LAST_USED);
  const lb = load<u32>(pb + E_LAST_USED);
  if (la != lb) return la < lb;
  return a < b;
}

function siftDown(entries: usize, heap: usize, start: u32, end: u32): void {
  let root = start;
  while (true) {
    let child = root * 2 + 1;
    if (child >= end) return;
    let cv = load<u32>(heap + (<usize>child << 2));
    if (child + 1 < end) {
      const rv = load<u32>(heap + (<usize>(child + 1) << 2));
      if (before(entries, cv, rv)) { child++; cv = rv; }
    }
    const rootv = load<u32>(heap + (<usize>root << 2));
    if (!before(entries, rootv, cv)) return;
    store<u32>(heap + (<usize>root << 2), cv);
    store<u32>(heap + (<usize>child << 2), rootv);
    root = child;
  }
}

/**
 * Writes the indices 0..count-1 to `out`, ordered best victim first: no
 * live reference before pinned, then lowest use count, then oldest use.
 */
export function evict_order(entries: usize, count: u32, out: usize): void {
  for (let i: u32 = 0; i < count; i++) store<u32>(out + (<usize>i << 2), i);
  if (count < 2) return;
  // Heapsort: in place, no recursion, O(n log n) worst case.
  for (let s = (count >>> 1); s > 0; s--) siftDown(entries, out, s - 1, count);
  for (let end = count - 1; end > 0; end--) {
    const top = load<u32>(out);
    store<u32>(out, load<u32>(out + (<usize>end << 2)));
    store<u32>(out + (<usize>end << 2), top);
    siftDown(entries, out, 0, end);
  }
}
