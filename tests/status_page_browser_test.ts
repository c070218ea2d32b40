// The status page in a real browser: Debian's chromium, headless, loads
// `/_larder/` from a proxy that has served traffic (hits, misses, several
// sizes) and takes a screenshot (a valid, non-blank PNG of the window's
// size), and its DOM has a data point per time bucket with traffic.
//
// Without chromium the test fails when CI=true (.ci/run installs it as
// root) and is skipped with a reason otherwise.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { inflateSync } from "node:zlib";
import { join } from "node:path";
import { createProxy } from "../src/proxy/mod.ts";
import { tempDir } from "./_helpers.ts";

const WIDTH = 1280;
const HEIGHT = 1600;
const BROWSER_TIMEOUT_MS = 60_000;

function findChromium(): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    for (const name of ["chromium", "chromium-browser"]) {
      try {
        const path = join(dir, name);
        if (Deno.statSync(path).isFile) return path;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

const chromium = findChromium();
const inCI = Deno.env.get("CI") === "true";
if (chromium === undefined && !inCI) {
  console.log(
    "status_page_browser_test: skipped, no chromium on PATH (apt-get install chromium)",
  );
}

/**
 * Runs headless chromium on `url` with `extra` flags; stops it by PID
 * after BROWSER_TIMEOUT_MS. Resolves with its stdout.
 */
async function runChromium(url: string, extra: string[]): Promise<string> {
  await using profile = await tempDir();
  const child = new Deno.Command(chromium!, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--user-data-dir=${profile.path}`,
      `--window-size=${WIDTH},${HEIGHT}`,
      ...extra,
      url,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      Deno.kill(child.pid, "SIGKILL");
    } catch {
      // it has just exited
    }
  }, BROWSER_TIMEOUT_MS);
  try {
    const out = await child.output();
    assert.ok(!timedOut, `chromium did not finish in ${BROWSER_TIMEOUT_MS} ms`);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `chromium exited ${out.code}: ${stderr}`);
    return new TextDecoder().decode(out.stdout);
  } finally {
    clearTimeout(timer);
  }
}

/** A PNG's size and colour layout, its pixels inflated; throws if malformed. */
function readPng(bytes: Uint8Array) {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  assert.deepEqual([...bytes.subarray(0, 8)], sig, "PNG signature");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const type = (at: number) =>
    new TextDecoder().decode(bytes.subarray(at + 4, at + 8));
  assert.equal(view.getUint32(8), 13, "IHDR length");
  assert.equal(type(8), "IHDR", "first chunk is IHDR");
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const depth = bytes[24]!;
  const colour = bytes[25]!;
  const channels = ({ 0: 1, 2: 3, 4: 2, 6: 4 } as Record<number, number>)[
    colour
  ];
  assert.ok(channels !== undefined && depth === 8, `colour ${colour}/${depth}`);
  const idat: Uint8Array[] = [];
  let at = 8;
  let ended = false;
  while (at < bytes.length) {
    const len = view.getUint32(at);
    if (type(at) === "IDAT") idat.push(bytes.subarray(at + 8, at + 8 + len));
    if (type(at) === "IEND") ended = true;
    at += 12 + len;
  }
  assert.ok(ended, "IEND chunk");
  const raw = inflateSync(Buffer.concat(idat));
  const stride = 1 + width * channels;
  assert.equal(raw.length, height * stride, "pixel data size");
  return { width, height, raw, stride };
}

Deno.test({
  name: "status page in headless chromium: screenshot and plotted data points",
  ignore: chromium === undefined && !inCI,
  async fn() {
    assert.ok(
      chromium !== undefined,
      "CI=true but no chromium on PATH: .ci/run installs it as root (apt-get install chromium)",
    );
    await using dir = await tempDir();
    const origin = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (req) => {
        const size = Number(new URL(req.url).searchParams.get("size") ?? 1);
        return new Response(new Uint8Array(size).fill(97), {
          headers: { "cache-control": "max-age=600" },
        });
      },
    );
    const proxy = await createProxy({
      origin: `http://127.0.0.1:${origin.addr.port}`,
      dir: join(dir.path, "store"),
      storeOptions: { limit: 64 * 2 ** 20 },
    });
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (req, info) => proxy.handler(req, info),
    );
    const base = `http://127.0.0.1:${server.addr.port}`;
    try {
      // Traffic: 40 URLs of 100 B to 400 KiB, each fetched three times
      // (a miss, then two hits), and some that are not stored.
      const first = Math.floor(Date.now() / 10_000);
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 40; i++) {
          const size = Math.round(100 * 1.24 ** i);
          const res = await fetch(`${base}/item/${i}?size=${size}`);
          assert.equal((await res.arrayBuffer()).byteLength, size);
        }
      }
      const last = Math.floor(Date.now() / 10_000);
      // Every 10 s bucket from first to last had requests.
      const buckets = last - first + 1;

      const shot = join(dir.path, "status.png");
      await runChromium(`${base}/_larder/`, [`--screenshot=${shot}`]);
      const png = await Deno.readFile(shot);
      assert.ok(png.length > 20_000, `a ${png.length}-byte screenshot`);
      const { width, height, raw, stride } = readPng(png);
      assert.deepEqual([width, height], [WIDTH, HEIGHT]);
      // Not blank: many distinct rows of pixels.
      const rows = new Set<string>();
      for (let y = 0; y < height; y += 4) {
        rows.add(
          Buffer.from(raw.subarray(y * stride + 1, (y + 1) * stride))
            .toString("base64"),
        );
      }
      assert.ok(rows.size > 50, `${rows.size} distinct rows sampled`);
      if (Deno.env.get("LARDER_STATUS_SHOT") !== undefined) {
        await Deno.copyFile(shot, Deno.env.get("LARDER_STATUS_SHOT")!);
      }

      const dom = await runChromium(`${base}/_larder/`, ["--dump-dom"]);
      const plot = (name: string) => {
        const m = new RegExp(
          `<svg [^>]*data-plot="${name}"[^>]*>([\\s\\S]*?)</svg>`,
        ).exec(dom);
        assert.ok(m !== null, `plot ${name} in the DOM`);
        const attr = (a: string) =>
          Number(new RegExp(`${a}="(\\d+)"`).exec(m[0])?.[1]);
        return {
          buckets: attr("data-buckets"),
          circles: (m[1]!.match(/<circle /g) ?? []).length,
          bars: [...m[1]!.matchAll(/<rect class="bar" data-count="(\d+)"/g)]
            .map((b) => Number(b[1])),
          lines: [...m[1]!.matchAll(/<polyline [^>]*points="([^"]*)"/g)]
            .map((l) => l[1]!.trim().split(/\s+/).length),
        };
      };
      // A proxy just started: the plots span 10 minutes of 10 s buckets.
      const ratio = plot("hit-ratio");
      assert.equal(ratio.buckets, 60);
      assert.equal(ratio.circles, buckets, "a point per bucket with traffic");
      const rate = plot("requests");
      assert.deepEqual(rate.lines, [60, 60], "a point per bucket, zeros too");
      // All requests in every bucket, from cache where there were hits.
      assert.ok(rate.circles > buckets && rate.circles <= 2 * buckets);
      assert.ok(plot("bytes").circles >= buckets);
      // 40 entries, spread over the size buckets; all younger than 1 min.
      const sizes = plot("entry-sizes").bars;
      assert.equal(sizes.reduce((a, b) => a + b, 0), 40);
      assert.ok(sizes.length >= 5, `sizes in ${sizes.length} buckets`);
      assert.deepEqual(plot("entry-ages").bars, [40]);
      // Top keys: every item was hit twice.
      assert.match(
        dom,
        /<td class="k">\/item\/\d+\?size=\d+<\/td><td class="n">2<\/td>/,
      );
    } finally {
      await server.shutdown();
      await proxy.close();
      await origin.shutdown();
    }
  },
});
