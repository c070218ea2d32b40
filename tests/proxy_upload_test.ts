// Request bodies sent on to the origin: the wait for the response head
// (`originTimeoutMs`) starts once the request is sent, so a long upload
// is not an origin timeout; an origin that stops taking the body, or
// never answers, is a 504 in bounded time, never a hung client.
import assert from "node:assert/strict";
import { count, withRig } from "./_proxy_rig.ts";

/** `n` chunks of 1,000 bytes, one every `everyMs`. */
function slowBody(n: number, everyMs: number): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      await new Promise((r) => setTimeout(r, everyMs));
      if (i++ === n) return c.close();
      c.enqueue(new Uint8Array(1000).fill(i & 0xff));
    },
  });
}

Deno.test("proxy: an upload that takes longer than originTimeoutMs gets the origin's answer", async () => {
  await withRig(async (req) => {
    const n = (await req.arrayBuffer()).byteLength;
    return new Response(String(n));
  }, async (rig) => {
    const started = Date.now();
    const res = await fetch(rig.proxyUrl + "/up", {
      method: "POST",
      body: slowBody(15, 100),
    });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "15000");
    assert.ok(Date.now() - started > 1000, "the upload took its time");
    assert.equal(count(rig, "POST /up"), 1);
  }, { originTimeoutMs: 500 });
});

Deno.test("proxy: an origin that takes the upload and never answers is a 504 after originTimeoutMs", async () => {
  let release = () => {};
  const held = new Promise<void>((r) => release = r);
  await withRig(async (req) => {
    await req.arrayBuffer();
    await held;
    return new Response("late");
  }, async (rig) => {
    const started = Date.now();
    const res = await fetch(rig.proxyUrl + "/up", {
      method: "POST",
      body: slowBody(8, 100),
    });
    const ms = Date.now() - started;
    release();
    assert.equal(res.status, 504);
    await res.body?.cancel();
    // The upload (~0.9 s) and then the head's timeout.
    assert.ok(ms >= 1100 && ms < 5000, `${ms} ms`);
  }, { originTimeoutMs: 300 });
});

Deno.test("proxy: an origin that stops taking the upload is a 504, never a hung client", async () => {
  let release = () => {};
  const held = new Promise<void>((r) => release = r);
  await withRig(async () => {
    // Never reads the body; answers only when the test ends.
    await held;
    return new Response("late");
  }, async (rig) => {
    const big = new Uint8Array(64 * 2 ** 20);
    const started = Date.now();
    const res = await fetch(rig.proxyUrl + "/up", {
      method: "POST",
      body: big,
    });
    const ms = Date.now() - started;
    release();
    assert.equal(res.status, 504);
    await res.body?.cancel();
    assert.ok(ms < 5000, `${ms} ms`);
  }, { originTimeoutMs: 400 });
});
