/**
 * The ceiling of any Deno.serve proxy: `Deno.serve` answering every
 * request with one constant body of SIZE bytes, no cache at all. A
 * reference line of bench/proxy/run.ts.
 *
 * Usage: deno run --allow-net=127.0.0.1 bare_serve.ts PORT
 * (the body's size is the URL's first number: /o/1024/7 gets 1,024 bytes)
 *
 * @module
 */
const port = Number(Deno.args[0] ?? 8083);
const bodies = new Map<number, Uint8Array<ArrayBuffer>>();

Deno.serve({
  hostname: "127.0.0.1",
  port,
  onListen: (a) => console.log(`bare serve on ${a.port}`),
}, (req) => {
  const size = Number(new URL(req.url).pathname.split("/")[2] ?? 0);
  let body = bodies.get(size);
  if (body === undefined) {
    body = new Uint8Array(size).fill(120);
    bodies.set(size, body);
  }
  return new Response(body, {
    headers: {
      "content-type": "application/octet-stream",
      "cache-control": "max-age=86400",
    },
  });
});
