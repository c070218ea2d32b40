import assert from "node:assert/strict";
import { normaliseKey } from "../src/key.ts";

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

Deno.test("normaliseKey gives nsurl components in hash order", () => {
  assert.deepEqual(
    normaliseKey("https://example.com:8080/index.html?a=1&b=2#frag").components,
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
    assert.equal(normaliseKey(k).components, undefined);
  }
});

Deno.test("normaliseKey rejects non-string keys with TypeError", () => {
  for (const k of [42, null, undefined, {}, new Uint8Array(1)]) {
    assert.throws(() => normaliseKey(k as unknown as string), TypeError);
  }
});
