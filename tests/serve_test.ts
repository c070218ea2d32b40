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
    assert.deepEqual(
      parseServeArgs(["--origin", "http://127.0.0.1:8000"], () => undefined),
      {
        origin: "http://127.0.0.1:8000",
        port: 8081,
        host: "127.0.0.1",
        dir: "./.larder-proxy",
        limit: 2 ** 30,
        originTimeoutMs: 30_000,
        sendTimeoutMs: 30_000,
        targetedFields: ["CDN-Cache-Control"],
        quiet: false,
        adminPath: "/_larder/",
      },
    );
  });
  await t.step(
    "purge token: flag, then environment, then config file",
    async () => {
      const o = ["--origin", "http://o"];
      const env = (v?: string) => (name: string) =>
        name === "LARDER_PURGE_TOKEN" ? v : undefined;
      const token = (args: string[], v?: string) => {
        const c = parseServeArgs([...o, ...args], env(v));
        assert.ok(c !== "help");
        return c.purgeToken;
      };
      assert.equal(token([]), undefined);
      assert.equal(token([], "from-env"), "from-env");
      assert.equal(
        token(["--purge-token", "from-flag"], "from-env"),
        "from-flag",
      );
      await using dir = await tempDir();
      const file = join(dir.path, "proxy.json");
      await Deno.writeTextFile(
        file,
        JSON.stringify({ purgeToken: "from-file", "admin-path": false }),
      );
      assert.equal(token(["--config", file]), "from-file");
      assert.equal(token(["--config", file], "from-env"), "from-env");
      const c = parseServeArgs([...o, "--config", file], env());
      assert.ok(c !== "help");
      assert.equal(c.adminPath, false);
      assert.throws(() => token(["--purge-token="]), TypeError);
    },
  );
  await t.step("admin path", () => {
    const path = (args: string[]) => {
      const c = parseServeArgs(
        ["--origin", "http://o", ...args],
        () => undefined,
      );
      assert.ok(c !== "help");
      return c.adminPath;
    };
    assert.equal(path(["--admin-path", "/ops/"]), "/ops/");
    assert.equal(path(["--no-admin"]), false);
    for (const bad of ["ops/", ""]) {
      assert.throws(() => path([`--admin-path=${bad}`]), TypeError);
    }
  });
  await t.step("--targeted-fields (RFC 9213 target list)", () => {
    const parse = (...args: string[]) => {
      const c = parseServeArgs(["--origin=http://o", ...args]);
      assert.ok(c !== "help");
      return c.targetedFields;
    };
    assert.deepEqual(parse("--targeted-fields", "A-CC, CDN-Cache-Control"), [
      "A-CC",
      "CDN-Cache-Control",
    ]);
    assert.deepEqual(parse("--targeted-fields="), []);
    assert.throws(
      () => parse("--targeted-fields", "bad name"),
      TypeError,
      "not a field name",
    );
  });
  await t.step("admin flags and the token from the environment", () => {
    const o = "--origin=http://o";
    const c = (args: string[], env: Record<string, string> = {}) => {
      const r = parseServeArgs([o, ...args], (name) => env[name]);
      assert.ok(r !== "help");
      return r;
    };
    assert.equal(c(["--admin-path", "/ops"]).adminPath, "/ops/");
    assert.equal(c(["--no-admin"]).adminPath, false);
    assert.equal(c([]).adminToken, undefined);
    assert.equal(c([], { LARDER_ADMIN_TOKEN: "" }).adminToken, undefined);
    assert.equal(c([], { LARDER_ADMIN_TOKEN: "e" }).adminToken, "e");
    assert.equal(
      c(["--admin-token=f"], { LARDER_ADMIN_TOKEN: "e" }).adminToken,
      "f",
    );
    assert.throws(() => c(["--admin-path", "nope"]), TypeError, "adminPath");
    assert.throws(() => c(["--admin-token="]), TypeError, "adminToken");
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
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        origin: "http://a",
        "admin-path": false,
        "admin-token": "t",
      }),
    );
    const d = parseServeArgs(
      ["--config", file],
      (name) => name === "LARDER_ADMIN_TOKEN" ? "e" : undefined,
    );
    assert.ok(d !== "help");
    assert.equal(d.adminPath, false);
    assert.equal(d.adminToken, "e"); // the environment over the file
    const e = parseServeArgs(
      ["--config", file, "--admin-path=/x/"],
      () => undefined,
    );
    assert.ok(e !== "help");
    assert.deepEqual([e.adminPath, e.adminToken], ["/x/", "t"]);
    await Deno.writeTextFile(
      file,
      JSON.stringify({ origin: "http://a", "admin-path": 3 }),
    );
    assert.throws(() => parseServeArgs(["--config", file]), TypeError);
  });
});

/** Starts `scripts/serve.ts` as a child; resolves once it listens. */
async function startServe(
  originPort: number,
  dir: string,
  env: Record<string, string> = {},
) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-net=127.0.0.1",
      new URL("../scripts/serve.ts", import.meta.url).pathname,
      "--origin",
      `http://127.0.0.1:${originPort}`,
      "--port",
      "0",
      "--dir",
      dir,
      "--limit",
      "64MiB",
    ],
    env,
    stdout: "piped",
    stderr: "null",
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
  const banner = await nextLine();
  const url: string = /http:\/\/[\d.]+:\d+\//.exec(banner)?.[0] ?? "";
  assert.ok(url !== "", banner);
  return {
    url,
    banner,
    nextLine,
    async stop(signal: Deno.Signal) {
      child.kill(signal);
      const status = await child.status;
      await lines.cancel();
      return status;
    },
  };
}

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
  const serve = await startServe(origin.addr.port, join(dir.path, "store"));
  try {
    for (let i = 0; i < 2; i++) {
      const res: Response = await fetch(serve.url + "item?q=1");
      assert.equal(await res.text(), "from origin");
    }
    assert.equal(originRequests, 1);
    assert.match(
      await serve.nextLine(),
      /"GET \/item\?q=1 HTTP\/1\.1" 200 .* miss /,
    );
    assert.match(
      await serve.nextLine(),
      /"GET \/item\?q=1 HTTP\/1\.1" 200 .* hit /,
    );
  } finally {
    assert.equal((await serve.stop("SIGTERM")).code, 0);
    await origin.shutdown();
  }
});

Deno.test("serve: a SIGKILL during a streamed miss leaves no partial entry", async () => {
  await using dir = await tempDir();
  const store = join(dir.path, "store");
  const SIZE = 64 * 1024;
  const CHUNKS = 64;
  let gets = 0;
  let hold = true;
  let release = () => {};
  const held = new Promise<void>((r) => release = r);
  const origin = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => {
      gets++;
      let i = 0;
      const stall = hold;
      return new Response(
        new ReadableStream<Uint8Array>({
          async pull(c) {
            if (i === CHUNKS / 2 && stall) await held;
            if (i === CHUNKS) return c.close();
            c.enqueue(new Uint8Array(SIZE).fill(i++));
          },
        }),
        { headers: { "cache-control": "max-age=600" } },
      );
    },
  );
  try {
    const first = await startServe(origin.addr.port, store);
    const res = await fetch(first.url + "big");
    const reader = res.body!.getReader();
    let got = 0;
    while (got < SIZE * 4) got += (await reader.read()).value?.length ?? 0;
    assert.equal((await first.stop("SIGKILL")).signal, "SIGKILL");
    await reader.read().catch(() => {}); // the connection is gone
    await reader.cancel().catch(() => {});
    hold = false;
    release();

    const second = await startServe(origin.addr.port, store);
    const again = await fetch(second.url + "big");
    assert.equal(again.headers.get("x-larder-cache"), "miss");
    assert.equal((await again.arrayBuffer()).byteLength, SIZE * CHUNKS);
    // Only the whole body was stored: the next request is a full hit.
    let hit: Response;
    for (let tries = 0;; tries++) {
      hit = await fetch(second.url + "big");
      if (hit.headers.get("x-larder-cache") === "hit" || tries === 50) break;
      await hit.body?.cancel();
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(hit.headers.get("x-larder-cache"), "hit");
    const body = new Uint8Array(await hit.arrayBuffer());
    assert.equal(body.length, SIZE * CHUNKS);
    assert.equal(body[body.length - 1], CHUNKS - 1);
    assert.equal(gets, 2);
    assert.equal((await second.stop("SIGTERM")).code, 0);
  } finally {
    release();
    await origin.shutdown();
  }
});

Deno.test("serve takes the purge token from LARDER_PURGE_TOKEN", async () => {
  await using dir = await tempDir();
  let originRequests = 0;
  const origin = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => {
      originRequests++;
      return new Response("x", { headers: { "cache-control": "max-age=60" } });
    },
  );
  const serve = await startServe(origin.addr.port, join(dir.path, "store"), {
    LARDER_PURGE_TOKEN: "tok",
  });
  try {
    await (await fetch(serve.url + "a")).text();
    const denied = await fetch(serve.url + "a", { method: "PURGE" });
    assert.equal(denied.status, 401);
    await denied.body?.cancel();
    const res = await fetch(serve.url + "a", {
      method: "PURGE",
      headers: { authorization: "Bearer tok" },
    });
    assert.deepEqual(await res.json(), { purged: 1 });
    const again = await fetch(serve.url + "a");
    assert.equal(again.headers.get("x-larder-cache"), "miss");
    await again.text();
    assert.equal(originRequests, 2);
  } finally {
    assert.equal((await serve.stop("SIGTERM")).code, 0);
    await origin.shutdown();
  }
});

Deno.test("serve prints the status page URL and takes the admin token from LARDER_ADMIN_TOKEN", async () => {
  await using dir = await tempDir();
  const origin = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("o", { headers: { "cache-control": "max-age=60" } }),
  );
  const serve = await startServe(origin.addr.port, join(dir.path, "store"), {
    LARDER_ADMIN_TOKEN: "tok",
  });
  try {
    assert.match(
      serve.banner,
      /status page http:\/\/127\.0\.0\.1:\d+\/_larder\//,
    );
    const denied = await fetch(serve.url + "_larder/metrics");
    assert.equal(denied.status, 401);
    await denied.body?.cancel();
    const page = await fetch(serve.url + "_larder/", {
      headers: { authorization: "Bearer tok" },
    });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<title>larder proxy status<\/title>/);
    const health = await fetch(serve.url + "_larder/health");
    assert.equal((await health.json()).status, "ok");
  } finally {
    assert.equal((await serve.stop("SIGTERM")).code, 0);
    await origin.shutdown();
  }
});
