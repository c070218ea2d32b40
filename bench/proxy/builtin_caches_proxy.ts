/**
 * The simplest caching proxy a Deno program can write without larder:
 * `Deno.serve` over Deno's built-in Web Cache API (`caches`). A hit is
 * `cache.match`; a miss is forwarded with `fetch`, its body read whole and
 * `cache.put` before the response is sent (status 200 only). No freshness,
 * no revalidation, no `Vary` beyond what `match` does, no collapsing of
 * concurrent misses. A peer of bench/proxy/run.ts.
 *
 * Usage: deno run --allow-net=127.0.0.1 builtin_caches_proxy.ts ORIGIN PORT
 *
 * @module
 */
const origin = Deno.args[0] ?? "http://127.0.0.1:8000";
const port = Number(Deno.args[1] ?? 8082);
const cache = await caches.open("bench");

Deno.serve({
  hostname: "127.0.0.1",
  port,
  onListen: (a) => console.log(`builtin caches proxy on ${a.port}`),
}, async (req) => {
  const hit = await cache.match(req);
  if (hit !== undefined) {
    const h = new Headers(hit.headers);
    h.set("x-cache", "hit");
    return new Response(hit.body, { status: hit.status, headers: h });
  }
  const u = new URL(req.url);
  const res = await fetch(origin + u.pathname + u.search);
  const body = await res.arrayBuffer();
  if (res.status === 200) {
    await cache.put(
      req,
      new Response(body, { status: 200, headers: res.headers }),
    );
  }
  const h = new Headers(res.headers);
  h.set("x-cache", "miss");
  return new Response(body, { status: res.status, headers: h });
});
