// The request target's path and query without a URL parse where the parse
// would keep them: checked against `new URL` on fixed cases and on random
// strings over the characters that matter.
import assert from "node:assert/strict";
import { pathAndQuery } from "../src/proxy/_target_path.ts";

function parsed(url: string): string {
  const u = new URL(url);
  return u.pathname + u.search;
}

Deno.test("pathAndQuery: as new URL gives path and query, fixed cases", () => {
  for (
    const path of [
      "/",
      "/o/1024/7",
      "/a/b.c/d.js?x=1&y=2",
      "/a?",
      "/a??",
      "/a?b?c",
      "/./a",
      "/a/.",
      "/a/..",
      "/a/../b",
      "/a/./b?c",
      "/a/.b/..c/...",
      "/a/%2e%2E/b",
      "/a/%2E/b",
      "/a b",
      "/a'b?c'd",
      "/a\\b",
      "/a|b^c`d{e}",
      '/a"b<c>d',
      "/ünï/€?ü",
      "/a#frag",
      "/a?b#c",
      "//double//slash",
      "/a;b=c,d:e@f!$&()*+~-_",
      "/a/%41?%42",
      "/\t\n",
    ]
  ) {
    for (const base of ["http://proxy", "http://127.0.0.1:8080", "https://h"]) {
      const url = new Request(base + path).url;
      assert.equal(pathAndQuery(url), parsed(url), url);
      // As a server might hand it over, unparsed.
      const raw = base + path;
      if (!/[\s#]/.test(path)) assert.equal(pathAndQuery(raw), parsed(raw));
    }
  }
});

Deno.test("pathAndQuery: as new URL gives path and query, random", () => {
  const chars = "aZ09-._~!$&'()*+,;=:@/?%2eE\\|^`{}\"<> ü";
  let seed = 18;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  for (let k = 0; k < 20_000; k++) {
    let path = "/";
    const len = rand(12);
    for (let i = 0; i < len; i++) path += chars[rand(chars.length)];
    const url = "http://proxy" + path;
    assert.equal(pathAndQuery(url), parsed(url), url);
  }
});
