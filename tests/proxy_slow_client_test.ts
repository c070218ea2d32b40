// A miss streamed to a client that reads slowly, or stops reading: the
// origin's idle timeout measures the origin, never the client's pace, and
// a client that stops for longer than the send timeout is cut alone while
// the store reads on (README "Streaming").
import assert from "node:assert/strict";
import { count, type Rig, withRig } from "./_proxy_rig.ts";
import { parseExposition } from "./_prometheus_parse.ts";

// Larger than what the sockets and queues between origin and client hold,
// so a client that pauses holds the origin back.
const SIZE = 32 * 2 ** 20;
const body = new Uint8Array(SIZE);
for (let i = 0; i < SIZE; i += 4096) body[i] = (i >>> 12) & 0xff;

const origin = () =>
  new Response(body, { headers: { "cache-control": "max-age=600" } });

/**
 * A raw HTTP/1.1 GET of `path` that reads `first` bytes, waits `pauseMs`,
 * then reads to the end; the response's bytes (head and body), and
 * whether the connection ended before the whole body came.
 */
async function slowGet(
  port: number,
  path: string,
  first: number,
  pauseMs: number,
): Promise<Uint8Array> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(
    new TextEncoder().encode(
      `GET ${path} HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n`,
    ),
  );
  const chunks: Uint8Array[] = [];
  let got = 0;
  const buf = new Uint8Array(64 * 1024);
  let paused = false;
  try {
    for (;;) {
      if (!paused && got >= first) {
        paused = true;
        await new Promise((r) => setTimeout(r, pauseMs));
      }
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
      got += n;
    }
  } catch {
    // A connection the proxy cut: what came before is the answer.
  } finally {
    try {
      conn.close();
    } catch {
      // closed already
    }
  }
  const out = new Uint8Array(got);
  let at = 0;
  for (const c of chunks) out.set(c, (at += c.length) - c.length);
  return out;
}

/**
 * The body of a raw response (after the head's blank line), its chunked
 * framing taken off; a body cut short gives what came whole.
 */
function bodyOf(raw: Uint8Array): Uint8Array {
  let at = -1;
  for (let i = 0; i + 3 < raw.length && at < 0; i++) {
    if (
      raw[i] === 13 && raw[i + 1] === 10 && raw[i + 2] === 13 &&
      raw[i + 3] === 10
    ) at = i + 4;
  }
  if (at < 0) return new Uint8Array(0);
  const head = new TextDecoder().decode(raw.subarray(0, at)).toLowerCase();
  const rest = raw.subarray(at);
  if (!head.includes("transfer-encoding: chunked")) return rest;
  const parts: Uint8Array[] = [];
  let total = 0;
  for (let i = 0; i < rest.length;) {
    const eol = rest.indexOf(13, i);
    if (eol < 0) break;
    const n = parseInt(new TextDecoder().decode(rest.subarray(i, eol)), 16);
    if (!(n > 0) || eol + 2 + n > rest.length) break;
    parts.push(rest.subarray(eol + 2, eol + 2 + n));
    total += n;
    i = eol + 2 + n + 2;
  }
  const out = new Uint8Array(total);
  let k = 0;
  for (const p of parts) out.set(p, (k += p.length) - p.length);
  return out;
}

const port = (url: string) => Number(new URL(url).port);

async function sendTimeouts(rig: Rig): Promise<number | undefined> {
  const m = await rig.get("/_larder/metrics");
  return parseExposition(await m.text()).value(
    "larder_proxy_send_timeouts_total",
    {},
  );
}

Deno.test("proxy streaming: a client pausing longer than the origin timeout gets the whole body, and it is stored", async () => {
  await withRig(origin, async (rig) => {
    const raw = await slowGet(port(rig.proxyUrl), "/big", 64 * 1024, 1200);
    const got = bodyOf(raw);
    assert.equal(got.length, SIZE);
    assert.ok(got.every((b, i) => b === body[i]), "the bytes the origin sent");
    const again = await rig.get("/big");
    assert.equal(again.headers.get("x-larder-cache"), "hit");
    assert.deepEqual(new Uint8Array(await again.arrayBuffer()), body);
    assert.equal(count(rig, "GET /big"), 1);
    assert.equal(await sendTimeouts(rig), 0);
  }, { originTimeoutMs: 300, sendTimeoutMs: 5000 });
});

Deno.test("proxy streaming: a client that stops reading past the send timeout is cut, and the store reads on", async () => {
  await withRig(origin, async (rig) => {
    const started = Date.now();
    const raw = await slowGet(port(rig.proxyUrl), "/big", 64 * 1024, 2500);
    // Cut: the connection ended before the whole body.
    assert.ok(bodyOf(raw).length < SIZE, `${bodyOf(raw).length} bytes`);
    assert.ok(Date.now() - started < 10_000);
    // The store got all of it from the origin meanwhile.
    const again = await rig.get("/big");
    assert.equal(again.headers.get("x-larder-cache"), "hit");
    assert.deepEqual(new Uint8Array(await again.arrayBuffer()), body);
    assert.equal(count(rig, "GET /big"), 1);
    assert.equal(await sendTimeouts(rig), 1);
  }, { originTimeoutMs: 5000, sendTimeoutMs: 500 });
});

Deno.test("proxy streaming: a client that reads a miss whole is never cut by the send timeout after its end", async () => {
  await withRig(origin, async (rig) => {
    const res = await rig.get("/big");
    assert.equal(res.headers.get("x-larder-cache"), "miss");
    assert.deepEqual(new Uint8Array(await res.arrayBuffer()), body);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await sendTimeouts(rig), 0);
  }, { sendTimeoutMs: 1000 });
});

Deno.test("proxy streaming: a client that stops reading a stored body past the send timeout is cut, and its reader released", async () => {
  await withRig(origin, async (rig) => {
    const fill = await rig.get("/big");
    assert.deepEqual(new Uint8Array(await fill.arrayBuffer()), body);
    // A pause shorter than the send timeout: the whole stored body.
    const whole = bodyOf(
      await slowGet(port(rig.proxyUrl), "/big", 64 * 1024, 200),
    );
    assert.equal(whole.length, SIZE);
    assert.ok(whole.every((b, i) => b === body[i]), "the stored bytes");
    assert.equal(await sendTimeouts(rig), 0);
    // Longer: cut, and counted.
    const cut = bodyOf(
      await slowGet(port(rig.proxyUrl), "/big", 64 * 1024, 2500),
    );
    assert.ok(cut.length < SIZE, `${cut.length} bytes`);
    assert.equal(await sendTimeouts(rig), 1);
    // The reader was released: nothing holds a pin.
    assert.equal(rig.store.stats().pinned, 0);
    const again = await rig.get("/big");
    assert.equal(again.headers.get("x-larder-cache"), "hit");
    // A streamed stored body still says its length (not chunked).
    assert.equal(again.headers.get("content-length"), String(SIZE));
    assert.deepEqual(new Uint8Array(await again.arrayBuffer()), body);
    assert.equal(count(rig, "GET /big"), 1);
  }, { sendTimeoutMs: 1000 });
});
