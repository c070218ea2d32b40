/**
 * `deno task demo [DIR] [--keep]`: the caching proxy in front of a slow
 * origin. Starts a demo origin on a free loopback port (every response
 * takes 20 ms and may be cached for an hour), runs larder's proxy in front
 * of it with its store in DIR (default ./.larder-demo), sends the same
 * few hundred requests twice, restarts the proxy on the same store and
 * sends them again, checking every body byte for byte. Prints the hit
 * ratio of each round, the origin requests saved and the status page URL;
 * `--keep` leaves the proxy running (Ctrl-C stops it) to look at that page.
 *
 * @module
 */
import { createProxy, type Proxy } from "./src/proxy/mod.ts";

const args = Deno.args.filter((a) => a !== "--keep");
const keep = args.length < Deno.args.length;
const dir = args[0] ?? "./.larder-demo";
const COUNT = 300;

/** The demo origin's body for item `i`: 200 B to 200 KiB, bytes from `i`. */
function body(i: number): Uint8Array<ArrayBuffer> {
  const size = i % 10 === 0 ? 20_000 + (i * 131) % 180_000 : 200 + i * 37;
  const b = new Uint8Array(size);
  for (let j = 0; j < size; j++) b[j] = (i * 31 + j * 17) & 0xff;
  return b;
}

let originRequests = 0;
const origin = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  async (req) => {
    originRequests++;
    await new Promise((r) => setTimeout(r, 20)); // a slow origin
    const i = Number(new URL(req.url).pathname.split("/").pop());
    return new Response(body(i), {
      headers: {
        "content-type": "application/octet-stream",
        "cache-control": "public, max-age=3600",
      },
    });
  },
);

let proxy: Proxy;
let server: Deno.HttpServer<Deno.NetAddr>;
async function startProxy(port: number): Promise<void> {
  proxy = await createProxy({
    origin: `http://127.0.0.1:${origin.addr.port}`,
    dir,
    storeOptions: { limit: 64 * 2 ** 20 },
  });
  server = Deno.serve(
    { hostname: "127.0.0.1", port, onListen() {} },
    proxy.handler,
  );
}

/** Sends every request, 16 at a time; counts hits and bodies that match. */
async function round(name: string): Promise<number> {
  const client = Deno.createHttpClient({});
  const before = originRequests;
  const t = performance.now();
  let hits = 0, good = 0, next = 0;
  async function worker() {
    while (next < COUNT) {
      const i = next++;
      const res = await fetch(
        `http://127.0.0.1:${server.addr.port}/items/${i}`,
        { client },
      );
      const got = new Uint8Array(await res.arrayBuffer());
      const want = body(i);
      if (got.length === want.length && got.every((v, j) => v === want[j])) {
        good++;
      }
      if (res.headers.get("x-larder-cache") === "hit") hits++;
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker));
  client.close();
  const ms = (performance.now() - t).toFixed(0);
  console.log(
    `${name}: ${COUNT} requests in ${ms} ms, ${hits} hits (${
      (100 * hits / COUNT).toFixed(1)
    }%), ${
      originRequests - before
    } origin requests, ${good}/${COUNT} bodies byte-for-byte`,
  );
  return hits;
}

console.log(
  `larder demo: origin on http://127.0.0.1:${origin.addr.port}/ (20 ms a response), store in ${dir}`,
);
await startProxy(0);
const port = server!.addr.port;
console.log(`proxy on http://127.0.0.1:${port}/`);
let hits = await round("round 1 (cold)");
hits += await round("round 2");
await server!.shutdown();
await proxy!.close();
console.log("restarted the proxy on the same store");
await startProxy(port);
hits += await round("round 3 (after restart)");

const total = 3 * COUNT;
console.log(
  `hit ratio ${(100 * hits / total).toFixed(1)}% (${hits}/${total}); ` +
    `origin requests saved ${total - originRequests} of ${total}`,
);
console.log(`status page: http://127.0.0.1:${port}/_larder/`);
if (keep) {
  console.log("proxy still running (--keep); Ctrl-C stops it");
  Deno.addSignalListener("SIGINT", async () => {
    await server.shutdown();
    await proxy.close();
    await origin.shutdown();
    Deno.exit(0);
  });
  await server!.finished;
} else {
  await server!.shutdown();
  await proxy!.close();
  await origin.shutdown();
}
