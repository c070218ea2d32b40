/**
 * The soak's origin (bench/proxy/soak.ts runs it as a child process):
 * `Deno.serve` on 127.0.0.1, prints `origin on PORT`, answers
 * `/<kind>/<size>/<id>` with soak_bodies.ts' bytes. Kinds:
 *
 * | kind      | answer                                                  |
 * | --------- | ------------------------------------------------------- |
 * | `o`       | 200, `max-age=86400`, ETag, 304 to a matching validator |
 * | `v`       | as `o`, `Vary: Accept-Language`, a body per language    |
 * | `e`       | 200, `no-cache` + ETag: revalidated every time (304)    |
 * | `s`       | 200, `max-age=1` + ETag: stale after a second           |
 * | `n`       | 200, `no-store`                                         |
 * | `slow`    | as `o`, the head after 200–800 ms                       |
 * | `trickle` | as `o`, the body in 8 parts 100 ms apart                |
 * | `reset`   | as `o`, the connection reset after half the body        |
 * | `flaky`   | as `o`, reset halfway on odd requests for the path      |
 * | `5xx`     | 500 or 503 (by id), a body the checker can verify       |
 * | `hang`    | the head after 5 s (past the proxy's origin timeout)    |
 *
 * `/_count?path=P` answers how many requests P had, `/_total` all.
 *
 * @module
 */
import { bodyFor, etagFor } from "./soak_bodies.ts";

const counts = new Map<string, number>();
let total = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A stream of `body` that errors after `cut` bytes, or parts with gaps. */
function bodyStream(
  body: Uint8Array<ArrayBuffer>,
  opts: { cut?: number; parts?: number; gapMs?: number },
): ReadableStream<Uint8Array> {
  const parts = opts.parts ?? 4;
  const step = Math.max(1, Math.ceil(body.length / parts));
  let at = 0;
  return new ReadableStream({
    async pull(c) {
      if (opts.cut !== undefined && at >= opts.cut) {
        c.error(new Error("soak origin: reset mid-body"));
        return;
      }
      if (at >= body.length) return c.close();
      if (at > 0 && opts.gapMs) await sleep(opts.gapMs);
      const end = Math.min(
        body.length,
        at + step,
        opts.cut !== undefined && at < opts.cut ? opts.cut : Infinity,
      );
      c.enqueue(body.slice(at, end));
      at = end;
    },
  });
}

async function answer(req: Request): Promise<Response> {
  const url = new URL(req.url);
  const path = url.pathname;
  if (path === "/_count") {
    return new Response(String(counts.get(url.searchParams.get("path")!) ?? 0));
  }
  if (path === "/_total") return new Response(String(total));
  total++;
  const n = (counts.get(path) ?? 0) + 1;
  counts.set(path, n);
  const [, kind, , idText] = path.split("/");
  const id = Number(idText?.replace(/\D/g, "") || 0);
  const lang = kind === "v" ? req.headers.get("accept-language") ?? "" : "";
  const body = bodyFor(path, lang);
  const etag = etagFor(path, lang);
  const headers: Record<string, string> = {
    "content-type": "application/octet-stream",
    "cache-control": "public, max-age=86400",
    etag,
    "last-modified": "Mon, 01 Jan 2024 00:00:00 GMT",
  };
  const matches = req.headers.get("if-none-match")?.split(/\s*,\s*/)
    .includes(etag);
  switch (kind) {
    case "v":
      headers.vary = "Accept-Language";
      break;
    case "e":
      headers["cache-control"] = "no-cache";
      break;
    case "s":
      headers["cache-control"] = "max-age=1";
      break;
    case "n":
      headers["cache-control"] = "no-store";
      break;
    case "slow":
      await sleep(200 + (id * 37) % 600);
      break;
    case "hang":
      await sleep(5000);
      break;
    case "trickle":
      return new Response(bodyStream(body, { parts: 8, gapMs: 100 }), {
        headers,
      });
    case "reset":
      return new Response(bodyStream(body, { cut: body.length >> 1 }), {
        headers,
      });
    case "flaky":
      if (n % 2 === 1) {
        return new Response(bodyStream(body, { cut: body.length >> 1 }), {
          headers,
        });
      }
      break;
    case "5xx":
      return new Response(body, {
        status: id % 2 === 0 ? 500 : 503,
        headers: { "content-type": "application/octet-stream" },
      });
    case "o":
      break;
    default:
      return new Response("not found", { status: 404 });
  }
  if (matches && req.method === "GET") {
    return new Response(null, { status: 304, headers });
  }
  // Deno.serve sends the body's length on HEAD and strips the body.
  return new Response(body, { headers });
}

Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(`origin on ${port}`),
  onError(err) {
    console.error(`soak origin: ${err}`);
    return new Response("origin error", { status: 500 });
  },
}, answer);
