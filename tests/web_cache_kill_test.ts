import assert from "node:assert/strict";
import { openCacheStorage } from "../src/web_cache/mod.ts";
import { MOD_URL, tempDir } from "./_helpers.ts";

const U = "https://example.com";

Deno.test("web cache SIGKILL during puts leaves only whole, matching entries", async () => {
  await using dir = await tempDir();
  const url = new URL("./src/web_cache/mod.ts", MOD_URL).href;
  const code = `
    import { openCacheStorage } from ${JSON.stringify(url)};
    const caches = await openCacheStorage(Deno.args[0]);
    const cache = await caches.open("v1");
    for (let i = 0; ; i++) {
      const body = String(i % 40).repeat(1 + (i % 40) * 500);
      await cache.put("${U}/" + (i % 40), new Response(body, { headers: { "x-i": String(i % 40) } }));
      if (i === 100) console.log("ready");
    }
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "-",
      dir.path,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(code));
  await w.close();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("ready")) {
    const { done, value } = await reader.read();
    if (done) break;
    seen += value;
  }
  await new Promise((r) => setTimeout(r, 50));
  child.kill("SIGKILL");
  await reader.cancel();
  const status = await child.status;
  await child.stderr.cancel();
  assert.equal(status.signal, "SIGKILL");
  assert.ok(
    seen.includes("ready"),
    "the child stored entries before it was killed",
  );

  await using caches = await openCacheStorage(dir.path);
  const cache = await caches.open("v1");
  const keys = await cache.keys();
  assert.ok(keys.length > 0 && keys.length <= 40, `${keys.length} entries`);
  assert.equal(
    new Set(keys.map((k) => k.url)).size,
    keys.length,
    "one entry per URL",
  );
  for (const key of keys) {
    const n = Number(new URL(key.url).pathname.slice(1));
    const hit = await cache.match(key);
    assert.ok(hit, key.url);
    assert.equal(hit.headers.get("x-i"), String(n));
    assert.equal(await hit.text(), String(n).repeat(1 + n * 500));
  }
  await cache.put(`${U}/after`, new Response("after"));
  assert.equal(await (await cache.match(`${U}/after`))?.text(), "after");
  await caches.close();
});
