/**
 * larder itself, through its public API (`mod.ts`): `storeEntry` and
 * `fetchEntry`, the calls for an object with metadata.
 *
 * Outside the eviction phase the limit is set well above the workload, so
 * nothing is evicted; table sizes follow the object count with headroom.
 *
 * The driver sets `LARDER_MODULE` to a copy of `mod.ts` and `src/` taken
 * when the run starts, so every process of one run measures the same
 * larder even while the working tree changes; without it, the live
 * `mod.ts` is used.
 *
 * @module
 */

const { BackingStore } = (await import(
  Deno.env.get("LARDER_MODULE") ??
    new URL("../../../mod.ts", import.meta.url).href
)) as typeof import("../../../mod.ts");

import type { OpenOptions, Peer, PeerFactory } from "./types.ts";

/** Smallest entry-table size with at least 2x headroom, never below the default. */
function entryBitsFor(objects: number): number {
  let bits = 16;
  while (bits < 24 && 2 ** bits < objects * 2) bits++;
  return bits;
}

async function openLarder(dir: string, options: OpenOptions): Promise<Peer> {
  // Without a limit, twice the workload: room enough that nothing is evicted.
  const unbounded = Math.max(2 ** 30, 2 * options.workloadBytes);
  const store = await BackingStore.open(dir, {
    limit: options.limit ?? unbounded,
    entryBits: entryBitsFor(options.objects),
  });
  return {
    // A response is stored and served as one entry: both elements in one
    // call, one key lookup and one journal operation.
    put: (key, meta, body) => store.storeEntry(key, body, meta),
    async get(key) {
      const hit = await store.fetchEntry(key);
      if (hit === undefined) return undefined;
      if (hit.meta === undefined || hit.data === undefined) {
        hit.release();
        return undefined;
      }
      return { meta: hit.meta, body: hit.data, release: hit.release };
    },
    invalidate: (key) => store.invalidate(key),
    flush: () => store.flush(),
    close: () => store.close(),
  };
}

const factory: PeerFactory = {
  name: "larder",
  eviction: "native",
  open: openLarder,
};
export default factory;
