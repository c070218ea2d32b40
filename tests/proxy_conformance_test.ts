// The caching proxy against a real origin (Deno.serve on 127.0.0.1) for the
// behaviours an HTTP caching conformance run exercises beyond
// tests/proxy_test.ts. Each test names the RFC section it checks; the cases
// are written from the RFCs.
import assert from "node:assert/strict";
import { type OriginHandler, type Rig, withRig } from "./_proxy_rig.ts";

async function twice(rig: Rig, path: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < 2; i++) {
    const res = await rig.get(path);
    await res.body?.cancel();
    out.push(res.headers.get("x-larder-cache") ?? "-");
  }
  return out;
}

const FAR = new Date(Date.now() + 3_600_000).toUTCString();

Deno.test("proxy RFC 9213 §2.1: CDN-Cache-Control takes precedence over Cache-Control and Expires", async (t) => {
  const cases: {
    name: string;
    headers: Record<string, string>;
    cached: boolean;
  }[] = [
    {
      name: "CDN private, Cache-Control max-age and Expires: not reused",
      headers: {
        "cdn-cache-control": "private",
        "cache-control": "max-age=10000",
        expires: FAR,
      },
      cached: false,
    },
    {
      name: "CDN no-cache, Cache-Control max-age: revalidated every time",
      headers: {
        "cdn-cache-control": "no-cache",
        "cache-control": "max-age=10000",
        expires: FAR,
      },
      cached: false,
    },
    {
      name: "CDN no-store, Cache-Control max-age: not stored",
      headers: {
        "cdn-cache-control": "no-store",
        "cache-control": "max-age=10000",
        expires: FAR,
      },
      cached: false,
    },
    {
      name: "CDN max-age, Cache-Control no-store: stored and reused",
      headers: {
        "cdn-cache-control": "max-age=10000",
        "cache-control": "no-store",
      },
      cached: true,
    },
    {
      name: "CDN max-age=0, future Expires: not reused",
      headers: { "cdn-cache-control": "max-age=0", expires: FAR },
      cached: false,
    },
    {
      name: "CDN max-age over the 2^31 cap, no Cache-Control: reused",
      headers: { "cdn-cache-control": "max-age=99999999999" },
      cached: true,
    },
    {
      name: "CDN max-age with an unknown directive: reused",
      headers: { "cdn-cache-control": "foobar, max-age=3600" },
      cached: true,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      await withRig(
        () => new Response("body", { headers: c.headers }),
        async (rig) => {
          const statuses = await twice(rig, "/t");
          assert.equal(statuses[1] === "hit", c.cached, statuses.join(" "));
          assert.equal(rig.seen.length, c.cached ? 1 : 2);
        },
      );
    });
  }
});

Deno.test("proxy RFC 9213 §2.2: an invalid CDN-Cache-Control is ignored for Cache-Control", async (t) => {
  // Each one is not a valid Dictionary, or gives max-age a wrong type; the
  // response's Cache-Control: no-store then applies.
  for (
    const value of [
      "max-age=10000, &&&&&",
      'max-age="10000"',
      "max-age =10000",
      "max-age= 10000",
      "MAX-AGE=10000",
      "max-age=-1",
      "max-age=10000,",
      "",
    ]
  ) {
    await t.step(JSON.stringify(value), async () => {
      await withRig(
        () =>
          new Response("body", {
            headers: {
              "cdn-cache-control": value,
              "cache-control": "no-store",
            },
          }),
        async (rig) => {
          assert.deepEqual(await twice(rig, "/i"), ["bypass", "bypass"]);
          assert.equal(rig.seen.length, 2);
        },
      );
    });
  }
});

Deno.test("proxy RFC 9213 §2.1: the target list is an option; [] obeys Cache-Control alone", async () => {
  const headers = {
    "cdn-cache-control": "no-store",
    "my-cache-control": "max-age=600",
    "cache-control": "max-age=0",
  };
  await withRig(
    () => new Response("x", { headers }),
    async (rig) => {
      assert.deepEqual(await twice(rig, "/own"), ["miss", "hit"]);
    },
    { targetedFields: ["My-Cache-Control", "CDN-Cache-Control"] },
  );
  await withRig(
    () => new Response("x", { headers }),
    async (rig) => {
      // max-age=0 with no validator: not worth storing.
      assert.deepEqual(await twice(rig, "/none"), ["bypass", "bypass"]);
    },
    { targetedFields: [] },
  );
});

Deno.test("proxy RFC 9213 §3: CDN-Cache-Control is passed on to the client", async () => {
  await withRig(
    () =>
      new Response("x", {
        headers: {
          "cdn-cache-control": "max-age=60",
          "cache-control": "max-age=5",
        },
      }),
    async (rig) => {
      for (const status of ["miss", "hit"]) {
        const res = await rig.get("/fwd");
        await res.body?.cancel();
        assert.equal(res.headers.get("x-larder-cache"), status);
        assert.equal(res.headers.get("cdn-cache-control"), "max-age=60");
        assert.equal(res.headers.get("cache-control"), "max-age=5");
      }
    },
  );
});

Deno.test("proxy RFC 9110 §15.3.5: a stored 204 is served from the store without content", async () => {
  await withRig(
    () =>
      new Response(null, {
        status: 204,
        headers: { "cache-control": "max-age=600", "x-n": "1" },
      }),
    async (rig) => {
      for (const status of ["miss", "hit", "hit"]) {
        const res = await rig.get("/empty");
        assert.equal(res.status, 204);
        assert.equal(await res.text(), "");
        assert.equal(res.headers.get("x-larder-cache"), status);
        assert.equal(res.headers.get("x-n"), "1");
      }
      const head = await rig.get("/empty", { method: "HEAD" });
      assert.equal(head.status, 204);
      assert.equal(head.headers.get("x-larder-cache"), "hit");
      await head.body?.cancel();
      assert.deepEqual(rig.seen, ["GET /empty"]);
    },
  );
});

Deno.test("proxy RFC 9111 §4.2.2: a 204 with Last-Modified is heuristically fresh", async () => {
  const lastModified = new Date(Date.now() - 86_400_000).toUTCString();
  await withRig(
    () =>
      new Response(null, {
        status: 204,
        headers: { "last-modified": lastModified },
      }),
    async (rig) => {
      assert.deepEqual(await twice(rig, "/h204"), ["miss", "hit"]);
    },
  );
});

/** An origin whose GET and HEAD answers are given per request number. */
function headOrigin(
  answers: Record<number, { status?: number; headers: Record<string, string> }>,
): OriginHandler {
  return (req, n) => {
    const a = answers[n] ?? { headers: {} };
    const status = a.status ?? 200;
    const body = req.method === "HEAD" || status === 304 ? null : "0123456789";
    // A HEAD answer states the length its GET would have (RFC 9110 §9.3.2).
    const headers = new Headers(a.headers);
    if (!headers.has("content-length")) headers.set("content-length", "10");
    return new Response(body, { status, headers });
  };
}

// Stored (it has a validator) and stale from the start.
const STALE_SOON = { "cache-control": "max-age=0", etag: '"1"', "x-a": "1" };

async function staleAfterFirst(rig: Rig, path: string): Promise<void> {
  const first = await rig.get(path);
  assert.equal(first.headers.get("x-larder-cache"), "miss");
  assert.equal(await first.text(), "0123456789");
}

Deno.test("proxy RFC 9111 §4.3.5: a HEAD for a stale stored GET goes to the origin as HEAD", async () => {
  await withRig(
    headOrigin({ 1: { headers: STALE_SOON }, 2: { headers: {} } }),
    async (rig) => {
      await staleAfterFirst(rig, "/w");
      const res = await rig.get("/w", { method: "HEAD" });
      assert.equal(res.status, 200);
      await res.body?.cancel();
      assert.deepEqual(rig.seen, ["GET /w", "HEAD /w"]);
      // §3.2: the stored fields the HEAD response lacks are kept.
      assert.equal(res.headers.get("x-a"), "1");
      assert.equal(res.headers.get("x-larder-cache"), "revalidated");
    },
  );
});

Deno.test("proxy RFC 9111 §4.3.5: a 200 to a HEAD updates the stored GET's fields and freshness", async () => {
  await withRig(
    headOrigin({
      1: { headers: STALE_SOON },
      2: { headers: { "cache-control": "max-age=1000", "x-a": "2" } },
    }),
    async (rig) => {
      await staleAfterFirst(rig, "/u");
      await (await rig.get("/u", { method: "HEAD" })).body?.cancel();
      const res = await rig.get("/u");
      assert.equal(res.headers.get("x-larder-cache"), "hit");
      assert.equal(res.headers.get("x-a"), "2");
      assert.equal(res.headers.get("cache-control"), "max-age=1000");
      // The stored body is unchanged and still whole.
      assert.equal(await res.text(), "0123456789");
      assert.deepEqual(rig.seen, ["GET /u", "HEAD /u"]);
    },
  );
});

Deno.test("proxy RFC 9111 §4.3.5: a HEAD 200 with another validator or length makes the stored GET stale", async (t) => {
  const variants: [string, Record<string, string>, Record<string, string>][] = [
    ["ETag differs", { etag: '"1"' }, { etag: '"2"' }],
    [
      "Last-Modified differs",
      { "last-modified": "Wed, 01 Jan 2020 00:00:00 GMT" },
      { "last-modified": "Thu, 02 Jan 2020 00:00:00 GMT" },
    ],
    ["Content-Length differs", {}, { "content-length": "11" }],
  ];
  for (const [name, first, second] of variants) {
    await t.step(name, async () => {
      await withRig(
        headOrigin({
          1: { headers: { ...STALE_SOON, ...first } },
          2: { headers: { ...second, "cache-control": "max-age=1000" } },
          3: { headers: { "cache-control": "max-age=1000" } },
        }),
        async (rig) => {
          await staleAfterFirst(rig, "/s");
          const head = await rig.get("/s", { method: "HEAD" });
          await head.body?.cancel();
          // The origin's HEAD answer is passed on as it is.
          assert.equal(head.headers.get("x-larder-cache"), "bypass");
          const res = await rig.get("/s");
          await res.body?.cancel();
          assert.equal(res.headers.get("x-larder-cache"), "miss");
          assert.deepEqual(rig.seen, ["GET /s", "HEAD /s", "GET /s"]);
        },
      );
    });
  }
});

Deno.test("proxy RFC 9111 §4.3.5: a HEAD answered other than 200 leaves the stored GET alone", async () => {
  await withRig(
    headOrigin({
      1: { headers: { ...STALE_SOON, etag: '"1"' } },
      2: { status: 410, headers: { "cache-control": "max-age=1000" } },
      3: {
        status: 304,
        headers: { etag: '"1"', "cache-control": "max-age=1000" },
      },
    }),
    async (rig) => {
      await staleAfterFirst(rig, "/g");
      const head = await rig.get("/g", { method: "HEAD" });
      await head.body?.cancel();
      assert.equal(head.status, 410);
      // Still stored, still stale: the next GET revalidates it.
      const res = await rig.get("/g");
      assert.equal(res.headers.get("x-larder-cache"), "revalidated");
      assert.equal(await res.text(), "0123456789");
      assert.deepEqual(rig.seen, ["GET /g", "HEAD /g", "GET /g"]);
    },
  );
});

Deno.test("proxy RFC 9111 §4.3.5: a client's condition on a HEAD is answered from the updated head", async () => {
  await withRig(
    headOrigin({
      1: { headers: { ...STALE_SOON, etag: '"e"' } },
      2: { headers: { etag: '"e"', "cache-control": "max-age=1000" } },
    }),
    async (rig) => {
      await staleAfterFirst(rig, "/c");
      const res = await rig.get("/c", {
        method: "HEAD",
        headers: { "if-none-match": '"e"' },
      });
      await res.body?.cancel();
      assert.equal(res.status, 304);
      assert.deepEqual(rig.seen, ["GET /c", "HEAD /c"]);
    },
  );
});

Deno.test("proxy RFC 9111 §4.1: Vary on Accept-Language ignores case and whitespace, not order", async () => {
  await withRig(
    (req) =>
      new Response(req.headers.get("accept-language"), {
        headers: { "cache-control": "max-age=600", vary: "Accept-Language" },
      }),
    async (rig) => {
      const get = async (lang: string) => {
        const res = await rig.get("/lang", {
          headers: { "accept-language": lang },
        });
        return [res.headers.get("x-larder-cache"), await res.text()];
      };
      assert.deepEqual(await get("en, de"), ["miss", "en, de"]);
      assert.deepEqual(await get("EN ,de"), ["hit", "en, de"]);
      assert.deepEqual(await get("de, en"), ["miss", "de, en"]);
      assert.equal(rig.seen.length, 2);
    },
  );
});
