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

Deno.test("proxy collapse: a response evicted for another store before the waiters look it up sends them to one new origin request, not each their own", async () => {
  // The soak's churn (a 64 MiB limit, 700 req/s): the flight's response is
  // stored, then, before the waiters' lookups, an eviction makes room for
  // another store. The new entry has the lowest use count of all, so it
  // is the victim. Before the fix: 16 origin requests, every waiter
  // forwarded at once.
  await withRig(
    (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/c") return slow({});
      return new Response(bytes(300 * KiB, path.length), {
        headers: { "cache-control": "max-age=600" },
      });
    },
    async (rig) => {
      // Three 300 KiB entries, each read once more than the new one.
      for (const p of ["/o0", "/o1", "/o2"]) {
        for (let n = 0; n < 2; n++) await (await rig.get(p)).bytes();
      }
      const store = rig.store;
      const storeEntry = store.storeEntry.bind(store);
      let evicting = true;
      store.storeEntry = async (key, data, meta) => {
        await storeEntry(key, data, meta);
        if (evicting && typeof key === "string" && key.endsWith("/c")) {
          evicting = false;
          const before = store.stats().evictions;
          await storeEntry("~other", bytes(400 * KiB));
          assert.ok(store.stats().evictions > before);
        }
      };
      const statuses = await group(rig, "/c", 16);
      assert.deepEqual(statuses, Array(16).fill(200));
      assert.equal(evicting, false);
      assert.equal(count(rig, "GET /c"), 2);
      assert.deepEqual(await collapsed(rig), {
        served: 14,
        timeout: 0,
        forwarded: 0,
        gone: 15,
      });
      // The second fill stayed: a later miss is a hit.
      const again = await rig.get("/c");
      assert.equal(again.headers.get("x-larder-cache"), "hit");
      await again.bytes();
      assert.equal(count(rig, "GET /c"), 2);
    },
    { storeOptions: { limit: 1536 * KiB } },
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
