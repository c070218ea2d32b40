// Web Cache bodies stream both ways: put streams into the store, a matched
// body streams from a pinned entry reader that is released when the body is
// read, cancelled or collected.
import assert from "node:assert/strict";
import {
  backingResponseStore,
  BackingStore,
  createCacheStorage,
  type LarderCacheStorage,
} from "../src/web_cache/mod.ts";
import { CorruptError } from "../mod.ts";
import { findInFile, flipBit } from "./_damage.ts";
import {
  bytesFor,
  largeFiles,
  MOD_URL,
  tempDir,
  walkFiles,
} from "./_helpers.ts";

const U = "https://example.com";
const MiB = 2 ** 20;
const CHUNK = 64 * 1024;

async function withStore(
  fn: (
    caches: LarderCacheStorage,
    store: BackingStore,
    dir: string,
  ) => Promise<void>,
  limit = 64 * MiB,
): Promise<void> {
  await using dir = await tempDir();
  const store = await BackingStore.open(dir.path, { limit });
  const caches = await createCacheStorage(backingResponseStore(store));
  try {
    await fn(caches, store, dir.path);
  } finally {
    await caches.close();
  }
}

/** The byte at `offset` of a patterned body: its chunk number, mod 256. */
function patternAt(offset: number, seed = 0): number {
  return (Math.floor(offset / CHUNK) + seed) & 255;
}

/** A stream of `size` patterned bytes in fresh 64 KiB chunks. */
function patterned(
  size: number,
  seed = 0,
  onChunk?: (at: number) => void | Promise<void>,
): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      if (at >= size) return c.close();
      await onChunk?.(at);
      const n = Math.min(CHUNK, size - at);
      c.enqueue(new Uint8Array(n).fill(patternAt(at, seed)));
      at += n;
    },
  }, { highWaterMark: 0 });
}

/** Heap and external memory still reachable after two forced collections. */
function retainedWith(gc: () => void): () => number {
  return () => {
    gc(); // twice: array buffers freed by the first are counted after it
    gc();
    const u = Deno.memoryUsage();
    return u.external + u.heapUsed;
  };
}

/** Waits (collecting) until the store holds no pins; false on timeout. */
async function pinsEnd(store: BackingStore, gc?: () => void): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (store.stats().pinned === 0) return true;
    gc?.();
    await new Promise((r) => setTimeout(r, 10));
  }
  return store.stats().pinned === 0;
}

Deno.test("web cache a 256 MiB body is put and matched with bounded retained memory", async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return; // needs --v8-flags=--expose-gc (deno task test)
  await withStore(async (caches, store) => {
    const cache = await caches.open("v1");
    const size = 256 * MiB;
    const retained = retainedWith(gc);
    const base = retained();
    let worstPut = 0;
    await cache.put(
      `${U}/big`,
      new Response(
        patterned(size, 0, (at) => {
          if ((at & (32 * MiB - 1)) === 0) {
            worstPut = Math.max(worstPut, retained() - base);
          }
        }),
        { headers: { "content-type": "application/octet-stream" } },
      ),
    );
    const hit = await cache.match(`${U}/big`);
    assert.ok(hit?.body);
    assert.equal(hit.headers.get("content-type"), "application/octet-stream");
    let worstMatch = 0;
    let seen = 0;
    for await (const part of hit.body) {
      if (
        part[0] !== patternAt(seen) ||
        part[part.length - 1] !== patternAt(seen + part.length - 1)
      ) {
        assert.fail(`wrong bytes at ${seen}`);
      }
      seen += part.length;
      if ((seen & (32 * MiB - 1)) === 0) {
        worstMatch = Math.max(worstMatch, retained() - base);
      }
    }
    assert.equal(seen, size);
    assert.ok(await pinsEnd(store), "the body's pin ended at its end");
    // Bounded by the collected prefix (2 MiB) and a few chunks, never the body.
    assert.ok(
      worstPut < 8 * MiB,
      `put retained ${(worstPut / MiB).toFixed(1)} MiB`,
    );
    assert.ok(
      worstMatch < 8 * MiB,
      `match retained ${(worstMatch / MiB).toFixed(1)} MiB`,
    );
  }, 512 * MiB);
});

Deno.test("web cache a matched body's pin ends when it is read, cancelled or collected", async (t) => {
  const gc = (globalThis as { gc?: () => void }).gc;
  await withStore(async (caches, store) => {
    const cache = await caches.open("v1");
    // One body in a large file, one in slots, one small enough to copy.
    const bodies = new Map([
      ["large", bytesFor("large", 3 * MiB)],
      ["slots", bytesFor("slots", 300_000)],
      ["small", bytesFor("small", 1000)],
    ]);
    for (const [name, body] of bodies) {
      await cache.put(`${U}/${name}`, new Response(body as BodyInit));
    }
    assert.equal(store.stats().pinned, 0);
    for (const [name, body] of bodies) {
      await t.step(`${name}: read to its end`, async () => {
        const hit = await cache.match(`${U}/${name}`);
        if (name !== "small") assert.ok(store.stats().pinned > 0, "pinned");
        assert.deepEqual(new Uint8Array(await hit!.arrayBuffer()), body);
        assert.equal(store.stats().pinned, 0);
      });
      await t.step(`${name}: cancelled after one chunk`, async () => {
        const hit = await cache.match(`${U}/${name}`);
        const reader = hit!.body!.getReader();
        const first = await reader.read();
        assert.deepEqual(first.value, body.subarray(0, first.value!.length));
        await reader.cancel();
        assert.equal(store.stats().pinned, 0);
      });
      await t.step(`${name}: cancelled unread`, async () => {
        const hit = await cache.match(`${U}/${name}`);
        await hit!.body!.cancel();
        assert.equal(store.stats().pinned, 0);
      });
      if (gc === undefined) continue; // needs --v8-flags=--expose-gc
      await t.step(`${name}: dropped unread, then collected`, async () => {
        await (async () => {
          const hit = await cache.match(`${U}/${name}`);
          assert.equal(hit?.status, 200);
          if (name !== "small") assert.ok(store.stats().pinned > 0);
        })();
        assert.ok(await pinsEnd(store, gc), "collected: the pin ended");
      });
    }
    await t.step("matchAll bodies: read, cancelled, collected", async () => {
      const all = await cache.matchAll();
      assert.equal(all.length, 3);
      assert.ok(store.stats().pinned > 0, "pinned at match time");
      await all[0]!.arrayBuffer();
      await all[1]!.body!.cancel();
      await all[2]!.arrayBuffer();
      assert.equal(store.stats().pinned, 0);
      if (gc === undefined) return;
      await (async () => {
        assert.equal((await cache.matchAll()).length, 3);
      })();
      assert.ok(await pinsEnd(store, gc), "collected: the pins ended");
    });
    await t.step("keys() pins nothing", async () => {
      assert.equal((await cache.keys()).length, 3);
      assert.equal(store.stats().pinned, 0);
    });
  });
});

Deno.test("web cache matched bodies read as matched after the entry is replaced or deleted", async () => {
  await withStore(async (caches, store) => {
    const cache = await caches.open("v1");
    const old = bytesFor("old", 3 * MiB);
    const oldSlots = bytesFor("old-slots", 200_000);
    await cache.put(`${U}/a`, new Response(old as BodyInit));
    await cache.put(`${U}/b`, new Response(oldSlots as BodyInit));
    const all = await cache.matchAll();
    const one = await cache.match(`${U}/a`);
    await cache.put(`${U}/a`, new Response(bytesFor("new", MiB) as BodyInit));
    await cache.delete(`${U}/b`);
    assert.deepEqual(new Uint8Array(await all[0]!.arrayBuffer()), old);
    assert.deepEqual(new Uint8Array(await all[1]!.arrayBuffer()), oldSlots);
    assert.deepEqual(new Uint8Array(await one!.arrayBuffer()), old);
    assert.equal(store.stats().pinned, 0);
    assert.deepEqual(
      new Uint8Array(await (await cache.match(`${U}/a`))!.arrayBuffer()),
      bytesFor("new", MiB),
    );
    assert.equal(await cache.match(`${U}/b`), undefined);
  });
});

Deno.test("web cache matchAll and keys load no body until it is consumed", async (t) => {
  await withStore(async (caches, store, dir) => {
    const cache = await caches.open("v1");
    const N = 6;
    const url = (i: number) => `${U}/body${i}`;
    const bodies = Array.from({ length: N }, (_, i) => bytesFor(`b${i}`, MiB));
    for (let i = 0; i < N; i++) {
      await cache.put(url(i), new Response(bodies[i] as BodyInit));
    }
    const read = () => store.stats().dataBytesRead;
    await t.step("keys() and matchAll() read no body bytes", async () => {
      const before = read();
      assert.equal((await cache.keys()).length, N);
      const all = await cache.matchAll();
      assert.equal(all.length, N);
      assert.equal(read(), before, "nothing read at match time");
      for (let i = 0; i < N; i++) {
        assert.deepEqual(
          new Uint8Array(await all[i]!.arrayBuffer()),
          bodies[i],
        );
        assert.equal(
          read(),
          before + (i + 1) * MiB,
          `body ${i} read as consumed`,
        );
      }
      assert.equal(store.stats().pinned, 0);
    });
    await t.step("bodies replaced after matchAll read as matched", async () => {
      const all = await cache.matchAll();
      const before = read();
      for (let i = 0; i < N; i++) {
        await cache.put(
          url(i),
          new Response(bytesFor(`new${i}`, MiB) as BodyInit),
        );
      }
      await cache.delete(url(0));
      assert.equal(read(), before, "still unread");
      for (let i = 0; i < N; i++) {
        assert.deepEqual(
          new Uint8Array(await all[i]!.arrayBuffer()),
          bodies[i],
        );
      }
      assert.equal(store.stats().pinned, 0);
      assert.equal(store.stats().deferredBytes, 0);
      const now = await cache.matchAll();
      assert.equal(now.length, N - 1);
      assert.deepEqual(
        new Uint8Array(await now[0]!.arrayBuffer()),
        bytesFor("new1", MiB),
      );
      await Promise.all(now.slice(1).map((r) => r.body!.cancel()));
    });
    await t.step(
      "a body damaged after matchAll errors, never wrong bytes",
      async () => {
        const body = bytesFor("new2", MiB);
        const [hit] = await cache.matchAll(url(2));
        const needle = body.subarray(0, 64);
        const file = walkFiles(dir).find((p) =>
          findInFile(`${dir}/${p}`, needle) >= 0
        )!;
        flipBit(
          `${dir}/${file}`,
          findInFile(`${dir}/${file}`, needle) + MiB / 2,
        );
        const corruptions = store.stats().corruptions;
        await assert.rejects(hit!.arrayBuffer(), CorruptError);
        assert.equal(store.stats().corruptions, corruptions + 1, "dropped");
        assert.equal(store.stats().pinned, 0);
        assert.equal(await cache.match(url(2)), undefined);
      },
    );
  });
});

Deno.test("web cache a streamed put that errors past 2 MiB stores nothing and keeps the old entry", async () => {
  await withStore(async (caches, store, dir) => {
    const cache = await caches.open("v1");
    const old = bytesFor("old", 3 * MiB);
    await cache.put(
      `${U}/a`,
      new Response(old as BodyInit, { headers: { "x-v": "old" } }),
    );
    const files = largeFiles(dir).length;
    const bytes = store.stats().bytes;
    const failing = patterned(16 * MiB, 0, (at) => {
      if (at >= 5 * MiB) throw new Error("origin went away");
    });
    await assert.rejects(
      cache.put(`${U}/a`, new Response(failing, { headers: { "x-v": "new" } })),
      (err: unknown) =>
        err instanceof TypeError &&
        (err.cause as Error).message === "origin went away",
    );
    const hit = await cache.match(`${U}/a`);
    assert.equal(hit?.headers.get("x-v"), "old");
    assert.deepEqual(new Uint8Array(await hit!.arrayBuffer()), old);
    assert.equal((await cache.keys()).length, 1);
    assert.equal(largeFiles(dir).length, files, "the partial file is removed");
    assert.equal(store.stats().bytes, bytes);
    assert.equal(store.stats().pinned, 0);
  });
});

Deno.test("web cache SIGKILL during a streaming put of a large body leaves the old entry or the new, whole", async () => {
  await using dir = await tempDir();
  const url = new URL("./src/web_cache/mod.ts", MOD_URL).href;
  const size = 12 * MiB;
  // Version v of the body: chunk k holds (k + v) & 255.
  const code = `
    import { openCacheStorage } from ${JSON.stringify(url)};
    const say = (s) => Deno.stdout.writeSync(new TextEncoder().encode(s + "\\n"));
    const caches = await openCacheStorage(Deno.args[0], { limit: 256 * 2 ** 20 });
    const cache = await caches.open("v1");
    const start = Number(Deno.args[1]);
    for (let v = start; ; v++) {
      let at = 0;
      const body = new ReadableStream({
        async pull(c) {
          if (at >= ${size}) return c.close();
          if (at % ${MiB} === 0) {
            say("S " + v + " " + at);
            await new Promise((r) => setTimeout(r, 4));
          }
          c.enqueue(new Uint8Array(${CHUNK}).fill((at / ${CHUNK} + v) & 255));
          at += ${CHUNK};
        },
      }, { highWaterMark: 0 });
      say("B " + v);
      await cache.put("${U}/big", new Response(body, { headers: { "x-v": String(v) } }));
      say("A " + v);
    }
  `;
  let acknowledged = -1;
  let midStream = 0;
  for (let round = 0; round < 4; round++) {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "-",
        dir.path,
        String((round + 1) * 100),
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(code));
    await w.close();
    const errText = new Response(child.stderr).text();
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    // Round 0 waits for one whole put; later rounds kill during the first.
    const target = round === 0
      ? /A \d+\n[^]*S \d+ [1-9]\d*\n/
      : /S \d+ [1-9]\d*\n/;
    while (!target.test(text)) {
      const { done, value } = await lines.read();
      if (done) break;
      text += value;
    }
    await new Promise((r) => setTimeout(r, 10 + round * 15));
    child.kill("SIGKILL");
    for (;;) { // what it printed before it died
      const { done, value } = await lines.read();
      if (done) break;
      text += value;
    }
    const status = await child.status;
    assert.equal(status.signal, "SIGKILL", await errText);
    const acks = [...text.matchAll(/^A (\d+)$/gm)].map((m) => Number(m[1]));
    if (acks.length > 0) acknowledged = acks.at(-1)!;
    const begun = [...text.matchAll(/^B (\d+)$/gm)].map((m) => Number(m[1]));
    const inFlight = begun.at(-1)!;
    if (inFlight !== acknowledged) midStream++;

    const store = await BackingStore.open(dir.path);
    const caches = await createCacheStorage(backingResponseStore(store));
    try {
      const cache = await caches.open("v1");
      assert.ok((await cache.keys()).length <= 1, "one entry for the URL");
      const hit = await cache.match(`${U}/big`);
      assert.ok(hit, `round ${round}: an entry (acknowledged ${acknowledged})`);
      const v = Number(hit.headers.get("x-v"));
      assert.ok(
        v === acknowledged || v === inFlight,
        `round ${round}: version ${v}, acknowledged ${acknowledged}, in flight ${inFlight}`,
      );
      let seen = 0;
      for await (const part of hit.body!) {
        if (
          part[0] !== patternAt(seen, v) ||
          part[part.length - 1] !== patternAt(seen + part.length - 1, v)
        ) {
          assert.fail(`round ${round}: torn body at ${seen} (version ${v})`);
        }
        seen += part.length;
      }
      assert.equal(seen, size, `round ${round}: whole`);
      acknowledged = v;
    } finally {
      await caches.close();
    }
  }
  assert.ok(midStream >= 3, `${midStream} of 4 kills landed mid-stream`);
});
