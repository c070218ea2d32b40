// A 304's new head replaces the stored head only while the entry still
// holds the head (and so the body) it was revalidated from: a response
// stored meanwhile by another request keeps its own head (RFC 9111
// §4.3.4 updates the stored response the 304 validated, no other).
import assert from "node:assert/strict";
import { BackingStore } from "../src/store.ts";
import { backingProxyStore, ProxyCache } from "../src/proxy/proxy_store.ts";
import type { ResponseRecord } from "../src/http/record.ts";
import { tempDir } from "./_helpers.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("BackingStore.replaceMeta writes only over the expected metadata of an entry with data", async () => {
  await using dir = await tempDir();
  const store = await BackingStore.open(dir.path);
  try {
    const [h1, h2, h3] = [enc("head 1"), enc("head 2"), enc("head 3")];
    assert.equal(await store.replaceMeta("k", h2, h1), false, "no entry");
    await store.store("k", h1, { meta: true });
    assert.equal(await store.replaceMeta("k", h2, h1), false, "no data");
    await store.storeEntry("k", enc("body 1"), h1);
    assert.equal(await store.replaceMeta("k", h2, h3), false, "other head");
    assert.equal(await store.replaceMeta("k", h2, enc("head ")), false);
    assert.equal(await store.replaceMeta("k", h2, h1), true);
    assert.equal(await store.replaceMeta("k", h3, h1), false, "replaced");
    using hit = await store.fetchEntry("k");
    assert.deepEqual(hit?.meta, h2);
    assert.deepEqual(hit?.data, enc("body 1"), "the data is kept");
    // A body stored since, with a head of the same bytes' length.
    await store.storeEntry("k", enc("body 2"), h3);
    assert.equal(await store.replaceMeta("k", h1, h2), false);
    await assert.rejects(
      // deno-lint-ignore no-explicit-any
      store.replaceMeta("k", "x" as any, h3),
      TypeError,
    );
  } finally {
    await store.close();
  }
  await assert.rejects(store.replaceMeta("k", enc("a"), enc("b")), "closed");
});

const URL_ = "http://origin.test/a";

/** A record whose `x-body` field names the body stored with it. */
function record(body: string, time: number): ResponseRecord {
  return {
    requestTime: time,
    responseTime: time,
    seq: 0,
    cacheName: "",
    method: "GET",
    url: URL_,
    requestHeaders: [],
    status: 200,
    statusText: "",
    responseUrl: "",
    responseHeaders: [["x-body", body], ["cache-control", "max-age=60"]],
    vary: [],
  };
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      c.enqueue(bytes.subarray(0, 3));
      c.enqueue(bytes.subarray(3));
      c.close();
    },
  });
}

// The revalidation's write raced against a new response for the same key,
// landing at every point of it: before it starts, after each of its first
// microtask turns (between any check and write it could make), after a
// macrotask. Whichever wins, the stored head names the stored body.
Deno.test("ProxyCache.putHead never attaches a revalidated head to a body stored meanwhile", async () => {
  await using dir = await tempDir();
  const cache = new ProxyCache(
    backingProxyStore(await BackingStore.open(dir.path)),
  );
  const key = `~px/r/${URL_}`;
  const turns = (n: number) => {
    let p = Promise.resolve();
    for (let i = 0; i < n; i++) p = p.then(() => {});
    return p;
  };
  try {
    let time = 1_000;
    let updates = 0;
    for (const streamed of [false, true]) {
      for (let delay = -1; delay <= 24; delay++) {
        const old = `old ${streamed} ${delay}`;
        const fresh = `new ${streamed} ${delay}`;
        await cache.put(key, record(old, ++time), enc(old));
        const found = await cache.lookup(URL_, new Headers());
        assert.ok(found !== undefined);
        found.entry.release();
        const restore = () =>
          cache.put(
            key,
            record(fresh, ++time),
            streamed ? streamOf(enc(fresh)) : enc(fresh),
          );
        let stored: Promise<void> | undefined;
        if (delay === -1) stored = restore();
        const updated = cache.putHead(found, record(old, ++time));
        if (delay === 24) await new Promise((r) => setTimeout(r, 0));
        else if (delay >= 0) await turns(delay);
        stored ??= restore();
        const [wrote] = await Promise.all([updated, stored]);
        if (wrote) updates++;
        const now = await cache.lookup(URL_, new Headers());
        assert.ok(now !== undefined);
        const body = now.entry.body;
        assert.ok(body instanceof Uint8Array);
        const name = new TextDecoder().decode(body);
        assert.equal(name, fresh, "the new response is stored");
        assert.deepEqual(
          now.record.responseHeaders[0],
          ["x-body", name],
          `delay ${delay}, streamed ${streamed}: the head names its body`,
        );
      }
    }
    // Some revalidations came first and wrote (then the new response
    // replaced them): the race was run from both sides.
    assert.ok(updates > 0, "some updates were written before the re-store");
  } finally {
    await cache.close();
  }
});
