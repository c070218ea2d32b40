/**
 * Reference eviction choice: sort every entry with a comparator, then take
 * the shortest prefix meeting the targets. Used only by tests and benches.
 * @module
 */

/** What the reference needs to know about one entry. */
export interface RefEntry {
  /** Holds a live reference. */
  pinned: boolean;
  /** Use count. */
  useCount: number;
  /** Last use, seconds. */
  lastUsed: number;
  /** Element bytes (data + metadata). */
  bytes: number;
}

/** All indices but `keep`, best victim first; ties by index. */
export function refOrder(entries: readonly RefEntry[], keep: number): number[] {
  const order = [...entries.keys()].filter((i) => i !== keep);
  return order.sort((a, b) => {
    const x = entries[a]!;
    const y = entries[b]!;
    return Number(x.pinned) - Number(y.pinned) || x.useCount - y.useCount ||
      x.lastUsed - y.lastUsed || a - b;
  });
}

/** The shortest prefix of refOrder with `byteTarget` bytes and `entryTarget` entries. */
export function refVictims(
  entries: readonly RefEntry[],
  byteTarget: number,
  entryTarget: number,
  keep: number,
): number[] {
  return prefixOf(refOrder(entries, keep), entries, byteTarget, entryTarget);
}

/** The shortest prefix of `order` with `byteTarget` bytes and `entryTarget` entries. */
export function prefixOf(
  order: readonly number[],
  entries: readonly RefEntry[],
  byteTarget: number,
  entryTarget: number,
): number[] {
  const out: number[] = [];
  let bytes = 0;
  for (const i of order) {
    if (bytes >= byteTarget && out.length >= entryTarget) break;
    out.push(i);
    bytes += entries[i]!.bytes;
  }
  return out;
}
