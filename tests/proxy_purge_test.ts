// Purging (`PURGE`, `POST <adminPath>purge`) and RFC 9111 §4.4
// invalidation through the caching proxy, against a real origin on
// 127.0.0.1.
import assert from "node:assert/strict";
import { createProxy } from "../src/proxy/mod.ts";
import { tempDir } from "./_helpers.ts";
import { count, type Rig, withRig } from "./_proxy_rig.ts";

const TOKEN = "s3cret-Token_1";
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every path a cacheable text naming itself and the Accept it was asked with. */
const origin = (req: Request) =>
  new Response(`${new URL(req.url).pathname} ${req.headers.get("accept")}`, {
    headers: { "cache-control": "max-age=600" },
  });

/** GETs `path` and reads it; returns its x-larder-cache. */
async function status(
  rig: Rig,
  path: string,
  headers: Record<string, string> = {},
): Promise<string | null> {
  const res = await rig.get(path, { headers });
  await res.text();
  return res.headers.get("x-larder-cache");
}

async function purge(
  rig: Rig,
  path: string,
  headers: Record<string, string> = bearer(TOKEN),
  method = "PURGE",
): Promise<{ status: number; json: unknown; res: Response }> {
  const res = await rig.get(path, { method, headers });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, res };
}

Deno.test("proxy PURGE with the bearer token removes the stored response: 200 {purged: 1}, then 404 {purged: 0}", async () => {
  await withRig(origin, async (rig) => {
    assert.equal(await status(rig, "/a?x=1"), "miss");
    assert.equal(await status(rig, "/a?x=1"), "hit");
    const p = await purge(rig, "/a?x=1");
    assert.equal(p.status, 200);
    assert.deepEqual(p.json, { purged: 1 });
    assert.equal(p.res.headers.get("content-type"), "application/json");
    assert.equal(p.res.headers.get("cache-control"), "no-store");
    assert.equal(await status(rig, "/a?x=1"), "miss");
    // Another query is another URL.
    assert.equal(await status(rig, "/a?x=2"), "miss");
    assert.equal((await purge(rig, "/a?x=3")).status, 404);
    const again = await purge(rig, "/nothing");
    assert.equal(again.status, 404);
    assert.deepEqual(again.json, { purged: 0 });
    assert.equal(count(rig, "GET /a"), 3);
    assert.ok(!rig.seen.some((s) => s.startsWith("PURGE")));
  }, { purgeToken: TOKEN });
});

Deno.test("proxy PURGE without the right token is 401 and purges nothing", async () => {
  await withRig(origin, async (rig) => {
    await status(rig, "/a");
    for (
      const headers of [
        {},
        bearer("wrong"),
        bearer(TOKEN.slice(0, -1)), // a prefix
        bearer(TOKEN + "x"), // longer
        { authorization: `Basic ${btoa(`u:${TOKEN}`)}` },
        { authorization: TOKEN },
      ]
    ) {
      const p = await purge(rig, "/a", headers);
      assert.equal(p.status, 401, JSON.stringify(headers));
      assert.match(p.res.headers.get("www-authenticate") ?? "", /^Bearer/);
    }
    // The scheme is case-insensitive (RFC 9110 §11.1).
    assert.equal(await status(rig, "/a"), "hit");
    const ok = await purge(rig, "/a", { authorization: `bearer ${TOKEN}` });
    assert.equal(ok.status, 200);
    assert.ok(!rig.seen.some((s) => s.startsWith("PURGE")));
  }, { purgeToken: TOKEN });
});

Deno.test("proxy PURGE without a purge token configured is 405, answered by the proxy, never forwarded", async () => {
  await withRig(origin, async (rig) => {
    await status(rig, "/a");
    const p = await purge(rig, "/a");
    assert.equal(p.status, 405);
    const post = await purge(
      rig,
      "/_larder/purge?url=/a",
      bearer(TOKEN),
      "POST",
    );
    assert.equal(post.status, 405);
    assert.equal(await status(rig, "/a"), "hit");
    assert.deepEqual(rig.seen, ["GET /a"]);
  });
});

Deno.test("proxy POST /_larder/purge?url= removes every Vary variant of the URL", async () => {
  await withRig(
    (req) =>
      new Response(`${req.headers.get("accept")}`, {
        headers: { "cache-control": "max-age=600", vary: "accept" },
      }),
    async (rig) => {
      const fill = async () => {
        for (const accept of ["a/b", "c/d", "e/f"]) {
          await status(rig, "/doc?v=1", { accept });
        }
      };
      await fill();
      assert.equal(await status(rig, "/doc?v=1", { accept: "c/d" }), "hit");
      const p = await purge(
        rig,
        `/_larder/purge?url=${encodeURIComponent("/doc?v=1")}`,
        bearer(TOKEN),
        "POST",
      );
      assert.equal(p.status, 200);
      assert.deepEqual(p.json, { purged: 1 });
      for (const accept of ["a/b", "c/d", "e/f"]) {
        assert.equal(await status(rig, "/doc?v=1", { accept }), "miss");
      }
      // The URL may be the proxy's absolute URL (any host: its path
      // counts), or the origin's target URI.
      const port = new URL(rig.proxyUrl).port;
      for (
        const url of [
          `${rig.proxyUrl}/doc?v=1`,
          `http://localhost:${port}/doc?v=1`,
          `${rig.originUrl}/doc?v=1`,
        ]
      ) {
        assert.equal(await status(rig, "/doc?v=1", { accept: "a/b" }), "hit");
        const q = await purge(
          rig,
          `/_larder/purge?url=${encodeURIComponent(url)}`,
          bearer(TOKEN),
          "POST",
        );
        assert.equal(q.status, 200, url);
        assert.equal(await status(rig, "/doc?v=1", { accept: "a/b" }), "miss");
      }
      // The endpoint takes POST only, and needs its url.
      const get = await purge(
        rig,
        "/_larder/purge?url=/doc",
        bearer(TOKEN),
        "GET",
      );
      assert.equal(get.status, 405);
      assert.equal(get.res.headers.get("allow"), "POST");
      const none = await purge(rig, "/_larder/purge", bearer(TOKEN), "POST");
      assert.equal(none.status, 400);
      const unauth = await purge(
        rig,
        "/_larder/purge?url=/doc?v=1",
        {},
        "POST",
      );
      assert.equal(unauth.status, 401);
      assert.ok(!rig.seen.some((s) => s.includes("_larder")));
    },
    { purgeToken: TOKEN },
  );
});

Deno.test("proxy adminPath moves the purge endpoint; false turns it off and such requests go to the origin", async () => {
  const echo = (req: Request) =>
    req.method === "POST"
      ? new Response(`origin got ${new URL(req.url).pathname}`)
      : origin(req);
  await withRig(echo, async (rig) => {
    await status(rig, "/a");
    const moved = await purge(rig, "/ops/purge?url=/a", bearer(TOKEN), "POST");
    assert.equal(moved.status, 200);
    const old = await purge(
      rig,
      "/_larder/purge?url=/a",
      bearer(TOKEN),
      "POST",
    );
    assert.equal(old.json, "origin got /_larder/purge");
  }, { purgeToken: TOKEN, adminPath: "/ops/" });
  await withRig(echo, async (rig) => {
    await status(rig, "/a");
    const off = await purge(
      rig,
      "/_larder/purge?url=/a",
      bearer(TOKEN),
      "POST",
    );
    assert.equal(off.json, "origin got /_larder/purge");
    // PURGE itself still works: it is no admin path.
    assert.equal((await purge(rig, "/a")).status, 200);
  }, { purgeToken: TOKEN, adminPath: false });
});

Deno.test("proxy createProxy refuses an empty purge token or an adminPath not within slashes", async () => {
  await using dir = await tempDir();
  const base = { origin: "http://127.0.0.1:1", dir: dir.path };
  await assert.rejects(createProxy({ ...base, purgeToken: "" }), TypeError);
  for (const adminPath of ["", "_larder/", "/"]) {
    await assert.rejects(createProxy({ ...base, adminPath }), TypeError);
  }
});

/** A response whose 256 KiB body trickles in 16 KiB pieces. */
function slowBody(tag: string): Response {
  return new Response(
    new ReadableStream<Uint8Array>({
      async start(c) {
        for (let i = 0; i < 16; i++) {
          c.enqueue(new Uint8Array(16384).fill(tag.charCodeAt(0)));
          await sleep(20);
        }
        c.close();
      },
    }),
    { headers: { "cache-control": "max-age=600" } },
  );
}

Deno.test("proxy PURGE and RFC 9111 §4.4 during a fill: the response being stored does not come back", async () => {
  for (const how of ["purge", "post"] as const) {
    let version = 0;
    await withRig(
      async (req) => {
        if (req.method === "POST") {
          await req.body?.cancel();
          return new Response("ok");
        }
        version++;
        return slowBody(String(version));
      },
      async (rig) => {
        const res = await rig.get("/f");
        assert.equal(res.headers.get("x-larder-cache"), "miss");
        const reading = res.arrayBuffer(); // the store fills as this reads
        await sleep(60);
        if (how === "purge") {
          const p = await purge(rig, "/f");
          assert.deepEqual(p.json, { purged: 1 });
        } else {
          const post = await rig.get("/f", { method: "POST", body: "x" });
          await post.text();
        }
        await reading;
        await rig.restart(); // waits for the store to end
        const next = await rig.get("/f");
        assert.equal(next.headers.get("x-larder-cache"), "miss", how);
        assert.equal(new Uint8Array(await next.arrayBuffer())[0], 50); // "2"
        assert.equal(count(rig, "GET /f"), 2);
      },
      { purgeToken: TOKEN },
    );
  }
});

Deno.test("RFC 9111 §4.4: a same-origin Content-Location is invalidated; a Location on another origin is not", async () => {
  await withRig(
    async (req) => {
      if (req.method === "PATCH") {
        await req.body?.cancel();
        return new Response(null, {
          status: 204,
          headers: { "content-location": "/cl" },
        });
      }
      if (req.method === "POST") {
        await req.body?.cancel();
        const port = new URL(req.url).port;
        // localhost is another origin than 127.0.0.1 (RFC 6454).
        return new Response(null, {
          status: 303,
          headers: { location: `http://localhost:${port}/elsewhere` },
        });
      }
      return origin(req);
    },
    async (rig) => {
      for (const p of ["/t", "/cl", "/elsewhere"]) await status(rig, p);
      await (await rig.get("/t", { method: "PATCH", body: "x" })).body
        ?.cancel();
      assert.equal(await status(rig, "/t"), "miss"); // the target
      assert.equal(await status(rig, "/cl"), "miss"); // its Content-Location
      assert.equal(await status(rig, "/elsewhere"), "hit");
      const post = await rig.get("/t", {
        method: "POST",
        body: "y",
        redirect: "manual",
      });
      assert.equal(post.status, 303);
      await post.body?.cancel();
      assert.equal(await status(rig, "/t"), "miss"); // a 3xx invalidates too
      assert.equal(await status(rig, "/elsewhere"), "hit");
    },
  );
});

Deno.test("RFC 9111 §4.4: a DELETE that succeeds invalidates; one answered 404 does not", async () => {
  await withRig(
    (req) => {
      if (req.method === "DELETE") {
        const path = new URL(req.url).pathname;
        return new Response(null, { status: path === "/gone" ? 404 : 204 });
      }
      return origin(req);
    },
    async (rig) => {
      await status(rig, "/d");
      await status(rig, "/gone");
      await (await rig.get("/d", { method: "DELETE" })).body?.cancel();
      await (await rig.get("/gone", { method: "DELETE" })).body?.cancel();
      assert.equal(await status(rig, "/d"), "miss");
      assert.equal(await status(rig, "/gone"), "hit");
    },
  );
});
