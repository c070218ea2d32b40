// The caching proxy against a real origin: both are Deno.serve servers on
// 127.0.0.1, requests go over the loopback. Test names give the RFC 9111
// section they check.
import assert from "node:assert/strict";
import { createProxy } from "../src/proxy/mod.ts";
import { gzipSync } from "node:zlib";
import { tempDir } from "./_helpers.ts";
import { count, withRig } from "./_proxy_rig.ts";

Deno.test("proxy §3 §4: a stored response answers the next request", async () => {
  await withRig(
    () =>
      new Response("hello", {
        headers: { "cache-control": "max-age=60", "x-origin": "1" },
      }),
    async (rig) => {
      const first = await rig.get("/a?x=1");
      assert.equal(await first.text(), "hello");
      assert.equal(first.headers.get("x-larder-cache"), "miss");
      assert.match(first.headers.get("via") ?? "", /1\.1 larder/);
      assert.equal(rig.lastHeaders.get("x-forwarded-for"), "127.0.0.1");
      assert.match(rig.lastHeaders.get("via") ?? "", /1\.1 larder/);
      const second = await rig.get("/a?x=1");
      assert.equal(await second.text(), "hello");
      assert.equal(second.headers.get("x-larder-cache"), "hit");
      assert.equal(second.headers.get("x-origin"), "1");
      assert.ok(Number(second.headers.get("age")) >= 0);
      assert.equal(count(rig, "GET /a"), 1);
      // Another query is another URI.
      await (await rig.get("/a?x=2")).text();
      assert.equal(count(rig, "GET /a"), 2);
    },
  );
});

Deno.test("proxy §5.2.2.5: a no-store response is not stored", async () => {
  await withRig(
    () => new Response("secret", { headers: { "cache-control": "no-store" } }),
    async (rig) => {
      for (let i = 0; i < 3; i++) {
        const res = await rig.get("/n");
        assert.equal(await res.text(), "secret");
        assert.equal(res.headers.get("x-larder-cache"), "bypass");
      }
      assert.equal(count(rig, "GET /n"), 3);
    },
  );
});

Deno.test("proxy §4.3: a stale response is revalidated; the 304 updates its head", async () => {
  const etag = '"v1"';
  let version = 1;
  await withRig(
    (req) => {
      if (req.headers.get("if-none-match") === etag) {
        return new Response(null, {
          status: 304,
          headers: {
            etag,
            "cache-control": "max-age=60",
            "x-version": String(++version),
          },
        });
      }
      return new Response("body-1", {
        headers: { etag, "cache-control": "max-age=1", "x-version": "1" },
      });
    },
    async (rig) => {
      assert.equal(await (await rig.get("/r")).text(), "body-1");
      await new Promise((r) => setTimeout(r, 2100)); // past max-age=1
      const again = await rig.get("/r");
      assert.equal(await again.text(), "body-1"); // from the store
      assert.equal(again.headers.get("x-larder-cache"), "revalidated");
      assert.equal(again.headers.get("x-version"), "2");
      assert.equal(rig.lastHeaders.get("if-none-match"), etag);
      assert.equal(count(rig, "GET /r"), 2);
      // The updated head is stored: fresh now, for 60 s.
      const third = await rig.get("/r");
      assert.equal(await third.text(), "body-1");
      assert.equal(third.headers.get("x-larder-cache"), "hit");
      assert.equal(third.headers.get("x-version"), "2");
      assert.equal(count(rig, "GET /r"), 2);
    },
  );
});

Deno.test("proxy §4.3.2: a client's conditional request is answered 304 from the store", async () => {
  await withRig(
    () =>
      new Response("tagged", {
        headers: { etag: '"t"', "cache-control": "max-age=60" },
      }),
    async (rig) => {
      await (await rig.get("/c")).text();
      const res = await rig.get("/c", { headers: { "if-none-match": '"t"' } });
      assert.equal(res.status, 304);
      assert.equal(await res.text(), "");
      assert.equal(res.headers.get("etag"), '"t"');
      assert.equal(count(rig, "GET /c"), 1);
    },
  );
});

Deno.test("proxy §4.1: Vary keeps one variant per selecting header value", async () => {
  await withRig(
    (req) =>
      new Response(`lang=${req.headers.get("accept-language")}`, {
        headers: { "cache-control": "max-age=60", vary: "Accept-Language" },
      }),
    async (rig) => {
      const ask = async (lang: string) => {
        const res = await rig.get("/v", {
          headers: { "accept-language": lang },
        });
        return [await res.text(), res.headers.get("x-larder-cache")];
      };
      assert.deepEqual(await ask("en"), ["lang=en", "miss"]);
      assert.deepEqual(await ask("fr"), ["lang=fr", "miss"]);
      assert.deepEqual(await ask("en"), ["lang=en", "hit"]);
      assert.deepEqual(await ask("fr"), ["lang=fr", "hit"]);
      assert.equal(count(rig, "GET /v"), 2);
    },
  );
});

Deno.test("proxy §4.1: Vary: * is never served from the store", async () => {
  await withRig(
    () =>
      new Response("star", {
        headers: { "cache-control": "max-age=60", vary: "*" },
      }),
    async (rig) => {
      await (await rig.get("/s")).text();
      await (await rig.get("/s")).text();
      assert.equal(count(rig, "GET /s"), 2);
    },
  );
});

Deno.test("proxy §4: HEAD is answered from a stored GET", async () => {
  await withRig(
    () =>
      new Response("twelve bytes", {
        headers: { "cache-control": "max-age=60", "x-kind": "k" },
      }),
    async (rig) => {
      await (await rig.get("/h")).text();
      const res = await rig.get("/h", { method: "HEAD" });
      assert.equal(res.status, 200);
      assert.equal(await res.text(), "");
      assert.equal(res.headers.get("x-larder-cache"), "hit");
      assert.equal(res.headers.get("x-kind"), "k");
      assert.deepEqual(rig.seen, ["GET /h"]);
    },
  );
});

Deno.test("proxy §4.4: a successful unsafe request invalidates its target", async () => {
  await withRig(
    async (req) => {
      if (req.method === "POST") {
        return new Response(`got ${await req.text()}`, { status: 200 });
      }
      return new Response("list", {
        headers: { "cache-control": "max-age=60" },
      });
    },
    async (rig) => {
      await (await rig.get("/list")).text();
      await (await rig.get("/list")).text();
      assert.equal(count(rig, "GET /list"), 1);
      const post = await rig.get("/list", { method: "POST", body: "item" });
      assert.equal(await post.text(), "got item"); // the body is forwarded
      const after = await rig.get("/list");
      assert.equal(after.headers.get("x-larder-cache"), "miss");
      await after.text();
      assert.equal(count(rig, "GET /list"), 2);
    },
  );
});

Deno.test("proxy §4.4: a failed unsafe request invalidates nothing", async () => {
  await withRig(
    (req) =>
      req.method === "DELETE"
        ? new Response("no", { status: 500 })
        : new Response("x", { headers: { "cache-control": "max-age=60" } }),
    async (rig) => {
      await (await rig.get("/d")).text();
      await (await rig.get("/d", { method: "DELETE" })).text();
      const res = await rig.get("/d");
      assert.equal(res.headers.get("x-larder-cache"), "hit");
      await res.text();
    },
  );
});

Deno.test("proxy §5.2: an origin that is down gives 502, a slow one 504", async () => {
  // A port nothing listens on: bind one, then close it.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = listener.addr.port;
  listener.close();
  await using dir = await tempDir();
  const proxy = await createProxy({
    origin: `http://127.0.0.1:${deadPort}`,
    dir: dir.path,
  });
  const res = await proxy.handler(new Request("http://proxy/x"));
  assert.equal(res.status, 502);
  assert.match(await res.text(), /Cannot reach origin/);
  await proxy.close();

  let release = () => {};
  const held = new Promise<void>((r) => release = r);
  await withRig(
    async () => {
      await held;
      return new Response("late");
    },
    async (rig) => {
      const started = Date.now();
      const slow = await rig.get("/slow");
      assert.equal(slow.status, 504);
      await slow.text();
      assert.ok(Date.now() - started < 5000);
      release();
    },
    { originTimeoutMs: 200 },
  );
});

Deno.test("proxy: the origin timeout holds on a pooled connection too (a 504 in time, not a hang)", async () => {
  let release = () => {};
  const held = new Promise<void>((r) => release = r);
  await withRig(
    async (req) => {
      if (new URL(req.url).pathname === "/slow") await held;
      return new Response("ok", { headers: { "cache-control": "no-store" } });
    },
    async (rig) => {
      // The first exchange leaves a keep-alive connection in the pool,
      // which the slow request then takes.
      await (await rig.get("/fast")).text();
      const started = Date.now();
      // A hang fails the test instead of holding it up.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const slow = await Promise.race([
        rig.get("/slow"),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            release();
            reject(new Error("no answer from the proxy in 5 s"));
          }, 5000);
        }),
      ]).finally(() => clearTimeout(timer));
      const took = Date.now() - started;
      assert.equal(slow.status, 504);
      await slow.text();
      assert.ok(took < 2000, `504 after ${took} ms, timeout 300`);
      release();
      // Deno's node:http sends a GET whose pooled connection was cut once
      // more on a new one; its late answer is dropped, never served.
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(rig.seen.slice(0, 2), ["GET /fast", "GET /slow"]);
      assert.ok(rig.seen.length <= 3, rig.seen.join(", "));
      // And the proxy goes on serving from the pool.
      const after = await rig.get("/fast");
      assert.equal(after.status, 200);
      assert.equal(await after.text(), "ok");
    },
    { originTimeoutMs: 300 },
  );
});

Deno.test("proxy RFC 5861 §4: stale-if-error serves the stale response when the origin fails", async () => {
  let fail = false;
  await withRig(
    () =>
      fail ? new Response("down", { status: 503 }) : new Response("good", {
        headers: { "cache-control": "max-age=1, stale-if-error=600" },
      }),
    async (rig) => {
      await (await rig.get("/e")).text();
      await new Promise((r) => setTimeout(r, 2100));
      fail = true;
      const res = await rig.get("/e");
      assert.equal(res.status, 200);
      assert.equal(await res.text(), "good");
      assert.equal(res.headers.get("x-larder-cache"), "stale");
    },
  );
});

function chunk(i: number, size: number): Uint8Array {
  return new Uint8Array(size).fill(i & 0xff);
}

Deno.test("proxy §3: a miss streams to the client while it is stored", async () => {
  const CHUNKS = 64;
  const SIZE = 64 * 1024; // 4 MiB in all
  let open = () => {};
  const gate = new Promise<void>((r) => open = r);
  await withRig(
    () => {
      let i = 0;
      return new Response(
        new ReadableStream<Uint8Array>({
          async pull(c) {
            // The rest waits until the client has had the first chunk.
            if (i === 1) await gate;
            if (i === CHUNKS) return c.close();
            c.enqueue(chunk(i++, SIZE));
          },
        }),
        { headers: { "cache-control": "max-age=60" } },
      );
    },
    async (rig) => {
      const res = await rig.get("/big");
      const reader = res.body!.getReader();
      const first = await reader.read();
      assert.ok(!first.done && first.value.length > 0);
      open();
      let total = first.value!.length;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.length;
      }
      assert.equal(total, CHUNKS * SIZE);
      await rig.restart(); // waits for the store to finish
      const hit = await rig.get("/big");
      assert.equal(hit.headers.get("x-larder-cache"), "hit");
      const body = new Uint8Array(await hit.arrayBuffer());
      assert.equal(body.length, CHUNKS * SIZE);
      for (let i = 0; i < CHUNKS; i++) assert.equal(body[i * SIZE], i & 0xff);
      assert.equal(count(rig, "GET /big"), 1);
    },
  );
});

Deno.test("proxy §3: a client that disconnects does not abort the store", async () => {
  const CHUNKS = 32;
  const SIZE = 64 * 1024;
  let open = () => {};
  const gate = new Promise<void>((r) => open = r);
  await withRig(
    () => {
      let i = 0;
      return new Response(
        new ReadableStream<Uint8Array>({
          async pull(c) {
            if (i === 1) await gate;
            if (i === CHUNKS) return c.close();
            c.enqueue(chunk(i++, SIZE));
          },
        }),
        { headers: { "cache-control": "max-age=60" } },
      );
    },
    async (rig) => {
      const res = await rig.get("/gone");
      const reader = res.body!.getReader();
      await reader.read();
      await reader.cancel(); // the client goes away
      open();
      await rig.restart(); // waits for the store
      const hit = await rig.get("/gone");
      assert.equal(hit.headers.get("x-larder-cache"), "hit");
      assert.equal((await hit.arrayBuffer()).byteLength, CHUNKS * SIZE);
      assert.equal(count(rig, "GET /gone"), 1);
    },
  );
});

Deno.test("proxy: a stored response is a hit after the proxy is reopened", async () => {
  await withRig(
    () =>
      new Response("persisted", {
        headers: { "cache-control": "max-age=600", "content-type": "text/x" },
      }),
    async (rig) => {
      await (await rig.get("/p")).text();
      await rig.restart();
      const res = await rig.get("/p");
      assert.equal(res.headers.get("x-larder-cache"), "hit");
      assert.equal(res.headers.get("content-type"), "text/x");
      assert.equal(await res.text(), "persisted");
      assert.equal(count(rig, "GET /p"), 1);
    },
  );
});

Deno.test("proxy: redirects are passed back, not followed", async () => {
  await withRig(
    (req) =>
      new URL(req.url).pathname === "/old"
        ? new Response(null, { status: 302, headers: { location: "/new" } })
        : new Response("new"),
    async (rig) => {
      const res = await rig.get("/old", { redirect: "manual" });
      assert.equal(res.status, 302);
      assert.equal(res.headers.get("location"), "/new");
      await res.body?.cancel();
      assert.deepEqual(rig.seen, ["GET /old"]);
    },
  );
});

Deno.test("proxy §3: a body over the store's limit is passed through uncached", async () => {
  const SIZE = 3 * 2 ** 20;
  await withRig(
    () =>
      new Response(new Uint8Array(SIZE).fill(7), {
        headers: { "cache-control": "max-age=60" },
      }),
    async (rig) => {
      for (let i = 0; i < 2; i++) {
        const res = await rig.get("/huge");
        const body = new Uint8Array(await res.arrayBuffer());
        assert.equal(body.length, SIZE);
        assert.equal(body[SIZE - 1], 7);
        // The refusal is counted once the store's write has given up.
        let refusals = "";
        for (let t = 0; t < 100 && refusals !== "1"; t++) {
          const m = await (await rig.get("/_larder/metrics")).text();
          refusals =
            /^larder_proxy_store_refusals_total (\d+)$/m.exec(m)?.[1] ??
              "";
          if (refusals !== "1") await new Promise((r) => setTimeout(r, 20));
        }
        assert.equal(refusals, "1");
        await rig.restart(); // waits for the refused store
      }
      assert.equal(count(rig, "GET /huge"), 2);
    },
    { storeOptions: { limit: 2 ** 20 } },
  );
});

Deno.test("proxy §4: HEAD from a stored GET keeps its Content-Length", async () => {
  await withRig(
    () =>
      new Response("twelve bytes", {
        headers: { "cache-control": "max-age=60" },
      }),
    async (rig) => {
      await (await rig.get("/len")).text();
      const res = await rig.get("/len", { method: "HEAD" });
      await res.body?.cancel();
      assert.equal(res.headers.get("content-length"), "12");
    },
  );
});

Deno.test("proxy §4.2: a response with no lifetime and no validator is not stored", async () => {
  await withRig(
    () => new Response("plain"), // 200, heuristically cacheable, but nothing to go on
    async (rig) => {
      const res = await rig.get("/plain");
      assert.equal(res.headers.get("x-larder-cache"), "bypass");
      await res.text();
      await (await rig.get("/plain")).text();
      assert.equal(count(rig, "GET /plain"), 2);
    },
  );
});

Deno.test("proxy §4.2.2: Last-Modified gives a heuristic lifetime", async () => {
  const lastModified = new Date(Date.now() - 10 * 86_400_000).toUTCString();
  await withRig(
    () =>
      new Response("old news", { headers: { "last-modified": lastModified } }),
    async (rig) => {
      await (await rig.get("/lm")).text();
      const res = await rig.get("/lm");
      assert.equal(res.headers.get("x-larder-cache"), "hit");
      assert.equal(await res.text(), "old news");
      assert.equal(count(rig, "GET /lm"), 1);
    },
  );
});

Deno.test("proxy §3.5: a response to a request with Authorization is not stored", async () => {
  await withRig(
    () => new Response("mine", { headers: { "cache-control": "max-age=60" } }),
    async (rig) => {
      for (let i = 0; i < 2; i++) {
        const res = await rig.get("/auth", {
          headers: { authorization: "Bearer t" },
        });
        assert.equal(await res.text(), "mine");
      }
      assert.equal(count(rig, "GET /auth"), 2);
      assert.equal(rig.lastHeaders.get("authorization"), "Bearer t");
    },
  );
});

Deno.test("proxy §3.1: connection-specific fields are not forwarded", async () => {
  await withRig(
    () =>
      new Response("x", {
        headers: {
          "cache-control": "max-age=60",
          "x-hop": "1",
          connection: "x-hop",
        },
      }),
    async (rig) => {
      const res = await rig.get("/hop", {
        headers: { connection: "x-secret", "x-secret": "s", "x-kept": "k" },
      });
      await res.text();
      assert.equal(rig.lastHeaders.get("x-secret"), null);
      assert.equal(rig.lastHeaders.get("x-kept"), "k");
      assert.equal(res.headers.get("x-hop"), null);
    },
  );
});

Deno.test("proxy §3.1: an encoded body is stored and sent as the origin encoded it", async () => {
  const text = "compressible ".repeat(1000);
  const gz = new Uint8Array(gzipSync(new TextEncoder().encode(text)));
  await withRig(
    () =>
      new Response(gz, {
        headers: {
          "content-encoding": "gzip",
          "cache-control": "max-age=60",
          vary: "accept-encoding",
        },
      }),
    async (rig) => {
      for (const expected of ["miss", "hit"]) {
        const res = await rig.get("/gz", {
          headers: { "accept-encoding": "gzip" },
        });
        assert.equal(res.headers.get("x-larder-cache"), expected);
        assert.equal(res.headers.get("content-encoding"), "gzip");
        assert.equal(await res.text(), text); // fetch decodes it
      }
      assert.equal(count(rig, "GET /gz"), 1);
      // The stored bytes are the encoded ones.
      const raw = await (await rig.restart(), rig.raw("/gz", "gzip"));
      assert.deepEqual(raw, gz);
    },
  );
});

for (const pooled of [false, true]) {
  Deno.test(
    `proxy §5.2: an origin that stalls mid-body ends the client's body, stores nothing${
      pooled ? " (a pooled connection)" : ""
    }`,
    async () => {
      let release = () => {};
      const held = new Promise<void>((r) => release = r);
      await withRig(
        (req) => {
          if (new URL(req.url).pathname === "/warm") return new Response("ok");
          let sent = false;
          return new Response(
            new ReadableStream<Uint8Array>({
              async pull(c) {
                if (sent) {
                  await held;
                  return c.close();
                }
                sent = true;
                c.enqueue(new Uint8Array(1000));
              },
            }),
            { headers: { "cache-control": "max-age=60" } },
          );
        },
        async (rig) => {
          // A first exchange leaves a keep-alive connection in the pool.
          if (pooled) await (await rig.get("/warm")).text();
          const res = await rig.get("/stall");
          const started = Date.now();
          let timer: ReturnType<typeof setTimeout> | undefined;
          await assert.rejects(
            Promise.race([
              res.arrayBuffer(),
              new Promise<never>((_, reject) => {
                timer = setTimeout(() => {
                  release();
                  reject(new Error("no end of the body in 5 s"));
                }, 5000);
              }),
            ]).finally(() => clearTimeout(timer)),
            /origin|closed|aborted|error/i,
          );
          assert.ok(Date.now() - started < 5000);
          release();
          await rig.restart();
          const again = await rig.get("/stall");
          assert.equal(again.headers.get("x-larder-cache"), "miss");
          await again.body?.cancel();
        },
        { originTimeoutMs: 300 },
      );
    },
  );
}

Deno.test("proxy §3: a slow client paces the origin read, the store does not run ahead", async () => {
  const SIZE = 64 * 1024;
  const CHUNKS = 512; // 32 MiB
  let produced = 0;
  await withRig(
    () =>
      new Response(
        new ReadableStream<Uint8Array>({
          pull(c) {
            if (produced === CHUNKS) return c.close();
            produced++;
            c.enqueue(new Uint8Array(SIZE));
          },
        }, new CountQueuingStrategy({ highWaterMark: 1 })),
        { headers: { "cache-control": "max-age=60" } },
      ),
    async (rig) => {
      const res = await rig.get("/paced");
      const reader = res.body!.getReader();
      await reader.read();
      await new Promise((r) => setTimeout(r, 500));
      // Socket buffers on both hops hold some; not the whole body.
      assert.ok(produced < CHUNKS / 2, `origin sent ${produced} chunks`);
      let total = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.length;
      }
      assert.ok(total > 0);
      assert.equal(produced, CHUNKS);
    },
  );
});

Deno.test("proxy §4.3.2: a conditional miss is stored in full and answered 304", async () => {
  await withRig(
    () =>
      new Response("full body", {
        headers: { etag: '"e1"', "cache-control": "max-age=60" },
      }),
    async (rig) => {
      const res = await rig.get("/cm", {
        headers: { "if-none-match": '"e1"' },
      });
      assert.equal(res.status, 304);
      await res.body?.cancel();
      assert.equal(rig.lastHeaders.get("if-none-match"), null);
      await rig.restart();
      const full = await rig.get("/cm");
      assert.equal(full.headers.get("x-larder-cache"), "hit");
      assert.equal(await full.text(), "full body");
      assert.equal(count(rig, "GET /cm"), 1);
    },
  );
});

Deno.test("proxy §4.4: invalidation reaches every Vary variant and a same-origin Location", async () => {
  await withRig(
    (req) => {
      const path = new URL(req.url).pathname;
      if (req.method === "PUT") {
        return new Response(null, {
          status: 204,
          headers: { location: "/other" },
        });
      }
      return new Response(`${path} ${req.headers.get("accept")}`, {
        headers: { "cache-control": "max-age=60", vary: "accept" },
      });
    },
    async (rig) => {
      const ask = async (path: string, accept: string) => {
        const res = await rig.get(path, { headers: { accept } });
        await res.text();
        return res.headers.get("x-larder-cache");
      };
      assert.equal(await ask("/doc", "a/b"), "miss");
      assert.equal(await ask("/doc", "c/d"), "miss");
      assert.equal(await ask("/other", "a/b"), "miss");
      assert.equal(await ask("/doc", "a/b"), "hit");
      await (await rig.get("/doc", { method: "PUT", body: "new" })).body
        ?.cancel();
      assert.equal(await ask("/doc", "a/b"), "miss");
      assert.equal(await ask("/doc", "c/d"), "miss");
      assert.equal(await ask("/other", "a/b"), "miss");
    },
  );
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A 256 KiB body that differs byte by byte. */
const bigBody = () => {
  const b = new Uint8Array(256 * 1024);
  for (let i = 0; i < b.length; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
  return b;
};

/** A response whose body arrives in 16 KiB pieces after a pause. */
function slowResponse(body: Uint8Array, headers: HeadersInit): Response {
  return new Response(
    new ReadableStream<Uint8Array>({
      async start(c) {
        await sleep(300);
        for (let at = 0; at < body.length; at += 16384) {
          c.enqueue(body.slice(at, at + 16384));
          await sleep(5);
        }
        c.close();
      },
    }),
    { headers },
  );
}

Deno.test("proxy §4: 64 concurrent misses for one URL make one origin request", async () => {
  const body = bigBody();
  await withRig(
    () => slowResponse(body, { "cache-control": "max-age=60" }),
    async (rig) => {
      const bodies = await Promise.all(
        Array.from({ length: 64 }, async () => {
          const res = await rig.get("/slow");
          assert.equal(res.status, 200);
          return new Uint8Array(await res.arrayBuffer());
        }),
      );
      assert.equal(count(rig, "GET /slow"), 1);
      for (const b of bodies) assert.deepEqual(b, body);
    },
  );
});

Deno.test("proxy §4: a request made as the client's body ends, before the fill is stored, is answered from that fill", async () => {
  // The handler called in-process: the client reads the whole body, and
  // the next request comes, before the store has finished writing it. Its
  // lookup misses, and the fill ends during it: it must wait for that
  // fill, not go to the origin.
  await withRig(
    () => new Response("hello", { headers: { "cache-control": "max-age=60" } }),
    async (rig) => {
      for (let i = 0; i < 20; i++) {
        const url = `${rig.proxyUrl}/end-${i}`;
        const first = await rig.proxy.handler(new Request(url));
        assert.equal(await first.text(), "hello");
        const second = await rig.proxy.handler(new Request(url));
        assert.equal(second.headers.get("x-larder-cache"), "hit", `round ${i}`);
        assert.equal(await second.text(), "hello");
        assert.equal(count(rig, `GET /end-${i}`), 1);
      }
    },
  );
});

Deno.test("proxy §4: collapsed misses for a response that is not stored each go to the origin", async () => {
  const body = bigBody();
  await withRig(
    () => slowResponse(body, { "cache-control": "no-store" }),
    async (rig) => {
      const bodies = await Promise.all(
        Array.from({ length: 8 }, async () => {
          const res = await rig.get("/ns");
          return new Uint8Array(await res.arrayBuffer());
        }),
      );
      assert.equal(count(rig, "GET /ns"), 8);
      for (const b of bodies) assert.deepEqual(b, body);
    },
  );
});

Deno.test("proxy §4: a collapsed miss goes to the origin itself after collapseTimeoutMs", async () => {
  let calls = 0;
  await withRig(
    async () => {
      const call = ++calls;
      if (call === 1) await sleep(1500);
      return new Response(`call ${call}`, {
        headers: { "cache-control": "max-age=60" },
      });
    },
    async (rig) => {
      const first = rig.get("/t").then((r) => r.text());
      await sleep(100);
      const started = Date.now();
      const second = await (await rig.get("/t")).text();
      assert.ok(Date.now() - started < 1200, "the waiter did not wait it out");
      assert.equal(second, "call 2");
      assert.equal(await first, "call 1");
      assert.equal(count(rig, "GET /t"), 2);
    },
    { collapseTimeoutMs: 200 },
  );
});

Deno.test("proxy RFC 5861 §3: a stale-while-revalidate hit's background 304 updates the stored head", async () => {
  const etag = '"v1"';
  await withRig(
    (req) => {
      if (req.headers.get("if-none-match") === etag) {
        return new Response(null, {
          status: 304,
          headers: { etag, "cache-control": "max-age=60", "x-version": "2" },
        });
      }
      // Stale on arrival (Age 100 > max-age 10), within the 600 s window.
      return new Response("body-1", {
        headers: {
          etag,
          age: "100",
          "cache-control": "max-age=10, stale-while-revalidate=600",
          "x-version": "1",
        },
      });
    },
    async (rig) => {
      assert.equal(await (await rig.get("/w")).text(), "body-1");
      const stale = await rig.get("/w");
      assert.equal(await stale.text(), "body-1");
      assert.equal(stale.headers.get("x-larder-cache"), "stale");
      assert.equal(stale.headers.get("x-version"), "1");
      // The refresh's 304 replaces the head the stale hit was served from.
      let later: (string | null)[] = [];
      for (let i = 0; i < 50; i++) {
        await sleep(50);
        const res = await rig.get("/w");
        later = [
          await res.text(),
          res.headers.get("x-larder-cache"),
          res.headers.get("x-version"),
        ];
        if (later[1] === "hit") break;
      }
      assert.deepEqual(later, ["body-1", "hit", "2"]);
      assert.equal(rig.lastHeaders.get("if-none-match"), etag);
      assert.equal(count(rig, "GET /w"), 2);
    },
  );
});

Deno.test("proxy RFC 5861 §3: stale-while-revalidate serves stale and refreshes once in the background", async () => {
  let version = 0;
  await withRig(
    async () => {
      version++;
      if (version === 1) {
        // Stale on arrival (Age 100 > max-age 10), within the 600 s window.
        return new Response("v1", {
          headers: {
            age: "100",
            "cache-control": "max-age=10, stale-while-revalidate=600",
          },
        });
      }
      await sleep(300); // a slow refresh, so the stale hits overlap it
      return new Response(`v${version}`, {
        headers: { "cache-control": "max-age=60" },
      });
    },
    async (rig) => {
      assert.equal(await (await rig.get("/s")).text(), "v1");
      const stale = await Promise.all(
        Array.from({ length: 16 }, async () => {
          const res = await rig.get("/s");
          return [await res.text(), res.headers.get("x-larder-cache")];
        }),
      );
      for (const s of stale) assert.deepEqual(s, ["v1", "stale"]);
      // The refresh lands within its 300 ms; one origin request for it.
      let later: string[] = [];
      for (let i = 0; i < 50; i++) {
        await sleep(100);
        const res = await rig.get("/s");
        later = [await res.text(), res.headers.get("x-larder-cache") ?? ""];
        if (later[0] !== "v1") break;
      }
      assert.deepEqual(later, ["v2", "hit"]);
      assert.equal(count(rig, "GET /s"), 2);
    },
  );
});

Deno.test("proxy §4.4 §4.1: after an invalidation, a hit serves the new response, with or without Vary", async () => {
  // Each version's response, in turn: no Vary, Vary: accept, no Vary.
  let version = 1;
  await withRig(
    (req) => {
      if (req.method === "POST") return new Response("ok");
      const vary: Record<string, string> = version === 2
        ? { vary: "accept" }
        : {};
      return new Response(`v${version}:${req.headers.get("accept")}`, {
        headers: {
          "cache-control": "max-age=600",
          "x-version": String(version),
          ...vary,
        },
      });
    },
    async (rig) => {
      const get = async (accept: string) => {
        const res = await rig.get("/s", { headers: { accept } });
        return [
          await res.text(),
          res.headers.get("x-larder-cache"),
          res.headers.get("x-version"),
        ];
      };
      assert.deepEqual(await get("a"), ["v1:a", "miss", "1"]);
      assert.deepEqual(await get("b"), ["v1:a", "hit", "1"]);
      for (const next of [2, 3]) {
        version = next;
        // A successful POST invalidates the target (§4.4).
        await (await rig.get("/s", { method: "POST", body: "x" })).text();
        assert.deepEqual(await get("a"), [`v${next}:a`, "miss", `${next}`]);
        assert.deepEqual(await get("a"), [`v${next}:a`, "hit", `${next}`]);
        // With Vary, another Accept is another variant; without, the same.
        assert.deepEqual(
          await get("b"),
          next === 2 ? ["v2:b", "miss", "2"] : ["v3:a", "hit", "3"],
        );
      }
    },
  );
});
