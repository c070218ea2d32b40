// The caching proxy against a real origin (Deno.serve on 127.0.0.1) for the
// behaviours an HTTP caching conformance run exercises beyond
// tests/proxy_test.ts. Each test names the RFC section it checks; the cases
// are written from the RFCs.
import assert from "node:assert/strict";
import { createProxy } from "../src/proxy/mod.ts";
import type { ProxyOptions } from "../src/proxy/proxy.ts";
import { tempDir } from "./_helpers.ts";

type OriginHandler = (req: Request, n: number) => Response | Promise<Response>;

interface Rig {
  /** Requests the origin has seen, as `METHOD /path`. */
  seen: string[];
  /** Sends a request to the proxy over HTTP. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
}

async function withRig(
  originHandler: OriginHandler,
  fn: (rig: Rig) => Promise<void>,
  extra: Partial<ProxyOptions> = {},
): Promise<void> {
  await using dir = await tempDir();
  const seen: string[] = [];
  const origin = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => {
      seen.push(`${req.method} ${new URL(req.url).pathname}`);
      return originHandler(req, seen.length);
    },
  );
  const proxy = await createProxy({
    origin: `http://127.0.0.1:${origin.addr.port}`,
    dir: dir.path,
    storeOptions: { limit: 64 * 2 ** 20 },
    ...extra,
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req, info) => proxy.handler(req, info),
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  try {
    await fn({ seen, fetch: (path, init) => fetch(base + path, init) });
  } finally {
    await server.shutdown();
    await proxy.close();
    await origin.shutdown();
  }
}

/** GETs `path` twice; gives the cache status of each answer. */
async function twice(rig: Rig, path: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < 2; i++) {
    const res = await rig.fetch(path);
    await res.body?.cancel();
    out.push(res.headers.get("x-larder-cache") ?? "-");
  }
  return out;
}

Deno.test("proxy RFC 9110 §15.3.5: a stored 204 is served from the store without content", async () => {
  await withRig(
    () =>
      new Response(null, {
        status: 204,
        headers: { "cache-control": "max-age=600", "x-n": "1" },
      }),
    async (rig) => {
      for (const status of ["miss", "hit", "hit"]) {
        const res = await rig.fetch("/empty");
        assert.equal(res.status, 204);
        assert.equal(await res.text(), "");
        assert.equal(res.headers.get("x-larder-cache"), status);
        assert.equal(res.headers.get("x-n"), "1");
      }
      const head = await rig.fetch("/empty", { method: "HEAD" });
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
