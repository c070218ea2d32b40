// The proxy against origins that send what Deno's Response cannot hold: a
// raw TCP origin on 127.0.0.1 writes the response bytes itself. Whatever it
// sends, the client gets an answer (502 where the head cannot be passed
// on) and the proxy keeps serving.
import assert from "node:assert/strict";
import { createProxy } from "../src/proxy/mod.ts";
import { tempDir } from "./_helpers.ts";

/** A TCP server that answers every request with `head(path)` + "ok". */
function rawOrigin(head: (path: string) => string): Deno.TcpListener {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of listener) {
      (async () => {
        const buf = new Uint8Array(65536);
        const n = await conn.read(buf).catch(() => null);
        if (n === null) return conn.close();
        const line = new TextDecoder().decode(buf.subarray(0, n));
        const path = line.split(" ")[1] ?? "/";
        await conn.write(
          new TextEncoder().encode(
            `${head(path)}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok`,
          ),
        ).catch(() => {});
        conn.close();
      })();
    }
  })().catch(() => {});
  return listener;
}

Deno.test("proxy: an origin status outside 200–599 is a 502, and the proxy keeps serving", async () => {
  await using dir = await tempDir();
  const origin = rawOrigin((path) =>
    path === "/good"
      ? "HTTP/1.1 200 OK\r\nCache-Control: max-age=60"
      : path === "/600"
      ? "HTTP/1.1 600 Beyond"
      : "HTTP/1.1 999 304 Not Generated"
  );
  const port = (origin.addr as Deno.NetAddr).port;
  await using proxy = await createProxy({
    origin: `http://127.0.0.1:${port}`,
    dir: dir.path,
  });
  for (const path of ["/999", "/600", "/999"]) {
    const res = await proxy.handler(new Request(`http://proxy${path}`));
    assert.equal(res.status, 502, path);
    await res.body?.cancel();
  }
  const good = await proxy.handler(new Request("http://proxy/good"));
  assert.equal(good.status, 200);
  assert.equal(await good.text(), "ok");
  origin.close();
});

/**
 * A TCP origin that answers the first request on each connection and keeps
 * the connection open, then reads a second request on it and closes the
 * connection unanswered: a keep-alive timeout that fires just as a request
 * arrives (or an origin that took a request and failed). Records every
 * request it read, as `METHOD /path`, with " dropped" for the unanswered.
 */
function closesIdleOrigin(): { listener: Deno.TcpListener; seen: string[] } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const seen: string[] = [];
  const line = (buf: Uint8Array, n: number) =>
    new TextDecoder().decode(buf.subarray(0, n)).split(" ").slice(0, 2)
      .join(" ");
  (async () => {
    for await (const conn of listener) {
      (async () => {
        const buf = new Uint8Array(65536);
        const n = await conn.read(buf).catch(() => null);
        if (n === null) return conn.close();
        seen.push(line(buf, n));
        await conn.write(
          new TextEncoder().encode(
            "HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: 2\r\n\r\nok",
          ),
        ).catch(() => {});
        // Whatever comes next on this connection is read and dropped. A
        // request body's chunks may come in reads of their own: a read
        // that starts with a method is a request.
        for (;;) {
          const m = await conn.read(buf).catch(() => null);
          if (m === null) break;
          const l = line(buf, m);
          if (/^[A-Z]+ \//.test(l)) {
            seen.push(`${l} dropped`);
            break;
          }
        }
        conn.close();
      })();
    }
  })().catch(() => {});
  return { listener, seen };
}

Deno.test("proxy RFC 9110 §9.2.2: a closed pooled connection loses no request and repeats no unsafe one", async () => {
  await using dir = await tempDir();
  const { listener, seen } = closesIdleOrigin();
  const port = (listener.addr as Deno.NetAddr).port;
  await using proxy = await createProxy({
    origin: `http://127.0.0.1:${port}`,
    dir: dir.path,
  });
  const send = async (method: string, body?: string) => {
    const res = await proxy.handler(
      new Request(`http://proxy/${method.toLowerCase()}`, {
        method,
        ...(body === undefined ? {} : { body }),
      }),
    );
    return [res.status, await res.text()];
  };
  const plan: [string, string?][] = [
    ["GET"],
    ["GET"],
    ["PUT", "config"],
    ["GET"],
    ["POST", "form"],
    ["HEAD"],
    ["POST"],
    ["DELETE"],
    ["PATCH", "x"],
    ["GET"],
  ];
  for (const [method, body] of plan) {
    assert.deepEqual(await send(method, body), [
      200,
      method === "HEAD" ? "" : "ok",
    ], method);
  }
  // Every request was answered once; only bodiless idempotent ones were
  // ever sent on a pooled connection (and so ever dropped and sent again).
  const answered = seen.filter((s) => !s.endsWith(" dropped"));
  assert.deepEqual(
    answered,
    plan.map(([m]) => `${m} /${m.toLowerCase()}`),
  );
  for (const d of seen.filter((s) => s.endsWith(" dropped"))) {
    assert.match(d, /^(GET|HEAD|DELETE) /, seen.join(", "));
  }
  listener.close();
});
