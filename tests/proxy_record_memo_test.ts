import assert from "node:assert/strict";
import { BackingStore } from "../src/store.ts";
import { backingProxyStore, ProxyCache } from "../src/proxy/proxy_store.ts";
import type { ResponseRecord } from "../src/http/record.ts";
import { tempDir } from "./_helpers.ts";

const URL_ = "http://origin.test/a";

function record(pad: number, vary: string): ResponseRecord {
  return {
    requestTime: 1_000,
    responseTime: 1_000,
    seq: 0,
    cacheName: "",
    method: "GET",
    url: URL_,
    requestHeaders: [],
    status: 200,
    statusText: "",
    responseUrl: "",
    responseHeaders: [["x-pad", "p".repeat(pad)]],
    vary: [vary],
  };
}

// The record memo reuses a decoded record only for the very same bytes:
// a record rewritten with one byte changed, in its last 32-bit word or in
// the bytes after the last whole word, is decoded again.
Deno.test("ProxyCache decodes a record again when any byte of it changed", async () => {
  await using dir = await tempDir();
  const cache = new ProxyCache(
    backingProxyStore(await BackingStore.open(dir.path)),
  );
  try {
    const key = `~px/r/${URL_}`;
    for (let pad = 0; pad < 4; pad++) {
      await cache.put(key, record(pad, "x-b"), new Uint8Array([1]));
      for (const vary of ["x-b", "x-c", "x-b"]) {
        const read = await cache.lookup(URL_, new Headers());
        assert.ok(read !== undefined);
        read.entry.release();
        assert.equal(await cache.putHead(read, record(pad, vary)), true);
        const found = await cache.lookup(URL_, new Headers());
        assert.ok(found !== undefined);
        assert.deepEqual(found.record.vary, [vary], `pad ${pad}`);
        assert.equal(found.record.responseHeaders[0]![1].length, pad);
        found.entry.release();
        // Again: the memo's answer is the same record.
        const again = await cache.lookup(URL_, new Headers());
        assert.equal(again?.record, found.record);
        again?.entry.release();
      }
    }
  } finally {
    await cache.close();
  }
});
