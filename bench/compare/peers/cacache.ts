/**
 * npm `cacache` (npm's own content-addressed disk cache). Metadata rides in
 * the index entry as a string; content is verified by its SHA-512 on every
 * read, which is part of what cacache costs. No in-memory memoisation.
 *
 * Invalidation removes both the index entry and the content, as a cache
 * must to give the space back (cacache's `rm.entry` alone only appends a
 * tombstone).
 *
 * @module
 */

import cacacheModule from "cacache";
import { join } from "node:path";
import { withLru } from "./_lru.ts";
import type { OpenOptions, Peer, PeerFactory } from "./types.ts";

/** The part of cacache's API used here (it ships no type declarations). */
interface Cacache {
  put(
    cache: string,
    key: string,
    data: Uint8Array,
    opts: { metadata: string },
  ): Promise<string>;
  get: {
    (
      cache: string,
      key: string,
    ): Promise<{ data: Uint8Array; metadata: unknown }>;
    info(cache: string, key: string): Promise<{ integrity: string } | null>;
  };
  rm: {
    entry(
      cache: string,
      key: string,
      opts: { removeFully: boolean },
    ): Promise<unknown>;
    content(cache: string, integrity: string): Promise<unknown>;
  };
}
const cacache = cacacheModule as unknown as Cacache;

// Header text is ASCII, so latin1 maps bytes and chars one to one.
const latin1 = new TextDecoder("latin1");
const encoder = new TextEncoder();

function openCacache(dir: string): Peer {
  const root = join(dir, "cacache");
  return {
    async put(key, meta, body) {
      await cacache.put(root, key, body, { metadata: latin1.decode(meta) });
    },
    async get(key) {
      try {
        const { data, metadata } = await cacache.get(root, key);
        return { meta: encoder.encode(metadata as string), body: data };
      } catch (e) {
        if ((e as { code?: string }).code === "ENOENT") return undefined;
        throw e;
      }
    },
    async invalidate(key) {
      const info = await cacache.get.info(root, key);
      if (!info) return false;
      await cacache.rm.entry(root, key, { removeFully: true });
      await cacache.rm.content(root, info.integrity);
      return true;
    },
    close: () => Promise.resolve(),
  };
}

const factory: PeerFactory = {
  name: "cacache",
  eviction: "emulated",
  open(dir: string, options: OpenOptions) {
    const peer = openCacache(dir);
    return Promise.resolve(options.limit ? withLru(peer, options.limit) : peer);
  },
};
export default factory;
