// Runs the RFC 9111 cases against npm:http-cache-semantics, the library the
// README weighs against larder's own policy, and pins which cases it fails,
// so the README's counts stay true. The adapter only translates shapes
// (Headers to lower-cased records, a settable clock, only-if-cached's 504,
// which is the caller's job with that library); it corrects nothing.

import assert from "node:assert/strict";
// A test-only comparison, not a dependency of the package: pinned here (and
// in deno.lock) rather than in deno.json's imports, which publishing reads.
// deno-lint-ignore no-import-prefix
import CachePolicy from "npm:http-cache-semantics@4.3.0";
import {
  CASES,
  type Exchange,
  type Kind,
  type Req,
  type Subject,
  T,
} from "./_http_policy_cases.ts";

const URL_A = "http://origin.test/a";

interface HcsRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
}
interface HcsPolicy {
  storable(): boolean;
  stale(): boolean;
  age(): number;
  maxAge(): number;
  evaluateRequest(req: HcsRequest): {
    response?: unknown;
    revalidation?: { synchronous: boolean };
  };
  revalidationHeaders(req: HcsRequest): Record<string, string>;
  revalidatedPolicy(
    req: HcsRequest,
    res: { status: number; headers: Record<string, string> },
  ): { policy: HcsPolicy; modified: boolean; matches: boolean };
  responseHeaders(): Record<string, string>;
}

let clock = T;
// The library reads the time through an overridable now() (its README says so).
const Policy = class
  extends (CachePolicy as unknown as new (...a: unknown[]) => object) {
  now() {
    return clock;
  }
} as unknown as new (
  req: HcsRequest,
  res: { status: number; headers: Record<string, string> },
  options: { shared: boolean },
) => HcsPolicy;

function request(r: Req): HcsRequest {
  return {
    method: r.method ?? "GET",
    url: r.url ?? URL_A,
    headers: { ...r.headers },
  };
}

const onlyIfCached = (r: Req) =>
  /only-if-cached/i.test(r.headers?.["cache-control"] ?? "");

const hcs: Subject<HcsPolicy> = {
  store(x: Exchange) {
    clock = x.responseTime ?? T;
    const p = new Policy(request(x.req ?? {}), {
      status: x.status ?? 200,
      headers: { ...x.headers },
    }, { shared: true });
    return p.storable() ? p : null;
  },
  decide(p, req, now): Kind {
    if (p === null) return onlyIfCached(req) ? "only-if-cached-504" : "miss";
    clock = now;
    const r = p.evaluateRequest(request(req));
    if (r.response === undefined) {
      return onlyIfCached(req) ? "only-if-cached-504" : "revalidate";
    }
    if (r.revalidation === undefined) {
      return p.stale() ? "stale-usable" : "fresh";
    }
    return "stale-usable";
  },
  staleOnError(p, req, now) {
    clock = now;
    if (p.evaluateRequest(request(req)).response !== undefined) return false;
    return p.revalidatedPolicy(request(req), { status: 503, headers: {} })
      .policy === p;
  },
  age(p, now) {
    clock = now;
    return p.age();
  },
  lifetime(p, now) {
    clock = now;
    return p.maxAge();
  },
  revalidationHeaders(p, req, now) {
    clock = now;
    return new Headers(p.revalidationHeaders(request(req)));
  },
  update304(p, req, x) {
    clock = x.responseTime ?? T;
    const r = p.revalidatedPolicy(request(req), {
      status: 304,
      headers: { ...x.headers },
    });
    return r.matches && !r.modified ? r.policy : null;
  },
  servedHeaders(p, now) {
    clock = now;
    return new Headers(p.responseHeaders());
  },
  invalidates: () => null,
  clientNotModified: () => null,
};

/** The cases http-cache-semantics 4.3.0 fails; the README counts them. */
export const HCS_FAILS: string[] = [
  "§3 a final status not cacheable by default is stored with max-age (403, 500)",
  "§3 a POST response with max-age and no Content-Location is not stored (RFC 9110 §9.3.3)",
  "§3.1 a response with Set-Cookie and max-age is reused (Set-Cookie does not inhibit caching)",
  "§4 a served response carries Age and keeps the origin's Date (RFC 9110 §6.6.1)",
  "§5.2.2.7 a qualified private response is stored without the fields it names",
  "§5.2 directive names are case-insensitive (No-Store)",
  "§5.2 directive names are case-insensitive (MAX-AGE)",
  "§5.2 commas inside a quoted-string argument do not split directives",
  "§5.2.2.3 must-understand with an understood status overrides no-store",
  "§4.2.1 of duplicate max-age directives the first is used (or the response is stale)",
  "§4.2.1 immutable does not extend the freshness lifetime (RFC 8246 §2)",
  "§4.2.3 age is the origin's Age plus the response delay plus the resident time",
  "§4.2.3 the apparent age from Date counts when it exceeds the corrected Age",
  "§5.1 an invalid Age (negative) is ignored",
  "§5.4 request Pragma is ignored when the request has Cache-Control",
  "§5.2.2.4 a no-cache response is not served stale under request max-stale",
  "§5.2.2.4 a qualified no-cache response is reused without revalidation, minus the named fields",
  "§5.2.2.2 must-revalidate: a fresh response is served without revalidation",
  "§5.2.2.2 must-revalidate: a stale response is not served under max-stale nor on error",
  "§5.2.2.8 proxy-revalidate: a fresh response is served by a shared cache",
  "§5.2.2.8 proxy-revalidate: a shared cache does not serve it stale under max-stale",
  "§5.2.2.10 s-maxage implies proxy-revalidate: not served stale under max-stale",
  "§4.2.4 RFC 5861 §4 stale-if-error as a request directive",
  "§3.2 a 304 adds fields the stored response lacked",
  "§4.2.3 after a 304 without Age the stored response's old Age no longer counts",
  "§4.3.4 a 304 with a strong ETag does not select a stored weak ETag",
  "§4.3.2 a client's If-None-Match matching the stored ETag gets a 304",
  "§4.3.2 a client's If-Modified-Since not before Last-Modified gets a 304; If-None-Match takes precedence",
  "§4 a stored GET response answers HEAD",
  "§4.1 Vary values differing only in whitespace around commas match",
  "§4.4 a 2xx to POST invalidates the target URI",
  "§4.4 a 3xx to DELETE invalidates; an error status does not",
  "§4.4 safe methods invalidate nothing; unknown methods are unsafe",
  "§4.4 Location and Content-Location are invalidated on the same origin only",
];

Deno.test("http-cache-semantics 4.3.0 fails exactly the recorded RFC 9111 cases", () => {
  const failed: string[] = [];
  for (const c of CASES) {
    try {
      c.check(hcs as Subject<unknown>);
    } catch (e) {
      failed.push(c.name);
      if (Deno.env.get("HCS_PRINT")) {
        console.log(c.name, "\n   ", String(e).split("\n")[0]);
      }
    }
  }
  if (Deno.env.get("HCS_PRINT")) console.log(JSON.stringify(failed, null, 2));
  assert.deepEqual(failed, HCS_FAILS);
});
