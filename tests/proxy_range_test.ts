// Range requests through the caching proxy (RFC 9110 §14, §13.1.5,
// §15.3.7, §15.5.17), against a real origin on 127.0.0.1. Test names give
// the RFC section they check.
import assert from "node:assert/strict";
import {
  ifRangeHolds,
  parseRange,
  type RangePlan,
} from "../src/proxy/_range.ts";
import { createProxy } from "../src/proxy/mod.ts";
import {
  backingProxyStore,
  type ProxyStore,
} from "../src/proxy/proxy_store.ts";
import { BackingStore } from "../src/store.ts";
import { tempDir } from "./_helpers.ts";
import { count, type Rig, withRig } from "./_proxy_rig.ts";

/** `n` bytes that differ from their neighbours: byte i is a function of i. */
function pattern(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8) + (i >> 16)) & 0xff;
  return b;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const BODY = pattern(1000);
const ETAG = '"v1"';
const LAST_MODIFIED = "Tue, 01 Dec 2026 10:00:00 GMT";

/** An origin with one cacheable 1000-byte object at every path. */
const plainOrigin = () =>
  new Response(BODY, {
    headers: {
      "cache-control": "max-age=600",
      "content-type": "application/octet-stream",
      etag: ETAG,
      "last-modified": LAST_MODIFIED,
    },
  });

async function bytes(res: Response): Promise<Uint8Array> {
  return new Uint8Array(await res.arrayBuffer());
}

/** GETs `path` with a Range (and more fields) and reads the body. */
async function ranged(
  rig: Rig,
  path: string,
  range: string,
  headers: Record<string, string> = {},
): Promise<{ res: Response; body: Uint8Array }> {
  const res = await rig.get(path, { headers: { range, ...headers } });
  return { res, body: await bytes(res) };
}

/**
 * Asserts that every entry the proxy opened has been released (a body's
 * pin ends when the server has read it to its end, just after the client
 * has its last byte).
 */
async function assertReleased(rig: Rig): Promise<void> {
  for (let i = 0; i < 100 && rig.store.stats().pinned > 0; i++) {
    await sleep(10);
  }
  assert.equal(rig.store.stats().pinned, 0, "entries left pinned");
}

/** Asserts a 206 of `[start, end]` (inclusive) of `whole`. */
function assertPartial(
  got: { res: Response; body: Uint8Array },
  whole: Uint8Array,
  start: number,
  end: number,
): void {
  assert.equal(got.res.status, 206);
  assert.equal(
    got.res.headers.get("content-range"),
    `bytes ${start}-${end}/${whole.length}`,
  );
  assert.equal(got.res.headers.get("content-length"), String(end - start + 1));
  assert.deepEqual(got.body, whole.slice(start, end + 1));
}

Deno.test("RFC 9110 §14.2: bytes=a-b range answered 206 from cache, with Age, Via and the 200's fields", async () => {
  await withRig(plainOrigin, async (rig) => {
    const full = await rig.get("/o");
    assert.equal(full.headers.get("accept-ranges"), "bytes");
    assert.deepEqual(await bytes(full), BODY);
    const got = await ranged(rig, "/o", "bytes=10-19");
    assertPartial(got, BODY, 10, 19);
    const h = got.res.headers;
    assert.equal(h.get("x-larder-cache"), "hit");
    assert.match(h.get("age") ?? "", /^\d+$/);
    assert.match(h.get("via") ?? "", /1\.1 larder/);
    assert.equal(h.get("etag"), ETAG);
    assert.equal(h.get("cache-control"), "max-age=600");
    assert.equal(h.get("content-type"), "application/octet-stream");
    assert.equal(h.get("accept-ranges"), "bytes");
    // One byte, the first and the last.
    assertPartial(await ranged(rig, "/o", "bytes=0-0"), BODY, 0, 0);
    assertPartial(await ranged(rig, "/o", "bytes=999-999"), BODY, 999, 999);
    assert.equal(count(rig, "GET /o"), 1);
    await assertReleased(rig);
  });
});

Deno.test("RFC 9110 §14.1.1: bytes=a- open range, and a last-pos past the end, end at the last byte", async () => {
  await withRig(plainOrigin, async (rig) => {
    await bytes(await rig.get("/o"));
    assertPartial(await ranged(rig, "/o", "bytes=990-"), BODY, 990, 999);
    assertPartial(await ranged(rig, "/o", "bytes=995-5000"), BODY, 995, 999);
    assertPartial(await ranged(rig, "/o", "bytes=0-"), BODY, 0, 999);
    assertPartial(
      await ranged(rig, "/o", "bytes=998-99999999999999999999999"),
      BODY,
      998,
      999,
    );
    // Case-insensitive unit, whitespace around the list element.
    assertPartial(await ranged(rig, "/o", "Bytes= 5-6 ,"), BODY, 5, 6);
    assert.equal(count(rig, "GET /o"), 1);
  });
});

Deno.test("RFC 9110 §14.2: bytes=-n suffix range answered 206 from cache; one longer than the body is all of it", async () => {
  await withRig(plainOrigin, async (rig) => {
    await bytes(await rig.get("/o"));
    assertPartial(await ranged(rig, "/o", "bytes=-10"), BODY, 990, 999);
    assertPartial(await ranged(rig, "/o", "bytes=-1"), BODY, 999, 999);
    assertPartial(await ranged(rig, "/o", "bytes=-1000"), BODY, 0, 999);
    assertPartial(await ranged(rig, "/o", "bytes=-5000"), BODY, 0, 999);
    assert.equal(count(rig, "GET /o"), 1);
  });
});

Deno.test("RFC 9110 §15.5.17: a range at or past the end is 416 with Content-Range bytes */length", async () => {
  await withRig(plainOrigin, async (rig) => {
    await bytes(await rig.get("/o"));
    for (
      const range of [
        "bytes=1000-",
        "bytes=1000-1000",
        "bytes=5000-6000",
        "bytes=-0",
      ]
    ) {
      const { res, body } = await ranged(rig, "/o", range);
      assert.equal(res.status, 416, range);
      assert.equal(res.headers.get("content-range"), "bytes */1000");
      assert.equal(body.length, 0);
      assert.match(res.headers.get("via") ?? "", /1\.1 larder/);
      assert.match(res.headers.get("age") ?? "", /^\d+$/);
      // Nothing lets a cache downstream keep the 416 for the URL.
      assert.equal(res.headers.get("cache-control"), null);
      assert.equal(res.headers.get("expires"), null);
    }
    // The entry is untouched.
    const again = await rig.get("/o");
    assert.equal(again.headers.get("x-larder-cache"), "hit");
    assert.deepEqual(await bytes(again), BODY);
    assert.equal(count(rig, "GET /o"), 1);
    await assertReleased(rig);
  });
});

Deno.test("RFC 9110 §14.2: an invalid range, another unit or several ranges are ignored: the full 200", async () => {
  await withRig(plainOrigin, async (rig) => {
    await bytes(await rig.get("/o"));
    for (
      const range of [
        "bytes=5-2", // last-pos before first-pos: invalid
        "bytes=-", // neither
        "bytes=a-b",
        "bytes=",
        "items=0-1", // unknown unit
        "bytes=0-1,5-6", // several: this proxy sends the whole
        "bytes=0-1, -5",
      ]
    ) {
      const { res, body } = await ranged(rig, "/o", range);
      assert.equal(res.status, 200, range);
      assert.equal(res.headers.get("content-range"), null);
      assert.equal(res.headers.get("accept-ranges"), "bytes");
      assert.equal(res.headers.get("x-larder-cache"), "hit");
      assert.deepEqual(body, BODY);
    }
    assert.equal(count(rig, "GET /o"), 1);
    await assertReleased(rig);
  });
});

Deno.test("RFC 9110 §13.1.5: If-Range with the strong ETag or the Last-Modified date gets the range, anything else the full 200", async () => {
  await withRig(plainOrigin, async (rig) => {
    await bytes(await rig.get("/o"));
    const r = (ifRange: string) =>
      ranged(rig, "/o", "bytes=0-9", { "if-range": ifRange });
    assertPartial(await r(ETAG), BODY, 0, 9);
    assertPartial(await r(LAST_MODIFIED), BODY, 0, 9);
    for (
      const failing of [
        '"v2"', // another tag
        'W/"v1"', // weak: never matches by strong comparison
        "Tue, 01 Dec 2026 10:00:01 GMT", // another date
        "not a date",
      ]
    ) {
      const { res, body } = await r(failing);
      assert.equal(res.status, 200, failing);
      assert.deepEqual(body, BODY);
    }
    // A condition of its own comes first (RFC 9110 §13.2.2): 304.
    const nm = await rig.get("/o", {
      headers: { range: "bytes=0-9", "if-none-match": ETAG },
    });
    assert.equal(nm.status, 304);
    await nm.body?.cancel();
    assert.equal(count(rig, "GET /o"), 1);
    await assertReleased(rig);
  });
});

Deno.test("RFC 9110 §13.1.5: a weak stored ETag never satisfies If-Range", async () => {
  await withRig(
    () =>
      new Response(BODY, {
        headers: { "cache-control": "max-age=600", etag: 'W/"v1"' },
      }),
    async (rig) => {
      await bytes(await rig.get("/w"));
      for (const tag of ['W/"v1"', '"v1"']) {
        const { res, body } = await ranged(rig, "/w", "bytes=0-9", {
          "if-range": tag,
        });
        assert.equal(res.status, 200);
        assert.deepEqual(body, BODY);
      }
      // Without If-Range the range is served.
      assertPartial(await ranged(rig, "/w", "bytes=0-9"), BODY, 0, 9);
    },
  );
});

Deno.test("RFC 9110 §14.2: HEAD with Range gets the 200's head; a POST's Range goes to the origin untouched", async () => {
  await withRig(
    async (req) => {
      if (req.method === "POST") {
        await req.body?.cancel();
        return new Response("posted");
      }
      return plainOrigin();
    },
    async (rig) => {
      await bytes(await rig.get("/o"));
      const head = await rig.get("/o", {
        method: "HEAD",
        headers: { range: "bytes=0-9" },
      });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get("content-length"), "1000");
      assert.equal(head.headers.get("content-range"), null);
      assert.equal(head.headers.get("accept-ranges"), "bytes");
      assert.equal(head.headers.get("x-larder-cache"), "hit");
      assert.equal((await bytes(head)).length, 0);
      const post = await rig.get("/p", {
        method: "POST",
        body: "x",
        headers: { range: "bytes=0-9" },
      });
      assert.equal(await post.text(), "posted");
      assert.equal(rig.lastHeaders.get("range"), "bytes=0-9");
      assert.equal(count(rig, "GET /o"), 1);
      await assertReleased(rig);
    },
  );
});

Deno.test("RFC 9110 §14.1.1: a zero-length representation: bytes=0- is 416 bytes */0, a suffix range the empty 200", async () => {
  await withRig(
    () =>
      new Response(new Uint8Array(0), {
        headers: { "cache-control": "max-age=600" },
      }),
    async (rig) => {
      await bytes(await rig.get("/empty"));
      const a = await ranged(rig, "/empty", "bytes=0-");
      assert.equal(a.res.status, 416);
      assert.equal(a.res.headers.get("content-range"), "bytes */0");
      const b = await ranged(rig, "/empty", "bytes=-5");
      assert.equal(b.res.status, 200);
      assert.equal(b.body.length, 0);
      assert.equal(b.res.headers.get("x-larder-cache"), "hit");
      assert.equal(count(rig, "GET /empty"), 1);
    },
  );
});

Deno.test("RFC 9110 §14, RFC 9111 §3: a Range miss fetches the whole response, stores it and answers 206 from its stream", async () => {
  await withRig(plainOrigin, async (rig) => {
    const got = await ranged(rig, "/m", "bytes=100-199");
    assertPartial(got, BODY, 100, 199);
    assert.equal(got.res.headers.get("x-larder-cache"), "miss");
    assert.match(got.res.headers.get("via") ?? "", /1\.1 larder/);
    assert.equal(rig.lastHeaders.get("range"), null); // taken off
    await rig.restart(); // waits for the store
    const full = await rig.get("/m");
    assert.equal(full.headers.get("x-larder-cache"), "hit");
    assert.deepEqual(await bytes(full), BODY);
    // A miss's If-Range is checked against the origin's response.
    assertPartial(
      await ranged(rig, "/n", "bytes=0-1", { "if-range": ETAG }),
      BODY,
      0,
      1,
    );
    assert.equal(rig.lastHeaders.get("if-range"), null);
    const other = await ranged(rig, "/n2", "bytes=0-1", { "if-range": '"v0"' });
    assert.equal(other.res.status, 200);
    assert.deepEqual(other.body, BODY);
    // An unsatisfiable miss is a 416, and the response is stored all the same.
    const past = await ranged(rig, "/u", "bytes=2000-");
    assert.equal(past.res.status, 416);
    assert.equal(past.res.headers.get("content-range"), "bytes */1000");
    await rig.restart();
    assertPartial(await ranged(rig, "/u", "bytes=-3"), BODY, 997, 999);
    assert.deepEqual(
      ["/m", "/n", "/n2", "/u"].map((p) => count(rig, `GET ${p}`)),
      [1, 1, 1, 1],
    );
  });
});

Deno.test("RFC 9110 §14.2: a Range miss of unknown length gets the full 200; the stored response then serves ranges", async () => {
  await withRig(
    () =>
      new Response(
        new ReadableStream({
          start(c) {
            c.enqueue(BODY.slice(0, 500));
            c.enqueue(BODY.slice(500));
            c.close();
          },
        }),
        { headers: { "cache-control": "max-age=600" } },
      ),
    async (rig) => {
      const first = await ranged(rig, "/chunked", "bytes=0-9");
      assert.equal(first.res.status, 200);
      assert.deepEqual(first.body, BODY);
      await rig.restart();
      assertPartial(await ranged(rig, "/chunked", "bytes=0-9"), BODY, 0, 9);
      assert.equal(count(rig, "GET /chunked"), 1);
    },
  );
});

Deno.test("RFC 9111 §5.2.1.5: a Range request with no-store goes to the origin with its Range; the 206 is not stored", async () => {
  await withRig(
    (req) => {
      if (req.headers.get("range") === "bytes=0-1") {
        return new Response(BODY.slice(0, 2), {
          status: 206,
          headers: {
            "cache-control": "max-age=600",
            "content-range": "bytes 0-1/1000",
          },
        });
      }
      return plainOrigin();
    },
    async (rig) => {
      const got = await ranged(rig, "/ns", "bytes=0-1", {
        "cache-control": "no-store",
      });
      assertPartial(got, BODY, 0, 1);
      assert.equal(got.res.headers.get("x-larder-cache"), "bypass");
      const next = await rig.get("/ns");
      assert.equal(next.headers.get("x-larder-cache"), "miss");
      assert.deepEqual(await bytes(next), BODY);
    },
  );
});

Deno.test("RFC 9111 §4.3: a stale entry is revalidated before a range is served from it", async () => {
  let version = 1;
  await withRig(
    (req) => {
      const etag = `"v${version}"`;
      if (req.headers.get("if-none-match") === etag) {
        return new Response(null, { status: 304, headers: { etag } });
      }
      const body = version === 1 ? BODY : BODY.map((b) => b ^ 0xff);
      return new Response(body, {
        headers: { "cache-control": "max-age=0", etag },
      });
    },
    async (rig) => {
      await bytes(await rig.get("/s"));
      const a = await ranged(rig, "/s", "bytes=10-19");
      assertPartial(a, BODY, 10, 19);
      assert.equal(a.res.headers.get("x-larder-cache"), "revalidated");
      assert.equal(rig.lastHeaders.get("if-none-match"), '"v1"');
      assert.equal(rig.lastHeaders.get("range"), null);
      version = 2; // the origin's object changes: a 200 replaces the entry
      const b = await ranged(rig, "/s", "bytes=10-19");
      assertPartial(b, BODY.map((x) => x ^ 0xff), 10, 19);
      assert.equal(b.res.headers.get("x-larder-cache"), "miss");
      assert.equal(count(rig, "GET /s"), 3);
      await rig.restart();
      const c = await ranged(rig, "/s", "bytes=-2");
      assertPartial(c, BODY.map((x) => x ^ 0xff), 998, 999);
      assert.equal(c.res.headers.get("x-larder-cache"), "revalidated");
    },
  );
});

const BIG = 8 * 2 ** 20; // a large-file element (over 2 MiB)

Deno.test("RFC 9110 §14.2: ranges of a multi-MB entry read only their chunks from disk, and survive a restart", async () => {
  const big = pattern(BIG);
  await withRig(
    () =>
      new Response(big, {
        headers: { "cache-control": "max-age=600", etag: '"big"' },
      }),
    async (rig) => {
      assert.deepEqual(await bytes(await rig.get("/big")), big);
      await rig.restart(); // persisted: the next reads are from disk
      const read = async (range: string, start: number, end: number) => {
        const before = rig.store.stats().dataBytesRead;
        const got = await ranged(rig, "/big", range);
        assertPartial(got, big, start, end);
        assert.equal(got.res.headers.get("x-larder-cache"), "hit");
        return rig.store.stats().dataBytesRead - before;
      };
      // The first read of the file verifies it whole (FORMAT.md §6.2).
      const first = await read("bytes=5000000-5000099", 5_000_000, 5_000_099);
      assert.ok(first >= BIG && first <= BIG + 2 * 65536, `${first}`);
      // Later ones read only the 64 KiB chunks their range covers.
      const mid = await read("bytes=3000000-3000099", 3_000_000, 3_000_099);
      assert.ok(mid > 0 && mid <= 2 * 65536, `${mid}`);
      const tail = await read("bytes=-100", BIG - 100, BIG - 1);
      assert.ok(tail > 0 && tail <= 65536, `${tail}`);
      const span = await read(
        "bytes=1000000-1299999",
        1_000_000,
        1_299_999,
      );
      assert.ok(span >= 300_000 && span <= 300_000 + 2 * 65536, `${span}`);
      assert.equal(count(rig, "GET /big"), 1);
      await assertReleased(rig);
    },
  );
});

/** A response whose body arrives in `piece`-byte pieces after a pause. */
function slowResponse(
  body: Uint8Array,
  piece: number,
  headers: HeadersInit,
): Response {
  return new Response(
    new ReadableStream<Uint8Array>({
      async start(c) {
        await sleep(300);
        for (let at = 0; at < body.length; at += piece) {
          c.enqueue(body.slice(at, at + piece));
          await sleep(5);
        }
        c.close();
      },
    }),
    {
      headers: { ...headers, "content-length": String(body.length) },
    },
  );
}

Deno.test("RFC 9110 §14.2, RFC 9111 §4: concurrent range requests while the object is filled make one origin request", async () => {
  const SIZE = 4 * 2 ** 20;
  const big = pattern(SIZE);
  await withRig(
    () => slowResponse(big, 256 * 1024, { "cache-control": "max-age=600" }),
    async (rig) => {
      const ranges: [number, number][] = [
        [0, 0],
        [1, 65536],
        [65535, 65537],
        [2_000_000, 2_100_000],
        [SIZE - 1, SIZE - 1],
        [SIZE - 300_000, SIZE - 1],
        [0, SIZE - 1],
        [3_000_000, 3_000_009],
      ];
      const results = await Promise.all([
        ...ranges.map(([a, b]) => ranged(rig, "/fill", `bytes=${a}-${b}`)),
        rig.get("/fill").then(async (res) => ({ res, body: await bytes(res) })),
        ranged(rig, "/fill", `bytes=${SIZE}-`),
      ]);
      ranges.forEach(([a, b], i) => assertPartial(results[i]!, big, a, b));
      const full = results[ranges.length]!;
      assert.equal(full.res.status, 200);
      assert.deepEqual(full.body, big);
      const past = results[ranges.length + 1]!;
      assert.equal(past.res.status, 416);
      assert.equal(past.res.headers.get("content-range"), `bytes */${SIZE}`);
      assert.equal(count(rig, "GET /fill"), 1);
      // The first request led, the others waited for the store.
      const statuses = results.map((r) => r.res.headers.get("x-larder-cache"));
      assert.equal(statuses.filter((s) => s === "miss").length, 1);
      assert.equal(
        statuses.filter((s) => s === "hit").length,
        ranges.length + 1,
      );
      await assertReleased(rig);
    },
  );
});

Deno.test("RFC 9110 §14.2: a client that takes a range of a miss and goes does not stop the store", async () => {
  const SIZE = 3 * 2 ** 20;
  const big = pattern(SIZE);
  await withRig(
    () => slowResponse(big, 128 * 1024, { "cache-control": "max-age=600" }),
    async (rig) => {
      // The range is at the start: its body ends long before the origin's.
      assertPartial(await ranged(rig, "/early", "bytes=0-99"), big, 0, 99);
      await rig.restart(); // waits for the store to end
      const full = await rig.get("/early");
      assert.equal(full.headers.get("x-larder-cache"), "hit");
      assert.deepEqual(await bytes(full), big);
      assert.equal(count(rig, "GET /early"), 1);
    },
  );
});

Deno.test("RFC 9110 §14.2: over a ProxyStore without getRanged, a small body's range is 206, a large one's the full 200", async () => {
  const small = pattern(1000);
  // Over the 2 MiB backingProxyStore's get reads whole (a large file).
  const large = pattern(3 * 2 ** 20);
  const origin = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) =>
      new Response(new URL(req.url).pathname === "/s" ? small : large, {
        headers: { "cache-control": "max-age=600" },
      }),
  );
  await using dir = await tempDir();
  const base = backingProxyStore(await BackingStore.open(dir.path));
  const store: ProxyStore = { ...base, getRanged: undefined };
  const proxy = await createProxy({
    origin: `http://127.0.0.1:${origin.addr.port}`,
    store,
  });
  try {
    const ask = async (path: string, range?: string) => {
      const res = await proxy.handler(
        new Request(`http://proxy${path}`, {
          headers: range === undefined ? {} : { range },
        }),
      );
      return { res, body: await bytes(res) };
    };
    await ask("/s");
    await ask("/l");
    assertPartial(await ask("/s", "bytes=10-19"), small, 10, 19);
    const l = await ask("/l", "bytes=10-19");
    assert.equal(l.res.status, 200);
    assert.equal(l.res.headers.get("x-larder-cache"), "hit");
    assert.deepEqual(l.body, large);
  } finally {
    await proxy.close();
    await origin.shutdown();
  }
});

Deno.test("RFC 9110 §14.1.1: parseRange and ifRangeHolds, case by case", () => {
  const cases: [string, number, RangePlan][] = [
    ["bytes=0-0", 10, { kind: "partial", start: 0, end: 1 }],
    ["bytes=9-9", 10, { kind: "partial", start: 9, end: 10 }],
    ["bytes=9-", 10, { kind: "partial", start: 9, end: 10 }],
    ["bytes=10-", 10, { kind: "unsatisfiable" }],
    ["bytes=0-", 0, { kind: "unsatisfiable" }],
    ["bytes=-1", 0, { kind: "full" }],
    ["bytes=-0", 10, { kind: "unsatisfiable" }],
    ["bytes=-00", 10, { kind: "unsatisfiable" }],
    ["bytes=-11", 10, { kind: "partial", start: 0, end: 10 }],
    ["bytes=007-008", 10, { kind: "partial", start: 7, end: 9 }],
    ["bytes=99999999999999999999-", 10, { kind: "unsatisfiable" }],
    ["bytes=-99999999999999999999", 10, { kind: "partial", start: 0, end: 10 }],
    [" BYTES = 1-2", 10, { kind: "partial", start: 1, end: 3 }],
    [",bytes=1-2", 10, { kind: "full" }],
    ["bytes=1-2,", 10, { kind: "partial", start: 1, end: 3 }],
    ["bytes=1 -2", 10, { kind: "full" }],
    ["bytes=+1-2", 10, { kind: "full" }],
    ["bytes=1-2-3", 10, { kind: "full" }],
    ["bytes 1-2", 10, { kind: "full" }],
    ["bytes=3-1", 10, { kind: "full" }],
    ["bytes=0-1,3-4", 10, { kind: "full" }],
  ];
  for (const [value, size, want] of cases) {
    assert.deepEqual(parseRange(value, size), want, `${value} of ${size}`);
  }
  const h = new Headers({ etag: '"a"', "last-modified": LAST_MODIFIED });
  assert.ok(ifRangeHolds('"a"', h));
  assert.ok(ifRangeHolds(' "a" ', h));
  assert.ok(!ifRangeHolds('"b"', h));
  assert.ok(!ifRangeHolds('W/"a"', h));
  assert.ok(ifRangeHolds(LAST_MODIFIED, h));
  // The same instant in the obsolete RFC 850 form is still that date.
  assert.ok(ifRangeHolds("Tuesday, 01-Dec-26 10:00:00 GMT", h));
  assert.ok(!ifRangeHolds(LAST_MODIFIED, new Headers()));
  assert.ok(!ifRangeHolds('"a"', new Headers()));
});
