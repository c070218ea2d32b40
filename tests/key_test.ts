import assert from "node:assert/strict";
import { normaliseKey, nsurlComponents } from "../src/key.ts";

Deno.test("normaliseKey folds equivalent URLs into one key", () => {
  const want = "http://example.com/a/c";
  for (
    const k of [
      "HTTP://Example.COM:80/a/./b/../c",
      "http://example.com/a/c#fragment",
      new URL("http://EXAMPLE.com:80/a/b/../c"),
      "http://example.com/a/%63",
    ]
  ) {
    assert.equal(normaliseKey(k).text, want, String(k));
  }
});

Deno.test("normaliseKey decodes unreserved escapes and upper-cases the rest", () => {
  assert.equal(
    normaliseKey("http://h/a%7eb%2fc?x=%7E%2f").text,
    "http://h/a~b%2Fc?x=~%2F",
  );
});

Deno.test("normaliseKey keeps non-default ports, userinfo and query", () => {
  assert.equal(
    normaliseKey("https://User:Pw@Example.com:8443/p?q=1#f").text,
    "https://User:Pw@example.com:8443/p?q=1",
  );
});

Deno.test("normaliseKey parses only strings a URL scheme can start", () => {
  // The URL parser strips leading C0 controls and spaces, then wants an
  // ASCII letter: these parse as URLs.
  for (const k of [" HTTP://Example.com/a", "\t\nhttp://example.com/a"]) {
    const nk = normaliseKey(k);
    assert.equal(nk.text, "http://example.com/a", JSON.stringify(k));
    assert.equal(nk.url, true, JSON.stringify(k));
  }
  // Anything else is verbatim, as URL parsing would fail on it.
  for (
    const k of [
      "~px/r/http://Example.com/a",
      "1http://Example.com/a",
      "/http://Example.com/a",
      "\u00e9http://Example.com/a",
    ]
  ) {
    assert.equal(URL.parse(k), null, k);
    const nk = normaliseKey(k);
    assert.equal(nk.text, k);
    assert.equal(nk.url, false, k);
  }
});

Deno.test("normaliseKey gives nsurl components in hash order", () => {
  assert.deepEqual(
    nsurlComponents(
      normaliseKey("https://example.com:8080/index.html?a=1&b=2#frag"),
    ),
    [
      "https",
      "example.com",
      "8080",
      "/index.html",
      "a=1&b=2",
    ],
  );
});

Deno.test("normaliseKey takes other strings verbatim", () => {
  for (
    const k of [
      "my-key",
      "Key:With:Colons",
      "mailto:A@B.example",
      "/relative/path",
      "",
      "ünïcode ✓",
    ]
  ) {
    assert.equal(normaliseKey(k).text, k);
    assert.equal(normaliseKey(k).url, false);
    assert.deepEqual(nsurlComponents(normaliseKey(k)), [k]);
  }
});

Deno.test("normaliseKey rejects non-string keys with TypeError", () => {
  for (const k of [42, null, undefined, {}, new Uint8Array(1)]) {
    assert.throws(() => normaliseKey(k as unknown as string), TypeError);
  }
});

Deno.test("normaliseKey's fast path for canonical URLs agrees with full parsing", async (t) => {
  const { isCanonicalUrl } = await import("../src/key.ts");
  await t.step("canonical URLs take it and keep their text", () => {
    for (
      const s of [
        "https://example.com/",
        "http://a.b-c.example/static/js/1.js?v=ab12",
        "https://h.example/a/b.c/..d/.e?x=/a&y=1",
        "https://h.example/p;q=1/@x:y!$&()*+,=~",
      ]
    ) {
      assert.ok(isCanonicalUrl(s), s);
      assert.equal(normaliseKey(s).text, normaliseKey(new URL(s)).text, s);
      assert.equal(normaliseKey(s).text, s);
    }
  });
  await t.step("anything parsing would change does not", () => {
    for (
      const s of [
        "HTTPS://example.com/",
        "https://Example.com/",
        "https://example.com",
        "https://example.com:443/",
        "https://example.com:8443/",
        "https://u:p@example.com/",
        "https://example.com/a/./b",
        "https://example.com/a/../b",
        "https://example.com/a/..",
        "https://example.com/a?",
        "https://example.com/a#f",
        "https://example.com/a%7Eb",
        "https://example.com/a b",
        "https://example.com/a'b?c",
        "https://example.com/?q='",
        "https://127.1/",
        "https://a.0x7f/",
        "https://xn--nxasmq6b.example/",
        "https://example.com/\u00e9",
        "https://example.com/a\\b",
        "ftp://example.com/",
      ]
    ) {
      assert.ok(!isCanonicalUrl(s), s);
    }
  });
  await t.step("random URLs: both paths give one text", () => {
    const alphabet = "abcXYZ019-._~!$&()*+,;=:@/?%#' .";
    let seed = 12345;
    const rnd = (n: number) =>
      (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n;
    for (let i = 0; i < 5000; i++) {
      let path = "/";
      for (let j = rnd(20); j > 0; j--) path += alphabet[rnd(alphabet.length)];
      const host =
        ["example.com", "a.b", "h1.example", "EXAMPLE.com", "10.0.0.1"][rnd(5)];
      const s = `${["http", "https"][rnd(2)]}://${host}${path}`;
      const url = URL.parse(s);
      if (url === null) continue;
      assert.equal(normaliseKey(s).text, normaliseKey(url).text, s);
    }
  });
});
