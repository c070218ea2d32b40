/**
 * One file per object with `Deno.writeFile` / `Deno.readFile`: the first
 * thing a Deno user writes. The file holds a little-endian u32 meta length,
 * the meta, then the body; names are the SHA-1 of the key, sharded into 256
 * directories so no directory grows past a few hundred entries.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { withLru } from "./_lru.ts";
import type { OpenOptions, Peer, PeerFactory } from "./types.ts";

async function openFiles(dir: string): Promise<Peer> {
  const root = join(dir, "objects");
  await Promise.all(
    Array.from(
      { length: 256 },
      (_, i) =>
        Deno.mkdir(join(root, i.toString(16).padStart(2, "0")), {
          recursive: true,
        }),
    ),
  );
  const pathOf = (key: string) => {
    const h = createHash("sha1").update(key).digest("hex");
    return join(root, h.slice(0, 2), h);
  };
  return {
    async put(key, meta, body) {
      const file = new Uint8Array(4 + meta.length + body.length);
      new DataView(file.buffer).setUint32(0, meta.length, true);
      file.set(meta, 4);
      file.set(body, 4 + meta.length);
      await Deno.writeFile(pathOf(key), file);
    },
    async get(key) {
      let file: Uint8Array;
      try {
        file = await Deno.readFile(pathOf(key));
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return undefined;
        throw e;
      }
      const metaLen = new DataView(file.buffer, file.byteOffset).getUint32(
        0,
        true,
      );
      return {
        meta: file.subarray(4, 4 + metaLen),
        body: file.subarray(4 + metaLen),
      };
    },
    async invalidate(key) {
      try {
        await Deno.remove(pathOf(key));
        return true;
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return false;
        throw e;
      }
    },
    close: () => Promise.resolve(),
  };
}

const factory: PeerFactory = {
  name: "files",
  eviction: "emulated",
  async open(dir: string, options: OpenOptions) {
    const peer = await openFiles(dir);
    return options.limit ? withLru(peer, options.limit) : peer;
  },
};
export default factory;
