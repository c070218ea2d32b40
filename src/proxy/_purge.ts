/**
 * Purging: `PURGE <path>` on any proxied path, and `POST <adminPath>purge?url=…`,
 * both behind a bearer token (`Authorization: Bearer <token>`), compared in
 * constant time. Answered by the proxy, never forwarded: without a token
 * configured purging is off and both are 405.
 *
 * Responses (JSON, `Cache-Control: no-store`): 200 `{"purged": 1}` when
 * something was stored for the URL (every `Vary` variant of it goes), 404
 * `{"purged": 0}` when nothing was, 401 without the right token, 405 when
 * purging is off (or the endpoint is asked with another method than POST),
 * 400 for a missing or bad `url`.
 *
 * @module
 */
import { SecretToken } from "./_token.ts";

/** How the proxy purges. */
export interface PurgeOptions {
  /** The bearer token; undefined turns purging off. */
  token: string | undefined;
  /** Where the admin endpoints live (ends in `/`), or false for none. */
  adminPath: string | false;
  /** The origin, to tell a target URI from a path of the proxy's. */
  origin: URL;
  /** The target URI a proxy-side URL (its path and query) maps to. */
  targetOf(url: URL): URL;
  /** Removes every stored response for a target URI; whether there were any. */
  purge(target: URL): Promise<boolean>;
  /** The `Via` entry to add. */
  via: string;
}

/** The purge requests of one proxy. */
export class Purger {
  readonly #o: PurgeOptions;
  readonly #endpoint: string | undefined;
  readonly #token: SecretToken | undefined;

  /**
   * @param options The token, the admin path and how to purge.
   * @throws {TypeError} for an empty token or an admin path not starting
   *   and ending with `/`.
   */
  constructor(options: PurgeOptions) {
    if (options.token === "") {
      throw new TypeError("Cannot create proxy: purgeToken is empty");
    }
    const p = options.adminPath;
    if (p !== false && (!p.startsWith("/") || !p.endsWith("/"))) {
      throw new TypeError(
        `Cannot create proxy: adminPath must start and end with "/", got ${
          JSON.stringify(p)
        }`,
      );
    }
    this.#o = options;
    this.#endpoint = p === false ? undefined : `${p}purge`;
    this.#token = options.token === undefined
      ? undefined
      : new SecretToken(options.token);
  }

  /**
   * Whether `req` may be a purge request (`handle` tells for sure); false
   * for almost every request, told without parsing its URL or awaiting.
   *
   * @param req The request.
   * @returns false when `handle` would give undefined.
   */
  claims(req: Request): boolean {
    return req.method === "PURGE" ||
      (this.#endpoint !== undefined && req.url.includes(this.#endpoint));
  }

  /**
   * The answer to a purge request, or undefined when `req` is not one.
   *
   * @param req The request.
   * @returns The response, or undefined.
   */
  async handle(req: Request): Promise<Response | undefined> {
    if (!this.claims(req)) return undefined;
    const u = new URL(req.url);
    if (req.method === "PURGE") {
      return await this.#purge(req, () => this.#o.targetOf(u));
    }
    if (this.#endpoint === undefined || u.pathname !== this.#endpoint) {
      return undefined;
    }
    if (req.method !== "POST") {
      await req.body?.cancel();
      return this.#json(405, { error: "use POST" }, { allow: "POST" });
    }
    await req.body?.cancel();
    return await this.#purge(req, () => {
      const given = u.searchParams.get("url");
      if (given === null || given === "") return undefined;
      let url: URL;
      try {
        url = new URL(given, u); // a path is one of the proxy's
      } catch {
        return undefined;
      }
      // A target URI as the origin spells it is stored under itself.
      return url.origin === this.#o.origin.origin ? url : this.#o.targetOf(url);
    });
  }

  async #purge(
    req: Request,
    target: () => URL | undefined,
  ): Promise<Response> {
    if (this.#token === undefined) {
      return this.#json(405, {
        error: "purging is off: start the proxy with a purge token",
      });
    }
    const m = /^\s*bearer\s+(\S+)\s*$/i.exec(
      req.headers.get("authorization") ?? "",
    );
    if (!await this.#token.matches(m?.[1])) {
      return this.#json(401, { error: "a valid bearer token is required" }, {
        "www-authenticate": 'Bearer realm="larder"',
      });
    }
    const t = target();
    if (t === undefined) {
      return this.#json(400, { error: "give the URL to purge as ?url=" });
    }
    t.hash = "";
    const purged = await this.#o.purge(t) ? 1 : 0;
    return this.#json(purged > 0 ? 200 : 404, { purged });
  }

  #json(
    status: number,
    body: unknown,
    extra: Record<string, string> = {},
  ): Response {
    const h = new Headers({
      "content-type": "application/json",
      "cache-control": "no-store",
      via: this.#o.via,
      ...extra,
    });
    return new Response(`${JSON.stringify(body)}\n`, { status, headers: h });
  }
}
