// The proxy's admin endpoints (status page, metrics, health) over real
// servers on 127.0.0.1: answered by the proxy, never forwarded nor stored,
// configurable, off with `adminPath: false`, behind a token when one is set.
import assert from "node:assert/strict";
import { formatBytes } from "../src/proxy/_status_page.ts";
import { BackingStore, StoreError } from "../mod.ts";
import { backingProxyStore, createProxy } from "../src/proxy/mod.ts";
import type { ProxyOptions } from "../src/proxy/proxy.ts";
import { parseExposition } from "./_prometheus_parse.ts";
import { tempDir } from "./_helpers.ts";
import {
  type OriginHandler,
  type Rig,
  withRig as sharedRig,
} from "./_proxy_rig.ts";

/** The origin: `?size=` bytes, `/stream` without a length, `/slow` late. */
const adminOrigin: OriginHandler = (req) => {
  const u = new URL(req.url);
  const size = Number(u.searchParams.get("size") ?? 5);
  if (u.pathname === "/stream") {
    // No Content-Length: the proxy counts the bytes as they go.
    const half = new Uint8Array(size / 2).fill(121);
    return new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(half);
          c.enqueue(half);
          c.close();
        },
      }),
      { headers: { "cache-control": "max-age=60" } },
    );
  }
  if (u.pathname.startsWith("/slow")) {
    return new Promise((r) =>
      setTimeout(
        () =>
          r(
            new Response("slow", {
              headers: { "cache-control": "max-age=60" },
            }),
          ),
        200,
      )
    );
  }
  return new Response(new Uint8Array(size).fill(120), {
    headers: {
      "cache-control": u.pathname.startsWith("/nostore")
        ? "no-store"
        : "max-age=60",
    },
  });
};

function withRig(
  fn: (rig: Rig) => Promise<void>,
  extra: Partial<ProxyOptions> = {},
): Promise<void> {
  return sharedRig(adminOrigin, fn, {
    storeOptions: { limit: 64 * 2 ** 20 },
    ...extra,
  });
}

async function text(res: Response | Promise<Response>): Promise<string> {
  return await (await res).text();
}

Deno.test("admin status page: HTML with inline plots, no external asset, never forwarded", async () => {
  await withRig(async (rig) => {
    for (let round = 0; round < 3; round++) {
      for (const size of [10, 3000, 70_000, 300_000]) {
        await text(rig.get(`/obj${size}?size=${size}`));
      }
    }
    await text(rig.get("/nostore"));
    await text(rig.get('/q?a=<i>&b="x"'));
    const res = await rig.get("/_larder/");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(res.headers.get("cache-control"), "no-store");
    assert.equal(res.headers.get("x-larder-cache"), null);
    const html = await res.text();
    assert.match(html, /^<!doctype html>/);
    assert.ok(!/<(script|img|iframe|object)\b/i.test(html), "no script");
    // Links only to the admin paths and an empty icon (so that a browser
    // asks the origin for no /favicon.ico).
    const refs = [...html.matchAll(/\s(?:src|href)="([^"]*)"/g)].map((m) =>
      m[1]
    );
    assert.deepEqual(refs, ["data:,", "/_larder/metrics", "/_larder/health"]);
    assert.ok(!html.includes("<i>"), "keys are escaped");
    // The store against its limit as the limit counts it: disk bytes.
    const disk = rig.store.stats().diskBytes;
    assert.ok(disk > 0);
    assert.ok(
      html.includes(`${formatBytes(disk)} on disk of 64.0 MiB (`),
      "disk bytes against the limit",
    );
    for (
      const plot of [
        "hit-ratio",
        "requests",
        "bytes",
        "entry-sizes",
        "entry-ages",
      ]
    ) {
      const m = new RegExp(`data-plot="${plot}"[^>]*data-points="(\\d+)"`)
        .exec(html);
      assert.ok(m !== null, plot);
      assert.ok(Number(m[1]) > 0, `${plot} has data points`);
    }
    // The five URLs stored, by size: /q and /obj10, then one a bar.
    const sizes = /data-plot="entry-sizes"[\s\S]*?<\/svg>/.exec(html)![0];
    assert.deepEqual(
      [...sizes.matchAll(/<rect class="bar" data-count="(\d+)"/g)].map((m) =>
        Number(m[1])
      ),
      [2, 1, 1, 1],
    );
    // Top keys: the objects hit twice each.
    assert.match(
      html,
      /<td class="k">\/obj3000\?size=3000<\/td><td class="n">2<\/td>/,
    );
    // The admin request reached neither the origin nor the log of requests.
    assert.ok(!rig.seen.some((s) => s.includes("_larder")));
    const again = await text(rig.get("/_larder/"));
    assert.match(again, /<b>14<\/b><span>requests<\/span>/);
  });
});

Deno.test("admin metrics: Prometheus text format, counters that grow", async () => {
  await withRig(async (rig) => {
    await text(rig.get("/a?size=100"));
    await text(rig.get("/a?size=100"));
    const first = await rig.get("/_larder/metrics");
    assert.equal(first.status, 200);
    assert.match(
      first.headers.get("content-type") ?? "",
      /^text\/plain; version=0\.0\.4/,
    );
    const one = parseExposition(await first.text());
    assert.equal(
      one.value("larder_proxy_requests_total", { cache: "miss" }),
      1,
    );
    assert.equal(one.value("larder_proxy_requests_total", { cache: "hit" }), 1);
    assert.equal(one.value("larder_proxy_origin_requests_total", {}), 1);
    assert.equal(
      one.value("larder_proxy_body_bytes_total", { source: "cache" }),
      100,
    );
    assert.equal(
      one.value("larder_proxy_body_bytes_total", { source: "origin" }),
      100,
    );
    assert.equal(one.value("larder_store_entries", {}), 1);
    assert.equal(one.value("larder_store_limit_bytes", {}), 64 * 2 ** 20);
    assert.ok(one.value("larder_store_bytes", {}) > 100);
    // Collapsed misses: four at once for a slow URL, one origin request.
    await Promise.all(
      Array.from({ length: 4 }, () => text(rig.get("/slow"))),
    );
    await text(rig.get("/a?size=100"));
    await text(rig.get("/nostore?size=7"));
    const streamed = await rig.get("/stream?size=3000");
    assert.equal(streamed.headers.get("content-length"), null);
    assert.equal((await streamed.arrayBuffer()).byteLength, 3000);
    const two = parseExposition(await text(rig.get("/_larder/metrics")));
    two.assertCountersGrew(one);
    assert.equal(
      two.value("larder_proxy_collapsed_waits_total", { outcome: "served" }),
      3,
    );
    assert.equal(
      two.value("larder_proxy_requests_total", { cache: "bypass" }),
      1,
    );
    assert.equal(two.value("larder_proxy_requests_total", { cache: "hit" }), 5);
    assert.equal(
      two.value("larder_proxy_body_bytes_total", { source: "origin" }),
      100 + 4 + 7 + 3000,
    );
    assert.equal(
      two.value("larder_proxy_response_seconds_count", { cache: "hit" }),
      5,
    );
    assert.equal(rig.seen.filter((s) => s === "GET /slow").length, 1);
    // Admin requests are not counted as proxied requests.
    const total = ["hit", "stale", "revalidated", "miss", "bypass", "error"]
      .reduce(
        (a, c) => a + two.value("larder_proxy_requests_total", { cache: c }),
        0,
      );
    assert.equal(total, 9);
  });
});

Deno.test("admin metrics count an origin that is not there", async () => {
  await using dir = await tempDir();
  // A port with nothing listening: bind one, close it.
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const proxy = await createProxy({
    origin: `http://127.0.0.1:${port}`,
    dir: dir.path,
  });
  try {
    const res = await proxy.handler(new Request("http://p/x"));
    assert.equal(res.status, 502);
    await res.body?.cancel();
    const m = await proxy.handler(new Request("http://p/_larder/metrics"));
    const e = parseExposition(await m.text());
    assert.equal(
      e.value("larder_proxy_origin_errors_total", { kind: "unreachable" }),
      1,
    );
    assert.equal(e.value("larder_proxy_requests_total", { cache: "error" }), 1);
  } finally {
    await proxy.close();
  }
});

Deno.test("admin health: ok while the store works, 503 when it does not", async (t) => {
  await t.step("ok, then closing", async () => {
    await withRig(async (rig) => {
      const res = await rig.get("/_larder/health");
      assert.equal(res.status, 200);
      assert.equal(
        res.headers.get("content-type"),
        "application/json; charset=utf-8",
      );
      const body = await res.json();
      assert.equal(body.status, "ok");
      assert.equal(body.store.limit, 64 * 2 ** 20);
      const head = await rig.get("/_larder/health", { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(await head.text(), "");
      await rig.proxy.close();
      const after = await rig.get("/_larder/health");
      assert.equal(after.status, 503);
      assert.equal((await after.json()).status, "closing");
    });
  });
  await t.step("a store closed under the proxy", async () => {
    await using dir = await tempDir();
    const store = await BackingStore.open(dir.path);
    const proxy = await createProxy({
      origin: "http://127.0.0.1:9",
      store: backingProxyStore(store),
    });
    try {
      const ok = await proxy.handler(new Request("http://p/_larder/health"));
      assert.equal(ok.status, 200);
      await ok.body?.cancel();
      await store.close();
      const res = await proxy.handler(new Request("http://p/_larder/health"));
      assert.equal(res.status, 503);
      const body = await res.json();
      assert.deepEqual([body.status, body.error], ["unavailable", "CLOSED"]);
    } finally {
      await proxy.close();
    }
  });
  await t.step("a store directory moved away", async () => {
    await using dir = await tempDir();
    const storeDir = `${dir.path}/store`;
    const proxy = await createProxy({
      origin: "http://127.0.0.1:9",
      dir: storeDir,
    });
    await Deno.rename(storeDir, `${dir.path}/moved`);
    // The store checks its directory every 64th call.
    let status = 200;
    let body: { status?: string; error?: string } = {};
    for (let i = 0; i < 70 && status === 200; i++) {
      const res = await proxy.handler(new Request("http://p/_larder/health"));
      status = res.status;
      body = await res.json();
    }
    assert.equal(status, 503);
    assert.deepEqual([body.status, body.error], ["unavailable", "REPLACED"]);
    const still = await proxy.handler(new Request("http://p/_larder/health"));
    assert.equal(still.status, 503);
    await still.body?.cancel();
    // Closing a store whose directory went away says so.
    await assert.rejects(proxy.close(), StoreError, "removed or replaced");
  });
});

Deno.test("admin health: no store lookup counted, no request counted", async () => {
  await withRig(async (rig) => {
    await text(rig.get("/a?size=10"));
    await text(rig.get("/a?size=10")); // a hit
    await text(rig.get("/b?size=10"));
    const counts = () => {
      const s = rig.store.stats();
      return [s.hits, s.misses, s.hitBytes, s.dataBytesRead];
    };
    const metrics = async () =>
      (await text(rig.get("/_larder/metrics"))).split("\n").filter((l) =>
        l.startsWith("larder_proxy_requests_total") ||
        l.startsWith("larder_proxy_body_bytes_total")
      ).join("\n");
    const before = counts();
    const metricsBefore = await metrics();
    assert.ok(before[0]! > 0 && before[1]! > 0, "the traffic was counted");
    for (let i = 0; i < 5; i++) {
      const res = await rig.get("/_larder/health");
      assert.equal(res.status, 200);
      assert.equal((await res.json()).status, "ok");
      const head = await rig.get("/_larder/health", { method: "HEAD" });
      await head.body?.cancel();
    }
    assert.deepEqual(counts(), before);
    assert.equal(await metrics(), metricsBefore);
  });
});

Deno.test("admin paths: only GET and HEAD, 404 for others under the prefix, a redirect without the slash", async () => {
  await withRig(async (rig) => {
    const post = await rig.get("/_larder/metrics", {
      method: "POST",
      body: "x",
    });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    await post.body?.cancel();
    const missing = await rig.get("/_larder/nope");
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
    const bare = await rig.get("/_larder", { redirect: "manual" });
    assert.equal(bare.status, 308);
    assert.equal(bare.headers.get("location"), "/_larder/");
    await bare.body?.cancel();
    assert.deepEqual(rig.seen, []);
  });
});

Deno.test("admin paths are configurable and false turns them off", async (t) => {
  await t.step("another path", async () => {
    await withRig(async (rig) => {
      const res = await rig.get("/ops/admin/health");
      assert.equal(res.status, 200);
      assert.equal((await res.json()).status, "ok");
      const page = await text(rig.get("/ops/admin/"));
      assert.match(page, /href="\/ops\/admin\/metrics"/);
      // The default path is the origin's now.
      await text(rig.get("/_larder/health"));
      assert.deepEqual(rig.seen, ["GET /_larder/health"]);
    }, { adminPath: "/ops/admin" });
  });
  await t.step("off: forwarded and cached like any other path", async () => {
    await withRig(async (rig) => {
      const first = await rig.get("/_larder/metrics");
      assert.equal(first.headers.get("x-larder-cache"), "miss");
      await first.body?.cancel();
      const second = await rig.get("/_larder/metrics");
      assert.equal(second.headers.get("x-larder-cache"), "hit");
      await second.body?.cancel();
      assert.deepEqual(rig.seen, ["GET /_larder/metrics"]);
    }, { adminPath: false });
  });
  await t.step("bad paths", async () => {
    await using dir = await tempDir();
    for (
      const adminPath of ["", "/", "_larder/", "/a/../b/", "/a?b", "/a b/"]
    ) {
      await assert.rejects(
        createProxy({ origin: "http://127.0.0.1:9", dir: dir.path, adminPath }),
        TypeError,
        "adminPath",
      );
    }
    await assert.rejects(
      createProxy({
        origin: "http://127.0.0.1:9",
        dir: dir.path,
        adminToken: "",
      }),
      TypeError,
      "adminToken",
    );
  });
});

Deno.test("admin token: page and metrics want it, health does not", async () => {
  await withRig(async (rig) => {
    for (const path of ["/_larder/", "/_larder/metrics"]) {
      const none = await rig.get(path);
      assert.equal(none.status, 401);
      assert.match(none.headers.get("www-authenticate") ?? "", /^Basic /);
      await none.body?.cancel();
      const wrong = await rig.get(path, {
        headers: { authorization: "Bearer s3cre" },
      });
      assert.equal(wrong.status, 401);
      await wrong.body?.cancel();
      const bearer = await rig.get(path, {
        headers: { authorization: "Bearer s3cret" },
      });
      assert.equal(bearer.status, 200);
      await bearer.body?.cancel();
      const basic = await rig.get(path, {
        headers: { authorization: `Basic ${btoa("admin:s3cret")}` },
      });
      assert.equal(basic.status, 200);
      await basic.body?.cancel();
    }
    const health = await rig.get("/_larder/health");
    assert.equal(health.status, 200);
    await health.body?.cancel();
    assert.deepEqual(rig.seen, []);
  }, { adminToken: "s3cret" });
});

Deno.test("admin after a restart: hits refill the entry sample, a streamed body's size from its Content-Length", async () => {
  await using dir = await tempDir();
  const origin = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () =>
      new Response(new Uint8Array(300_000), {
        headers: { "cache-control": "max-age=600" },
      }),
  );
  const open = () =>
    createProxy({
      origin: `http://127.0.0.1:${origin.addr.port}`,
      dir: dir.path,
    });
  try {
    const first = await open();
    await (await first.handler(new Request("http://p/big"))).arrayBuffer();
    await first.close();
    const second = await open();
    try {
      const hit = await second.handler(new Request("http://p/big"));
      assert.equal(hit.headers.get("x-larder-cache"), "hit");
      assert.equal((await hit.arrayBuffer()).byteLength, 300_000);
      const html = await (await second.handler(
        new Request("http://p/_larder/"),
      )).text();
      const sizes = /data-plot="entry-sizes"[\s\S]*?<\/svg>/.exec(html)![0];
      assert.match(
        sizes,
        /<rect class="bar" data-count="1"[^>]*><title>256K–1M: 1</,
      );
      const m = parseExposition(
        await (await second.handler(new Request("http://p/_larder/metrics")))
          .text(),
      );
      assert.equal(
        m.value("larder_proxy_body_bytes_total", { source: "cache" }),
        300_000,
      );
    } finally {
      await second.close();
    }
  } finally {
    await origin.shutdown();
  }
});
