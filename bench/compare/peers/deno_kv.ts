/**
 * Deno KV (`Deno.openKv(path)`, the local SQLite backend; needs
 * `--unstable-kv`).
 *
 * KV values are capped at 64 KiB and one atomic commit at 800 KiB, so a
 * body is cut into 64 KiB chunks `["b", key, i]` committed in groups of
 * twelve; the head record `["h", key]` (meta and chunk count) goes in the
 * last group, so a reader never sees a head whose chunks are missing.
 *
 * @module
 */

import { join } from "node:path";
import { withLru } from "./_lru.ts";
import type { OpenOptions, Peer, PeerFactory } from "./types.ts";

const CHUNK = 64 * 1024;
const CHUNKS_PER_COMMIT = 12; // 12 x 64 KiB + keys < 800 KiB
const KEYS_PER_GET = 10; // getMany's limit

interface Head {
  meta: Uint8Array;
  chunks: number;
  size: number;
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function openDenoKv(dir: string): Promise<Peer> {
  const kv = await Deno.openKv(join(dir, "kv.sqlite3"));
  return {
    async put(key, meta, body) {
      const chunks = Math.max(1, Math.ceil(body.length / CHUNK));
      let op = kv.atomic();
      for (let i = 0; i < chunks; i++) {
        if (i > 0 && i % CHUNKS_PER_COMMIT === 0) {
          await op.commit();
          op = kv.atomic();
        }
        op.set(["b", key, i], body.subarray(i * CHUNK, (i + 1) * CHUNK));
      }
      op.set(["h", key], { meta, chunks, size: body.length } satisfies Head);
      await op.commit();
    },
    async get(key) {
      // Ask for the head and the first chunk at once: small bodies take one call.
      const first = await kv.getMany<[Head, Uint8Array]>([["h", key], [
        "b",
        key,
        0,
      ]]);
      const head = first[0].value;
      if (!head) return undefined;
      const parts = first.slice(1, 1 + head.chunks).map((e) =>
        e.value as Uint8Array
      );
      for (let i = parts.length; i < head.chunks; i += KEYS_PER_GET) {
        const keys = [];
        for (let j = i; j < Math.min(head.chunks, i + KEYS_PER_GET); j++) {
          keys.push(["b", key, j]);
        }
        for (const e of await kv.getMany<Uint8Array[]>(keys)) {
          parts.push(e.value as Uint8Array);
        }
      }
      if (parts.some((p) => !p)) return undefined; // replaced or invalidated meanwhile
      return { meta: head.meta, body: concat(parts, head.size) };
    },
    async invalidate(key) {
      const head = await kv.get<Head>(["h", key]);
      if (!head.value) return false;
      const op = kv.atomic().check(head).delete(["h", key]);
      for (let i = 0; i < head.value.chunks; i++) op.delete(["b", key, i]);
      return (await op.commit()).ok;
    },
    close() {
      kv.close();
      return Promise.resolve();
    },
  };
}

const factory: PeerFactory = {
  name: "Deno KV",
  eviction: "emulated",
  async open(dir: string, options: OpenOptions) {
    const peer = await openDenoKv(dir);
    return options.limit ? withLru(peer, options.limit) : peer;
  },
};
export default factory;
