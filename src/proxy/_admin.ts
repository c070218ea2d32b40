/**
 * The proxy's own endpoints under its admin path (default `/_larder/`):
 *
 * | path        | answers                                              |
 * | ----------- | ---------------------------------------------------- |
 * | `/_larder/` | the status page (HTML, src/proxy/_status_page.ts)    |
 * | `metrics`   | Prometheus text format 0.0.4 (src/proxy/_prometheus.ts) |
 * | `health`    | 200 `{"status":"ok",…}` or 503 when the store is not usable |
 *
 * They are answered here, never forwarded to the origin nor stored; any
 * other path under the prefix is a 404, a method the endpoint does not
 * take (GET and HEAD for these three) a 405. With an admin token, the page and the metrics want
 * `Authorization: Bearer <token>` (or Basic with the token as password,
 * which a browser asks for); health stays open, for load balancers, and
 * tells no more than whether the proxy works.
 *
 * ```ts ignore
 * const admin = new AdminEndpoints({ path: "/_larder/", ... });
 * const res = await admin.answer(req); // undefined: not an admin path
 * ```
 *
 * @module
 */
import { StoreError } from "../errors.ts";
import type { ProxyMetrics } from "./_metrics.ts";
import { PROMETHEUS_CONTENT_TYPE, prometheusText } from "./_prometheus.ts";
import { statusPage } from "./_status_page.ts";
import type { ProxyStore } from "./proxy_store.ts";
import { SecretToken } from "./_token.ts";

/** The default admin path. */
export const DEFAULT_ADMIN_PATH = "/_larder/";

/**
 * A key no one stores (FORMAT.md §12.4's `~px/` namespace): health looks
 * it up to check that a store without `ping` answers.
 */
const HEALTH_KEY = "~px/health";

/**
 * The admin prefix from the option: a path starting and ending with `/`
 * (one is added at the end), or undefined for `false`.
 *
 * @throws {TypeError} for anything else.
 */
export function adminPrefix(
  option: string | false | undefined,
): string | undefined {
  if (option === false) return undefined;
  const p = option ?? DEFAULT_ADMIN_PATH;
  if (
    typeof p !== "string" || !p.startsWith("/") || p === "/" ||
    /[?#\s]/.test(p) || new URL(p, "http://x").pathname !== p
  ) {
    throw new TypeError(
      `Cannot create proxy: adminPath must be a normalised path such as "/_larder/", or false, got ${
        JSON.stringify(option)
      }`,
    );
  }
  return p.endsWith("/") ? p : `${p}/`;
}

/**
 * The admin token from the option, checked.
 *
 * @throws {TypeError} for an empty token or one that is not a string.
 */
export function adminToken(option: unknown): string | undefined {
  if (option === undefined) return undefined;
  if (typeof option !== "string" || option === "" || /\s/.test(option)) {
    throw new TypeError(
      "Cannot create proxy: adminToken must be a non-empty string without spaces",
    );
  }
  return option;
}

/** What the endpoints read. */
export interface AdminOptions {
  /** The prefix, from {@linkcode adminPrefix}. */
  path: string;
  /** When given, the page and metrics require it. */
  token?: string | undefined;
  metrics: ProxyMetrics;
  store: ProxyStore;
  /** Whether the proxy is closing or closed. */
  closed: () => boolean;
  /** The origin, for the page's heading. */
  origin: string;
}

/** Where the path starts in an absolute URL such as `Request.url`. */
export function pathStart(url: string): number {
  const at = url.indexOf("/", url.indexOf("//") + 2);
  return at < 0 ? url.length : at;
}

function respond(
  status: number,
  body: string | null,
  type: string,
  extra: Record<string, string> = {},
): Response {
  return new Response(body, {
    status,
    headers: {
      "content-type": type,
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      ...extra,
    },
  });
}

/** The admin endpoints. */
export class AdminEndpoints {
  readonly #o: AdminOptions;
  readonly #token: SecretToken | undefined;
  /** The path without its final `/`, which `answer` redirects to the path. */
  readonly #prefixSansSlash: string;

  /** @param options The prefix and what the endpoints read. */
  constructor(options: AdminOptions) {
    this.#o = options;
    this.#prefixSansSlash = options.path.slice(0, -1);
    this.#token = options.token === undefined
      ? undefined
      : new SecretToken(options.token);
  }

  /** Whether the request carries the token (or none is needed). */
  async authorized(req: Request): Promise<boolean> {
    const token = this.#token;
    if (token === undefined) return true;
    const auth = req.headers.get("authorization") ?? "";
    const m = /^(\w+)\s+(\S+)\s*$/.exec(auth);
    if (m === null) return false;
    const scheme = m[1]!.toLowerCase();
    if (scheme === "bearer") return await token.matches(m[2]!);
    if (scheme === "basic") {
      let decoded: string;
      try {
        decoded = atob(m[2]!);
      } catch {
        return false;
      }
      const colon = decoded.indexOf(":");
      return colon >= 0 && await token.matches(decoded.slice(colon + 1));
    }
    return false;
  }

  /**
   * Whether `req` may be for an admin path (`answer` tells for sure):
   * false for almost every request, told without parsing its URL.
   *
   * @param req The request.
   * @returns false when `answer` would give undefined.
   */
  claims(req: Request): boolean {
    const url = req.url;
    return url.startsWith(this.#prefixSansSlash, pathStart(url));
  }

  /**
   * The answer to an admin request, or undefined when `req` is not under
   * the admin path (it goes to the origin).
   */
  async answer(req: Request): Promise<Response | undefined> {
    if (!this.claims(req)) return undefined;
    const prefix = this.#o.path;
    const url = new URL(req.url);
    if (url.pathname === prefix.slice(0, -1)) {
      return respond(308, null, "text/plain; charset=utf-8", {
        location: prefix + url.search,
      });
    }
    if (!url.pathname.startsWith(prefix)) return undefined;
    const name = url.pathname.slice(prefix.length);
    const route = ROUTES[name];
    if (route === undefined) {
      return respond(404, "Not found\n", "text/plain; charset=utf-8");
    }
    const methods = route.methods ?? READ;
    if (!methods.includes(req.method)) {
      return respond(
        405,
        "Method not allowed\n",
        "text/plain; charset=utf-8",
        { allow: methods.join(", ") },
      );
    }
    if (route.guarded && !await this.authorized(req)) {
      return respond(401, "Unauthorized\n", "text/plain; charset=utf-8", {
        "www-authenticate": 'Basic realm="larder admin", charset="UTF-8"',
      });
    }
    const res = await route.answer(this.#o, req);
    if (req.method === "HEAD") {
      await res.body?.cancel();
      return new Response(null, { status: res.status, headers: res.headers });
    }
    return res;
  }
}

function storeStats(o: AdminOptions) {
  if (o.closed()) return undefined;
  try {
    return o.store.stats?.();
  } catch {
    return undefined;
  }
}

/** `health`: whether the store answers a lookup. */
async function health(o: AdminOptions): Promise<Response> {
  const json = "application/json; charset=utf-8";
  const m = o.metrics;
  const base = {
    uptimeSeconds: Math.floor((m.now() - m.started) / 1000),
    ...(m.lastStoreError === undefined ? {} : {
      lastStoreError: {
        code: m.lastStoreError.code,
        at: new Date(m.lastStoreError.time).toISOString(),
      },
    }),
  };
  if (o.closed()) {
    return respond(
      503,
      JSON.stringify({ status: "closing", ...base }) + "\n",
      json,
    );
  }
  try {
    // Not a lookup the store's hit and miss counters see, where it can.
    if (o.store.ping !== undefined) await o.store.ping();
    else (await o.store.get(HEALTH_KEY))?.release();
  } catch (err) {
    return respond(
      503,
      JSON.stringify({
        status: "unavailable",
        error: err instanceof StoreError ? err.code : String(err),
        ...base,
      }) + "\n",
      json,
    );
  }
  const stats = storeStats(o);
  return respond(
    200,
    JSON.stringify({
      status: "ok",
      ...base,
      ...(stats === undefined ? {} : {
        store: {
          entries: stats.entries,
          bytes: stats.bytes,
          limit: stats.limit,
        },
      }),
    }) + "\n",
    json,
  );
}

const READ = ["GET", "HEAD"];

/**
 * The endpoints by name under the prefix: whether they want the token,
 * the methods they take (default GET and HEAD; a HEAD gets the GET's
 * head), and their answer.
 */
const ROUTES: Record<
  string,
  {
    guarded: boolean;
    methods?: string[];
    answer: (o: AdminOptions, req: Request) => Promise<Response>;
  }
> = {
  "": {
    guarded: true,
    answer: (o) => {
      const stats = storeStats(o);
      if (stats !== undefined) o.metrics.sample.trimTo(stats.entries);
      return Promise.resolve(respond(
        200,
        statusPage({
          metrics: o.metrics,
          stats,
          adminPath: o.path,
          origin: o.origin,
        }),
        "text/html; charset=utf-8",
      ));
    },
  },
  metrics: {
    guarded: true,
    answer: (o) =>
      Promise.resolve(respond(
        200,
        prometheusText(o.metrics, storeStats(o)),
        PROMETHEUS_CONTENT_TYPE,
      )),
  },
  health: { guarded: false, answer: health },
};
