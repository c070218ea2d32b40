/**
 * The caching policy of a shared HTTP cache (RFC 9111), as pure functions of
 * request and response heads and the time: what may be stored, how old and
 * how fresh a stored response is, whether a request may be answered from it,
 * how to revalidate it, how a 304 updates it, and what an unsafe request
 * invalidates. Nothing here does I/O; times are milliseconds since the epoch,
 * ages and lifetimes are seconds.
 *
 * Section numbers are RFC 9111's unless another RFC is named.
 *
 * @module
 */

import {
  deltaSeconds,
  type Directives,
  fieldNames,
  parseCacheControl,
  parseTargetedCacheControl,
} from "./cache_control.ts";
import { formatHttpDate, parseHttpDate } from "./dates.ts";

/** Header fields in any form the `Headers` constructor takes. */
export type HeadersLike = Headers | [string, string][] | Record<string, string>;

/** A request as the policy sees it. */
export interface RequestHead {
  /** The request method, upper case (`GET`). */
  method: string;
  /** The target URI, absolute. */
  url: string;
  /** The request's header fields. */
  headers: HeadersLike;
}

/** A response as the policy sees it. */
export interface ResponseHead {
  /** The status code. */
  status: number;
  /** The response's header fields. */
  headers: HeadersLike;
}

/**
 * What a cache keeps of an exchange to decide about later requests: the
 * request's method, URI and header fields (at least those the response's
 * `Vary` names), the response's status and stored header fields, and the
 * clock at which the request was sent and the response received (§4.2.3's
 * `request_time` and `response_time`).
 */
export interface StoredHead {
  /** Method of the request that produced the response. */
  method: string;
  /** Target URI of that request. */
  url: string;
  /** That request's header fields (those named by `Vary` suffice). */
  requestHeaders: HeadersLike;
  /** The stored response's status. */
  status: number;
  /** The stored response's header fields, as {@linkcode storedHeaders} left them. */
  headers: HeadersLike;
  /** When the request was sent, ms since the epoch. */
  requestTime: number;
  /** When the response was received, ms since the epoch. */
  responseTime: number;
}

/** Options for the policy's functions. */
export interface PolicyOptions {
  /**
   * Fraction of the time since `Last-Modified` used as a heuristic
   * freshness lifetime (§4.2.2). Default 0.1; 0 turns heuristics off.
   */
  heuristicFraction?: number;
  /**
   * The targeted cache control fields this cache obeys (RFC 9213 §2.1, its
   * "target list"), in order of precedence. The first one a response
   * carries with a valid, non-empty value is used instead of its
   * `Cache-Control` and `Expires`. Default {@linkcode DEFAULT_TARGETED_FIELDS};
   * `[]` obeys `Cache-Control` alone.
   */
  targetedFields?: readonly string[];
}

/**
 * The target list of a CDN-like shared cache (RFC 9213 §3): `CDN-Cache-Control`.
 */
export const DEFAULT_TARGETED_FIELDS: readonly string[] = ["CDN-Cache-Control"];

// RFC 9110 §15.1: cacheable by default, so heuristically cacheable (§4.2.2).
const HEURISTICALLY_CACHEABLE = new Set([
  200,
  203,
  204,
  206,
  300,
  301,
  308,
  404,
  405,
  410,
  414,
  501,
]);

// The status codes RFC 9110 defines; `must-understand` (§5.2.2.3) lets a
// cache store only responses whose status it understands.
const UNDERSTOOD = new Set([
  200,
  201,
  202,
  203,
  204,
  205,
  300,
  301,
  302,
  303,
  305,
  307,
  308,
  400,
  401,
  402,
  403,
  404,
  405,
  406,
  407,
  408,
  409,
  410,
  411,
  412,
  413,
  414,
  415,
  416,
  417,
  421,
  422,
  426,
  500,
  501,
  502,
  503,
  504,
  505,
]);

/**
 * Connection-specific fields (RFC 9110 §7.6.1, RFC 9111 §3.1): never stored,
 * never forwarded.
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "transfer-encoding",
  "upgrade",
  "proxy-authenticate",
  "proxy-authentication-info",
  "proxy-authorization",
  "trailer",
]);

// §3.2: a 304 must not change what the stored body depends on.
const NOT_UPDATED_BY_304 = new Set([
  "content-length",
  "content-encoding",
  "content-range",
]);

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);

const CONDITIONAL_REQUEST_FIELDS = [
  "if-match",
  "if-none-match",
  "if-modified-since",
  "if-unmodified-since",
  "if-range",
  "range",
];

function headersOf(h: HeadersLike): Headers {
  return h instanceof Headers ? h : new Headers(h);
}

function directives(h: Headers): Directives {
  return parseCacheControl(h.get("cache-control"));
}

/** The cache directives that govern a response, from {@linkcode responseDirectives}. */
export interface ResponseDirectives {
  /** The directives by lower-cased name. */
  directives: Directives;
  /**
   * The targeted field they come from (lower-cased), or `null` when they
   * are the response's `Cache-Control`.
   */
  targeted: string | null;
}

/**
 * The cache directives a response gives this cache (RFC 9213 §2.1): those
 * of the first field on the target list (`options.targetedFields`) that
 * the response carries with a valid, non-empty value; otherwise its
 * `Cache-Control`. When a targeted field is used, `Cache-Control` and
 * `Expires` are ignored.
 *
 * @param headers The response's header fields.
 * @param options The target list.
 * @returns The directives and where they come from.
 * @example CDN-Cache-Control wins over Cache-Control
 * ```ts
 * import assert from "node:assert/strict";
 * import { responseDirectives } from "./policy.ts";
 * const d = responseDirectives({ "cache-control": "no-store", "cdn-cache-control": "max-age=60" });
 * assert.ok(d.targeted === "cdn-cache-control" && !d.directives.has("no-store"));
 * ```
 */
export function responseDirectives(
  headers: HeadersLike,
  options: PolicyOptions = {},
): ResponseDirectives {
  const h = headersOf(headers);
  for (const name of options.targetedFields ?? DEFAULT_TARGETED_FIELDS) {
    const d = parseTargetedCacheControl(h.get(name));
    if (d !== undefined) {
      return { directives: d, targeted: name.toLowerCase() };
    }
  }
  return { directives: directives(h), targeted: null };
}

/** The verdict of {@linkcode storable}. */
export type Storability =
  | { ok: true }
  | { ok: false; reason: string };

/**
 * Whether a shared cache may store a response (§3, §3.5). Stores only
 * final responses to `GET` and `HEAD` (a `POST` response is only reusable
 * for a later `GET` with a matching `Content-Location`, RFC 9110 §9.3.3,
 * which a URL-keyed cache gains little from), never 206 (this cache answers
 * ranges from complete responses) or 304 (it only updates, §4.3.4), and never
 * `Vary: *` (it can never be selected, §4.1).
 *
 * @param req The request the response answers.
 * @param res The response.
 * @param options The target list ({@linkcode responseDirectives}).
 * @returns `{ ok: true }`, or `{ ok: false, reason }` naming the rule.
 * @example A response with max-age is storable, one with private is not
 * ```ts
 * import assert from "node:assert/strict";
 * import { storable } from "./policy.ts";
 * const req = { method: "GET", url: "http://o/a", headers: [] as [string, string][] };
 * assert.ok(storable(req, { status: 200, headers: { "cache-control": "max-age=60" } }).ok);
 * assert.ok(!storable(req, { status: 200, headers: { "cache-control": "private" } }).ok);
 * ```
 */
export function storable(
  req: RequestHead,
  res: ResponseHead,
  options: PolicyOptions = {},
): Storability {
  const reqHeaders = headersOf(req.headers);
  const resHeaders = headersOf(res.headers);
  const method = req.method.toUpperCase();
  if (method !== "GET" && method !== "HEAD") {
    return { ok: false, reason: "method" };
  }
  if (res.status < 200 || res.status > 599) {
    return { ok: false, reason: "status not final" };
  }
  if (res.status === 206 || res.status === 304) {
    return { ok: false, reason: `status ${res.status}` };
  }
  if (directives(reqHeaders).has("no-store")) {
    return { ok: false, reason: "request no-store" };
  }
  const { directives: cc, targeted } = responseDirectives(resHeaders, options);
  if (cc.has("must-understand")) {
    // §5.2.2.3: no-store does not apply when the status is understood.
    if (!UNDERSTOOD.has(res.status)) {
      return { ok: false, reason: "must-understand" };
    }
  } else if (cc.has("no-store")) {
    return { ok: false, reason: "no-store" };
  }
  if (cc.has("private") && fieldNames(cc.get("private")) === undefined) {
    return { ok: false, reason: "private" };
  }
  if (
    reqHeaders.has("authorization") &&
    !cc.has("must-revalidate") && !cc.has("public") && !cc.has("s-maxage")
  ) {
    return { ok: false, reason: "authorization" };
  }
  if (varyNames(resHeaders) === "*") return { ok: false, reason: "vary *" };
  if (
    (targeted === null && resHeaders.has("expires")) || cc.has("max-age") ||
    cc.has("s-maxage") ||
    cc.has("public") || HEURISTICALLY_CACHEABLE.has(res.status)
  ) {
    return { ok: true };
  }
  return { ok: false, reason: "no explicit freshness, status not cacheable" };
}

/**
 * The header fields to keep of a response being stored (§3.1): drops
 * connection-specific fields and those the `Connection` field lists, the
 * fields a qualified `private` names (§5.2.2.7, a shared cache must not
 * store them) and those a qualified `no-cache` names (§5.2.2.4: the rest may
 * be reused without revalidation if they are left out). Adds `Date` when the
 * response lacks one (RFC 9110 §6.6.1), so the stored head dates itself.
 *
 * @param res The response's header fields.
 * @param responseTime When it was received, ms since the epoch.
 * @param options The target list ({@linkcode responseDirectives}).
 * @returns A new `Headers` to store.
 */
export function storedHeaders(
  res: HeadersLike,
  responseTime: number,
  options: PolicyOptions = {},
): Headers {
  const h = headersOf(res);
  const out = new Headers();
  const drop = new Set(HOP_BY_HOP);
  for (const name of (h.get("connection") ?? "").split(",")) {
    drop.add(name.trim().toLowerCase());
  }
  const cc = responseDirectives(h, options).directives;
  for (const d of ["private", "no-cache"]) {
    for (const name of fieldNames(cc.get(d)) ?? []) drop.add(name);
  }
  for (const [name, value] of h) {
    if (!drop.has(name)) out.append(name, value);
  }
  if (parseHttpDate(h.get("date"), responseTime) === undefined) {
    out.set("date", formatHttpDate(responseTime));
  }
  return out;
}

/** A stored response's age and freshness at some moment. */
export interface Freshness {
  /** `current_age` of §4.2.3, seconds. */
  age: number;
  /** `freshness_lifetime` of §4.2.1, seconds. */
  lifetime: number;
  /** Whether the lifetime comes from §4.2.2's heuristic. */
  heuristic: boolean;
  /** `lifetime > age` (§4.2). */
  fresh: boolean;
  /** Seconds past the lifetime, 0 while fresh. */
  staleBy: number;
}

function ageValue(h: Headers): number {
  // §5.1: use the first member of a list; ignore an invalid value.
  const first = (h.get("age") ?? "").split(",")[0]!.trim();
  return deltaSeconds(first) ?? 0;
}

function lifetimeOf(
  status: number,
  h: Headers,
  rd: ResponseDirectives,
  dateValue: number,
  fraction: number,
): { lifetime: number; heuristic: boolean } {
  const cc = rd.directives;
  // §4.2.1, in a shared cache: s-maxage, then max-age, then Expires; an
  // invalid value makes the response stale rather than heuristic.
  if (cc.has("s-maxage")) {
    return {
      lifetime: deltaSeconds(cc.get("s-maxage")) ?? 0,
      heuristic: false,
    };
  }
  if (cc.has("max-age")) {
    return { lifetime: deltaSeconds(cc.get("max-age")) ?? 0, heuristic: false };
  }
  if (rd.targeted === null && h.has("expires")) {
    const expires = parseHttpDate(h.get("expires"), dateValue);
    if (expires === undefined) return { lifetime: 0, heuristic: false };
    return {
      lifetime: Math.max(0, (expires - dateValue) / 1000),
      heuristic: false,
    };
  }
  // §4.2.2: only for heuristically cacheable statuses or public responses.
  if (HEURISTICALLY_CACHEABLE.has(status) || cc.has("public")) {
    const lastModified = parseHttpDate(h.get("last-modified"), dateValue);
    if (lastModified !== undefined && lastModified < dateValue) {
      return {
        lifetime: Math.floor((dateValue - lastModified) / 1000 * fraction),
        heuristic: true,
      };
    }
  }
  return { lifetime: 0, heuristic: false };
}

/**
 * A stored response's current age (§4.2.3, exactly: the origin's `Age`,
 * its `Date`, the request and response times and the time resident) and its
 * freshness lifetime (§4.2.1 for a shared cache, §4.2.2's heuristic from
 * `Last-Modified` when there is no explicit expiry).
 *
 * @param stored The stored head.
 * @param now The moment to evaluate at, ms since the epoch.
 * @param options Heuristic fraction.
 * @returns Age, lifetime, whether fresh, and by how much stale.
 * @example Age includes the origin's Age and the time since receipt
 * ```ts
 * import assert from "node:assert/strict";
 * import { freshness } from "./policy.ts";
 * const t = Date.UTC(2026, 0, 1);
 * const f = freshness({
 *   method: "GET", url: "http://o/a", requestHeaders: [], status: 200,
 *   headers: { date: new Date(t).toUTCString(), age: "10", "cache-control": "max-age=60" },
 *   requestTime: t, responseTime: t,
 * }, t + 5000);
 * assert.ok(f.age === 15 && f.lifetime === 60 && f.fresh);
 * ```
 */
export function freshness(
  stored: StoredHead,
  now: number,
  options: PolicyOptions = {},
): Freshness {
  return freshnessAt(prepareHead(stored, options), now);
}

/**
 * A stored head with what the policy derives from it alone, worked out
 * once: its fields as a `Headers`, its `Vary` names, its cache directives,
 * its corrected initial age (§4.2.3) and its freshness lifetime (§4.2.1,
 * §4.2.2). Only the time (resident time, hence age and freshness) and the
 * request remain per decision, so a cache that keeps a prepared head for
 * an unchanged stored response decides exactly as from the head itself.
 */
export interface PreparedHead {
  /** The stored head, `headers` as a `Headers` (never modified). */
  readonly head: StoredHead & { readonly headers: Headers };
  /** The options it was prepared with. */
  readonly options: PolicyOptions;
  /** The stored request fields as a `Headers`. */
  readonly requestHeaders: Headers;
  /** The response's `Vary` names, or `"*"`. */
  readonly vary: string[] | "*";
  /** The directives that govern it ({@linkcode responseDirectives}). */
  readonly directives: ResponseDirectives;
  /** `corrected_initial_age` of §4.2.3, seconds. */
  readonly initialAge: number;
  /** `freshness_lifetime`, seconds. */
  readonly lifetime: number;
  /** Whether the lifetime is heuristic (§4.2.2). */
  readonly heuristic: boolean;
}

/**
 * Prepares a stored head for {@linkcode decidePrepared} and
 * {@linkcode freshnessAt}: everything that depends on the head and the
 * options but not on the time or the request.
 *
 * @param stored The stored head (not modified afterwards by the caller).
 * @param options Heuristic fraction and target list.
 * @returns The prepared head.
 * @example The same freshness as from the head
 * ```ts
 * import assert from "node:assert/strict";
 * import { freshness, freshnessAt, prepareHead } from "./policy.ts";
 * const t = Date.UTC(2026, 0, 1);
 * const stored = {
 *   method: "GET", url: "http://o/a", requestHeaders: [], status: 200,
 *   headers: { date: new Date(t).toUTCString(), "cache-control": "max-age=60" },
 *   requestTime: t, responseTime: t,
 * };
 * assert.deepEqual(freshnessAt(prepareHead(stored), t + 5000), freshness(stored, t + 5000));
 * ```
 */
export function prepareHead(
  stored: StoredHead,
  options: PolicyOptions = {},
): PreparedHead {
  const h = headersOf(stored.headers);
  const dateValue = parseHttpDate(h.get("date"), stored.responseTime) ??
    stored.responseTime;
  const apparentAge = Math.max(0, (stored.responseTime - dateValue) / 1000);
  const responseDelay = (stored.responseTime - stored.requestTime) / 1000;
  const correctedAgeValue = ageValue(h) + responseDelay;
  const rd = responseDirectives(h, options);
  const { lifetime, heuristic } = lifetimeOf(
    stored.status,
    h,
    rd,
    dateValue,
    options.heuristicFraction ?? 0.1,
  );
  return {
    head: h === stored.headers
      ? stored as StoredHead & { headers: Headers }
      : { ...stored, headers: h },
    options,
    requestHeaders: headersOf(stored.requestHeaders),
    vary: varyNames(h),
    directives: rd,
    initialAge: Math.max(apparentAge, correctedAgeValue),
    lifetime,
    heuristic,
  };
}

/**
 * A prepared head's age and freshness at `now` ({@linkcode freshness}).
 *
 * @param p The prepared head.
 * @param now The moment, ms since the epoch.
 * @returns Age, lifetime, whether fresh, and by how much stale.
 */
export function freshnessAt(p: PreparedHead, now: number): Freshness {
  const residentTime = (now - p.head.responseTime) / 1000;
  const age = p.initialAge + residentTime;
  const lifetime = p.lifetime;
  const fresh = lifetime > age;
  return {
    age,
    lifetime,
    heuristic: p.heuristic,
    fresh,
    staleBy: fresh ? 0 : age - lifetime,
  };
}

/**
 * Whether a stored response could ever answer a later request without a
 * full origin response: it has a freshness lifetime, a validator to
 * revalidate it with, or leave to be served stale (`stale-if-error`,
 * `stale-while-revalidate`). A cache gains nothing by storing one that has
 * none of these.
 *
 * @param stored The head as it would be stored.
 * @param options Heuristic fraction and target list.
 * @returns `true` when storing it can save an origin response.
 */
export function worthStoring(
  stored: StoredHead,
  options: PolicyOptions = {},
): boolean {
  const h = headersOf(stored.headers);
  const cc = responseDirectives(h, options).directives;
  return freshness(stored, stored.responseTime, options).lifetime > 0 ||
    h.has("etag") || h.has("last-modified") ||
    cc.has("stale-if-error") || cc.has("stale-while-revalidate");
}

/**
 * The names a `Vary` field lists, lower-cased, or `"*"` when it lists `*`
 * (§4.1).
 *
 * @param headers Response header fields.
 * @returns The names (empty without `Vary`), or `"*"`.
 */
export function varyNames(headers: HeadersLike): string[] | "*" {
  const names = (headersOf(headers).get("vary") ?? "").split(",")
    .map((s) => s.trim().toLowerCase()).filter((s) => s !== "");
  return names.includes("*") ? "*" : [...new Set(names)];
}

// §4.1 lets a cache normalise values "known to have identical semantics";
// these fields' values are case-insensitive throughout: language ranges
// (RFC 9110 §12.5.4, RFC 4647 §2), content codings (§8.4.1), charsets
// (§8.3.2) and their q parameters (§12.4.2). Order is kept: some servers
// read it as preference among equal weights (§12.5.4's note).
const CASE_INSENSITIVE_VALUES = new Set([
  "accept-language",
  "accept-encoding",
  "accept-charset",
]);

function normaliseFieldValue(
  name: string,
  v: string | null,
): string | null {
  // §4.1: values that differ only in whitespace around list commas, or in
  // how they were split across field lines, are the same.
  if (v === null) return null;
  const members = v.split(",").map((s) => s.trim());
  if (!CASE_INSENSITIVE_VALUES.has(name.toLowerCase())) {
    return members.join(",");
  }
  // These have no quoted strings: OWS around ";" goes too (RFC 9110 §5.6.6).
  return members.map((m) => m.split(";").map((p) => p.trim()).join(";"))
    .join(",").toLowerCase();
}

/**
 * Whether a new request selects a stored response given the fields the
 * response's `Vary` names (§4.1): each named field must be absent from both
 * requests or present in both with equal values, normalised for whitespace
 * (and for case, in `Accept-Language`, `Accept-Encoding` and `Accept-Charset`).
 * `Vary: *` never matches.
 *
 * @param storedRequestHeaders The header fields of the request that produced the stored response.
 * @param vary The names from {@linkcode varyNames}, or the response's header fields.
 * @param request The new request's header fields.
 * @returns `true` when the stored response may be selected.
 */
export function varyMatches(
  storedRequestHeaders: HeadersLike,
  vary: string[] | "*" | HeadersLike,
  request: HeadersLike,
): boolean {
  const names =
    vary === "*" || (Array.isArray(vary) && typeof vary[0] !== "object")
      ? vary as string[] | "*"
      : varyNames(vary as HeadersLike);
  if (names === "*") return false;
  const a = headersOf(storedRequestHeaders);
  const b = headersOf(request);
  return names.every((n) =>
    normaliseFieldValue(n, a.get(n)) === normaliseFieldValue(n, b.get(n))
  );
}

/**
 * A secondary cache key for a request under a `Vary` (§4.1): requests that
 * {@linkcode varyMatches} treats as equal get equal keys, so a cache can keep
 * several variants of one URI side by side.
 *
 * @param vary The names from {@linkcode varyNames}.
 * @param request The request's header fields.
 * @returns The key (`""` without `Vary`), or `null` for `Vary: *`.
 */
export function varyKey(
  vary: string[] | "*",
  request: HeadersLike,
): string | null {
  if (vary === "*") return null;
  const h = headersOf(request);
  return JSON.stringify(
    [...vary].sort().map((n) => [n, normaliseFieldValue(n, h.get(n))]),
  );
}

function hasNoCachePragma(h: Headers): boolean {
  return /(^|,)\s*no-cache\s*(,|$)/i.test(h.get("pragma") ?? "");
}

/** How a cache may answer a request, from {@linkcode decide}. */
export type Decision =
  | {
    /** Serve the stored response as is. */
    kind: "fresh";
    freshness: Freshness;
  }
  | {
    /**
     * Serve the stale stored response: the client allows it (`max-stale`),
     * or the origin does while the cache revalidates in the background
     * (`stale-while-revalidate`, RFC 5861 §3).
     */
    kind: "stale-usable";
    reason: "max-stale" | "stale-while-revalidate";
    freshness: Freshness;
  }
  | {
    /**
     * Send a conditional request ({@linkcode revalidationHeaders}) before
     * using the stored response. `staleOnError` says whether the stale
     * response may be served if the origin fails (connection error or
     * 500/502/503/504, RFC 5861 §4); otherwise such a failure is a 502/504.
     */
    kind: "revalidate";
    staleOnError: boolean;
    freshness: Freshness;
  }
  | {
    /** The stored response cannot answer this request: forward it. */
    kind: "miss";
  }
  | {
    /** `only-if-cached` (§5.2.1.7) and nothing usable is stored: answer 504. */
    kind: "only-if-cached-504";
  };

/**
 * Decides how a shared cache answers a request from a stored response
 * (§4, §4.2.4, §5.2.1, §5.2.2; RFC 5861): whether the method and `Vary`
 * select it, then request directives (`no-cache`, `Pragma: no-cache` without
 * `Cache-Control`, `max-age`, `min-fresh`, `max-stale`, `only-if-cached`)
 * against its freshness, honouring response directives that forbid serving
 * stale (`no-cache`, `must-revalidate`, `proxy-revalidate`, `s-maxage`).
 *
 * The caller has already matched the target URI (the primary key).
 *
 * @param request The new request.
 * @param stored The stored head for its URI, or `undefined` when none.
 * @param now The time, ms since the epoch.
 * @param options Heuristic fraction.
 * @returns The decision.
 * @example A fresh response is served; a stale one is revalidated
 * ```ts
 * import assert from "node:assert/strict";
 * import { decide } from "./policy.ts";
 * const t = Date.UTC(2026, 0, 1);
 * const stored = {
 *   method: "GET", url: "http://o/a", requestHeaders: [], status: 200,
 *   headers: { date: new Date(t).toUTCString(), "cache-control": "max-age=60" },
 *   requestTime: t, responseTime: t,
 * };
 * const req = { method: "GET", url: "http://o/a", headers: [] as [string, string][] };
 * assert.ok(decide(req, stored, t + 30_000).kind === "fresh");
 * assert.ok(decide(req, stored, t + 90_000).kind === "revalidate");
 * ```
 */
export function decide(
  request: RequestHead,
  stored: StoredHead | undefined,
  now: number,
  options: PolicyOptions = {},
): Decision {
  return decidePrepared(
    request,
    stored === undefined ? undefined : prepareHead(stored, options),
    now,
  );
}

/**
 * {@linkcode decide} from a {@linkcode prepareHead}'s result (with the
 * options it was prepared with): the same decision, without deriving the
 * stored head's fields again.
 *
 * @param request The new request.
 * @param prepared The prepared stored head, or `undefined` when none.
 * @param now The time, ms since the epoch.
 * @returns The decision.
 */
export function decidePrepared(
  request: RequestHead,
  prepared: PreparedHead | undefined,
  now: number,
): Decision {
  const reqHeaders = headersOf(request.headers);
  // `get`, not `has`: a Deno.serve request's Headers answer `get` field by
  // field, while `has` makes them build the whole list.
  const reqCcField = reqHeaders.get("cache-control");
  const reqCc = parseCacheControl(reqCcField);
  const onlyIfCached = reqCc.has("only-if-cached");
  const miss = onlyIfCached ? ONLY_IF_CACHED_504 : MISS;
  if (prepared === undefined) return miss;
  const stored = prepared.head;
  const method = request.method.toUpperCase();
  const storedMethod = stored.method.toUpperCase();
  // §4: a stored GET answers GET and HEAD; a stored HEAD answers only HEAD.
  if (
    !(method === storedMethod || (method === "HEAD" && storedMethod === "GET"))
  ) {
    return miss;
  }
  const resHeaders = stored.headers;
  if (!varyMatches(prepared.requestHeaders, prepared.vary, reqHeaders)) {
    return miss;
  }

  const f = freshnessAt(prepared, now);
  const { directives: cc, targeted } = prepared.directives;

  const requestNoCache = reqCc.has("no-cache") ||
    (reqCcField === null && hasNoCachePragma(reqHeaders));
  // §5.2.2.4: unqualified no-cache; the qualified form's fields were not
  // stored. §5.4 leaves a response's Pragma: no-cache unspecified; without
  // Cache-Control we take the cautious reading, the same as no-cache.
  const responseNoCache = cc.has("no-cache")
    ? fieldNames(cc.get("no-cache")) === undefined
    : targeted === null && !resHeaders.has("cache-control") &&
      hasNoCachePragma(resHeaders);
  if (requestNoCache || responseNoCache) return mustRevalidate(onlyIfCached, f);

  const reqMaxAge = deltaSeconds(reqCc.get("max-age"));
  if (reqCc.has("max-age") && (reqMaxAge === undefined || f.age > reqMaxAge)) {
    return mustRevalidate(onlyIfCached, f);
  }
  if (reqCc.has("min-fresh")) {
    const minFresh = deltaSeconds(reqCc.get("min-fresh"));
    if (minFresh === undefined || f.lifetime - f.age < minFresh) {
      return mustRevalidate(onlyIfCached, f);
    }
  }
  if (f.fresh) return { kind: "fresh", freshness: f };

  // §4.2.4: these forbid serving stale (s-maxage implies proxy-revalidate
  // in a shared cache, §5.2.2.10).
  const staleForbidden = cc.has("must-revalidate") ||
    cc.has("proxy-revalidate") || cc.has("s-maxage");
  if (!staleForbidden) {
    if (reqCc.has("max-stale")) {
      const maxStale = reqCc.get("max-stale");
      const limit = maxStale === true ? Infinity : deltaSeconds(maxStale);
      if (limit !== undefined && f.staleBy <= limit) {
        return { kind: "stale-usable", reason: "max-stale", freshness: f };
      }
    }
    const swr = deltaSeconds(cc.get("stale-while-revalidate"));
    if (swr !== undefined && f.staleBy <= swr) {
      return {
        kind: "stale-usable",
        reason: "stale-while-revalidate",
        freshness: f,
      };
    }
    if (onlyIfCached) return miss;
    const sie = Math.max(
      deltaSeconds(cc.get("stale-if-error")) ?? -1,
      deltaSeconds(reqCc.get("stale-if-error")) ?? -1,
    );
    return { kind: "revalidate", staleOnError: f.staleBy <= sie, freshness: f };
  }
  return mustRevalidate(onlyIfCached, f);
}

/**
 * A revalidation, or for `only-if-cached` a miss: made only when it is the
 * answer, so a fresh hit allocates one decision.
 */
function mustRevalidate(onlyIfCached: boolean, f: Freshness): Decision {
  return onlyIfCached
    ? ONLY_IF_CACHED_504
    : { kind: "revalidate", staleOnError: false, freshness: f };
}

// Decisions without fields, shared (frozen: nothing may change them).
const MISS: Decision = Object.freeze({ kind: "miss" });
const ONLY_IF_CACHED_504: Decision = Object.freeze({
  kind: "only-if-cached-504",
});

/**
 * Whether an origin's answer counts as an error for `stale-if-error`
 * (RFC 5861 §4): 500, 502, 503 or 504.
 *
 * @param status The origin's status code.
 * @returns `true` for those four.
 */
export function isOriginError(status: number): boolean {
  return status === 500 || status === 502 || status === 503 ||
    status === 504;
}

/**
 * The header fields of a conditional request that revalidates a stored
 * response (§4.3.1): the client's fields minus connection-specific ones and
 * minus its own preconditions and `Range` (the cache validates its whole
 * stored response, then answers the client's conditions itself), plus
 * `If-None-Match` with the stored `ETag` and `If-Modified-Since` with the
 * stored `Last-Modified`.
 *
 * @param stored The stored head.
 * @param request The client's request, when there is one (not for a background refresh).
 * @returns Header fields for the request to the origin.
 */
export function revalidationHeaders(
  stored: StoredHead,
  request?: RequestHead,
): Headers {
  const out = new Headers();
  if (request !== undefined) {
    const h = headersOf(request.headers);
    const drop = new Set([...HOP_BY_HOP, ...CONDITIONAL_REQUEST_FIELDS]);
    for (const name of (h.get("connection") ?? "").split(",")) {
      drop.add(name.trim().toLowerCase());
    }
    for (const [name, value] of h) if (!drop.has(name)) out.append(name, value);
  }
  const s = headersOf(stored.headers);
  const etag = s.get("etag");
  if (etag !== null) out.set("if-none-match", etag);
  const lastModified = s.get("last-modified");
  if (lastModified !== null) out.set("if-modified-since", lastModified);
  return out;
}

function opaqueTag(etag: string): { weak: boolean; tag: string } {
  const t = etag.trim();
  return t.startsWith("W/")
    ? { weak: true, tag: t.slice(2) }
    : { weak: false, tag: t };
}

/**
 * Whether a 304 answers for a stored response (§4.3.4): a strong `ETag` must
 * equal the stored strong one, a weak one must equal it weakly, otherwise a
 * `Last-Modified` must equal the stored one. A 304 with no validator at all
 * is taken to answer the conditional request built from this stored response
 * by {@linkcode revalidationHeaders} (origins often omit them; RFC 9110
 * §15.4.5 does not require `Last-Modified`).
 *
 * @param stored The stored response's header fields.
 * @param notModified The 304's header fields.
 * @returns `true` when the 304 selects the stored response for update.
 */
export function notModifiedSelects(
  stored: HeadersLike,
  notModified: HeadersLike,
): boolean {
  const s = headersOf(stored);
  const n = headersOf(notModified);
  const newTag = n.get("etag");
  const oldTag = s.get("etag");
  if (newTag !== null) {
    if (oldTag === null) return false;
    const a = opaqueTag(newTag);
    const b = opaqueTag(oldTag);
    return a.weak ? a.tag === b.tag : !b.weak && a.tag === b.tag;
  }
  const newLm = n.get("last-modified");
  if (newLm !== null) {
    return parseHttpDate(newLm) !== undefined &&
      parseHttpDate(newLm) === parseHttpDate(s.get("last-modified"));
  }
  return true;
}

/**
 * A stored head updated by a 304 (§3.2, §4.3.4): every field of the 304
 * except connection-specific ones and those the stored body depends on
 * (`Content-Length`, `Content-Encoding`, `Content-Range`) replaces or adds to
 * the stored fields; the request and response times become the
 * revalidation's. The stored `Age` goes unless the 304 carries one, and a
 * 304 without `Date` is dated by its receipt, because both describe the
 * latest message (§4.2.3). The body is untouched.
 *
 * @param stored The stored head.
 * @param notModified The 304 with its request and response times (ms).
 * @param options The target list ({@linkcode responseDirectives}).
 * @returns The updated head, or `null` when the 304 does not select this
 *   stored response ({@linkcode notModifiedSelects}); then it must not be
 *   served on the strength of that 304.
 */
export function updateFrom304(
  stored: StoredHead,
  notModified: {
    headers: HeadersLike;
    requestTime: number;
    responseTime: number;
  },
  options: PolicyOptions = {},
): StoredHead | null {
  if (!notModifiedSelects(stored.headers, notModified.headers)) return null;
  return updatedHead(stored, notModified, options);
}

/** §3.2: a stored head with a newer response's fields merged in. */
function updatedHead(
  stored: StoredHead,
  newer: { headers: HeadersLike; requestTime: number; responseTime: number },
  options: PolicyOptions,
): StoredHead {
  const incoming = storedHeaders(newer.headers, newer.responseTime, options);
  const out = new Headers(headersOf(stored.headers));
  out.delete("age");
  const replaced = new Set<string>();
  for (const [name, value] of incoming) {
    if (NOT_UPDATED_BY_304.has(name)) continue;
    if (!replaced.has(name)) {
      out.delete(name);
      replaced.add(name);
    }
    out.append(name, value);
  }
  return {
    ...stored,
    headers: out,
    requestTime: newer.requestTime,
    responseTime: newer.responseTime,
  };
}

/** What a response to a HEAD does to a stored GET response, from {@linkcode updateFromHead}. */
export type HeadUpdate =
  | {
    /** The stored response is updated with the HEAD response's fields. */
    kind: "updated";
    head: StoredHead;
  }
  | {
    /** The HEAD response shows the stored one is out of date: treat it as stale. */
    kind: "stale";
  }
  | {
    /** Not a 200: the stored response is left as it is. */
    kind: "unchanged";
  };

/**
 * What a response to a HEAD request does to a stored GET response for the
 * same target that it could have answered (§4.3.5): a 200 whose validators
 * (`ETag`, `Last-Modified`) match the stored ones, each one it carries, and
 * whose `Content-Length`, if it has one, is the stored body's length,
 * updates the stored head as §3.2 says (the same merge as a 304's, so
 * `Content-Length` and what the body depends on stay); a 200 that does not
 * match makes the stored response stale; any other status leaves it alone.
 *
 * @param stored The stored GET response's head.
 * @param headResponse The HEAD response with its request and response times (ms).
 * @param options The target list, and `storedLength`, the stored body's
 *   length in bytes when known (otherwise the stored `Content-Length`).
 * @returns The verdict, with the updated head when there is one.
 * @example A 200 to a HEAD with a new max-age freshens the stored response
 * ```ts
 * import assert from "node:assert/strict";
 * import { updateFromHead } from "./policy.ts";
 * const t = Date.UTC(2026, 0, 1);
 * const stored = {
 *   method: "GET", url: "http://o/a", requestHeaders: [], status: 200,
 *   headers: { date: new Date(t).toUTCString(), etag: '"1"', "cache-control": "max-age=1" },
 *   requestTime: t, responseTime: t,
 * };
 * const u = updateFromHead(stored, {
 *   status: 200, headers: { etag: '"1"', "cache-control": "max-age=600" },
 *   requestTime: t + 5000, responseTime: t + 5000,
 * });
 * assert.ok(u.kind === "updated" && new Headers(u.head.headers).get("cache-control") === "max-age=600");
 * ```
 */
export function updateFromHead(
  stored: StoredHead,
  headResponse: {
    status: number;
    headers: HeadersLike;
    requestTime: number;
    responseTime: number;
  },
  options: PolicyOptions & { storedLength?: number | undefined } = {},
): HeadUpdate {
  if (headResponse.status !== 200) return { kind: "unchanged" };
  const s = headersOf(stored.headers);
  const n = headersOf(headResponse.headers);
  const etag = n.get("etag");
  if (etag !== null && etag.trim() !== s.get("etag")?.trim()) {
    return { kind: "stale" };
  }
  const lm = n.get("last-modified");
  if (
    lm !== null && (parseHttpDate(lm) === undefined ||
      parseHttpDate(lm) !== parseHttpDate(s.get("last-modified")))
  ) {
    return { kind: "stale" };
  }
  const length = n.get("content-length");
  if (length !== null) {
    const storedLength = options.storedLength ??
      (s.has("content-length") ? Number(s.get("content-length")) : undefined);
    if (length.trim() !== String(storedLength)) return { kind: "stale" };
  }
  return { kind: "updated", head: updatedHead(stored, headResponse, options) };
}

/**
 * The header fields to send with a stored response (§4): the stored fields
 * with `Age` set to the current age in whole seconds (§5.1).
 *
 * @param stored The stored head.
 * @param now The time, ms since the epoch.
 * @returns A new `Headers`.
 */
export function servedHeaders(stored: StoredHead, now: number): Headers {
  const out = new Headers(headersOf(stored.headers));
  out.set("age", String(Math.max(0, Math.floor(freshness(stored, now).age))));
  return out;
}

// RFC 9110 §15.4.5: what a 304 carries (Last-Modified and Age guide caches).
const NOT_MODIFIED_FIELDS = [
  "cache-control",
  "content-location",
  "date",
  "etag",
  "expires",
  "vary",
  "last-modified",
  "age",
];

/**
 * The header fields of a 304 that answers a client's conditional request
 * from a stored response (RFC 9110 §15.4.5): those a 200 would have carried
 * among `Cache-Control`, `Content-Location`, `Date`, `ETag`, `Expires` and
 * `Vary`, plus `Last-Modified` and the current `Age`.
 *
 * @param stored The stored head.
 * @param now The time, ms since the epoch.
 * @returns A new `Headers`.
 */
export function notModifiedHeaders(stored: StoredHead, now: number): Headers {
  const served = servedHeaders(stored, now);
  const out = new Headers();
  for (const name of NOT_MODIFIED_FIELDS) {
    const value = served.get(name);
    if (value !== null) out.set(name, value);
  }
  return out;
}

/**
 * Whether a client's conditional `GET`/`HEAD` is satisfied by a stored
 * response so the cache answers 304 (§4.3.2, RFC 9110 §13.2.2):
 * `If-None-Match` (weak comparison, `*` matches any) takes precedence over
 * `If-Modified-Since`, which compares with the stored `Last-Modified`, or
 * its `Date` when there is none.
 *
 * @param request The client's request.
 * @param stored The stored response's header fields.
 * @returns `true` to answer 304.
 */
export function clientNotModified(
  request: RequestHead,
  stored: HeadersLike,
): boolean {
  const method = request.method.toUpperCase();
  if (method !== "GET" && method !== "HEAD") return false;
  const r = headersOf(request.headers);
  const s = headersOf(stored);
  const inm = r.get("if-none-match");
  if (inm !== null) {
    if (inm.trim() === "*") return true;
    const etag = s.get("etag");
    if (etag === null) return false;
    const tag = opaqueTag(etag).tag;
    return inm.split(",").some((t) => opaqueTag(t).tag === tag);
  }
  const ims = parseHttpDate(r.get("if-modified-since"));
  if (ims === undefined) return false;
  const last = parseHttpDate(s.get("last-modified")) ??
    parseHttpDate(s.get("date"));
  return last !== undefined && last <= ims;
}

/**
 * The URIs a response to an unsafe request invalidates (§4.4): for a
 * non-error status (2xx, 3xx) to a method other than `GET`, `HEAD`,
 * `OPTIONS` or `TRACE`, the target URI and the URIs in `Location` and
 * `Content-Location`, the latter two only on the target's origin.
 *
 * @param method The request method.
 * @param status The response status.
 * @param url The target URI, absolute.
 * @param headers The response's header fields.
 * @returns Absolute URIs without fragments, target first; empty when none.
 * @example A successful POST invalidates its target and a same-origin Location
 * ```ts
 * import assert from "node:assert/strict";
 * import { invalidates } from "./policy.ts";
 * const uris = invalidates("POST", 201, "http://o/list", { location: "/item/7" });
 * assert.ok(uris.join(" ") === "http://o/list http://o/item/7");
 * ```
 */
export function invalidates(
  method: string,
  status: number,
  url: string,
  headers: HeadersLike,
): string[] {
  if (SAFE_METHODS.has(method.toUpperCase())) return [];
  if (status < 200 || status > 399) return [];
  const target = new URL(url);
  target.hash = "";
  const out = [target.href];
  const h = headersOf(headers);
  for (const name of ["location", "content-location"]) {
    const value = h.get(name);
    if (value === null) continue;
    let u: URL;
    try {
      u = new URL(value, target);
    } catch {
      continue;
    }
    u.hash = "";
    if (u.origin === target.origin && !out.includes(u.href)) out.push(u.href);
  }
  return out;
}
