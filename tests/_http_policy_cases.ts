// RFC 9111 cases for an HTTP cache policy, written against a small
// `Subject` interface so the same cases run against larder's policy
// (tests/http_policy_test.ts) and against npm:http-cache-semantics
// (tests/http_policy_hcs_test.ts). Section numbers are RFC 9111's unless
// another RFC is named. Times are ms since the epoch; ages are seconds.

import assert from "node:assert/strict";

/** A request as the cases write it. */
export interface Req {
  method?: string;
  url?: string;
  headers?: Record<string, string>;
}

/** One exchange with the origin. */
export interface Exchange {
  req?: Req;
  status?: number;
  headers: Record<string, string>;
  requestTime?: number;
  responseTime?: number;
}

/** What a case may see of the policy under test. */
export type Kind =
  | "fresh"
  | "stale-usable"
  | "revalidate"
  | "miss"
  | "only-if-cached-504";

/** The policy under test; `E` is its stored entry. */
export interface Subject<E> {
  /** The entry a cache stores, or `null` when the response is not storable. */
  store(x: Exchange): E | null;
  /** How a request is answered from `e` (or from nothing) at `now`. */
  decide(e: E | null, req: Req, now: number): Kind;
  /** Whether the stale `e` may be served when revalidation meets a 503. */
  staleOnError(e: E, req: Req, now: number): boolean;
  /** Current age, seconds. */
  age(e: E, now: number): number;
  /** Freshness lifetime, seconds. */
  lifetime(e: E, now: number): number;
  /** Header fields of the conditional request revalidating `e` for `req`. */
  revalidationHeaders(e: E, req: Req, now: number): Headers;
  /** `e` updated by a 304, or `null` when the 304 does not select it. */
  update304(e: E, req: Req, x: Exchange): E | null;
  /** Header fields served with `e` at `now`. */
  servedHeaders(e: E, now: number): Headers;
  /** URIs an unsafe request's response invalidates; `null` when unsupported. */
  invalidates(
    method: string,
    status: number,
    url: string,
    headers: Record<string, string>,
  ): string[] | null;
  /** Whether a client's conditional request gets a 304 from `e`; `null` when unsupported. */
  clientNotModified(e: E, req: Req): boolean | null;
}

/** One case: its name starts with the section it checks. */
export interface Case {
  name: string;
  check(s: Subject<unknown>): void;
}

/** The moment every case's origin answers at. */
export const T = Date.UTC(2026, 0, 1, 12, 0, 0);
/** An HTTP-date `sec` seconds after T. */
export const D = (sec: number) => new Date(T + sec * 1000).toUTCString();
const at = (sec: number) => T + sec * 1000;
const URL_A = "http://origin.test/a";

function stored<E>(s: Subject<E>, x: Exchange): E {
  const e = s.store(x);
  assert.ok(e !== null, "expected the response to be stored");
  return e;
}

function served(k: Kind): boolean {
  return k === "fresh" || k === "stale-usable";
}

function closeTo(actual: number, want: number, what: string) {
  assert.ok(
    Math.abs(actual - want) < 0.001,
    `${what}: got ${actual}, want ${want}`,
  );
}

const fresh60 = { date: D(0), "cache-control": "max-age=60" };

export const CASES: Case[] = [
  // §3 storability
  {
    name:
      "§3 a GET 200 without explicit freshness is stored (heuristically cacheable)",
    check: (s) => assert.ok(s.store({ headers: { date: D(0) } })),
  },
  {
    name:
      "§3 status codes cacheable by default are stored without explicit freshness",
    check: (s) => {
      for (
        const status of [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]
      ) {
        assert.ok(
          s.store({ status, headers: { date: D(0) } }),
          `status ${status}`,
        );
      }
    },
  },
  {
    name: "§3 302, 307, 403 and 500 without explicit freshness are not stored",
    check: (s) => {
      for (const status of [302, 307, 403, 500]) {
        assert.equal(
          s.store({ status, headers: { date: D(0) } }),
          null,
          `status ${status}`,
        );
      }
    },
  },
  {
    name:
      "§3 a final status not cacheable by default is stored with max-age (403, 500)",
    check: (s) => {
      for (const status of [403, 500]) {
        const e = s.store({ status, headers: fresh60 });
        assert.ok(e, `status ${status}`);
        assert.equal(s.decide(e, {}, at(10)), "fresh", `status ${status}`);
      }
    },
  },
  {
    name:
      "§3 a POST response with max-age and no Content-Location is not stored (RFC 9110 §9.3.3)",
    check: (s) =>
      assert.equal(
        s.store({ req: { method: "POST" }, headers: fresh60 }),
        null,
      ),
  },
  {
    name: "§3 PUT and DELETE responses are not stored",
    check: (s) => {
      for (const method of ["PUT", "DELETE"]) {
        assert.equal(
          s.store({ req: { method }, headers: fresh60 }),
          null,
          method,
        );
      }
    },
  },
  {
    name: "§3 Expires alone makes a response storable and fresh",
    check: (s) => {
      const e = stored(s, {
        status: 302,
        headers: { date: D(0), expires: D(100) },
      });
      assert.equal(s.decide(e, {}, at(50)), "fresh");
    },
  },
  {
    name:
      "§3.1 Connection-listed and hop-by-hop fields are not served from the cache",
    check: (s) => {
      const e = stored(s, {
        headers: {
          ...fresh60,
          connection: "x-conn",
          "x-conn": "1",
          "keep-alive": "timeout=5",
          "content-type": "text/plain",
        },
      });
      const h = s.servedHeaders(e, at(1));
      assert.equal(h.get("x-conn"), null);
      assert.equal(h.get("keep-alive"), null);
      assert.equal(h.get("content-type"), "text/plain");
    },
  },
  {
    name:
      "§3.1 a response with Set-Cookie and max-age is reused (Set-Cookie does not inhibit caching)",
    check: (s) => {
      const e = stored(s, { headers: { ...fresh60, "set-cookie": "a=1" } });
      assert.equal(s.decide(e, {}, at(10)), "fresh");
    },
  },
  {
    name:
      "§4 a served response carries Age and keeps the origin's Date (RFC 9110 §6.6.1)",
    check: (s) => {
      const e = stored(s, { headers: fresh60 });
      const h = s.servedHeaders(e, at(7));
      assert.equal(h.get("age"), "7");
      assert.equal(h.get("date"), D(0));
    },
  },
  {
    name: "§5.2.2.5 a no-store response is not stored",
    check: (s) =>
      assert.equal(
        s.store({
          headers: { date: D(0), "cache-control": "no-store, max-age=60" },
        }),
        null,
      ),
  },
  {
    name: "§5.2.1.5 a response to a no-store request is not stored",
    check: (s) =>
      assert.equal(
        s.store({
          req: { headers: { "cache-control": "no-store" } },
          headers: fresh60,
        }),
        null,
      ),
  },
  {
    name: "§5.2.2.7 a private response is not stored in a shared cache",
    check: (s) =>
      assert.equal(
        s.store({
          headers: { date: D(0), "cache-control": "private, max-age=60" },
        }),
        null,
      ),
  },
  {
    name:
      "§5.2.2.7 a qualified private response is stored without the fields it names",
    check: (s) => {
      const e = stored(s, {
        headers: {
          date: D(0),
          "cache-control": 'private="x-user", max-age=60',
          "x-user": "alice",
          "content-type": "text/plain",
        },
      });
      const h = s.servedHeaders(e, at(1));
      assert.equal(h.get("x-user"), null);
      assert.equal(h.get("content-type"), "text/plain");
    },
  },
  {
    name: "§5.2 directive names are case-insensitive (No-Store)",
    check: (s) =>
      assert.equal(
        s.store({
          headers: { date: D(0), "cache-control": "No-Store, max-age=60" },
        }),
        null,
      ),
  },
  {
    name: "§5.2 directive names are case-insensitive (MAX-AGE)",
    check: (s) => {
      const e = stored(s, {
        headers: { date: D(0), "cache-control": "MAX-AGE=60" },
      });
      closeTo(s.lifetime(e, at(0)), 60, "lifetime");
    },
  },
  {
    name: '§5.2 a quoted argument is accepted (max-age="60")',
    check: (s) => {
      const e = stored(s, {
        headers: { date: D(0), "cache-control": 'max-age="60"' },
      });
      closeTo(s.lifetime(e, at(0)), 60, "lifetime");
    },
  },
  {
    name: "§5.2.3 unknown directives are ignored",
    check: (s) => {
      const e = stored(s, {
        headers: {
          date: D(0),
          "cache-control": 'foo, bar=baz, max-age=60, qux="1"',
        },
      });
      closeTo(s.lifetime(e, at(0)), 60, "lifetime");
      assert.equal(s.decide(e, {}, at(10)), "fresh");
    },
  },
  {
    name: "§5.2 commas inside a quoted-string argument do not split directives",
    check: (s) =>
      assert.ok(
        s.store({
          headers: {
            date: D(0),
            "cache-control": 'ext="a, no-store, b", max-age=60',
          },
        }),
      ),
  },
  {
    name:
      "§5.2.2.3 must-understand with an understood status overrides no-store",
    check: (s) =>
      assert.ok(
        s.store({
          headers: {
            date: D(0),
            "cache-control": "must-understand, no-store, max-age=60",
          },
        }),
      ),
  },
  {
    name:
      "§3.5 a response to a request with Authorization is not stored by default",
    check: (s) =>
      assert.equal(
        s.store({
          req: { headers: { authorization: "Basic eDp5" } },
          headers: fresh60,
        }),
        null,
      ),
  },
  {
    name:
      "§3.5 public, must-revalidate or s-maxage let a shared cache store an Authorization response",
    check: (s) => {
      for (
        const cc of [
          "public, max-age=60",
          "must-revalidate, max-age=60",
          "s-maxage=60",
        ]
      ) {
        assert.ok(
          s.store({
            req: { headers: { authorization: "Basic eDp5" } },
            headers: { date: D(0), "cache-control": cc },
          }),
          cc,
        );
      }
    },
  },

  // §4.2.1 freshness lifetime
  {
    name: "§4.2.1 s-maxage overrides max-age and Expires in a shared cache",
    check: (s) => {
      const e = stored(s, {
        headers: {
          date: D(0),
          "cache-control": "max-age=60, s-maxage=300",
          expires: D(10),
        },
      });
      closeTo(s.lifetime(e, at(0)), 300, "lifetime");
    },
  },
  {
    name: "§4.2.1 max-age overrides Expires",
    check: (s) => {
      const e = stored(s, {
        headers: {
          date: D(0),
          "cache-control": "max-age=60",
          expires: D(1000),
        },
      });
      closeTo(s.lifetime(e, at(0)), 60, "lifetime");
    },
  },
  {
    name: "§4.2.1 the lifetime from Expires is Expires minus Date",
    check: (s) => {
      const e = stored(s, { headers: { date: D(0), expires: D(120) } });
      closeTo(s.lifetime(e, at(0)), 120, "lifetime");
    },
  },
  {
    name:
      "§4.2.1 an invalid Expires (0) means already expired, with no heuristic",
    check: (s) => {
      const e = stored(s, {
        headers: { date: D(0), expires: "0", "last-modified": D(-100_000) },
      });
      closeTo(s.lifetime(e, at(0)), 0, "lifetime");
      assert.equal(s.decide(e, {}, at(1)), "revalidate");
    },
  },
  {
    name:
      "§4.2.1 a non-integer max-age makes the response stale, with no heuristic",
    check: (s) => {
      const e = stored(s, {
        headers: {
          date: D(0),
          "cache-control": "max-age=abc",
          "last-modified": D(-100_000),
        },
      });
      closeTo(s.lifetime(e, at(0)), 0, "lifetime");
    },
  },
  {
    name:
      "§4.2.1 of duplicate max-age directives the first is used (or the response is stale)",
    check: (s) => {
      const e = stored(s, {
        headers: { date: D(0), "cache-control": "max-age=60, max-age=3600" },
      });
      const lifetime = s.lifetime(e, at(0));
      assert.ok(lifetime === 60 || lifetime === 0, `lifetime ${lifetime}`);
    },
  },
  {
    name:
      "§4.2.2 the heuristic lifetime is a tenth of Date minus Last-Modified",
    check: (s) => {
      const e = stored(s, {
        headers: { date: D(0), "last-modified": D(-10_000) },
      });
      closeTo(s.lifetime(e, at(0)), 1000, "lifetime");
      assert.equal(s.decide(e, {}, at(999)), "fresh");
      assert.equal(s.decide(e, {}, at(1000)), "revalidate");
    },
  },
  {
    name: "§4.2.2 no heuristic when an explicit expiration time is present",
    check: (s) => {
      const e = stored(s, {
        headers: { date: D(0), expires: D(5), "last-modified": D(-100_000) },
      });
      closeTo(s.lifetime(e, at(0)), 5, "lifetime");
    },
  },
  {
    name: "§4.2.2 a Last-Modified after Date gives no heuristic lifetime",
    check: (s) => {
      const e = stored(s, { headers: { date: D(0), "last-modified": D(100) } });
      closeTo(s.lifetime(e, at(0)), 0, "lifetime");
    },
  },
  {
    name:
      "§4.2.1 immutable does not extend the freshness lifetime (RFC 8246 §2)",
    check: (s) => {
      const e = stored(s, {
        headers: { date: D(0), "cache-control": "immutable", expires: D(10) },
      });
      closeTo(s.lifetime(e, at(0)), 10, "lifetime with Expires");
      const bare = stored(s, {
        headers: { date: D(0), "cache-control": "immutable" },
      });
      closeTo(s.lifetime(bare, at(0)), 0, "lifetime without Expires");
    },
  },

  // §4.2.3 age
  {
    name:
      "§4.2.3 age is the origin's Age plus the response delay plus the resident time",
    check: (s) => {
      // request_time T, response_time T+2, Date T+1, Age 10: corrected_age_value
      // 12 beats apparent_age 1; 5 s resident gives 17.
      const e = stored(s, {
        headers: { date: D(1), age: "10", "cache-control": "max-age=600" },
        requestTime: at(0),
        responseTime: at(2),
      });
      closeTo(s.age(e, at(7)), 17, "age");
    },
  },
  {
    name:
      "§4.2.3 the apparent age from Date counts when it exceeds the corrected Age",
    check: (s) => {
      const e = stored(s, {
        headers: { date: D(-30), "cache-control": "max-age=600" },
        requestTime: at(0),
        responseTime: at(0),
      });
      closeTo(s.age(e, at(5)), 35, "age");
    },
  },
  {
    name:
      "§4.2.3 a Date ahead of the response time gives no negative apparent age",
    check: (s) => {
      const e = stored(s, {
        headers: { date: D(100), "cache-control": "max-age=600" },
      });
      closeTo(s.age(e, at(5)), 5, "age");
    },
  },
  {
    name:
      "§4.2.3 an age over the lifetime makes a response with max-age stale on arrival",
    check: (s) => {
      const e = stored(s, {
        headers: { date: D(0), age: "100", "cache-control": "max-age=60" },
      });
      assert.equal(s.decide(e, {}, at(0)), "revalidate");
    },
  },
  {
    name: "§5.1 an invalid Age (negative) is ignored",
    check: (s) => {
      const e = stored(s, {
        headers: { date: D(0), age: "-5", "cache-control": "max-age=60" },
      });
      closeTo(s.age(e, at(5)), 5, "age");
    },
  },
  {
    name: "§5.1 of a list-valued Age the first member is used",
    check: (s) => {
      const e = stored(s, {
        headers: { date: D(0), age: "10, 20", "cache-control": "max-age=60" },
      });
      closeTo(s.age(e, at(5)), 15, "age");
    },
  },
  {
    name:
      "§4.2 a response is fresh while its lifetime exceeds its age, stale at equality",
    check: (s) => {
      const e = stored(s, { headers: fresh60 });
      assert.equal(s.decide(e, {}, at(59)), "fresh");
      assert.equal(s.decide(e, {}, at(60)), "revalidate");
    },
  },

  // §5.2.1 request directives
  {
    name: "§5.2.1.1 request max-age: a response older than it is revalidated",
    check: (s) => {
      const e = stored(s, { headers: fresh60 });
      assert.equal(
        s.decide(e, { headers: { "cache-control": "max-age=10" } }, at(30)),
        "revalidate",
      );
      assert.equal(
        s.decide(e, { headers: { "cache-control": "max-age=40" } }, at(30)),
        "fresh",
      );
    },
  },
  {
    name:
      "§5.2.1.3 request min-fresh: a response fresh for less than it is revalidated",
    check: (s) => {
      const e = stored(s, { headers: fresh60 });
      assert.equal(
        s.decide(e, { headers: { "cache-control": "min-fresh=40" } }, at(30)),
        "revalidate",
      );
      assert.equal(
        s.decide(e, { headers: { "cache-control": "min-fresh=20" } }, at(30)),
        "fresh",
      );
    },
  },
  {
    name:
      "§5.2.1.2 request max-stale without a value accepts any stale response",
    check: (s) => {
      const e = stored(s, { headers: fresh60 });
      assert.equal(
        s.decide(e, { headers: { "cache-control": "max-stale" } }, at(100_000)),
        "stale-usable",
      );
    },
  },
  {
    name:
      "§5.2.1.2 request max-stale=N accepts a response at most N seconds stale",
    check: (s) => {
      const e = stored(s, { headers: fresh60 });
      assert.equal(
        s.decide(e, { headers: { "cache-control": "max-stale=40" } }, at(90)),
        "stale-usable",
      );
      assert.equal(
        s.decide(e, { headers: { "cache-control": "max-stale=20" } }, at(90)),
        "revalidate",
      );
    },
  },
  {
    name: "§5.2.1.4 request no-cache revalidates a fresh response",
    check: (s) => {
      const e = stored(s, { headers: fresh60 });
      assert.equal(
        s.decide(e, { headers: { "cache-control": "no-cache" } }, at(1)),
        "revalidate",
      );
    },
  },
  {
    name: "§5.4 request Pragma: no-cache without Cache-Control revalidates",
    check: (s) => {
      const e = stored(s, { headers: fresh60 });
      assert.equal(
        s.decide(e, { headers: { pragma: "no-cache" } }, at(1)),
        "revalidate",
      );
    },
  },
  {
    name: "§5.4 request Pragma is ignored when the request has Cache-Control",
    check: (s) => {
      const e = stored(s, { headers: fresh60 });
      assert.equal(
        s.decide(e, {
          headers: { pragma: "no-cache", "cache-control": "max-age=600" },
        }, at(1)),
        "fresh",
      );
    },
  },
  {
    name:
      "§5.4 response Pragma: no-cache without Cache-Control is revalidated (unspecified; the cautious reading)",
    check: (s) => {
      const e = stored(s, {
        headers: {
          date: D(0),
          pragma: "no-cache",
          "last-modified": D(-100_000),
        },
      });
      assert.equal(s.decide(e, {}, at(1)), "revalidate");
    },
  },
  {
    name: "§5.4 response Pragma is ignored beside Cache-Control",
    check: (s) => {
      const e = stored(s, { headers: { ...fresh60, pragma: "no-cache" } });
      assert.equal(s.decide(e, {}, at(1)), "fresh");
    },
  },
  {
    name:
      "§5.2.1.5 a no-store request may still be answered from a stored fresh response",
    check: (s) => {
      const e = stored(s, { headers: fresh60 });
      assert.equal(
        s.decide(e, { headers: { "cache-control": "no-store" } }, at(1)),
        "fresh",
      );
    },
  },
  {
    name:
      "§5.2.1.7 only-if-cached: fresh is served, stale or nothing stored is 504",
    check: (s) => {
      const req = { headers: { "cache-control": "only-if-cached" } };
      const e = stored(s, { headers: fresh60 });
      assert.equal(s.decide(e, req, at(1)), "fresh");
      assert.equal(s.decide(e, req, at(100)), "only-if-cached-504");
      assert.equal(s.decide(null, req, at(1)), "only-if-cached-504");
    },
  },

  // §5.2.2 response directives on reuse, §4.2.4 serving stale
  {
    name: "§5.2.2.4 a no-cache response is revalidated even while fresh",
    check: (s) => {
      const e = stored(s, {
        headers: { date: D(0), "cache-control": "no-cache, max-age=60" },
      });
      assert.equal(s.decide(e, {}, at(1)), "revalidate");
    },
  },
  {
    name:
      "§5.2.2.4 a no-cache response is not served stale under request max-stale",
    check: (s) => {
      const e = stored(s, {
        headers: { date: D(0), "cache-control": "no-cache" },
      });
      assert.equal(
        s.decide(e, { headers: { "cache-control": "max-stale" } }, at(1)),
        "revalidate",
      );
    },
  },
  {
    name:
      "§5.2.2.4 a qualified no-cache response is reused without revalidation, minus the named fields",
    check: (s) => {
      const e = stored(s, {
        headers: {
          date: D(0),
          "cache-control": 'no-cache="set-cookie", max-age=60',
          "set-cookie": "a=1",
        },
      });
      assert.equal(s.decide(e, {}, at(1)), "fresh");
      assert.equal(s.servedHeaders(e, at(1)).get("set-cookie"), null);
    },
  },
  {
    name:
      "§5.2.2.2 must-revalidate: a fresh response is served without revalidation",
    check: (s) => {
      const e = stored(s, {
        headers: { date: D(0), "cache-control": "max-age=60, must-revalidate" },
      });
      assert.equal(s.decide(e, {}, at(10)), "fresh");
    },
  },
  {
    name:
      "§5.2.2.2 must-revalidate: a stale response is not served under max-stale nor on error",
    check: (s) => {
      const e = stored(s, {
        headers: {
          date: D(0),
          "cache-control": "max-age=60, must-revalidate, stale-if-error=600",
        },
      });
      const req = { headers: { "cache-control": "max-stale" } };
      assert.equal(s.decide(e, req, at(100)), "revalidate");
      assert.equal(s.staleOnError(e, {}, at(100)), false);
    },
  },
  {
    name:
      "§5.2.2.8 proxy-revalidate: a fresh response is served by a shared cache",
    check: (s) => {
      const e = stored(s, {
        headers: {
          date: D(0),
          "cache-control": "max-age=60, proxy-revalidate",
        },
      });
      assert.equal(s.decide(e, {}, at(10)), "fresh");
    },
  },
  {
    name:
      "§5.2.2.8 proxy-revalidate: a shared cache does not serve it stale under max-stale",
    check: (s) => {
      const e = stored(s, {
        headers: {
          date: D(0),
          "cache-control": "max-age=60, proxy-revalidate",
        },
      });
      assert.equal(
        s.decide(e, { headers: { "cache-control": "max-stale" } }, at(100)),
        "revalidate",
      );
    },
  },
  {
    name:
      "§5.2.2.10 s-maxage implies proxy-revalidate: not served stale under max-stale",
    check: (s) => {
      const e = stored(s, {
        headers: { date: D(0), "cache-control": "s-maxage=60" },
      });
      assert.equal(
        s.decide(e, { headers: { "cache-control": "max-stale" } }, at(100)),
        "revalidate",
      );
    },
  },
  {
    name:
      "§4.2.4 RFC 5861 §3 stale-while-revalidate serves stale within its window only",
    check: (s) => {
      const e = stored(s, {
        headers: {
          date: D(0),
          "cache-control": "max-age=60, stale-while-revalidate=30",
        },
      });
      assert.equal(s.decide(e, {}, at(70)), "stale-usable");
      assert.equal(s.decide(e, {}, at(95)), "revalidate");
    },
  },
  {
    name: "§4.2.4 must-revalidate overrides stale-while-revalidate",
    check: (s) => {
      const e = stored(s, {
        headers: {
          date: D(0),
          "cache-control":
            "max-age=60, must-revalidate, stale-while-revalidate=30",
        },
      });
      assert.equal(s.decide(e, {}, at(70)), "revalidate");
    },
  },
  {
    name:
      "§4.2.4 RFC 5861 §4 stale-if-error allows the stale response on an origin error within its window",
    check: (s) => {
      const e = stored(s, {
        headers: {
          date: D(0),
          "cache-control": "max-age=60, stale-if-error=100",
        },
      });
      assert.equal(s.decide(e, {}, at(100)), "revalidate");
      assert.equal(s.staleOnError(e, {}, at(100)), true);
      assert.equal(s.staleOnError(e, {}, at(200)), false);
    },
  },
  {
    name: "§4.2.4 RFC 5861 §4 stale-if-error as a request directive",
    check: (s) => {
      const e = stored(s, { headers: fresh60 });
      assert.equal(
        s.staleOnError(e, {
          headers: { "cache-control": "stale-if-error=100" },
        }, at(100)),
        true,
      );
    },
  },
  {
    name:
      "§4.2.4 without stale-if-error a stale response is not served on an origin error",
    check: (s) => {
      const e = stored(s, { headers: fresh60 });
      assert.equal(s.staleOnError(e, {}, at(100)), false);
    },
  },

  // §4.3 validation
  {
    name:
      "§4.3.1 revalidation sends If-None-Match with the stored ETag and If-Modified-Since with Last-Modified",
    check: (s) => {
      const e = stored(s, {
        headers: { ...fresh60, etag: '"v1"', "last-modified": D(-1000) },
      });
      const h = s.revalidationHeaders(
        e,
        { headers: { "accept": "text/html" } },
        at(100),
      );
      assert.ok((h.get("if-none-match") ?? "").includes('"v1"'));
      assert.equal(h.get("if-modified-since"), D(-1000));
      assert.equal(h.get("accept"), "text/html");
    },
  },
  {
    name: "§4.3.1 revalidation does not forward connection-specific fields",
    check: (s) => {
      const e = stored(s, { headers: { ...fresh60, etag: '"v1"' } });
      const h = s.revalidationHeaders(
        e,
        { headers: { connection: "x-hop", "x-hop": "1", te: "trailers" } },
        at(100),
      );
      assert.equal(h.get("x-hop"), null);
      assert.equal(h.get("te"), null);
    },
  },
  {
    name: "§3.2 a 304 replaces stored field values",
    check: (s) => {
      const e = stored(s, {
        headers: { ...fresh60, etag: '"v1"', "x-version": "1" },
      });
      const u = s.update304(e, {}, {
        status: 304,
        headers: { date: D(100), etag: '"v1"', "x-version": "2" },
        requestTime: at(100),
        responseTime: at(100),
      });
      assert.ok(u, "the 304 selects the stored response");
      assert.equal(s.servedHeaders(u, at(101)).get("x-version"), "2");
    },
  },
  {
    name: "§3.2 a 304 adds fields the stored response lacked",
    check: (s) => {
      const e = stored(s, {
        headers: { date: D(0), expires: D(60), etag: '"v1"' },
      });
      const u = s.update304(e, {}, {
        status: 304,
        headers: {
          date: D(100),
          etag: '"v1"',
          "cache-control": "max-age=600",
          "x-new": "1",
        },
        requestTime: at(100),
        responseTime: at(100),
      });
      assert.ok(u, "the 304 selects the stored response");
      assert.equal(s.servedHeaders(u, at(101)).get("x-new"), "1");
      assert.equal(s.decide(u, {}, at(200)), "fresh");
    },
  },
  {
    name: "§3.2 a 304 does not replace Content-Length",
    check: (s) => {
      const e = stored(s, {
        headers: { ...fresh60, etag: '"v1"', "content-length": "5" },
      });
      const u = s.update304(e, {}, {
        status: 304,
        headers: { date: D(100), etag: '"v1"', "content-length": "0" },
        requestTime: at(100),
        responseTime: at(100),
      });
      assert.ok(u);
      assert.equal(s.servedHeaders(u, at(101)).get("content-length"), "5");
    },
  },
  {
    name:
      "§4.3.4 after a 304 the stored response is fresh again from the 304's time",
    check: (s) => {
      const e = stored(s, { headers: { ...fresh60, etag: '"v1"' } });
      assert.equal(s.decide(e, {}, at(100)), "revalidate");
      const u = s.update304(e, {}, {
        status: 304,
        headers: { date: D(100), etag: '"v1"', "cache-control": "max-age=60" },
        requestTime: at(100),
        responseTime: at(100),
      });
      assert.ok(u);
      assert.equal(s.decide(u, {}, at(110)), "fresh");
      closeTo(s.age(u, at(110)), 10, "age");
    },
  },
  {
    name:
      "§4.2.3 after a 304 without Age the stored response's old Age no longer counts",
    check: (s) => {
      const e = stored(s, {
        headers: {
          date: D(0),
          age: "50",
          "cache-control": "max-age=60",
          etag: '"v1"',
        },
      });
      const u = s.update304(e, {}, {
        status: 304,
        headers: { date: D(100), etag: '"v1"' },
        requestTime: at(100),
        responseTime: at(100),
      });
      assert.ok(u);
      assert.equal(s.decide(u, {}, at(115)), "fresh");
    },
  },
  {
    name:
      "§4.3.4 a 304 with a different strong ETag does not update the stored response",
    check: (s) => {
      const e = stored(s, { headers: { ...fresh60, etag: '"v1"' } });
      const u = s.update304(e, {}, {
        status: 304,
        headers: { date: D(100), etag: '"v2"' },
        requestTime: at(100),
        responseTime: at(100),
      });
      assert.equal(u, null);
    },
  },
  {
    name:
      "§4.3.4 a 304 with a weak ETag selects a stored response with the same weak ETag",
    check: (s) => {
      const e = stored(s, { headers: { ...fresh60, etag: 'W/"v1"' } });
      const u = s.update304(e, {}, {
        status: 304,
        headers: { date: D(100), etag: 'W/"v1"' },
        requestTime: at(100),
        responseTime: at(100),
      });
      assert.ok(u);
    },
  },
  {
    name: "§4.3.4 a 304 with a strong ETag does not select a stored weak ETag",
    check: (s) => {
      const e = stored(s, { headers: { ...fresh60, etag: 'W/"v1"' } });
      const u = s.update304(e, {}, {
        status: 304,
        headers: { date: D(100), etag: '"v1"' },
        requestTime: at(100),
        responseTime: at(100),
      });
      assert.equal(u, null);
    },
  },
  {
    name:
      "§4.3.4 a 304 without validators updates a stored response without validators",
    check: (s) => {
      const e = stored(s, { headers: fresh60 });
      const u = s.update304(e, {}, {
        status: 304,
        headers: { date: D(100), "cache-control": "max-age=60" },
        requestTime: at(100),
        responseTime: at(100),
      });
      assert.ok(u);
    },
  },
  {
    name: "§4.3.2 a client's If-None-Match matching the stored ETag gets a 304",
    check: (s) => {
      const e = stored(s, { headers: { ...fresh60, etag: '"v1"' } });
      assert.equal(
        s.clientNotModified(e, { headers: { "if-none-match": 'W/"v1"' } }),
        true,
      );
      assert.equal(
        s.clientNotModified(e, { headers: { "if-none-match": '"v0"' } }),
        false,
      );
    },
  },
  {
    name:
      "§4.3.2 a client's If-Modified-Since not before Last-Modified gets a 304; If-None-Match takes precedence",
    check: (s) => {
      const e = stored(s, {
        headers: { ...fresh60, etag: '"v1"', "last-modified": D(-100) },
      });
      assert.equal(
        s.clientNotModified(e, { headers: { "if-modified-since": D(-50) } }),
        true,
      );
      assert.equal(
        s.clientNotModified(e, { headers: { "if-modified-since": D(-200) } }),
        false,
      );
      assert.equal(
        s.clientNotModified(e, {
          headers: { "if-modified-since": D(-50), "if-none-match": '"v0"' },
        }),
        false,
      );
    },
  },

  // §4 and §4.1 selecting a stored response
  {
    name: "§4 a stored GET response answers HEAD",
    check: (s) => {
      const e = stored(s, { headers: fresh60 });
      assert.equal(s.decide(e, { method: "HEAD" }, at(1)), "fresh");
    },
  },
  {
    name: "§4 a stored GET response does not answer POST",
    check: (s) => {
      const e = stored(s, { headers: fresh60 });
      assert.ok(!served(s.decide(e, { method: "POST" }, at(1))));
    },
  },
  {
    name:
      "§4.1 a request with the same Vary-named field values selects the response",
    check: (s) => {
      const e = stored(s, {
        req: { headers: { "accept-language": "en" } },
        headers: { ...fresh60, vary: "Accept-Language" },
      });
      assert.equal(
        s.decide(e, { headers: { "accept-language": "en" } }, at(1)),
        "fresh",
      );
    },
  },
  {
    name:
      "§4.1 a request with a different Vary-named field value does not select the response",
    check: (s) => {
      const e = stored(s, {
        req: { headers: { "accept-language": "en" } },
        headers: { ...fresh60, vary: "accept-language" },
      });
      assert.ok(
        !served(s.decide(e, { headers: { "accept-language": "fr" } }, at(1))),
      );
    },
  },
  {
    name:
      "§4.1 a Vary-named field absent from both requests matches, absent from one does not",
    check: (s) => {
      const e = stored(s, {
        headers: { ...fresh60, vary: "X-Mode, Accept-Language" },
      });
      assert.equal(s.decide(e, {}, at(1)), "fresh");
      assert.ok(!served(s.decide(e, { headers: { "x-mode": "a" } }, at(1))));
    },
  },
  {
    name: "§4.1 Vary values differing only in whitespace around commas match",
    check: (s) => {
      const e = stored(s, {
        req: { headers: { "accept-encoding": "gzip, br" } },
        headers: { ...fresh60, vary: "accept-encoding" },
      });
      assert.equal(
        s.decide(e, { headers: { "accept-encoding": "gzip,br" } }, at(1)),
        "fresh",
      );
    },
  },
  {
    name: "§4.1 Vary: * never selects the stored response",
    check: (s) => {
      const e = s.store({ headers: { ...fresh60, vary: "*" } });
      if (e !== null) assert.ok(!served(s.decide(e, {}, at(1))));
    },
  },

  // §4.4 invalidation
  {
    name: "§4.4 a 2xx to POST invalidates the target URI",
    check: (s) =>
      assert.deepEqual(s.invalidates("POST", 200, URL_A, {}), [URL_A]),
  },
  {
    name: "§4.4 a 3xx to DELETE invalidates; an error status does not",
    check: (s) => {
      assert.deepEqual(s.invalidates("DELETE", 303, URL_A, {}), [URL_A]);
      assert.deepEqual(s.invalidates("DELETE", 500, URL_A, {}), []);
      assert.deepEqual(s.invalidates("PUT", 404, URL_A, {}), []);
    },
  },
  {
    name: "§4.4 safe methods invalidate nothing; unknown methods are unsafe",
    check: (s) => {
      for (const m of ["GET", "HEAD", "OPTIONS", "TRACE"]) {
        assert.deepEqual(s.invalidates(m, 200, URL_A, {}), [], m);
      }
      assert.deepEqual(s.invalidates("FROB", 200, URL_A, {}), [URL_A]);
    },
  },
  {
    name:
      "§4.4 Location and Content-Location are invalidated on the same origin only",
    check: (s) => {
      assert.deepEqual(
        s.invalidates("POST", 201, URL_A, {
          location: "/b",
          "content-location": "http://elsewhere.test/c",
        }),
        [URL_A, "http://origin.test/b"],
      );
    },
  },
];
