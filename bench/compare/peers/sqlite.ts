/**
 * `node:sqlite` in WAL mode, one row per object, one transaction per put.
 *
 * `synchronous = NORMAL` is WAL's crash-safe setting that skips the fsync
 * per commit (a crash can lose the last commits, never corrupt), which
 * matches larder's guarantee.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { withLru } from "./_lru.ts";
import type { Entry, OpenOptions, Peer, PeerFactory } from "./types.ts";

function openSqlite(dir: string): Peer {
  const db = new DatabaseSync(join(dir, "cache.sqlite"));
  db.exec(`
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    CREATE TABLE IF NOT EXISTS objects (key TEXT PRIMARY KEY, meta BLOB, body BLOB);
  `);
  const put = db.prepare(
    "INSERT OR REPLACE INTO objects (key, meta, body) VALUES (?, ?, ?)",
  );
  const get = db.prepare("SELECT meta, body FROM objects WHERE key = ?");
  const del = db.prepare("DELETE FROM objects WHERE key = ?");
  return {
    put(key, meta, body) {
      put.run(key, meta, body);
      return Promise.resolve();
    },
    get(key) {
      const row = get.get(key) as
        | { meta: Uint8Array; body: Uint8Array }
        | undefined;
      return Promise.resolve(row as Entry | undefined);
    },
    invalidate(key) {
      return Promise.resolve(Number(del.run(key).changes) > 0);
    },
    close() {
      db.close();
      return Promise.resolve();
    },
  };
}

const factory: PeerFactory = {
  name: "node:sqlite",
  eviction: "emulated",
  open(dir: string, options: OpenOptions) {
    const peer = openSqlite(dir);
    return Promise.resolve(options.limit ? withLru(peer, options.limit) : peer);
  },
};
export default factory;
