import assert from "node:assert/strict";
import {
  clientNotModified,
  decide,
  freshness,
  invalidates,
  isOriginError,
  notModifiedHeaders,
  responseDirectives,
  revalidationHeaders,
  servedHeaders,
  storable,
  type StoredHead,
  storedHeaders,
  updateFrom304,
  updateFromHead,
  varyKey,
  varyMatches,
  varyNames,
} from "../src/http/policy.ts";
import {
  deltaSeconds,
  parseCacheControl,
  parseTargetedCacheControl,
} from "../src/http/cache_control.ts";
import { parseDictionary } from "../src/http/_structured_fields.ts";
import { parseHttpDate } from "../src/http/dates.ts";
import {
  CASES,
  D,
  type Exchange,
  type Req,
  type Subject,
  T,
} from "./_http_policy_cases.ts";

const URL_A = "http://origin.test/a";

function request(r: Req) {
  return {
    method: r.method ?? "GET",
    url: r.url ?? URL_A,
    headers: r.headers ?? {},
  };
}

/** larder's policy, seen through the cases' interface. */
export const larder: Subject<StoredHead> = {
  store(x: Exchange) {
    const req = request(x.req ?? {});
    const res = { status: x.status ?? 200, headers: x.headers };
    if (!storable(req, res).ok) return null;
    const responseTime = x.responseTime ?? T;
    return {
      method: req.method,
      url: req.url,
      requestHeaders: req.headers,
      status: res.status,
      headers: storedHeaders(res.headers, responseTime),
      requestTime: x.requestTime ?? T,
      responseTime,
    };
  },
  decide: (e, req, now) => decide(request(req), e ?? undefined, now).kind,
  staleOnError(e, req, now) {
    const d = decide(request(req), e, now);
    return d.kind === "revalidate" && d.staleOnError;
  },
  age: (e, now) => freshness(e, now).age,
  lifetime: (e, now) => freshness(e, now).lifetime,
  revalidationHeaders: (e, req) => revalidationHeaders(e, request(req)),
  update304: (e, _req, x) =>
    updateFrom304(e, {
      headers: x.headers,
      requestTime: x.requestTime ?? T,
      responseTime: x.responseTime ?? T,
    }),
  servedHeaders: (e, now) => servedHeaders(e, now),
  invalidates: (method, status, url, headers) =>
    invalidates(method, status, url, headers),
  clientNotModified: (e, req) => clientNotModified(request(req), e.headers),
};

Deno.test("http policy passes every RFC 9111 case", async (t) => {
  for (const c of CASES) {
    await t.step(c.name, () => c.check(larder as Subject<unknown>));
  }
});

Deno.test("parseCacheControl reads RFC 9111 §5.2 syntax", async (t) => {
  await t.step("§5.2 names fold case, first occurrence wins", () => {
    const cc = parseCacheControl("Max-Age=5, max-age=9, PUBLIC");
    assert.equal(cc.get("max-age"), "5");
    assert.equal(cc.get("public"), true);
  });
  await t.step("§5.2 quoted strings keep commas and escapes", () => {
    const cc = parseCacheControl('a="x, \\"y\\"", b, c = 3');
    assert.equal(cc.get("a"), 'x, "y"');
    assert.equal(cc.get("b"), true);
    assert.equal(cc.get("c"), "3");
  });
  await t.step("§5.2 empty members and a missing field", () => {
    assert.equal(parseCacheControl(" , ,no-store,, ").size, 1);
    assert.equal(parseCacheControl(null).size, 0);
  });
  await t.step(
    "§1.2.2 delta-seconds: non-negative integers capped at 2^31",
    () => {
      assert.equal(deltaSeconds("0"), 0);
      assert.equal(deltaSeconds("99999999999"), 2 ** 31);
      assert.equal(deltaSeconds("-1"), undefined);
      assert.equal(deltaSeconds("1.5"), undefined);
      assert.equal(deltaSeconds(true), undefined);
    },
  );
});

Deno.test("parseHttpDate reads RFC 9110 §5.6.7's three formats only", async (t) => {
  const want = Date.UTC(1994, 10, 6, 8, 49, 37);
  await t.step("RFC 9110 §5.6.7 IMF-fixdate, RFC 850 and asctime", () => {
    assert.equal(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), want);
    assert.equal(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), want);
    assert.equal(parseHttpDate("Sun Nov  6 08:49:37 1994"), want);
  });
  await t.step("RFC 9110 §5.6.7 anything else is invalid", () => {
    for (
      const s of [
        "0",
        "-1",
        "",
        "tomorrow",
        "2026-01-01",
        "Sun, 31 Feb 2026 00:00:00 GMT",
      ]
    ) {
      assert.equal(parseHttpDate(s), undefined, s);
    }
  });
  await t.step(
    "RFC 9110 §5.6.7 a two-digit year over 50 years ahead is in the past",
    () => {
      const now = Date.UTC(2026, 0, 1);
      assert.equal(
        parseHttpDate("Thursday, 01-Jan-99 00:00:00 GMT", now),
        Date.UTC(1999, 0, 1),
      );
      assert.equal(
        parseHttpDate("Friday, 01-Jan-49 00:00:00 GMT", now),
        Date.UTC(2049, 0, 1),
      );
    },
  );
});

Deno.test("http policy helpers the proxy uses", async (t) => {
  await t.step("§4.1 varyKey is equal exactly when varyMatches holds", () => {
    const names = varyNames({ vary: "Accept-Encoding, accept-language" });
    assert.deepEqual(names, ["accept-encoding", "accept-language"]);
    const a = { "accept-encoding": "gzip, br", "accept-language": "en" };
    const b = { "accept-encoding": "gzip,br", "accept-language": "en" };
    const c = { "accept-encoding": "gzip" };
    assert.equal(varyKey(names, a), varyKey(names, b));
    assert.notEqual(varyKey(names, a), varyKey(names, c));
    assert.ok(varyMatches(a, names, b));
    assert.ok(!varyMatches(a, names, c));
    assert.equal(varyKey("*", a), null);
    assert.equal(varyKey([], a), varyKey([], c));
  });
  await t.step("§3 storable names the rule that refused", () => {
    const req = request({});
    assert.deepEqual(
      storable(req, { status: 200, headers: { "cache-control": "no-store" } }),
      {
        ok: false,
        reason: "no-store",
      },
    );
    assert.deepEqual(storable(req, { status: 206, headers: {} }), {
      ok: false,
      reason: "status 206",
    });
  });
  await t.step("§3.1 storedHeaders dates a response that lacks Date", () => {
    assert.equal(storedHeaders({}, T).get("date"), D(0));
    assert.equal(storedHeaders({ date: D(-5) }, T).get("date"), D(-5));
  });
  await t.step(
    "§4.3.1 revalidationHeaders drops the client's preconditions and Range",
    () => {
      const stored = larder.store({ headers: { date: D(0), etag: '"s"' } })!;
      const h = revalidationHeaders(
        stored,
        request({
          headers: {
            "if-none-match": '"c"',
            "if-match": '"m"',
            range: "bytes=0-1",
            "x-a": "1",
          },
        }),
      );
      assert.equal(h.get("if-none-match"), '"s"');
      assert.equal(h.get("if-match"), null);
      assert.equal(h.get("range"), null);
      assert.equal(h.get("x-a"), "1");
      assert.equal(revalidationHeaders(stored).get("if-none-match"), '"s"');
    },
  );
  await t.step("§4.2.3 servedHeaders rounds Age down to whole seconds", () => {
    const stored = larder.store({
      headers: { date: D(0), "cache-control": "max-age=60" },
    })!;
    assert.equal(servedHeaders(stored, T + 7_900).get("age"), "7");
  });
  await t.step(
    "RFC 9110 §15.4.5 a 304 from the cache carries validators and cache fields only",
    () => {
      const stored = larder.store({
        headers: {
          date: D(0),
          "cache-control": "max-age=60",
          etag: '"v1"',
          vary: "accept",
          "content-type": "text/plain",
          "content-length": "5",
        },
      })!;
      const h = notModifiedHeaders(stored, T + 3_000);
      assert.deepEqual([...h], [
        ["age", "3"],
        ["cache-control", "max-age=60"],
        ["date", D(0)],
        ["etag", '"v1"'],
        ["vary", "accept"],
      ]);
    },
  );
  await t.step("RFC 5861 §4 origin errors are 500, 502, 503 and 504", () => {
    assert.deepEqual([500, 501, 502, 503, 504, 404].map(isOriginError), [
      true,
      false,
      true,
      true,
      true,
      false,
    ]);
  });
  await t.step("§4 a stored HEAD answers HEAD only", () => {
    const stored = larder.store({
      req: { method: "HEAD" },
      headers: { date: D(0), "cache-control": "max-age=60" },
    })!;
    assert.equal(decide(request({ method: "HEAD" }), stored, T).kind, "fresh");
    assert.equal(decide(request({}), stored, T).kind, "miss");
  });
});

Deno.test("varyKey agrees with varyMatches on random requests", () => {
  // §4.1: the secondary key must group exactly the requests that match.
  let seed = 0x9e3779b9;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  const parts = ["gzip", "br", " ", ",", "en", "x"];
  const value = () =>
    rand(4) === 0
      ? undefined
      : Array.from({ length: rand(4) }, () => parts[rand(parts.length)]).join(
        "",
      );
  const names = ["accept-encoding", "accept-language"];
  const headers = () => {
    const h: Record<string, string> = {};
    for (const n of names) {
      const v = value();
      if (v !== undefined) h[n] = v;
    }
    return h;
  };
  for (let i = 0; i < 2000; i++) {
    const a = headers();
    const b = headers();
    const matches = varyMatches(a, names, b);
    assert.equal(
      varyKey(names, a) === varyKey(names, b),
      matches,
      JSON.stringify([a, b]),
    );
  }
});

Deno.test("http policy RFC 8941 §4.2.2: Dictionary parsing is strict", async (t) => {
  await t.step("valid members of every type", () => {
    const d = parseDictionary(
      'a=1, b=-2.5, c="x\\"y", d=tok/1:2, e=:AQID:, f=?0, g, h=(1 "two");p=3, i=@1700000000, j=%"caf%c3%a9";q',
    );
    assert.ok(d !== undefined);
    const item = (k: string) => {
      const m = d.get(k);
      return m?.kind === "item" ? m.item : undefined;
    };
    assert.deepEqual(item("a"), { type: "integer", value: 1 });
    assert.deepEqual(item("b"), { type: "decimal", value: -2.5 });
    assert.deepEqual(item("c"), { type: "string", value: 'x"y' });
    assert.deepEqual(item("d"), { type: "token", value: "tok/1:2" });
    assert.deepEqual([...(item("e")!.value as Uint8Array)], [1, 2, 3]);
    assert.deepEqual(item("f"), { type: "boolean", value: false });
    assert.deepEqual(item("g"), { type: "boolean", value: true });
    const h = d.get("h");
    assert.ok(h?.kind === "list" && h.items.length === 2);
    assert.deepEqual(h.params.get("p"), { type: "integer", value: 3 });
    assert.deepEqual(item("i"), { type: "date", value: 1700000000 });
    assert.deepEqual(item("j"), { type: "displaystring", value: "café" });
    assert.deepEqual(d.get("j")?.params.get("q"), {
      type: "boolean",
      value: true,
    });
  });
  await t.step("a repeated key keeps its last value", () => {
    const m = parseDictionary("a=1, a=2")?.get("a");
    assert.deepEqual(m?.kind === "item" && m.item, {
      type: "integer",
      value: 2,
    });
  });
  await t.step("malformed values fail the whole field", () => {
    for (
      const bad of [
        "a =1",
        "a= 1",
        "A=1",
        "1a=1",
        "a=1,",
        "a=1 b=2",
        "a=&",
        'a="unterminated',
        'a="\\n"',
        "a=1234567890123456",
        "a=1.2345",
        "a=1234567890123.5",
        "a=:not base64!:",
        "a=?2",
        "a=(1 2",
        "a,,b",
      ]
    ) {
      assert.equal(parseDictionary(bad), undefined, bad);
    }
  });
});

Deno.test("http policy RFC 9213 §2.2: targeted directives are typed, else the field is invalid", () => {
  const cc = parseTargetedCacheControl(
    'max-age=60;x=1, no-cache="set-cookie", must-revalidate, ext=(1 2), ext2=?0, ext3=tok',
  );
  assert.ok(cc !== undefined);
  assert.deepEqual([...cc], [
    ["max-age", "60"],
    ["no-cache", "set-cookie"],
    ["must-revalidate", true],
    ["ext3", "tok"],
  ]);
  assert.equal(
    parseTargetedCacheControl("s-maxage=99999999999")?.get("s-maxage"),
    "99999999999",
  );
  for (
    const bad of [
      null,
      "",
      'max-age="60"',
      "max-age=1.5",
      "max-age=-1",
      "max-age",
      "no-store=?0",
      "no-store=1",
      "private=(a b)",
      "no-cache=tok",
    ]
  ) {
    assert.equal(parseTargetedCacheControl(bad), undefined, String(bad));
  }
});

Deno.test("http policy RFC 9213 §2.1: the first valid targeted field replaces Cache-Control and Expires", () => {
  const stored = (headers: Record<string, string>): StoredHead => ({
    method: "GET",
    url: "http://o/a",
    requestHeaders: [],
    status: 200,
    headers: storedHeaders({ date: D(0), ...headers }, T),
    requestTime: T,
    responseTime: T,
  });
  const req = { method: "GET", url: "http://o/a", headers: {} };
  // Expires in the future is ignored under a targeted max-age=0.
  const a = stored({ "cdn-cache-control": "max-age=0", expires: D(3600) });
  assert.equal(freshness(a, T + 1000).lifetime, 0);
  // An invalid first field on the list is skipped for the next.
  const options = { targetedFields: ["A-Cache-Control", "CDN-Cache-Control"] };
  const rd = responseDirectives({
    "a-cache-control": "max-age=x",
    "cdn-cache-control": "max-age=5",
    "cache-control": "max-age=100",
  }, options);
  assert.equal(rd.targeted, "cdn-cache-control");
  assert.equal(rd.directives.get("max-age"), "5");
  // Storability follows the targeted field.
  const res = (h: Record<string, string>) => ({ status: 200, headers: h });
  assert.ok(
    !storable(
      req,
      res({ "cdn-cache-control": "no-store", "cache-control": "max-age=60" }),
    ).ok,
  );
  assert.ok(
    storable(
      req,
      res({ "cdn-cache-control": "max-age=60", "cache-control": "no-store" }),
    ).ok,
  );
  assert.ok(
    !storable(
      req,
      res({ "cdn-cache-control": "private", "cache-control": "public" }),
    ).ok,
  );
  // An empty target list obeys Cache-Control.
  assert.ok(
    storable(
      req,
      res({ "cdn-cache-control": "no-store", "cache-control": "max-age=60" }),
      {
        targetedFields: [],
      },
    ).ok,
  );
  // no-cache and must-revalidate in the targeted field govern reuse.
  const nc = stored({
    "cdn-cache-control": "no-cache",
    "cache-control": "max-age=600",
  });
  assert.equal(decide(req, nc, T + 1000).kind, "revalidate");
  const mr = stored({
    "cdn-cache-control": "max-age=1, must-revalidate",
    "cache-control": "max-age=1",
  });
  assert.equal(
    decide(
      { ...req, headers: { "cache-control": "max-stale=600" } },
      mr,
      T + 5000,
    ).kind,
    "revalidate",
  );
  // A qualified private in the targeted field drops the named field.
  const p = stored({
    "cdn-cache-control": 'private="x-secret"',
    "x-secret": "1",
  });
  assert.equal(new Headers(p.headers).get("x-secret"), null);
});

Deno.test("http policy §4.3.5: a HEAD 200 updates a matching stored GET, else makes it stale", () => {
  const stored: StoredHead = {
    method: "GET",
    url: "http://o/a",
    requestHeaders: [],
    status: 200,
    headers: {
      date: D(0),
      etag: '"1"',
      "last-modified": D(-60),
      "content-length": "10",
      "cache-control": "max-age=1",
      "x-a": "1",
      "x-b": "1",
    },
    requestTime: T,
    responseTime: T,
  };
  const at = { requestTime: T + 5000, responseTime: T + 5000 };
  const u = updateFromHead(stored, {
    ...at,
    status: 200,
    headers: {
      etag: '"1"',
      "content-length": "10",
      "cache-control": "max-age=600",
      "x-a": "2",
    },
  });
  assert.equal(u.kind, "updated");
  const h = new Headers(u.kind === "updated" ? u.head.headers : []);
  assert.equal(h.get("cache-control"), "max-age=600");
  assert.equal(h.get("x-a"), "2");
  assert.equal(h.get("x-b"), "1");
  assert.equal(h.get("last-modified"), D(-60));
  assert.ok(u.kind === "updated" && freshness(u.head, T + 6000).fresh);
  const verdict = (
    status: number,
    headers: Record<string, string>,
    storedLength?: number,
  ) =>
    updateFromHead(stored, { ...at, status, headers }, { storedLength }).kind;
  assert.equal(verdict(200, { etag: '"2"' }), "stale");
  assert.equal(verdict(200, { etag: 'W/"1"' }), "stale");
  assert.equal(verdict(200, { "last-modified": D(-30) }), "stale");
  assert.equal(verdict(200, { "content-length": "11" }), "stale");
  // The stored body's own length, when known, is what is compared.
  assert.equal(verdict(200, { "content-length": "10" }, 12), "stale");
  assert.equal(verdict(200, { "content-length": "12" }, 12), "updated");
  // No validator and no length in the HEAD response: nothing contradicts it.
  assert.equal(verdict(200, {}), "updated");
  for (const status of [204, 304, 404, 410, 500]) {
    assert.equal(
      verdict(status, { "cache-control": "max-age=600" }),
      "unchanged",
    );
  }
});

Deno.test("http policy §4.1: Accept-Language, -Encoding and -Charset match case- and space-insensitively", () => {
  const names = ["accept-language"];
  const same = (a: string, b: string) => {
    const m = varyMatches({ "accept-language": a }, names, {
      "accept-language": b,
    });
    assert.equal(
      varyKey(names, { "accept-language": a }) ===
        varyKey(names, { "accept-language": b }),
      m,
    );
    return m;
  };
  assert.ok(same("en, de", "eN, De"));
  assert.ok(same("en;q=0.5, de", "EN ; Q=0.5,de"));
  // Order is kept: among equal weights it may be a preference.
  assert.ok(!same("en, de", "de, en"));
  assert.ok(!same("en", "en-gb"));
  assert.ok(
    varyMatches({ "accept-encoding": "GZIP, br" }, ["accept-encoding"], {
      "accept-encoding": "gzip,BR",
    }),
  );
  // Other fields keep their case: their values may be case-sensitive.
  assert.ok(!varyMatches({ "x-v": "A" }, ["x-v"], { "x-v": "a" }));
});
