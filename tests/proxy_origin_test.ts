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
