/**
 * The origin the proxy's micro-benchmarks stand in front of: `Deno.serve`
 * on a free loopback port answering every request with `body`, fresh for
 * a day, plus any `extra` header fields.
 *
 * @module
 */

/** Serves `body` for every request; close it with `shutdown()`. */
export function fixedOrigin(
  body: Uint8Array<ArrayBuffer>,
  extra: Record<string, string> = {},
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () =>
      new Response(body, {
        headers: {
          "content-type": "application/octet-stream",
          "cache-control": "public, max-age=86400",
          ...extra,
        },
      }),
  );
}
