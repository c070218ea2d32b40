/**
 * Size-bounded LRU bookkeeping for peers with no limit of their own: what
 * an application would have to add on top of them to use them as a cache.
 * It lives in memory, so the budget is forgotten on reopen (a real
 * deployment would also have to persist or rebuild it).
 *
 * @module
 */

import type { Entry, Peer } from "./types.ts";

/** Fraction of the limit evicted down to, so deletes come in batches. */
const LOW_WATER = 0.9;

/** Wraps `peer` so that it deletes least-recently-used keys past `limit`. */
export function withLru(peer: Peer, limit: number): Peer {
  const sizes = new Map<string, number>();
  let bytes = 0;
  const forget = (key: string) => {
    const size = sizes.get(key);
    if (size === undefined) return;
    sizes.delete(key);
    bytes -= size;
  };
  return {
    async put(key: string, meta: Uint8Array, body: Uint8Array): Promise<void> {
      forget(key);
      await peer.put(key, meta, body);
      sizes.set(key, meta.length + body.length);
      bytes += meta.length + body.length;
      if (bytes <= limit) return;
      // Map iteration order is insertion order, i.e. least recent first.
      for (const [victim, size] of sizes) {
        if (bytes <= limit * LOW_WATER || victim === key) break;
        sizes.delete(victim);
        bytes -= size;
        await peer.invalidate(victim);
      }
    },
    async get(key: string): Promise<Entry | undefined> {
      const size = sizes.get(key);
      if (size !== undefined) {
        sizes.delete(key);
        sizes.set(key, size);
      }
      return await peer.get(key);
    },
    async invalidate(key: string): Promise<boolean> {
      forget(key);
      return await peer.invalidate(key);
    },
    close: () => peer.close(),
  };
}
