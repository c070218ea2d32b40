// `deno task serve`: its arguments, and the command run as a child process
// in front of a local origin.
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseServeArgs, parseSize } from "../scripts/serve.ts";
import { tempDir } from "./_helpers.ts";

Deno.test("serve parseSize reads binary units", () => {
  assert.equal(parseSize("1GiB"), 2 ** 30);
  assert.equal(parseSize("512MiB"), 512 * 2 ** 20);
  assert.equal(parseSize("1.5k"), 1536);
  assert.equal(parseSize("4096"), 4096);
  for (const bad of ["", "0", "-1", "1XB", "GiB"]) {
    assert.throws(() => parseSize(bad), RangeError);
  }
});

Deno.test("serve parseServeArgs takes flags over a config file", async (t) => {
  await t.step("defaults", () => {
    assert.deepEqual(parseServeArgs(["--origin", "http://127.0.0.1:8000"]), {
      origin: "http://127.0.0.1:8000",
      port: 8081,
      host: "127.0.0.1",
      dir: "./.larder-proxy",
      limit: 2 ** 30,
      originTimeoutMs: 30_000,
      quiet: false,
    });
  });
  await t.step("help, and errors", () => {
    assert.equal(parseServeArgs(["--help"]), "help");
    assert.throws(() => parseServeArgs([]), TypeError, "--origin");
    assert.throws(
      () => parseServeArgs(["--origin=http://o", "--nope"]),
      TypeError,
      "unknown flag",
    );
    assert.throws(
      () => parseServeArgs(["--origin=http://o", "--port", "70000"]),
      RangeError,
    );
  });
  await t.step("config file", async () => {
    await using dir = await tempDir();
    const file = join(dir.path, "proxy.json");
    await Deno.writeTextFile(
      file,
      JSON.stringify({ origin: "http://a", port: 9000, limit: "2MiB" }),
    );
    const c = parseServeArgs(["--config", file, "--port=9001", "--quiet"]);
    assert.ok(c !== "help");
    assert.equal(c.origin, "http://a");
    assert.equal(c.port, 9001);
    assert.equal(c.limit, 2 * 2 ** 20);
    assert.equal(c.quiet, true);
  });
});

Deno.test("serve runs the proxy and logs one line per request", async () => {
  await using dir = await tempDir();
  let originRequests = 0;
  const origin = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => {
      originRequests++;
      return new Response("from origin", {
        headers: { "cache-control": "max-age=60" },
      });
    },
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-net=127.0.0.1",
      new URL("../scripts/serve.ts", import.meta.url).pathname,
      "--origin",
      `http://127.0.0.1:${origin.addr.port}`,
      "--port",
      "0",
      "--dir",
      join(dir.path, "store"),
      "--limit",
      "16MiB",
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  let buffered = "";
  const nextLine = async (): Promise<string> => {
    while (!buffered.includes("\n")) {
      const { done, value } = await lines.read();
      if (done) throw new Error("serve exited");
      buffered += value;
    }
    const at = buffered.indexOf("\n");
    const line = buffered.slice(0, at);
    buffered = buffered.slice(at + 1);
    return line;
  };
  try {
    const banner = await nextLine();
    const url: string = /http:\/\/[\d.]+:\d+\//.exec(banner)?.[0] ?? "";
    assert.ok(url !== "", banner);
    for (let i = 0; i < 2; i++) {
      const res: Response = await fetch(url + "item?q=1");
      assert.equal(await res.text(), "from origin");
    }
    assert.equal(originRequests, 1);
    assert.match(await nextLine(), /"GET \/item\?q=1 HTTP\/1\.1" 200 .* miss /);
    assert.match(await nextLine(), /"GET \/item\?q=1 HTTP\/1\.1" 200 .* hit /);
  } finally {
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0);
    await lines.cancel();
    await origin.shutdown();
  }
});
