/**
 * npm `lmdb` (lmdb-js, a Node-API addon that Deno loads from node_modules).
 *
 * Two modes, because lmdb-js's default pays an fsync per commit:
 * - default (`overlappingSync`, lmdb-js's default on Linux): crash-safe
 *   even against power loss; each commit waits for the previous flush.
 * - `noSync`: no flushing at all; safe against a process crash, but a
 *   system crash can corrupt the file (lmdb-js README), so a cache would
 *   have to be wiped after one.
 *
 * Meta and body are two keys written in one synchronous transaction (faster
 * here than an awaited `put`, and visible to the next get at once). `get`
 * returns a copy like every other peer, not `getBinaryFast`'s view that the
 * next read overwrites.
 *
 * @module
 */

import { open } from "lmdb";
import { join } from "node:path";
import { withLru } from "./_lru.ts";
import type { OpenOptions, Peer, PeerFactory } from "./types.ts";

function openLmdb(dir: string, noSync: boolean): Peer {
  const db = open<Uint8Array, string>({
    path: join(dir, "lmdb"),
    encoding: "binary",
    compression: false,
    noSync,
  });
  return {
    put(key, meta, body) {
      db.transactionSync(() => {
        db.put(`m:${key}`, meta);
        db.put(`b:${key}`, body);
      });
      return Promise.resolve();
    },
    get(key) {
      const meta = db.get(`m:${key}`);
      if (meta === undefined) return Promise.resolve(undefined);
      const body = db.get(`b:${key}`);
      return Promise.resolve(body === undefined ? undefined : { meta, body });
    },
    invalidate(key) {
      return Promise.resolve(db.transactionSync(() => {
        db.removeSync(`m:${key}`);
        return db.removeSync(`b:${key}`);
      }));
    },
    async close() {
      await db.close();
    },
  };
}

function factory(name: string, noSync: boolean): PeerFactory {
  return {
    name,
    eviction: "emulated",
    open(dir: string, options: OpenOptions) {
      const peer = openLmdb(dir, noSync);
      return Promise.resolve(
        options.limit ? withLru(peer, options.limit) : peer,
      );
    },
  };
}

/** lmdb-js with its defaults. */
export default factory("lmdb", false);

/** lmdb-js with `noSync: true`. */
export const noSync: PeerFactory = factory("lmdb noSync", true);
