// Request collapsing (src/proxy/proxy.ts `lead`/`afterFlight`) under the
// conditions that might break it: N concurrent GET misses of one slow
// 256 KiB URL through a real proxy and store, the requests counted at the
// origin.
import assert from "node:assert/strict";
import { parseExposition } from "./_prometheus_parse.ts";
import { count, type Rig, withRig } from "./_proxy_rig.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const KiB = 1024;

/** `size` bytes that differ byte by byte. */
function bytes(size: number, seed = 0): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(size);
  for (let i = 0; i < b.length; i++) b[i] = (i * 31 + (i >> 8) + seed) & 0xff;
  return b;
}

const BODY = bytes(256 * KiB);

/**
 * `BODY` in 16 parts `gapMs` apart, erroring after `cutAt` bytes when
 * given (an origin reset mid-body).
 */
function trickle(gapMs = 10, cutAt?: number): ReadableStream<Uint8Array> {
  const step = BODY.length / 16;
  let at = 0;
  return new ReadableStream({
    async pull(c) {
      if (cutAt !== undefined && at >= cutAt) {
        return c.error(new Error("origin reset mid-body"));
      }
      if (at >= BODY.length) return c.close();
      if (at > 0) await sleep(gapMs);
      c.enqueue(BODY.slice(at, at + step));
      at += step;
    },
  });
}

/** The origin's answer to `/c`: its head after 200 ms, then `BODY`. */
async function slow(
  headers: Record<string, string>,
  opts: { gapMs?: number; cutAt?: number } = {},
): Promise<Response> {
  await sleep(200);
  return new Response(trickle(opts.gapMs, opts.cutAt), {
    headers: { "cache-control": "max-age=600", ...headers },
  });
}

/**
 * `n` GETs of `path`, the i-th sent `i * staggerMs` after the first;
 * their statuses. A 200's body must be `BODY`.
 */
function group(
  rig: Rig,
  path: string,
  n: number,
  opts: { staggerMs?: number; headers?: Record<string, string> } = {},
): Promise<number[]> {
  return Promise.all(Array.from({ length: n }, async (_, i) => {
    await sleep(i * (opts.staggerMs ?? 0));
    const res = await rig.get(path, { headers: opts.headers ?? {} });
    let body: Uint8Array | undefined;
    try {
      body = new Uint8Array(await res.arrayBuffer());
    } catch {
      return -1; // a body cut mid-way
    }
    if (res.status === 200) assert.deepEqual(body, BODY);
    return res.status;
  }));
}

/** The proxy's collapsed-wait counters. */
async function collapsed(rig: Rig): Promise<Record<string, number>> {
  const res = await rig.get("/_larder/metrics");
  const m = parseExposition(await res.text());
  const out: Record<string, number> = {};
  for (const outcome of ["served", "timeout", "forwarded", "gone"]) {
    out[outcome] = m.value("larder_proxy_collapsed_waits_total", { outcome });
  }
  return out;
}

Deno.test("proxy collapse: 16 misses of a slow 256 KiB URL make one origin request", async () => {
  await withRig(() => slow({}), async (rig) => {
    const statuses = await group(rig, "/c", 16);
    assert.deepEqual(statuses, Array(16).fill(200));
    assert.equal(count(rig, "GET /c"), 1);
    assert.deepEqual(await collapsed(rig), {
      served: 15,
      timeout: 0,
      forwarded: 0,
      gone: 0,
    });
  });
});

Deno.test("proxy collapse: misses that come after the flight's head, before its body ends, make no origin request", async () => {
  // The body takes 16 × 40 ms; one miss every 30 ms.
  await withRig(() => slow({}, { gapMs: 40 }), async (rig) => {
    await group(rig, "/c", 16, { staggerMs: 30 });
    assert.equal(count(rig, "GET /c"), 1);
  });
});

Deno.test("proxy collapse: the first client leaving mid-body does not send the others to the origin", async () => {
  await withRig(() => slow({}), async (rig) => {
    const { port } = new URL(rig.proxyUrl);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: +port });
    await conn.write(
      new TextEncoder().encode("GET /c HTTP/1.1\r\nHost: x\r\n\r\n"),
    );
    await sleep(20);
    const others = group(rig, "/c", 15);
    await conn.read(new Uint8Array(1000));
    conn.close();
    assert.deepEqual(await others, Array(15).fill(200));
    assert.equal(count(rig, "GET /c"), 1);
  });
});

Deno.test("proxy collapse: a Vary response is one origin request for misses with the same field", async () => {
  await withRig(
    () => slow({ vary: "Accept-Language", etag: '"c1"' }),
    async (rig) => {
      await group(rig, "/c", 16, { headers: { "accept-language": "fr" } });
      assert.equal(count(rig, "GET /c"), 1);
    },
  );
});

Deno.test("proxy collapse: one origin request while other fills evict (a 1.5 MiB limit)", async () => {
  await withRig(
    (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/c") return slow({});
      return new Response(bytes(300 * KiB, path.length), {
        headers: { "cache-control": "max-age=600" },
      });
    },
    async (rig) => {
      let filling = true;
      const other = (async () => {
        for (let i = 0; filling; i++) await (await rig.get(`/o${i}`)).bytes();
      })();
      await group(rig, "/c", 16);
      filling = false;
      await other;
      assert.ok(count(rig, "GET /o1") === 1 && rig.seen.length > 5);
      assert.equal(count(rig, "GET /c"), 1);
    },
    { storeOptions: { limit: 1536 * KiB } },
  );
});

/**
 * The origin of the eviction tests: `/c` as `answer` gives it, other
 * paths 300 KiB each, and POST 204.
 */
function withOthers(
  answer: (req: Request) => Promise<Response>,
): (req: Request) => Response | Promise<Response> {
  return (req) => {
    const path = new URL(req.url).pathname;
    if (req.method === "POST") return new Response(null, { status: 204 });
    if (path === "/c") return answer(req);
    return new Response(bytes(300 * KiB, path.length), {
      headers: { "cache-control": "max-age=600" },
    });
  };
}

/**
 * Fills a 1.5 MiB store with three 300 KiB entries, each read once more
 * than a new one; then, once, right after the first entry stored under a
 * key `match` takes, runs `then` (by default, the soak's churn: another
 * store of 400 KiB, whose eviction takes the new entry, the lowest use
 * count of all). Returns whether it ran.
 */
async function afterFirstStore(
  rig: Rig,
  match: (key: string) => boolean,
  then?: () => Promise<void>,
): Promise<() => boolean> {
  for (const p of ["/o0", "/o1", "/o2"]) {
    for (let n = 0; n < 2; n++) await (await rig.get(p)).bytes();
  }
  const store = rig.store;
  const storeEntry = store.storeEntry.bind(store);
  let armed = true;
  store.storeEntry = async (key, data, meta) => {
    await storeEntry(key, data, meta);
    if (armed && typeof key === "string" && match(key)) {
      armed = false;
      if (then !== undefined) return await then();
      const before = store.stats().evictions;
      await storeEntry("~other", bytes(400 * KiB));
      assert.ok(store.stats().evictions > before);
    }
  };
  return () => !armed;
}

/** The Vary-less entry of `/c`. */
const isC = (key: string) => key.startsWith("~px/r/") && key.endsWith("/c");

Deno.test("proxy collapse: a response evicted for another store before the waiters look it up is answered to them from the flight's own bytes: one origin request", async () => {
  // The soak's churn (a 64 MiB limit, 700 req/s): the flight's response is
  // stored, then, before the waiters' lookups, an eviction makes room for
  // another store. The new entry has the lowest use count of all, so it
  // is the victim. Before the fix: 16 origin requests, every waiter
  // forwarded at once; then 2, the waiters collapsing once more
  // (`outcome="gone"`); now the flight keeps the body for its waiters.
  await withRig(
    withOthers(() => slow({ etag: '"c1"' })),
    async (rig) => {
      const ran = await afterFirstStore(rig, isC);
      const leader = group(rig, "/c", 1);
      await sleep(50); // the leader's origin head takes 200 ms
      const [statuses, ranged, conditional, hits] = await Promise.all([
        group(rig, "/c", 13),
        rig.get("/c", { headers: { range: "bytes=1000-1999" } }),
        rig.get("/c", { headers: { "if-none-match": '"c1"' } }),
        rig.get("/c"),
      ]);
      assert.deepEqual([...await leader, ...statuses], Array(14).fill(200));
      assert.equal(ranged.status, 206);
      assert.equal(
        ranged.headers.get("content-range"),
        `bytes 1000-1999/${BODY.length}`,
      );
      assert.deepEqual(await ranged.bytes(), BODY.slice(1000, 2000));
      assert.equal(conditional.status, 304);
      assert.equal(conditional.headers.get("x-larder-cache"), "hit");
      await conditional.body?.cancel();
      // What a hit from the store gives.
      assert.equal(hits.headers.get("x-larder-cache"), "hit");
      assert.equal(hits.headers.get("accept-ranges"), "bytes");
      assert.equal(hits.headers.get("content-length"), String(BODY.length));
      assert.match(hits.headers.get("age") ?? "", /^\d+$/);
      assert.deepEqual(await hits.bytes(), BODY);
      assert.equal(ran(), true);
      assert.equal(count(rig, "GET /c"), 1);
      assert.deepEqual(await collapsed(rig), {
        served: 16,
        timeout: 0,
        forwarded: 0,
        gone: 0,
      });
      // It was gone from the store: a later miss goes to the origin.
      const again = await rig.get("/c");
      assert.equal(again.headers.get("x-larder-cache"), "miss");
      assert.deepEqual(await again.bytes(), BODY);
      assert.equal(count(rig, "GET /c"), 2);
    },
    { storeOptions: { limit: 1536 * KiB } },
  );
});

Deno.test("proxy collapse: an evicted Vary response answers the waiters that select it from the flight's bytes; one that selects another variant gets its own from the origin", async () => {
  const body = (lang: string) => bytes(256 * KiB, lang === "fr" ? 1 : 2);
  await withRig(
    withOthers(async (req) => {
      await sleep(200);
      const lang = req.headers.get("accept-language") ?? "";
      return new Response(body(lang), {
        headers: {
          "cache-control": "max-age=600",
          vary: "Accept-Language",
          "content-language": lang,
        },
      });
    }),
    async (rig) => {
      const ran = await afterFirstStore(rig, (k) => k.includes("/c\n"));
      const get = async (lang: string) => {
        const res = await rig.get("/c", {
          headers: { "accept-language": lang },
        });
        return {
          lang,
          status: res.status,
          cache: res.headers.get("x-larder-cache"),
          language: res.headers.get("content-language"),
          body: await res.bytes(),
        };
      };
      const leader = get("fr");
      await sleep(50);
      const waiters = await Promise.all([
        ...Array.from({ length: 14 }, () => get("fr")),
        get("de"),
      ]);
      const all = [await leader, ...waiters];
      for (const r of all) {
        assert.equal(r.status, 200);
        assert.equal(r.language, r.lang);
        assert.deepEqual(r.body, body(r.lang), `${r.lang}: its own variant`);
      }
      assert.equal(ran(), true);
      assert.deepEqual(all.map((r) => r.cache), [
        "miss",
        ...Array(14).fill("hit"),
        "miss",
      ]);
      // The fr flight, and the de waiter's own.
      assert.equal(count(rig, "GET /c"), 2);
      assert.deepEqual(await collapsed(rig), {
        served: 14,
        timeout: 0,
        forwarded: 1,
        gone: 0,
      });
    },
    { storeOptions: { limit: 1536 * KiB } },
  );
});

Deno.test("proxy collapse: a waiter that came after the body began finds the evicted response gone and collapses once more: two origin requests", async () => {
  // Only waiters there at the body's first byte have it kept for them.
  await withRig(
    withOthers(() => slow({}, { gapMs: 40 })),
    async (rig) => {
      const ran = await afterFirstStore(rig, isC);
      const leader = group(rig, "/c", 1);
      await sleep(400); // the head at 200 ms, the body till 800 ms
      const statuses = await group(rig, "/c", 4);
      assert.deepEqual([...await leader, ...statuses], Array(5).fill(200));
      assert.equal(ran(), true);
      assert.equal(count(rig, "GET /c"), 2);
      assert.deepEqual(await collapsed(rig), {
        served: 3,
        timeout: 0,
        forwarded: 0,
        gone: 4,
      });
    },
    { storeOptions: { limit: 1536 * KiB } },
  );
});

Deno.test("proxy collapse: a response invalidated before the waiters look it up is not answered from the flight's bytes", async () => {
  // An unsafe request for the URL between the store and the lookups: the
  // bytes the flight kept go too, and the waiters collapse once more.
  await withRig(
    withOthers(() => slow({})),
    async (rig) => {
      const ran = await afterFirstStore(rig, isC, async () => {
        const res = await rig.get("/c", { method: "POST", body: "x" });
        assert.equal(res.status, 204);
      });
      const leader = group(rig, "/c", 1);
      await sleep(50);
      const statuses = await group(rig, "/c", 15);
      assert.deepEqual([...await leader, ...statuses], Array(16).fill(200));
      assert.equal(ran(), true);
      assert.equal(count(rig, "POST /c"), 1);
      assert.equal(count(rig, "GET /c"), 2);
      assert.deepEqual(await collapsed(rig), {
        served: 14,
        timeout: 0,
        forwarded: 0,
        gone: 15,
      });
    },
  );
});

Deno.test("proxy collapse: the first's origin body cut mid-way sends the others to one new origin request, not each their own", async () => {
  // Before the fix: 16 origin requests (every waiter forwarded at once).
  await withRig(
    (_req, n) => slow({}, n === 1 ? { cutAt: 100 * KiB } : {}),
    async (rig) => {
      const statuses = await group(rig, "/c", 16);
      assert.equal(statuses.filter((s) => s === 200).length, 15);
      assert.equal(count(rig, "GET /c"), 2);
      assert.deepEqual(await collapsed(rig), {
        served: 14,
        timeout: 0,
        forwarded: 1,
        gone: 0,
      });
    },
  );
});

Deno.test("proxy collapse: the first's origin head past originTimeoutMs sends the others to one new origin request", async () => {
  // The soak's setting: 2000 ms there, a loaded proxy; 300 ms here.
  await withRig(
    async (_req, n) => {
      if (n === 1) await sleep(500);
      return slow({});
    },
    async (rig) => {
      const statuses = await group(rig, "/c", 16);
      assert.equal(statuses[0], 504);
      assert.deepEqual(statuses.slice(1), Array(15).fill(200));
      assert.equal(count(rig, "GET /c"), 2);
    },
    { originTimeoutMs: 300 },
  );
});

for (
  const [what, headers, gapMs] of [
    ["not storable (no-store)", { "cache-control": "no-store" }, 10],
    ["stale on arrival (Age past max-age)", {
      "cache-control": "max-age=60",
      age: "100",
    }, 10],
    // 16 × 80 ms: stored a second after its head, stale by then.
    ["stale once stored (max-age=1, a slow body)", {
      "cache-control": "max-age=1",
    }, 80],
  ] as const
) {
  Deno.test(`proxy collapse: a response ${what} sends each waiter to the origin, counted as forwarded`, async () => {
    await withRig(() => slow(headers, { gapMs }), async (rig) => {
      await group(rig, "/c", 16);
      assert.equal(count(rig, "GET /c"), 16);
      assert.deepEqual(await collapsed(rig), {
        served: 0,
        timeout: 0,
        forwarded: 15,
        gone: 0,
      });
    });
  });
}

Deno.test("proxy collapse: 64 misses of a slow URL make one origin request, 6 rounds", async () => {
  await withRig(() => slow({}), async (rig) => {
    for (let round = 0; round < 6; round++) {
      const statuses = await group(rig, `/c?r=${round}`, 64);
      assert.deepEqual(statuses, Array(64).fill(200));
      assert.equal(
        rig.seen.length,
        round + 1,
        `round ${round}: ${rig.seen.length - round} origin requests`,
      );
    }
  });
});
