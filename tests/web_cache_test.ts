import assert from "node:assert/strict";
import { openCacheStorage } from "../src/web_cache/mod.ts";
import type { LarderCacheStorage } from "../src/web_cache/mod.ts";
import { bytesFor, MOD_URL, runChild, tempDir } from "./_helpers.ts";

const U = "https://example.com";

async function withCaches(
  fn: (caches: LarderCacheStorage, dir: string) => Promise<void>,
  options: { limit?: number } = {},
): Promise<void> {
  await using dir = await tempDir();
  const caches = await openCacheStorage(dir.path, options);
  try {
    await fn(caches, dir.path);
  } finally {
    await caches.close();
  }
}

function text(r: Response | undefined): Promise<string | undefined> {
  return r === undefined ? Promise.resolve(undefined) : r.text();
}

Deno.test("web cache put and match return the stored response", async (t) => {
  await withCaches(async (caches) => {
    const cache = await caches.open("v1");
    await t.step("status, statusText, headers and body kept", async () => {
      const headers = new Headers([["content-type", "text/plain"], [
        "x-a",
        "1",
      ]]);
      headers.append("set-cookie", "a=1");
      headers.append("set-cookie", "b=2");
      await cache.put(
        `${U}/a`,
        new Response("hello", { status: 201, statusText: "Made", headers }),
      );
      const hit = await cache.match(`${U}/a`);
      assert.ok(hit);
      assert.equal(hit.status, 201);
      assert.equal(hit.statusText, "Made");
      assert.equal(hit.headers.get("content-type"), "text/plain");
      assert.deepEqual(hit.headers.getSetCookie(), ["a=1", "b=2"]);
      assert.equal(await hit.text(), "hello");
    });
    await t.step("a miss is undefined", async () => {
      assert.equal(await cache.match(`${U}/none`), undefined);
    });
    await t.step("match takes a Request, a string and a URL", async () => {
      assert.equal(
        await text(await cache.match(new Request(`${U}/a`))),
        "hello",
      );
      assert.equal(await text(await cache.match(new URL(`${U}/a`))), "hello");
    });
    await t.step("each match is a new Response with its own body", async () => {
      const [a, b] = [await cache.match(`${U}/a`), await cache.match(`${U}/a`)];
      assert.notEqual(a, b);
      assert.equal(await a?.text(), "hello");
      assert.equal(await b?.text(), "hello");
    });
    await t.step(
      "a binary body of 3 MiB comes back byte for byte",
      async () => {
        const body = bytesFor("big", 3 * 2 ** 20);
        await cache.put(`${U}/big`, new Response(body as BodyInit));
        const hit = await cache.match(`${U}/big`);
        assert.deepEqual(new Uint8Array(await hit!.arrayBuffer()), body);
      },
    );
    await t.step("an empty body and a null-body status", async () => {
      await cache.put(`${U}/empty`, new Response(""));
      assert.equal(await text(await cache.match(`${U}/empty`)), "");
      await cache.put(`${U}/204`, new Response(null, { status: 204 }));
      const hit = await cache.match(`${U}/204`);
      assert.equal(hit?.status, 204);
      assert.equal(hit?.body, null);
    });
    await t.step(
      "the response URL of a fetched response is kept; constructed ones have none",
      async () => {
        assert.equal((await cache.match(`${U}/a`))?.url, "");
      },
    );
  });
});

Deno.test("web cache put consumes the response and replaces the matching entry", async () => {
  await withCaches(async (caches) => {
    const cache = await caches.open("v1");
    const response = new Response("one");
    await cache.put(`${U}/a`, response);
    assert.equal(response.bodyUsed, true);
    await cache.put(`${U}/a`, new Response("two"));
    assert.equal(await text(await cache.match(`${U}/a`)), "two");
    assert.equal((await cache.keys()).length, 1);
  });
});

Deno.test("web cache put rejects what the spec refuses with TypeError", async (t) => {
  await withCaches(async (caches) => {
    const cache = await caches.open("v1");
    const refuse = async (
      name: string,
      request: RequestInfo | URL,
      response: () => Response,
    ) => {
      await t.step(name, async () => {
        await assert.rejects(cache.put(request, response()), TypeError);
      });
    };
    await refuse(
      "a POST request",
      new Request(`${U}/p`, { method: "POST" }),
      () => new Response("x"),
    );
    await refuse(
      "a HEAD request",
      new Request(`${U}/p`, { method: "HEAD" }),
      () => new Response("x"),
    );
    await refuse("a data: URL", "data:text/plain,x", () => new Response("x"));
    await refuse("a file: URL", "file:///etc/hosts", () => new Response("x"));
    await refuse(
      "a 206 response",
      `${U}/p`,
      () => new Response("x", { status: 206 }),
    );
    await refuse(
      "Vary: *",
      `${U}/p`,
      () => new Response("x", { headers: { vary: "*" } }),
    );
    await refuse(
      "Vary: Accept, *",
      `${U}/p`,
      () => new Response("x", { headers: { vary: "Accept, *" } }),
    );
    await refuse("Response.error()", `${U}/p`, () => Response.error());
    await refuse("a used body", `${U}/p`, () => {
      const r = new Response("x");
      r.text();
      return r;
    });
    await refuse("a locked body", `${U}/p`, () => {
      const r = new Response("x");
      r.body!.getReader();
      return r;
    });
    await refuse("not a Response", `${U}/p`, () => ({}) as Response);
    await refuse("a relative URL", "/relative", () => new Response("x"));
    await t.step("nothing was stored", async () => {
      assert.deepEqual(await cache.keys(), []);
    });
  });
});

Deno.test("web cache put of a body that errors part-way stores nothing and keeps the old entry", async () => {
  await withCaches(async (caches) => {
    const cache = await caches.open("v1");
    await cache.put(`${U}/a`, new Response("old"));
    let sent = 0;
    const failing = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent++ < 3) c.enqueue(new Uint8Array(1000));
        else c.error(new Error("origin went away"));
      },
    });
    await assert.rejects(cache.put(`${U}/a`, new Response(failing)), TypeError);
    assert.equal(await text(await cache.match(`${U}/a`)), "old");
    assert.equal((await cache.keys()).length, 1);
  });
});

Deno.test("web cache request fragments are kept on the stored request and ignored in matching", async () => {
  await withCaches(async (caches) => {
    const cache = await caches.open("v1");
    await cache.put(`${U}/a#one`, new Response("a"));
    assert.equal(await text(await cache.match(`${U}/a#two`)), "a");
    assert.equal(await text(await cache.match(`${U}/a`)), "a");
    assert.deepEqual((await cache.keys()).map((r) => r.url), [`${U}/a#one`]);
    await cache.put(`${U}/a#three`, new Response("b"));
    assert.deepEqual((await cache.keys()).map((r) => r.url), [`${U}/a#three`]);
  });
});

Deno.test("web cache query options", async (t) => {
  await withCaches(async (caches) => {
    const cache = await caches.open("v1");
    await cache.put(`${U}/s?x=1`, new Response("x1"));
    await cache.put(`${U}/s?x=2`, new Response("x2"));
    await cache.put(`${U}/s`, new Response("plain"));
    await cache.put(
      `${U}/v`,
      new Response("v", { headers: { vary: "Accept" } }),
    );
    await t.step(
      "ignoreSearch matches every query, in insertion order",
      async () => {
        assert.equal(
          await text(await cache.match(`${U}/s`, { ignoreSearch: true })),
          "x1",
        );
        const all = await cache.matchAll(`${U}/s?zzz`, { ignoreSearch: true });
        assert.deepEqual(await Promise.all(all.map((r) => r.text())), [
          "x1",
          "x2",
          "plain",
        ]);
        assert.equal(await cache.match(`${U}/s?zzz`), undefined);
      },
    );
    await t.step("non-GET queries miss unless ignoreMethod", async () => {
      const post = () => new Request(`${U}/s`, { method: "POST" });
      assert.equal(await cache.match(post()), undefined);
      assert.deepEqual(await cache.matchAll(post()), []);
      assert.deepEqual(await cache.keys(post()), []);
      assert.equal(await cache.delete(post()), false);
      assert.equal(
        await text(await cache.match(post(), { ignoreMethod: true })),
        "plain",
      );
      const head = new Request(`${U}/s`, { method: "HEAD" });
      assert.equal((await cache.keys(head, { ignoreMethod: true })).length, 1);
    });
    await t.step("ignoreVary skips the Vary check", async () => {
      const other = new Request(`${U}/v`, { headers: { accept: "image/png" } });
      assert.equal(await cache.match(other), undefined);
      assert.equal(
        await text(await cache.match(other, { ignoreVary: true })),
        "v",
      );
    });
    await t.step("delete with ignoreSearch removes every query", async () => {
      assert.equal(
        await cache.delete(`${U}/s?q`, { ignoreSearch: true }),
        true,
      );
      assert.deepEqual((await cache.keys()).map((r) => r.url), [`${U}/v`]);
      assert.equal(await cache.delete(`${U}/s`), false);
    });
  });
});

Deno.test("web cache Vary is evaluated against the stored request's headers", async (t) => {
  await withCaches(async (caches) => {
    const cache = await caches.open("v1");
    const req = (accept?: string, lang?: string) => {
      const headers = new Headers();
      if (accept !== undefined) headers.set("accept", accept);
      if (lang !== undefined) headers.set("accept-language", lang);
      return new Request(`${U}/page`, { headers });
    };
    const vary = { headers: { vary: "Accept, Accept-Language" } };
    await cache.put(req("text/html", "en"), new Response("html-en", vary));
    await cache.put(req("text/html", "fr"), new Response("html-fr", vary));
    await cache.put(req("application/json"), new Response("json", vary));
    await t.step("variants live side by side", async () => {
      assert.equal(
        await text(await cache.match(req("text/html", "en"))),
        "html-en",
      );
      assert.equal(
        await text(await cache.match(req("text/html", "fr"))),
        "html-fr",
      );
      assert.equal(
        await text(await cache.match(req("application/json"))),
        "json",
      );
      assert.equal((await cache.keys()).length, 3);
    });
    await t.step("an absent header matches only an absent one", async () => {
      assert.equal(await cache.match(req("application/json", "en")), undefined);
      assert.equal(await cache.match(req()), undefined);
    });
    await t.step(
      "header names are case-insensitive, values exact",
      async () => {
        const r = new Request(`${U}/page`, {
          headers: { "Accept": "text/html", "ACCEPT-LANGUAGE": "en" },
        });
        assert.equal(await text(await cache.match(r)), "html-en");
        assert.equal(await cache.match(req("text/html", "EN")), undefined);
      },
    );
    await t.step(
      "put replaces only the variant its request matches",
      async () => {
        await cache.put(
          req("text/html", "fr"),
          new Response("html-fr-2", vary),
        );
        assert.equal(
          await text(await cache.match(req("text/html", "fr"))),
          "html-fr-2",
        );
        assert.equal(
          await text(await cache.match(req("text/html", "en"))),
          "html-en",
        );
        assert.deepEqual(
          (await cache.keys()).map((r) => r.headers.get("accept-language")),
          ["en", null, "fr"],
        );
      },
    );
    await t.step(
      "a put replaces only entries whose stored Vary its request matches",
      async () => {
        // Query Cache runs with the cached response's Vary: a request without
        // Accept matches none of the three variants, so all stay.
        await cache.put(`${U}/page`, new Response("plain"));
        assert.equal((await cache.keys()).length, 4);
        assert.equal(await text(await cache.match(req())), "plain");
        await cache.delete(`${U}/page`, { ignoreVary: true });
        assert.deepEqual(await cache.keys(), []);
        await cache.put(`${U}/page`, new Response("plain"));
        assert.equal(await text(await cache.match(req("anything"))), "plain");
        await cache.put(req("x"), new Response("x"));
        assert.equal(
          (await cache.keys()).length,
          1,
          "no Vary: the new entry replaces it",
        );
      },
    );
    await t.step("delete honours Vary", async () => {
      await cache.put(
        req("a"),
        new Response("a", { headers: { vary: "accept" } }),
      );
      await cache.put(
        req("b"),
        new Response("b", { headers: { vary: "accept" } }),
      );
      await cache.delete(`${U}/page`, { ignoreVary: true });
      await cache.put(
        req("a"),
        new Response("a", { headers: { vary: "accept" } }),
      );
      await cache.put(
        req("b"),
        new Response("b", { headers: { vary: "accept" } }),
      );
      assert.equal(await cache.delete(req("a")), true);
      assert.equal(await text(await cache.match(req("b"))), "b");
      assert.equal(await cache.match(req("a")), undefined);
    });
  });
});

Deno.test("web cache keys and matchAll list entries in insertion order", async (t) => {
  await withCaches(async (caches) => {
    const cache = await caches.open("v1");
    const urls = ["c", "a", "b", "d"].map((p) => `${U}/${p}`);
    for (const url of urls) await cache.put(url, new Response(url));
    await t.step(
      "keys() in put order, with the stored request headers",
      async () => {
        await cache.put(
          new Request(`${U}/h`, { headers: { "x-token": "t1" } }),
          new Response("h"),
        );
        const keys = await cache.keys();
        assert.deepEqual(keys.map((r) => r.url), [...urls, `${U}/h`]);
        assert.equal(keys.at(-1)?.headers.get("x-token"), "t1");
        assert.equal(keys[0]?.method, "GET");
        assert.ok(Object.isFrozen(keys));
      },
    );
    await t.step("replacing moves an entry to the end", async () => {
      await cache.put(`${U}/a`, new Response("a2"));
      assert.deepEqual(
        (await cache.keys()).map((r) => new URL(r.url).pathname),
        [
          "/c",
          "/b",
          "/d",
          "/h",
          "/a",
        ],
      );
    });
    await t.step(
      "matchAll() with no request returns every response in order",
      async () => {
        const all = await cache.matchAll();
        assert.deepEqual(await Promise.all(all.map((r) => r.text())), [
          `${U}/c`,
          `${U}/b`,
          `${U}/d`,
          "h",
          "a2",
        ]);
        assert.ok(Object.isFrozen(all));
      },
    );
    await t.step("keys(request) filters", async () => {
      assert.deepEqual((await cache.keys(`${U}/b`)).map((r) => r.url), [
        `${U}/b`,
      ]);
      assert.deepEqual(await cache.keys(`${U}/zz`), []);
    });
    await t.step("concurrent puts all land", async () => {
      await Promise.all(
        Array.from(
          { length: 50 },
          (_, i) => cache.put(`${U}/p${i}`, new Response(`${i}`)),
        ),
      );
      assert.equal((await cache.keys()).length, 55);
      assert.equal(await text(await cache.match(`${U}/p49`)), "49");
    });
  });
});

Deno.test("web cache delete removes entries and frees their storage", async () => {
  await withCaches(async (caches, dir) => {
    const cache = await caches.open("v1");
    const body = bytesFor("x", 4 * 2 ** 20);
    for (let i = 0; i < 5; i++) {
      await cache.put(`${U}/${i}`, new Response(body as BodyInit));
    }
    const full = await storedBytes(dir);
    assert.ok(full >= 5 * body.length, `${full}`);
    for (let i = 0; i < 5; i++) {
      assert.equal(await cache.delete(`${U}/${i}`), true);
    }
    assert.equal(await cache.delete(`${U}/0`), false);
    assert.deepEqual(await cache.keys(), []);
    assert.ok(await storedBytes(dir) < body.length, "deleted bodies freed");
    for (let i = 0; i < 5; i++) {
      await cache.put(`${U}/same`, new Response(body as BodyInit));
    }
    const replaced = await storedBytes(dir);
    assert.ok(replaced < 2 * body.length, `replaced bodies freed: ${replaced}`);
  });
});

/** Bytes in large element files (bodies over 2 MiB get their own file). */
async function storedBytes(dir: string): Promise<number> {
  let total = 0;
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      if (e.isDirectory) await walk(`${d}/${e.name}`);
      else total += (await Deno.stat(`${d}/${e.name}`)).size;
    }
  };
  for (const sub of ["d", "m"]) {
    try {
      await walk(`${dir}/${sub}`);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  return total;
}

Deno.test("web cache storage: open, has, delete, keys, match across caches", async (t) => {
  await withCaches(async (caches) => {
    await t.step(
      "open creates, has and keys list in creation order",
      async () => {
        assert.equal(await caches.has("b"), false);
        const b = await caches.open("b");
        await caches.open("a");
        await caches.open("c");
        assert.equal(await caches.has("b"), true);
        assert.deepEqual(await caches.keys(), ["b", "a", "c"]);
        await b.put(`${U}/x`, new Response("from b"));
        const again = await caches.open("b");
        assert.notEqual(again, b);
        assert.equal(await text(await again.match(`${U}/x`)), "from b");
      },
    );
    await t.step("match searches caches in creation order", async () => {
      await (await caches.open("a")).put(`${U}/x`, new Response("from a"));
      await (await caches.open("c")).put(`${U}/y`, new Response("from c"));
      assert.equal(await text(await caches.match(`${U}/x`)), "from b");
      assert.equal(await text(await caches.match(`${U}/y`)), "from c");
      assert.equal(
        await text(await caches.match(`${U}/x`, { cacheName: "a" })),
        "from a",
      );
      assert.equal(
        await caches.match(`${U}/x`, { cacheName: "nope" }),
        undefined,
      );
      assert.equal(await caches.match(`${U}/none`), undefined);
      assert.equal(
        await caches.has("nope"),
        false,
        "match with cacheName does not create",
      );
    });
    await t.step("delete removes a cache and its entries", async () => {
      assert.equal(await caches.delete("b"), true);
      assert.equal(await caches.delete("b"), false);
      assert.deepEqual(await caches.keys(), ["a", "c"]);
      assert.equal(await text(await caches.match(`${U}/x`)), "from a");
      const fresh = await caches.open("b");
      assert.deepEqual(await fresh.keys(), []);
      assert.deepEqual(await caches.keys(), ["a", "c", "b"]);
    });
    await t.step("names are any string, the empty one included", async () => {
      await caches.open("");
      await caches.open("名前 with spaces/and/slashes");
      assert.equal(await caches.has(""), true);
      assert.equal(await caches.has("名前 with spaces/and/slashes"), true);
    });
  });
});

Deno.test("web cache storage: close, asyncDispose, closed errors", async () => {
  await using dir = await tempDir();
  {
    await using caches = await openCacheStorage(dir.path);
    await (await caches.open("v1")).put(`${U}/a`, new Response("a"));
  }
  const caches = await openCacheStorage(dir.path);
  const cache = await caches.open("v1");
  const pending = cache.put(`${U}/b`, new Response("b"));
  await caches.close();
  await pending;
  await caches.close();
  await assert.rejects(
    caches.open("v1"),
    (err: unknown) =>
      err instanceof DOMException && err.name === "InvalidStateError",
  );
  await assert.rejects(cache.match(`${U}/a`), DOMException);
  const again = await openCacheStorage(dir.path);
  assert.deepEqual((await (await again.open("v1")).keys()).map((r) => r.url), [
    `${U}/a`,
    `${U}/b`,
  ]);
  await again.close();
});

Deno.test("web cache entries persist across a restart in a child process", async () => {
  await using dir = await tempDir();
  const url = new URL("./src/web_cache/mod.ts", MOD_URL).href;
  const write = await runChild(
    `
    import { openCacheStorage } from ${JSON.stringify(url)};
    const caches = await openCacheStorage(Deno.args[0]);
    await caches.open("first");
    const v2 = await caches.open("v2");
    await v2.put(new Request("${U}/a#f", { headers: { accept: "text/html" } }),
      new Response("html", { status: 203, statusText: "Copy", headers: { vary: "accept", "x-k": "1" } }));
    await v2.put(new Request("${U}/a", { headers: { accept: "text/plain" } }),
      new Response("plain", { headers: { vary: "accept" } }));
    for (let i = 0; i < 600; i++) await v2.put("${U}/n" + i, new Response(String(i)));
    await v2.delete("${U}/n5");
    await caches.close();
  `,
    [dir.path],
  );
  assert.equal(write.code, 0, write.err);
  await using caches = await openCacheStorage(dir.path);
  assert.deepEqual(await caches.keys(), ["first", "v2"]);
  const v2 = await caches.open("v2");
  const html = await v2.match(
    new Request(`${U}/a`, { headers: { accept: "text/html" } }),
  );
  assert.equal(html?.status, 203);
  assert.equal(html?.statusText, "Copy");
  assert.equal(html?.headers.get("x-k"), "1");
  assert.equal(await html?.text(), "html");
  assert.equal(
    await text(
      await v2.match(
        new Request(`${U}/a`, { headers: { accept: "text/plain" } }),
      ),
    ),
    "plain",
  );
  const keys = await v2.keys();
  assert.equal(keys.length, 601);
  assert.equal(keys[0]?.url, `${U}/a#f`);
  assert.equal(keys[2]?.url, `${U}/n0`);
  assert.equal(keys.at(-1)?.url, `${U}/n599`);
  assert.equal(keys.some((r) => r.url === `${U}/n5`), false);
  await v2.put(`${U}/after`, new Response("after"));
  assert.equal((await v2.keys()).at(-1)?.url, `${U}/after`);
  await caches.close();
});

Deno.test("web cache stays under its byte limit, evicting without errors", async () => {
  const limit = 16 * 2 ** 20;
  await withCaches(async (caches, dir) => {
    const cache = await caches.open("v1");
    const body = bytesFor("b", 2 ** 20);
    for (let i = 0; i < 60; i++) {
      await cache.put(`${U}/${i}`, new Response(body as BodyInit));
    }
    assert.ok(await storedBytes(dir) <= limit, "bounded on disk");
    const keys = await cache.keys();
    assert.ok(keys.length > 0 && keys.length < 60, `${keys.length} kept`);
    const last = await cache.match(`${U}/59`);
    assert.deepEqual(new Uint8Array(await last!.arrayBuffer()), body);
    for (const k of keys) {
      assert.ok(await cache.match(k), `listed ${k.url} matches`);
    }
    const all = await cache.matchAll();
    assert.equal(all.length, keys.length);
    for (const r of all) await r.body?.cancel();
    await assert.rejects(
      cache.put(`${U}/huge`, new Response(new Uint8Array(limit + 1))),
      (err: unknown) =>
        err instanceof DOMException && err.name === "QuotaExceededError",
    );
  }, { limit });
});

Deno.test("web cache addAll against a local origin", async (t) => {
  let hits = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => {
      hits++;
      const path = new URL(req.url).pathname;
      if (path === "/404") return new Response("no", { status: 404 });
      if (path === "/206") return new Response("p", { status: 206 });
      if (path === "/star") {
        return new Response("s", {
          headers: { vary: "*" },
        });
      }
      if (path === "/vary") {
        return new Response(req.headers.get("accept") ?? "", {
          headers: { vary: "accept" },
        });
      }
      return new Response(`body of ${path}`, { headers: { "x-path": path } });
    },
  );
  const origin = `http://127.0.0.1:${server.addr.port}`;
  try {
    await withCaches(async (caches) => {
      const cache = await caches.open("v1");
      await t.step("add stores the fetched response", async () => {
        await cache.add(`${origin}/one`);
        const hit = await cache.match(`${origin}/one`);
        assert.equal(hit?.headers.get("x-path"), "/one");
        assert.equal(hit?.url, `${origin}/one`);
        assert.equal(await hit?.text(), "body of /one");
      });
      await t.step("addAll stores every response", async () => {
        await cache.addAll([
          `${origin}/a`,
          new Request(`${origin}/b`),
          new URL(`${origin}/c`),
        ]);
        assert.deepEqual(
          (await cache.keys()).map((r) => new URL(r.url).pathname),
          ["/one", "/a", "/b", "/c"],
        );
      });
      const before = async () => (await cache.keys()).length;
      for (const bad of ["/404", "/206", "/star"]) {
        await t.step(`one ${bad} response stores nothing`, async () => {
          const n = await before();
          await assert.rejects(
            cache.addAll([`${origin}/x1`, `${origin}${bad}`, `${origin}/x2`]),
            TypeError,
          );
          assert.equal(await before(), n);
          assert.equal(await cache.match(`${origin}/x1`), undefined);
        });
      }
      await t.step("a failed fetch stores nothing", async () => {
        const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const deadPort = (closed.addr as Deno.NetAddr).port;
        closed.close();
        await assert.rejects(
          cache.addAll([`${origin}/y1`, `http://127.0.0.1:${deadPort}/`]),
          TypeError,
        );
        assert.equal(await cache.match(`${origin}/y1`), undefined);
      });
      await t.step(
        "duplicate requests: InvalidStateError, nothing stored",
        async () => {
          const n = await before();
          await assert.rejects(
            cache.addAll([`${origin}/d`, `${origin}/e`, `${origin}/d#frag`]),
            (err: unknown) =>
              err instanceof DOMException && err.name === "InvalidStateError",
          );
          assert.equal(await before(), n);
        },
      );
      await t.step(
        "same URL, different Vary values: not duplicates",
        async () => {
          await cache.addAll([
            new Request(`${origin}/vary`, { headers: { accept: "a" } }),
            new Request(`${origin}/vary`, { headers: { accept: "b" } }),
          ]);
          assert.equal(
            await text(
              await cache.match(
                new Request(`${origin}/vary`, { headers: { accept: "b" } }),
              ),
            ),
            "b",
          );
        },
      );
      await t.step(
        "non-GET or non-http requests are refused before any fetch",
        async () => {
          const h = hits;
          await assert.rejects(
            cache.addAll([
              `${origin}/z`,
              new Request(`${origin}/z`, { method: "POST" }),
            ]),
            TypeError,
          );
          await assert.rejects(cache.add("data:text/plain,x"), TypeError);
          assert.equal(hits, h);
        },
      );
      await t.step("addAll([]) resolves", async () => {
        await cache.addAll([]);
      });
    });
  } finally {
    await server.shutdown();
  }
});

Deno.test("web cache several caches share one directory", async () => {
  await withCaches(async (caches) => {
    const a = await caches.open("a");
    const b = await caches.open("b");
    await a.put(`${U}/x`, new Response("a"));
    await b.put(`${U}/x`, new Response("b"));
    assert.equal(await text(await a.match(`${U}/x`)), "a");
    assert.equal(await text(await b.match(`${U}/x`)), "b");
    await a.delete(`${U}/x`);
    assert.equal(await text(await b.match(`${U}/x`)), "b");
  });
});
