/**
 * Deno's Web Cache API (`caches.open`). Deno keeps it under `DENO_DIR`, so
 * the driver points `DENO_DIR` into the peer's temp dir (see catalogue.ts). Metadata is what the
 * Cache API stores natively, response headers: the workload's header text
 * is canonical (lowercase, sorted, unique names), so it round-trips exactly.
 *
 * The API has no close, so "reopen" is a second `caches.open` in the same
 * process.
 *
 * @module
 */

import { withLru } from "./_lru.ts";
import type { OpenOptions, Peer, PeerFactory } from "./types.ts";

const latin1 = new TextDecoder("latin1");
const encoder = new TextEncoder();

function toHeaders(meta: Uint8Array): Headers {
  const headers = new Headers();
  for (const line of latin1.decode(meta).split("\r\n")) {
    const colon = line.indexOf(": ");
    if (colon > 0) headers.append(line.slice(0, colon), line.slice(colon + 2));
  }
  return headers;
}

function fromHeaders(headers: Headers): Uint8Array {
  let text = "";
  for (const [name, value] of headers) text += `${name}: ${value}\r\n`;
  return encoder.encode(text);
}

/** One cache per store dir, so the eviction phase starts empty. */
const cacheName = (dir: string) => `larder-bench ${dir}`;

async function openWebCache(dir: string): Promise<Peer> {
  const cache = await caches.open(cacheName(dir));
  return {
    async put(key, meta, body) {
      await cache.put(
        key,
        new Response(body as Uint8Array<ArrayBuffer>, {
          headers: toHeaders(meta),
        }),
      );
    },
    async get(key) {
      const res = await cache.match(key);
      if (!res) return undefined;
      return {
        meta: fromHeaders(res.headers),
        body: new Uint8Array(await res.arrayBuffer()),
      };
    },
    invalidate: (key) => cache.delete(key),
    close: () => Promise.resolve(),
  };
}

const factory: PeerFactory = {
  name: "Web Cache",
  eviction: "emulated",
  async open(dir: string, options: OpenOptions) {
    const peer = await openWebCache(dir);
    return options.limit ? withLru(peer, options.limit) : peer;
  },
  async drop(dir: string) {
    await caches.delete(cacheName(dir));
  },
};
export default factory;
