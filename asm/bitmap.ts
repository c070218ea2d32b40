// Block-slot use maps: one bit a slot, 32-bit little-endian words, bit i of
// word w is slot 32*w + i. FORMAT.md §5.

/**
 * Claims the first free slot at or after `hint` (wrapping once) among the
 * first `nbits` slots. Returns the slot, or -1 when every slot is in use.
 */
export function bitmap_claim(map: usize, nbits: u32, hint: u32): i32 {
  if (nbits == 0) return -1;
  if (hint >= nbits) hint = 0;
  const nwords = (nbits + 31) >>> 5;
  let w = hint >>> 5;
  // First word: ignore bits below the hint.
  let word = load<u32>(map + (<usize>w << 2)) | ((1 << (hint & 31)) - 1);
  for (let n: u32 = 0; n <= nwords; n++) {
    const free = ~word;
    if (free != 0) {
      const bit = (w << 5) + ctz<u32>(free);
      if (bit < nbits) {
        store<u32>(map + (<usize>w << 2), word | (1 << (bit & 31)));
        return <i32>bit;
      }
    }
    w++;
    if (w >= nwords) w = 0;
    word = load<u32>(map + (<usize>w << 2));
  }
  return -1;
}

/** Marks `slot` free. */
export function bitmap_free(map: usize, slot: u32): void {
  const p = map + (<usize>(slot >>> 5) << 2);
  store<u32>(p, load<u32>(p) & ~(1 << (slot & 31)));
}

/** Marks `slot` used. */
export function bitmap_set(map: usize, slot: u32): void {
  const p = map + (<usize>(slot >>> 5) << 2);
  store<u32>(p, load<u32>(p) | (1 << (slot & 31)));
}

/** 1 when `slot` is marked used, else 0. */
export function bitmap_test(map: usize, slot: u32): u32 {
  return (load<u32>(map + (<usize>(slot >>> 5) << 2)) >>> (slot & 31)) & 1;
}

/** Number of used slots among the first `nbits`. */
export function bitmap_count(map: usize, nbits: u32): u32 {
  const full = nbits >>> 5;
  let total: u32 = 0;
  for (let w: u32 = 0; w < full; w++) {
    total += popcnt<u32>(load<u32>(map + (<usize>w << 2)));
  }
  const rest = nbits & 31;
  if (rest != 0) {
    total += popcnt<u32>(load<u32>(map + (<usize>full << 2)) & ((1 << rest) - 1));
  }
  return total;
}
