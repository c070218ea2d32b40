/**
 * The caching reverse proxy: a `Deno.serve` handler that forwards requests
 * to one origin and answers what it may from a larder store, by the shared
 * cache rules of RFC 9111 (src/http/policy.ts decides, this file does the
 * I/O).
 *
 * @module
 */
import {
  clientNotModified,
  decidePrepared,
  type Decision,
  type Freshness,
  freshnessAt,
  HOP_BY_HOP,
  invalidates,
  isOriginError,
  notModifiedHeaders,
  type PreparedHead,
  prepareHead,
  revalidationHeaders,
  servedHeaders,
  storable,
  type StoredHead,
  storedHeaders,
  updateFrom304,
  updateFromHead,
  varyNames,
  worthStoring,
} from "../http/policy.ts";
import { parseCacheControl } from "../http/cache_control.ts";
import {
  decodeResponseRecord,
  encodeResponseRecord,
  type HeaderPairs,
  type ResponseRecord,
} from "../http/record.ts";
import type { OpenOptions } from "../options.ts";
import { BackingStore } from "../store.ts";
import { StoreError } from "../errors.ts";
import {
  AdminEndpoints,
  adminPrefix,
  adminToken,
  pathStart,
} from "./_admin.ts";
import { CACHE_STATUSES, countBytes, ProxyMetrics } from "./_metrics.ts";
import { Flight } from "./_flight.ts";
import { OriginClient, OriginIdle } from "./_origin.ts";
import { Purger } from "./_purge.ts";
import {
  declaredLength,
  partialHeaders,
  planRange,
  sliceStream,
  unsatisfiableHeaders,
} from "./_range.ts";
import { pacedTee } from "./_tee.ts";
import { withSendTimeout } from "./_send_timeout.ts";
import { expectLength } from "../_streamed.ts";
import { pathAndQuery } from "./_target_path.ts";
import {
  backingProxyStore,
  type Found,
  type HeadOf,
  ProxyCache,
  type ProxyStore,
  recordToHead,
} from "./proxy_store.ts";

/** Options of {@linkcode createProxy}. */
export interface ProxyOptions {
  /** The origin every request goes to, `http://host:port` (a path prefix is kept). */
  origin: string | URL;
  /** A store directory, opened with `storeOptions` (`limit` above all). */
  dir?: string;
  /** Options for opening `dir`. */
  storeOptions?: OpenOptions;
  /** A store to use instead of `dir`; the proxy closes it. */
  store?: ProxyStore;
  /**
   * How long to wait for the origin's response head once the request (its
   * body included) is sent, the longest the connection may sit idle before
   * that, and the longest pause in the response body while the proxy waits
   * for it, ms. Default 30,000.
   */
  originTimeoutMs?: number;
  /**
   * How long a client may leave a streamed body waiting (it takes no
   * bytes), ms, before its response is cut: a body from the origin (the
   * store of a miss reads on without it) or a large one read from the
   * store in chunks (its reader is released). Default 30,000.
   */
  sendTimeoutMs?: number;
  /** The `Via` entry this proxy adds. Default `1.1 larder`. */
  via?: string;
  /** Receives one line per request (common log format plus cache status). */
  log?: (line: string) => void;
  /** Fraction of `Last-Modified` age used as heuristic lifetime. Default 0.1. */
  heuristicFraction?: number;
  /**
   * How long a miss waits for another request's origin fetch of the same
   * URL (request collapsing) before it goes to the origin itself, ms.
   * Default 30,000.
   */
  collapseTimeoutMs?: number;
  /**
   * The token `PURGE` and the admin purge endpoint require, as
   * `Authorization: Bearer <token>`. Without one, purging is off: `PURGE`
   * is answered 405 by the proxy (never forwarded) and so is the endpoint.
   */
  purgeToken?: string;
  /**
   * Where the proxy answers for itself (status page, `metrics`, `health`,
   * `purge`; see the README), never forwarding: a path such as
   * `/_larder/`, the default (a missing final `/` is added), or `false`
   * for no admin paths (then they go to the origin like any other).
   */
  adminPath?: string | false;
  /**
   * When given, the status page and the metrics want `Authorization:
   * Bearer <token>` (or Basic with the token as password); health stays
   * open. Without one they are open to whoever reaches the proxy.
   */
  adminToken?: string;
  /**
   * The targeted cache control fields the proxy obeys before
   * `Cache-Control` (RFC 9213), first match wins. Default
   * `["CDN-Cache-Control"]`; `[]` obeys `Cache-Control` alone. The fields
   * are passed on to clients unchanged, for caches further downstream.
   */
  targetedFields?: readonly string[];
}

/** How a request was answered, in the `x-larder-cache` response field and the log. */
export type CacheStatus =
  | "hit"
  | "stale"
  | "revalidated"
  | "miss"
  | "bypass"
  | "error";

/** Connection information as `Deno.serve` passes it. */
export interface ServeInfo {
  /** The client's address. */
  remoteAddr?: { hostname?: string } | Deno.Addr;
}

/** A running proxy. */
export interface Proxy extends AsyncDisposable {
  /**
   * Answers one request; for `Deno.serve`. Never rejects. A miss's body is
   * read from the origin at the pace of the slower of the client and the
   * store, so a caller other than `Deno.serve` must read or cancel every
   * body it gets.
   */
  handler(req: Request, info?: ServeInfo): Promise<Response>;
  /** Waits for the bodies being stored, then closes the store. */
  close(): Promise<void>;
}

/** Header fields without connection-specific ones and those `Connection` lists. */
function forwardable(h: Headers): Headers {
  const out = new Headers(h);
  for (const name of (h.get("connection") ?? "").split(",")) {
    if (name.trim() !== "") out.delete(name.trim());
  }
  for (const name of HOP_BY_HOP) out.delete(name);
  return out;
}

function addVia(h: Headers, via: string): void {
  const old = h.get("via");
  h.set("via", old === null ? via : `${old}, ${via}`);
}

function clientAddress(info?: ServeInfo): string {
  const addr = info?.remoteAddr as { hostname?: string } | undefined;
  return addr?.hostname ?? "-";
}

/**
 * A prepared stored head's fields as a hit sends them, less those set per
 * response: `Age`, `Via` (its stored value kept apart, to append to),
 * `x-larder-cache`, `Content-Length` (the body's own is sent) and, for a
 * 200, `Accept-Ranges`. Worked out once per prepared head.
 */
interface HitFields {
  pairs: [string, string][];
  /**
   * The same fields as a record, when they fit one (no `Set-Cookie`, which
   * may repeat): a Response takes a record's fields for less than a list
   * of pairs (no inner sequence to convert each time).
   */
  record: Record<string, string> | undefined;
  /**
   * `record` with a hit's own fields added, rewritten in place by each
   * hit and read by the Response it is handed to before any other hit
   * runs (a Response copies its init's fields at construction), so no
   * copy is made a hit. Its keys keep one order: the first hit adds them.
   */
  scratch: Record<string, string> | undefined;
  via: string | null;
}

const hitFields = new WeakMap<PreparedHead, HitFields>();

function hitFieldsOf(p: PreparedHead): HitFields {
  let f = hitFields.get(p);
  if (f !== undefined) return f;
  const out: [string, string][] = [];
  let via: string | null = null;
  let record: Record<string, string> | undefined = {};
  // Headers iterate lower-cased, one pair per name (set-cookie apart),
  // the values combined as `get` gives them.
  for (const [name, value] of p.head.headers) {
    if (name === "via") via = value;
    else if (
      name !== "age" && name !== "x-larder-cache" &&
      name !== "content-length" &&
      !(name === "accept-ranges" && p.head.status === 200)
    ) {
      out.push([name, value]);
      // `__proto__` is a token too, and would not be an own field.
      if (name === "set-cookie" || name === "__proto__") record = undefined;
      else if (record !== undefined) record[name] = value;
    }
  }
  const scratch = record === undefined ? undefined : { ...record };
  hitFields.set(p, f = { pairs: out, record, scratch, via });
  return f;
}

function pairs(h: Headers | HeaderPairs | Record<string, string>): HeaderPairs {
  return [...(h instanceof Headers ? h : new Headers(h))];
}

/** Request fields that make a request conditional or partial. */
const CLIENT_CONDITIONS = [
  "if-none-match",
  "if-modified-since",
  "if-match",
  "if-unmodified-since",
  "if-range",
  "range",
];

/**
 * Whether a request may be answered with a 304 from the store: it has a
 * field {@linkcode clientNotModified} reads. Most requests have neither,
 * and are told so by these two lookups alone.
 */
function mayBeConditional(h: Headers): boolean {
  return h.get("if-none-match") !== null ||
    h.get("if-modified-since") !== null;
}

/**
 * A response from the store, carrying its cache status and body length
 * for the metrics and the log line: reading them from its headers would
 * make Deno.serve convert the native header list it made at construction
 * again, and they are known here anyway.
 */
class StoreResponse extends Response {
  readonly cacheStatus: CacheStatus;
  readonly bodyLength: number | undefined;

  constructor(
    body: BodyInit | null,
    init: ResponseInit,
    cacheStatus: CacheStatus,
    bodyLength: number | undefined,
  ) {
    super(body, init);
    this.cacheStatus = cacheStatus;
    this.bodyLength = bodyLength;
  }
}

class OriginFailure extends Error {
  constructor(readonly status: 502 | 504, message: string, cause: unknown) {
    super(message, { cause });
  }
}

function errorResponse(status: number, message: string, via: string): Response {
  const headers = new Headers({
    "content-type": "text/plain; charset=utf-8",
    "cache-control": "no-store",
    "x-larder-cache": "error",
  });
  addVia(headers, via);
  return new Response(`${message}\n`, { status, headers });
}

/**
 * Starts a caching reverse proxy in front of `origin`. Every method, path,
 * query and header goes to the origin (connection-specific fields dropped,
 * `Via` and `X-Forwarded-For` added, redirects passed back, not followed).
 * Responses to `GET` that RFC 9111 lets a shared cache store are kept in
 * the store and streamed to the client while they are written; fresh ones
 * answer later requests with an `Age`; stale ones are revalidated with
 * `If-None-Match`/`If-Modified-Since`, and a 304 updates the stored head
 * without rewriting the body; `HEAD` is answered from a stored `GET`; a
 * successful unsafe request invalidates its target. An origin that fails
 * or does not answer within `originTimeoutMs` gives 502 or 504, or the
 * stale response where `stale-if-error` allows it. Concurrent GET misses
 * for one URL make one origin request, the others answered from what it
 * stores (from the body it kept for them when an eviction took the stored
 * entry first; or, after `collapseTimeoutMs` or when it stores nothing usable
 * for them, sent on themselves; when its exchange fails, onto one new
 * request); an entry within its `stale-while-revalidate` window is
 * served stale while one background request refreshes it. Under `adminPath` (default
 * `/_larder/`) the proxy answers for itself, never forwarding: a status
 * page, `metrics` in the Prometheus text format and `health`.
 *
 * Ranges (RFC 9110 §14): a `GET` with one byte range (`bytes=a-b`,
 * `bytes=a-`, `bytes=-n`) for a stored 200 is answered 206 with
 * `Content-Range`, `Age` and `Via`, reading only the chunks of the store
 * that the range covers; a range with nothing in the body is 416 with
 * `Content-Range: bytes` and the length; several ranges, another unit, an
 * invalid range or an `If-Range` that does not hold (strong `ETag`, or the
 * exact `Last-Modified` date) get the full 200; `HEAD` and other methods
 * ignore `Range`. Stored 200s carry `Accept-Ranges: bytes`. A stale entry
 * is revalidated first. A `Range` miss goes to the origin without its
 * `Range` and `If-Range` (as nginx `proxy_cache`, Varnish and Fastly do):
 * the whole response is stored and the range cut from it as it streams
 * (206 when the origin declares its length, else the full 200), so the
 * next range is a hit; a request with `Cache-Control: no-store` keeps its
 * `Range` and gets the origin's answer.
 *
 * Purging: with `purgeToken`, `PURGE <path>` and `POST <adminPath>purge?url=`
 * with `Authorization: Bearer <token>` make every stored response for the
 * URL (every `Vary` variant) unreachable, and one being stored is dropped
 * when its store ends: 200 `{"purged": 1}`, or 404 `{"purged": 0}` when
 * nothing was stored; 401 without the token. Without a token both are 405.
 * `PURGE` is never forwarded to the origin.
 *
 * @param options The origin and the store (`dir` or `store`).
 * @returns The proxy: its `handler` and `close`.
 * @throws {TypeError} for a bad origin, neither `dir` nor `store`, an
 *   empty `purgeToken` or an `adminPath` not starting and ending with `/`.
 *
 * @example In front of a local origin
 * ```ts
 * import { createProxy } from "@larder/larder/proxy";
 * import assert from "node:assert/strict";
 *
 * const origin = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () =>
 *   new Response("hello", { headers: { "cache-control": "max-age=60" } }));
 * const dir = await Deno.makeTempDir();
 * const proxy = await createProxy({
 *   origin: `http://127.0.0.1:${origin.addr.port}`,
 *   dir,
 *   storeOptions: { limit: 64 * 2 ** 20 },
 * });
 * const first = await proxy.handler(new Request("http://proxy/a"));
 * assert.equal(await first.text(), "hello");
 * const second = await proxy.handler(new Request("http://proxy/a"));
 * assert.equal(second.headers.get("x-larder-cache"), "hit");
 * assert.equal(await second.text(), "hello");
 * await proxy.close();
 * await origin.shutdown();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function createProxy(options: ProxyOptions): Promise<Proxy> {
  const origin = new URL(options.origin);
  if (origin.protocol !== "http:" && origin.protocol !== "https:") {
    throw new TypeError(
      `Cannot create proxy: origin must be http or https, got ${origin.protocol}`,
    );
  }
  const via = options.via ?? "1.1 larder";
  const adminPath = adminPrefix(options.adminPath);
  const token = adminToken(options.adminToken);
  const purger = new Purger({
    token: options.purgeToken,
    adminPath: adminPath ?? false,
    origin,
    targetOf: (u) => targetOf(u),
    purge: (target) => invalidate(target.href),
    via,
  });
  let store = options.store;
  if (store === undefined) {
    if (options.dir === undefined) {
      throw new TypeError("Cannot create proxy: give dir or store");
    }
    store = backingProxyStore(
      await BackingStore.open(options.dir, options.storeOptions),
    );
  }
  const policy = {
    heuristicFraction: options.heuristicFraction ?? 0.1,
    ...(options.targetedFields === undefined
      ? {}
      : { targetedFields: options.targetedFields }),
  };
  const cache = new ProxyCache(store, policy);
  const client = new OriginClient(origin);
  const timeoutMs = options.originTimeoutMs ?? 30_000;
  const sendTimeoutMs = options.sendTimeoutMs ?? 30_000;
  const collapseTimeoutMs = options.collapseTimeoutMs ?? 30_000;
  // Request collapsing: the GET misses in flight to the origin, by target
  // URL; each settles when its response is stored, is not to be stored,
  // or failed (see FlightEnd in _flight.ts). A URL, not a variant key:
  // the Vary fields are not known before the response, so a waiter looks
  // the store up again and goes to the origin itself when the stored
  // variant is not its own. The store may have evicted the new entry by then (the
  // lowest use count of all, the first victim of another store's room):
  // a flight keeps the body it stores for the waiters there at its first
  // byte, who are answered from it as from the store (docs/ARCHITECTURE.md,
  // "Request collapsing under eviction"). Pinning the entry instead would
  // not do: a pin keeps an element's bytes readable, not its key found.
  const inflight = new Map<string, Flight>();
  // Flights that keep (or may yet keep) their body for their waiters: an
  // invalidation of their URL drops it.
  const keeping = new Set<Flight>();
  // stale-while-revalidate: the keys being refreshed in the background.
  const refreshing = new Set<string>();
  const pending = new Set<Promise<unknown>>();
  const originPrefix = origin.pathname.replace(/\/$/, "");
  let closed = false;
  const metrics = new ProxyMetrics();
  const admin = adminPath === undefined ? undefined : new AdminEndpoints({
    path: adminPath,
    token,
    metrics,
    store,
    closed: () => closed,
    origin: origin.href,
  });

  // The origin up to its path, to prefix each request's path and query:
  // one URL parse a request (setting pathname and search reparses twice).
  const originBase = origin.href.slice(
    0,
    origin.href.length - origin.pathname.length - origin.search.length -
      origin.hash.length,
  );

  function targetOf(req: Request | URL): URL {
    return new URL(targetHref(req));
  }

  /**
   * The target URI's href: the pieces of two parsed URLs put together,
   * which parse to themselves, so one parse a request is enough.
   */
  function targetHref(req: Request | URL): string {
    const rest = req instanceof URL
      ? req.pathname + req.search
      : pathAndQuery(req.url);
    return originBase + originPrefix + rest + origin.hash;
  }

  /** Sends a request to the origin; rejects with an OriginFailure. */
  async function toOrigin(
    method: string,
    target: URL,
    headers: Headers,
    body: ReadableStream<Uint8Array> | null,
  ): Promise<Response> {
    const controller = new AbortController();
    // The wait for the response head, from when the request (its body
    // included: an upload may take long) has been sent.
    let timer: ReturnType<typeof setTimeout> | undefined;
    let answered = false;
    const sent = () => {
      clearTimeout(timer);
      if (answered) return;
      timer = setTimeout(
        () =>
          controller.abort(new DOMException("origin timeout", "TimeoutError")),
        timeoutMs,
      );
    };
    metrics.origin.requests++;
    try {
      return await client.send(target, {
        method,
        headers,
        body,
        signal: controller.signal,
        idleMs: timeoutMs,
        onSent: sent,
      });
    } catch (err) {
      if (controller.signal.aborted || err instanceof OriginIdle) {
        metrics.origin.timeouts++;
        throw new OriginFailure(
          504,
          `Cannot reach origin: no response within ${timeoutMs} ms`,
          err,
        );
      }
      metrics.origin.unreachable++;
      throw new OriginFailure(502, `Cannot reach origin: ${err}`, err);
    } finally {
      // This covers the response head; the body is read at the client's
      // pace, cut only when the origin pauses longer than timeoutMs while
      // the proxy waits for it.
      answered = true;
      clearTimeout(timer);
    }
  }

  function originHeaders(req: Request, info?: ServeInfo): Headers {
    const h = forwardable(req.headers);
    h.delete("host");
    addVia(h, via);
    const xff = h.get("x-forwarded-for");
    const client = clientAddress(info);
    h.set("x-forwarded-for", xff === null ? client : `${xff}, ${client}`);
    return h;
  }

  function clientResponse(
    res: Response,
    status: CacheStatus,
    body?: ReadableStream<Uint8Array> | null,
    req?: Request,
  ): Response {
    const h = forwardable(res.headers);
    addVia(h, via);
    h.set("x-larder-cache", status);
    const source = body === undefined ? res.body : body;
    const sent = source === null ? null : sending(source);
    if (req !== undefined) {
      // A GET's Range, taken off to fetch (and store) the whole response.
      const ranged = rangeFromOrigin(req, res, h, sent);
      if (ranged !== undefined) return ranged;
    }
    return new Response(sent, {
      status: res.status,
      statusText: res.statusText,
      headers: h,
    });
  }

  /**
   * `found` served (or a 304, or a range of it) as `status`. A caller
   * that decided on `found.prepared` gives the freshness it found and its
   * clock reading `now`: `Age` is then that age (RFC 9111 §4.2.3 at that
   * instant), with no second reading; and `ranged`, whether the request
   * is a GET with `Range`, which it read already.
   */
  function fromStore(
    req: Request,
    found: Found,
    head: StoredHead,
    status: CacheStatus,
    decided?: Freshness,
    now = Date.now(),
    ranged = wantsRange(req),
  ): Response {
    const body = found.entry.body;
    // A stream's exact length as the store has it: sent as Content-Length
    // (bytes say their own).
    const streamed =
      body instanceof Uint8Array || found.entry.size === undefined
        ? undefined
        : String(found.entry.size);
    // A streamed body's length: the store's, else noted when stored, else
    // as the origin gave it.
    const length = body instanceof Uint8Array
      ? body.length
      : found.entry.size ?? metrics.sample.sizeOf(head.url) ??
        declaredLength(new Headers(head.headers as HeadersInit));
    metrics.sample.seen(head.url, length, head.responseTime);
    if (
      mayBeConditional(req.headers) &&
      clientNotModified(
        { method: req.method, url: head.url, headers: req.headers },
        head.headers,
      )
    ) {
      found.entry.release();
      const h = notModifiedHeaders(head, now);
      addVia(h, via);
      h.set("x-larder-cache", status);
      return new Response(null, { status: 304, headers: h });
    }
    const p = found.prepared;
    if (
      p.head === head && req.method === "GET" && head.status !== 204 &&
      head.status !== 205 && !ranged
    ) {
      // The stored fields as prepared once, with this response's own.
      const f = hitFieldsOf(p);
      const freshness = decided ?? freshnessAt(p, now);
      const age = String(Math.max(0, Math.floor(freshness.age)));
      const sentVia = f.via === null ? via : `${f.via}, ${via}`;
      // A stream's length set on the shared record stays right: a head's
      // body is always a stream (a large one) or always bytes.
      let headers: HeadersInit;
      if (f.scratch !== undefined) {
        const r = f.scratch;
        r["age"] = age;
        r["via"] = sentVia;
        r["x-larder-cache"] = status;
        if (head.status === 200) r["accept-ranges"] = "bytes";
        if (streamed !== undefined) r["content-length"] = streamed;
        headers = r;
      } else {
        const pairs = f.pairs.slice();
        pairs.push(["age", age], ["via", sentVia], ["x-larder-cache", status]);
        if (head.status === 200) pairs.push(["accept-ranges", "bytes"]);
        if (streamed !== undefined) pairs.push(["content-length", streamed]);
        headers = pairs;
      }
      return new StoreResponse(
        sendingStored(body),
        { status: head.status, statusText: found.record.statusText, headers },
        status,
        length,
      );
    }
    const h = servedHeaders(head, now);
    addVia(h, via);
    h.set("x-larder-cache", status);
    // Any stored 200 can answer a range (RFC 9110 §14.3).
    if (head.status === 200) h.set("accept-ranges", "bytes");
    // A stored 204 or 205 has no content to send (RFC 9110 §6.4.1), and a
    // Response refuses one.
    if (req.method === "HEAD" || head.status === 204 || head.status === 205) {
      found.entry.release();
      return new Response(null, { status: head.status, headers: h });
    }
    const partial = rangeFromStore(req, found, head, h);
    if (partial !== undefined) return partial;
    // The body's own length is what is sent (a stream of unknown length
    // goes chunked).
    if (streamed !== undefined) h.set("content-length", streamed);
    else h.delete("content-length");
    // The store hands out plain ArrayBuffer-backed bytes.
    return new StoreResponse(
      sendingStored(body),
      {
        status: head.status,
        statusText: found.record.statusText,
        headers: h,
      },
      status,
      length,
    );
  }

  /**
   * A streamed body as the client gets it: cut when the client takes
   * nothing for `sendTimeoutMs`, which frees what it holds (an origin
   * connection, a store reader and its pins).
   */
  function sending(
    body: ReadableStream<Uint8Array>,
  ): ReadableStream<Uint8Array> {
    return withSendTimeout(body, sendTimeoutMs, () => metrics.sendTimeouts++);
  }

  /** A stored body as sent: bytes as they are, a stream with a send timeout. */
  function sendingStored(body: unknown): BodyInit {
    return (body instanceof ReadableStream ? sending(body) : body) as BodyInit;
  }

  /**
   * A GET's `Range` answered from a stored 200 (RFC 9110 §14): 206 with
   * the bytes read from the store, or 416; undefined for a full 200.
   */
  function rangeFromStore(
    req: Request,
    found: Found,
    head: StoredHead,
    h: Headers,
  ): Response | undefined {
    if (req.method !== "GET" || req.headers.get("range") === null) {
      return undefined;
    }
    // Without a ranged entry, only a body read whole can be cut.
    const body = found.ranged === undefined ? found.entry.body : undefined;
    const size = found.ranged?.size ??
      (body instanceof Uint8Array ? body.length : undefined);
    const plan = planRange(req.method, req.headers, head.status, h, size);
    if (plan.kind === "full") return undefined;
    if (plan.kind === "unsatisfiable") {
      found.entry.release();
      return new Response(null, {
        status: 416,
        headers: unsatisfiableHeaders(h, size!),
      });
    }
    const { start, end } = plan;
    let part: BodyInit;
    if (found.ranged !== undefined) {
      part = sending(found.ranged.stream(start, end));
    } else {
      part = (body as Uint8Array).slice(start, end);
      found.entry.release();
    }
    return new Response(part, {
      status: 206,
      headers: partialHeaders(h, start, end, size!),
    });
  }

  /**
   * A GET's `Range` answered from an origin's complete 200 being
   * streamed (`body`): 206 with the part cut from the stream, or 416;
   * undefined for a full 200. The length must be declared.
   */
  function rangeFromOrigin(
    req: Request,
    res: Response,
    h: Headers,
    body: ReadableStream<Uint8Array> | null,
  ): Response | undefined {
    if (req.method !== "GET" || req.headers.get("range") === null) {
      return undefined;
    }
    if (res.headers.has("content-range")) return undefined;
    const size = declaredLength(res.headers);
    const plan = planRange(req.method, req.headers, res.status, h, size);
    if (plan.kind === "unsatisfiable") {
      // The store (if it reads this body too) goes on alone.
      body?.cancel().catch(() => {});
      return new Response(null, {
        status: 416,
        headers: unsatisfiableHeaders(h, size!),
      });
    }
    if (plan.kind === "full" || body === null) return undefined;
    return new Response(sliceStream(body, plan.start, plan.end), {
      status: 206,
      headers: partialHeaders(h, plan.start, plan.end, size!),
    });
  }

  // Request fields are read with `get`, never `has`: Deno.serve's request
  // Headers answer `get` field by field, but `has` makes them build the
  // whole list first.

  /** A GET with a Range: its entry is opened for range reads. */
  function wantsRange(req: Request): boolean {
    return req.method === "GET" && req.headers.get("range") !== null;
  }

  function track(p: Promise<unknown>): void {
    const done = p.catch((err) => {
      if (err instanceof StoreError && err.code !== "CLOSED") {
        metrics.storeError(err.code, err.message);
      } else if (err instanceof RangeError) metrics.storeRefusals++;
    }).finally(() => pending.delete(done));
    pending.add(done);
  }

  /**
   * The origin's answer to a GET, stored when it may be: the body is teed,
   * one branch to the client, one into the store, read at the pace of the
   * slower; a client that goes away does not stop the store. Also gives
   * the store's write, or undefined when the response is not stored.
   */
  async function storeAndServeWith(
    req: Request,
    target: URL,
    res: Response,
    requestTime: number,
    status: CacheStatus,
    flight?: Flight,
  ): Promise<[Response, Promise<void> | undefined, boolean]> {
    const responseTime = Date.now();
    const reqHead = { method: "GET", url: target.href, headers: req.headers };
    const verdict = storable(reqHead, {
      status: res.status,
      headers: res.headers,
    }, policy);
    const vary = varyNames(res.headers);
    if (!verdict.ok || vary === "*" || closed) {
      return [
        clientResponse(
          res,
          status === "miss" ? "bypass" : status,
          undefined,
          req,
        ),
        undefined,
        false,
      ];
    }
    const record: ResponseRecord = {
      requestTime,
      responseTime,
      seq: 0,
      cacheName: "",
      method: "GET",
      url: target.href,
      requestHeaders: vary.flatMap((n) => {
        const v = req.headers.get(n);
        return v === null ? [] : [[n, v] as [string, string]];
      }),
      status: res.status,
      statusText: res.statusText,
      responseUrl: "",
      responseHeaders: pairs(storedHeaders(res.headers, responseTime, policy)),
      vary,
    };
    if (!worthStoring(recordToHead(record), policy)) {
      return [
        clientResponse(
          res,
          status === "miss" ? "bypass" : status,
          undefined,
          req,
        ),
        undefined,
        false,
      ];
    }
    let key: string;
    try {
      key = await cache.keyFor(record, req.headers);
    } catch {
      // A key over the store's limit.
      return [clientResponse(res, "bypass", undefined, req), undefined, false];
    }
    const seen = (size: number) => () =>
      metrics.sample.seen(target.href, size, responseTime);
    // Collected into one buffer of the origin's length when it says one.
    const length = res.headers.get("content-length") ?? "";
    const expected = /^\d{1,15}$/.test(length) ? Number(length) : 0;
    flight?.storing(record, res.body === null ? 0 : expected);
    if (res.body === null) {
      const stored = cache.put(key, record, new Uint8Array(0));
      stored.then(seen(0), () => {});
      track(stored);
      return [
        withRanges(clientResponse(res, status, null, req)),
        stored,
        vary.length > 0,
      ];
    }
    const [toClient, toStore] = pacedTee(res.body);
    // A body over the store's element limit is refused by the store; the
    // client still gets all of it.
    let size = 0;
    const stored = cache.put(
      key,
      record,
      expectLength(
        countBytes(
          toStore,
          flight === undefined ? (n) => size += n : (n, chunk) => {
            size += n;
            flight.chunk(chunk);
          },
        ),
        expected,
      ),
    );
    stored.then(() => seen(size)(), () => {});
    track(stored);
    const head = recordToHead(record);
    if (clientNotModified({ ...reqHead, method: req.method }, head.headers)) {
      // The client's conditions were taken off for a full response to
      // store; they are answered here, and the store reads on alone.
      await toClient.cancel();
      const h = notModifiedHeaders(head, Date.now());
      addVia(h, via);
      h.set("x-larder-cache", status);
      return [
        new Response(null, { status: 304, headers: h }),
        stored,
        vary.length > 0,
      ];
    }
    return [
      withRanges(clientResponse(res, status, toClient, req)),
      stored,
      vary.length > 0,
    ];
  }

  /** A stored 200 says ranges of it can be asked for (RFC 9110 §14.3). */
  function withRanges(res: Response): Response {
    if (res.status === 200) res.headers.set("accept-ranges", "bytes");
    return res;
  }

  async function handleUnsafe(
    req: Request,
    info: ServeInfo | undefined,
    target: URL,
  ): Promise<Response> {
    const res = await toOrigin(
      req.method,
      target,
      originHeaders(req, info),
      req.body,
    );
    for (
      const uri of invalidates(req.method, res.status, target.href, res.headers)
    ) {
      await invalidate(uri);
      metrics.sample.drop(uri);
    }
    return clientResponse(res, "bypass");
  }

  async function handleSafe(
    req: Request,
    info: ServeInfo | undefined,
    href: string,
  ): Promise<Response> {
    const reqHead = { method: req.method, url: href, headers: req.headers };
    const ranged = wantsRange(req);
    // A fill in flight when the lookup starts may end while it runs: its
    // response is then stored, but after the lookup looked, and the flight
    // is no longer in `inflight`. A miss waits for that flight too, so a
    // request that came during a fill never goes to the origin itself.
    const flightAtLookup = inflight.get(href);
    let found: Found | undefined;
    // The decision on the entry read in the same turn, and its clock
    // reading: what that turn decided is not decided again.
    let decided: { decision: Decision; at: number } | undefined;
    if (ranged) found = await cache.lookup(href, req.headers, { ranged });
    else {
      // A fresh or usable stale hit answered in the turn it is read, from
      // the store's own read buffer (the Response copies the body at
      // construction); any other answer goes on with the entry as the
      // lookup found it, and with the decision made on it.
      const now = cache.lookupNow(href, (f) => {
        const at = Date.now();
        const d = decidePrepared(reqHead, f.prepared, at);
        const head = f.prepared.head;
        if (d.kind === "fresh") {
          return fromStore(req, f, head, "hit", d.freshness, at, false);
        }
        if (d.kind === "stale-usable") {
          if (d.reason === "stale-while-revalidate") {
            // The refresh compares the stored head with this one later:
            // the head's bytes kept past this turn, the body not needed.
            const kept = { meta: f.entry.meta.slice() };
            refreshInBackground(req, info, new URL(href), {
              key: f.key,
              record: f.record,
              entry: kept,
            }, head);
          }
          return fromStore(req, f, head, "stale", d.freshness, at, false);
        }
        decided = { decision: d, at };
        return undefined;
      });
      if (now instanceof Response) return now;
      found = now === undefined
        ? await cache.lookup(href, req.headers)
        : now === "vary"
        ? await cache.lookupVariant(href, req.headers)
        : now === "miss"
        ? undefined
        : now;
    }
    if (found === undefined) metrics.sample.drop(href);
    let head = found?.prepared.head;
    // One clock reading for the decision and the served `Age`.
    const now = decided?.at ?? Date.now();
    const decision = decided?.decision ??
      decidePrepared(reqHead, found?.prepared, now);
    switch (decision.kind) {
      case "fresh":
        return fromStore(
          req,
          found!,
          head!,
          "hit",
          decision.freshness,
          now,
          ranged,
        );
      case "stale-usable":
        if (decision.reason === "stale-while-revalidate") {
          refreshInBackground(req, info, new URL(href), found!, head!);
        }
        return fromStore(
          req,
          found!,
          head!,
          "stale",
          decision.freshness,
          now,
          ranged,
        );
      case "only-if-cached-504":
        found?.entry.release();
        return errorResponse(504, "Not cached (only-if-cached)", via);
      case "miss":
        found?.entry.release();
        found = head = undefined;
        if (req.method === "GET") {
          const flight = inflight.get(href) ?? flightAtLookup;
          if (flight === undefined) {
            return await lead(req, info, new URL(href));
          }
          const collapsed = await afterFlight(req, flight);
          if (collapsed instanceof Response) return collapsed;
          if (collapsed !== undefined) {
            // The flight's exchange or its store failed, not the response's
            // storability; or what it stored was gone when this waiter
            // looked and the flight kept no body for it (see `Flight`: a
            // body over 2 MiB, a waiter that came after the body began, or
            // the URL invalidated): the waiters collapse again, onto one
            // of them, rather than all going to the origin at once. Once:
            // a second such flight's waiters go on themselves.
            const again = inflight.get(href);
            if (again === undefined) {
              if (collapsed === "failed") metrics.collapsed.forwarded++;
              return await lead(req, info, new URL(href));
            }
            const retried = await afterFlight(req, again);
            if (retried instanceof Response) return retried;
            if (retried === "failed") metrics.collapsed.forwarded++;
          }
        }
        break;
      case "revalidate":
        break;
    }
    const staleOnError = decision.kind === "revalidate" &&
      decision.staleOnError;
    const target = new URL(href);
    if (req.method === "HEAD" && found !== undefined) {
      return await headViaOrigin(req, info, target, found, head!, staleOnError);
    }
    return await viaOrigin(req, info, target, { found, head, staleOnError });
  }

  /**
   * A HEAD whose stored GET response may not be used unvalidated: asks the
   * origin with a HEAD (no body is wanted), whose 200 updates the stored
   * head or, when its validators or length differ, drops the stored
   * response (RFC 9111 §4.3.5). The client's own conditions are answered
   * from the updated head.
   */
  async function headViaOrigin(
    req: Request,
    info: ServeInfo | undefined,
    target: URL,
    found: Found,
    head: StoredHead,
    staleOnError: boolean,
  ): Promise<Response> {
    const headers = originHeaders(req, info);
    for (const name of CLIENT_CONDITIONS) headers.delete(name);
    const requestTime = Date.now();
    let res: Response;
    try {
      res = await toOrigin("HEAD", target, headers, null);
    } catch (err) {
      if (staleOnError) return fromStore(req, found, head, "stale");
      found.entry.release();
      throw err;
    }
    if (isOriginError(res.status) && staleOnError) {
      return fromStore(req, found, head, "stale");
    }
    const body = found.entry.body;
    const update = updateFromHead(head, {
      status: res.status,
      headers: res.headers,
      requestTime,
      responseTime: Date.now(),
    }, {
      ...policy,
      storedLength: body instanceof Uint8Array ? body.byteLength : undefined,
    });
    if (update.kind === "updated") {
      track(cache.putHead(found, {
        ...found.record,
        requestTime: update.head.requestTime,
        responseTime: update.head.responseTime,
        responseHeaders: pairs(update.head.headers),
      }));
      return fromStore(req, found, update.head, "revalidated");
    }
    found.entry.release();
    if (update.kind === "stale") await invalidate(target.href);
    return clientResponse(res, "bypass");
  }

  /**
   * A GET miss with no other in flight for its URL: goes to the origin,
   * and other misses for the URL wait until its response is stored.
   */
  async function lead(
    req: Request,
    info: ServeInfo | undefined,
    target: URL,
  ): Promise<Response> {
    const flight: Flight = new Flight(
      target.href,
      () => keeping.delete(flight),
    );
    keeping.add(flight);
    inflight.set(target.href, flight);
    flight.ended.then(() => {
      if (inflight.get(target.href) === flight) inflight.delete(target.href);
    });
    let stored: Promise<void> | undefined;
    let variant = false;
    let answered = false;
    try {
      const res = await viaOrigin(req, info, target, {
        staleOnError: false,
        flight,
        onStored: (p, v) => {
          stored = p;
          variant = v;
        },
      });
      answered = true;
      return res;
    } finally {
      if (stored !== undefined) {
        const end = variant ? "stored-variant" : "stored";
        stored.then(() => flight.settle(end), () => flight.settle("failed"));
      } else flight.settle(answered ? "not-stored" : "failed");
    }
  }

  /**
   * A collapsed miss: waits (at most `collapseTimeoutMs`) for `flight`,
   * then answers from what it stored (from the store, else from the body
   * the flight kept); undefined when the request must go to the origin
   * itself (timed out, nothing stored, another variant, or not usable for
   * this request, say stale by now); "failed" (counted by the caller)
   * when the flight's exchange or store failed; "gone" (counted) when it
   * stored a Vary-less response no longer there and kept no body.
   */
  async function afterFlight(
    req: Request,
    flight: Flight,
  ): Promise<Response | "failed" | "gone" | undefined> {
    flight.join();
    try {
      return await waitFlight(req, flight);
    } finally {
      flight.leave();
    }
  }

  async function waitFlight(
    req: Request,
    flight: Flight,
  ): Promise<Response | "failed" | "gone" | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), collapseTimeoutMs);
    });
    const end = await Promise.race([flight.ended, timeout]);
    clearTimeout(timer);
    if (end === "failed" && !closed) return end;
    const answer = (end === "stored" || end === "stored-variant") && !closed
      ? await fromFlight(req, flight)
      : undefined;
    const gone = answer === "missing" && end === "stored";
    metrics.collapsed[
      answer instanceof Response
        ? "served"
        : gone
        ? "gone"
        : end === "timeout"
        ? "timeout"
        : "forwarded"
    ]++;
    if (gone) return "gone";
    return answer instanceof Response ? answer : undefined;
  }

  /**
   * What a finished flight stored, if it is usable for `req`: as the
   * store has it, or, when the store has none for `req` (an eviction for
   * another store took it first: a new entry has the lowest use count of
   * all), as the flight kept it; "missing" when neither has one.
   */
  async function fromFlight(
    req: Request,
    flight: Flight,
  ): Promise<Response | "missing" | undefined> {
    const url = targetHref(req);
    const found = await cache.lookup(url, req.headers, {
      ranged: wantsRange(req),
    }) ?? keptFound(flight);
    if (found === undefined) return "missing";
    const head = found.prepared.head;
    const reqHead = { method: req.method, url, headers: req.headers };
    const decision = decidePrepared(reqHead, found.prepared, Date.now());
    if (decision.kind === "fresh" || decision.kind === "stale-usable") {
      return fromStore(req, found, head, "hit");
    }
    found.entry.release();
    return undefined;
  }

  /**
   * What `flight` stored as a lookup would find it, from the record and
   * body it kept: the record encoded and decoded again, its head prepared
   * with the cache's policy, once a flight. The caller's decision then
   * checks it against the waiter's request as for a stored one (its Vary
   * fields above all: a waiter that selects another variant is a miss).
   */
  function keptFound(flight: Flight): Found | undefined {
    return flight.kept((kept, body) => {
      const meta = encodeResponseRecord(kept);
      const record = decodeResponseRecord(meta);
      return {
        key: "",
        record,
        prepared: prepareHead(recordToHead(record), policy),
        entry: { meta, body, release() {} },
      };
    });
  }

  /**
   * Makes every stored response for `url` unreachable (see
   * `ProxyCache.invalidate`), and the body a flight for it kept for its
   * waiters too.
   */
  function invalidate(url: string): Promise<boolean> {
    for (const flight of keeping) if (flight.href === url) flight.drop();
    return cache.invalidate(url);
  }

  /**
   * stale-while-revalidate (RFC 5861 §3): refreshes a stale entry in the
   * background, once at a time per entry, while the stale one is served.
   */
  function refreshInBackground(
    req: Request,
    info: ServeInfo | undefined,
    target: URL,
    found: HeadOf,
    head: StoredHead,
  ): void {
    if (refreshing.has(found.key) || closed) return;
    refreshing.add(found.key);
    const refresh = async () => {
      const plain = new Headers(req.headers);
      for (const name of CLIENT_CONDITIONS) plain.delete(name);
      const headers = originHeaders(
        new Request(req.url, { headers: plain }),
        info,
      );
      for (const [name, value] of revalidationHeaders(head)) {
        headers.set(name, value);
      }
      const requestTime = Date.now();
      const res = await toOrigin("GET", target, headers, null);
      if (res.status === 304) {
        await res.body?.cancel();
        const updated = updateFrom304(head, {
          headers: res.headers,
          requestTime,
          responseTime: Date.now(),
        }, policy);
        if (updated === null) return;
        await cache.putHead(found, {
          ...found.record,
          requestTime: updated.requestTime,
          responseTime: updated.responseTime,
          responseHeaders: pairs(updated.headers),
        });
        return;
      }
      if (isOriginError(res.status)) {
        await res.body?.cancel(); // the stale entry stays
        return;
      }
      const [served, stored] = await storeAndServeWith(
        new Request(req.url, { headers: plain }),
        target,
        res,
        requestTime,
        "miss",
      );
      await served.body?.cancel(); // the store reads on alone
      await stored;
    };
    track(refresh().finally(() => refreshing.delete(found.key)));
  }

  /**
   * Asks the origin for a GET or HEAD: a revalidation of `found` when
   * given, else a full request; stores what may be stored.
   */
  async function viaOrigin(
    req: Request,
    info: ServeInfo | undefined,
    target: URL,
    opts: {
      found?: Found | undefined;
      head?: StoredHead | undefined;
      staleOnError: boolean;
      onStored?: (stored: Promise<void> | undefined, variant: boolean) => void;
      /** The flight this request leads: keeps the body for its waiters. */
      flight?: Flight;
    },
  ): Promise<Response> {
    const { found, head, staleOnError } = opts;
    const reqHead = {
      method: req.method,
      url: target.href,
      headers: req.headers,
    };
    const headers = originHeaders(req, info);
    if (head !== undefined) {
      for (const [name, value] of revalidationHeaders(head, reqHead)) {
        headers.set(name, value);
      }
      for (
        const name of ["if-match", "if-unmodified-since", "if-range", "range"]
      ) {
        headers.delete(name);
      }
    } else if (req.method === "GET") {
      // The cache answers the client's conditions itself, from a full
      // response; and its Range, from the whole response it stores (as
      // nginx, Varnish and Fastly do), unless the request forbids storing.
      headers.delete("if-none-match");
      headers.delete("if-modified-since");
      if (
        !parseCacheControl(req.headers.get("cache-control")).has("no-store")
      ) {
        headers.delete("range");
        headers.delete("if-range");
      }
    }
    const requestTime = Date.now();
    let res: Response;
    try {
      // A HEAD that missed goes to the origin as HEAD and is not stored.
      res = await toOrigin(req.method, target, headers, null);
    } catch (err) {
      if (found !== undefined && staleOnError) {
        return fromStore(req, found, head!, "stale");
      }
      found?.entry.release();
      throw err;
    }
    if (found !== undefined && head !== undefined) {
      if (res.status === 304) {
        await res.body?.cancel();
        const updated = updateFrom304(head, {
          headers: res.headers,
          requestTime,
          responseTime: Date.now(),
        }, policy);
        if (updated !== null) {
          const record: ResponseRecord = {
            ...found.record,
            requestTime: updated.requestTime,
            responseTime: updated.responseTime,
            responseHeaders: pairs(updated.headers),
          };
          track(cache.putHead(found, record));
          return fromStore(req, found, updated, "revalidated");
        }
        // The 304 is not for what is stored: ask again, unconditionally.
        found.entry.release();
        for (const name of ["if-none-match", "if-modified-since"]) {
          headers.delete(name);
        }
        res = await toOrigin("GET", target, headers, null);
      } else if (isOriginError(res.status) && staleOnError) {
        await res.body?.cancel();
        return fromStore(req, found, head, "stale");
      } else {
        found.entry.release();
      }
    }
    if (req.method === "HEAD") return clientResponse(res, "bypass");
    const [response, stored, variant] = await storeAndServeWith(
      req,
      target,
      res,
      requestTime,
      "miss",
      opts.flight,
    );
    opts.onStored?.(stored, variant);
    return response;
  }

  function handle(req: Request, info?: ServeInfo): Promise<Response> {
    const href = targetHref(req);
    if (closed) {
      return Promise.resolve(errorResponse(503, "Proxy is closing", via));
    }
    if (req.method === "GET" || req.method === "HEAD") {
      return handleSafe(req, info, href);
    }
    return handleUnsafe(req, info, new URL(href));
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    while (pending.size > 0) await Promise.all([...pending]);
    client.close();
    await cache.close();
  }

  /**
   * Counts an answered request; a body of unknown length is counted as it
   * is sent.
   */
  function counted(req: Request, res: Response, seconds: number): Response {
    const mine = res instanceof StoreResponse;
    const given = mine
      ? res.cacheStatus
      : res.headers.get("x-larder-cache") as CacheStatus;
    const status = CACHE_STATUSES.includes(given) ? given : "error";
    let bytes: number | undefined = 0;
    if (req.method !== "HEAD" && res.status !== 204 && res.status !== 304) {
      // Not res.body first: that would make a stream of a byte body.
      bytes = mine ? res.bodyLength : undefined;
      const field = bytes === undefined
        ? res.headers.get("content-length")
        : null;
      if (bytes === undefined && field !== null && /^\d+$/.test(field)) {
        bytes = Number(field);
      }
    }
    metrics.request({
      status,
      bytes: bytes ?? 0,
      seconds,
      key: req.url.slice(pathStart(req.url)),
    });
    if (bytes !== undefined || res.body === null || status === "error") {
      return res;
    }
    return new Response(
      countBytes(res.body, (n) => metrics.bodyBytes(status, n)),
      { status: res.status, statusText: res.statusText, headers: res.headers },
    );
  }

  return {
    async handler(req, info) {
      // The wall clock only for the log line.
      const start = options.log === undefined ? 0 : Date.now();
      const t0 = performance.now();
      let res: Response;
      let own: Response | undefined;
      try {
        // Purging first: `PURGE` on any path, and `<adminPath>purge`.
        // Told apart without awaiting: almost every request is neither.
        if (purger.claims(req)) own = await purger.handle(req);
        if (own === undefined && admin?.claims(req)) {
          own = await admin.answer(req);
        }
        res = own ?? await handle(req, info);
      } catch (err) {
        res = err instanceof OriginFailure
          ? errorResponse(err.status, err.message, via)
          : errorResponse(502, `Cannot proxy request: ${err}`, via);
      }
      if (own === undefined) {
        res = counted(req, res, (performance.now() - t0) / 1000);
      }
      if (options.log !== undefined) {
        // A stored response's status and length are known without reading
        // its headers (which would make Deno.serve convert them again).
        const sent = res;
        const mine = sent instanceof StoreResponse;
        const length = mine
          ? sent.bodyLength
          : sent.headers.get("content-length");
        const cache = mine
          ? sent.cacheStatus
          : sent.headers.get("x-larder-cache");
        // The request target as the client sent it.
        options.log(
          `${clientAddress(info)} - - [${
            new Date(start).toISOString()
          }] "${req.method} ${
            req.url.slice(pathStart(req.url))
          } HTTP/1.1" ${res.status} ${length ?? "-"} ${cache ?? "-"} ${
            Date.now() - start
          }ms`,
        );
      }
      return res;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
