/**
 * Makes docs/status-page.png: runs a demo origin and the proxy on loopback
 * ports, sends a few minutes of traffic whose rate and key set change
 * every 30 s (Zipf-like popularity over 2,000 URLs of 200 B to 2 MiB, a
 * share of them not storable), then screenshots `/_larder/` with headless
 * chromium.
 *
 * ```sh
 * deno run -A scripts/status_page_screenshot.ts --minutes 6 --out docs/status-page.png
 * pngquant --quality=70-90 --speed 1 --force --ext .png docs/status-page.png  # 200 KB to 64 KB
 * ```
 *
 * @module
 */
import { join, resolve } from "node:path";
import { createProxy } from "../src/proxy/mod.ts";

function flag(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] ?? fallback : fallback;
}

const minutes = Number(flag("minutes", "6"));
const out = flag("out", "docs/status-page.png");
const URLS = 2000;

const origin = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  async (req) => {
    const u = new URL(req.url);
    const size = Number(u.searchParams.get("size") ?? 100);
    await new Promise((r) => setTimeout(r, 5)); // a slowish origin
    return new Response(new Uint8Array(size).fill(120), {
      headers: {
        "cache-control": u.pathname.startsWith("/api/")
          ? "no-store"
          : "max-age=3600",
      },
    });
  },
);
const dir = await Deno.makeTempDir({ prefix: "larder-shot-" });
const proxy = await createProxy({
  origin: `http://127.0.0.1:${origin.addr.port}`,
  dir: join(dir, "store"),
  storeOptions: { limit: 256 * 2 ** 20 },
});
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  (req, info) => proxy.handler(req, info),
);
const base = `http://127.0.0.1:${server.addr.port}`;

let seed = 1;
const rand = () => (seed = (seed * 16_807) % 2_147_483_647) / 2_147_483_647;
/** A URL by Zipf-like popularity; its size fixed per URL. */
function pick(shift: number): string {
  const i = (Math.floor(URLS * rand() ** 3) + shift) % URLS;
  const size = Math.round(200 * 1.0045 ** ((i * 7919) % URLS));
  return i % 10 === 0 ? `/api/${i}` : `/img/${i}.bin?size=${size}`;
}

const end = Date.now() + minutes * 60_000;
let phase = 0;
while (Date.now() < end) {
  // Each 30 s phase: a rate (requests per 100 ms) and a popularity shift
  // (a new set of hot URLs, so misses come back).
  const phaseEnd = Math.min(end, Date.now() + 30_000);
  const perTick = [2, 6, 4, 10, 3, 8][phase % 6]!;
  const shift = phase % 4 === 3 ? phase * 97 : 0;
  while (Date.now() < phaseEnd) {
    const tick = Date.now();
    await Promise.all(
      Array.from(
        { length: perTick },
        async () => await (await fetch(base + pick(shift))).arrayBuffer(),
      ),
    );
    await new Promise((r) =>
      setTimeout(r, Math.max(0, 100 - (Date.now() - tick)))
    );
  }
  phase++;
}

const profile = await Deno.makeTempDir({ prefix: "larder-shot-profile-" });
const chromium = new Deno.Command("chromium", {
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    `--user-data-dir=${profile}`,
    `--screenshot=${resolve(out)}`,
    "--window-size=1280,1600",
    `${base}/_larder/`,
  ],
  stdout: "null",
  stderr: "null",
}).spawn();
const timer = setTimeout(() => Deno.kill(chromium.pid, "SIGKILL"), 60_000);
const status = await chromium.status;
clearTimeout(timer);
const written = await Deno.stat(out).then((s) => s.size, () => 0);
console.log(`chromium exited ${status.code}; ${out}: ${written} bytes`);
await server.shutdown();
await proxy.close();
await origin.shutdown();
await Deno.remove(dir, { recursive: true });
await Deno.remove(profile, { recursive: true });
