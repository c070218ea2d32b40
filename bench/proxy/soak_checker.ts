/**
 * The soak's checking client (bench/proxy/soak.ts): workers that send the
 * proxy a mix of requests and verify every answer, byte for byte, against
 * soak_bodies.ts, with its status and its `Age`, `X-Larder-Cache`,
 * `Content-Length`, `Content-Range` and `ETag` fields. Besides GETs of
 * every origin kind: HEAD, Range, conditional requests, PURGE, clients
 * that disconnect mid-body (alone and while another client waits for the
 * same miss), concurrent misses of one URL (the origin must see one
 * request), origin resets mid-body and an origin past the proxy's timeout.
 *
 * @module
 */
import { bodyFor, etagFor, wrongBytes } from "./soak_bodies.ts";
import type { Pending } from "./soak_watch.ts";

/** What the checker saw. */
export interface CheckerReport {
  /** Operations done, by name. */
  ops: Record<string, number>;
  /** Bytes that differ from what the URL says, over all bodies. */
  wrongBytes: number;
  /** Failed checks, by kind. */
  failures: Record<string, number>;
  /** The first failures in words. */
  examples: string[];
  /** Origin resets the client saw as a body error (expected). */
  expectedBodyErrors: number;
  /** Collapsed-miss groups and how many made more than one origin request. */
  collapse: { groups: number; extraOriginRequests: number };
  /** Latency of one request, ms. */
  latencyMs: number[];
}

export interface CheckerOptions {
  proxyUrl: string;
  originUrl: string;
  purgeToken: string;
  /** When to stop (Date.now()). */
  untilMs: number;
  workers: number;
  /** Soak start (Date.now()), for `Age` bounds. */
  startMs: number;
  /**
   * Filled with the requests in progress, head and body (for the soak to
   * say what it waits on).
   */
  pending?: Set<Pending>;
}

const SIZES = [100, 1000, 4096, 16384, 65536, 262144, 1048576, 2097152];
const LANGS = ["en", "fr", "de"];
const STATUSES = new Set(["hit", "stale", "revalidated", "miss", "bypass"]);

/**
 * The longest any request may take, head and body (the proxy's collapse
 * wait is 30 s at most, its origin timeout 2 s): past it the request is
 * aborted and counted as "no answer", so a hung answer fails the soak
 * instead of stalling it.
 */
export const ANSWER_MS = 60_000;

const rand = (n: number) => Math.floor(Math.random() * n);
const pick = <T>(xs: readonly T[]): T => xs[rand(xs.length)]!;

/** Runs the checker until `untilMs`. */
export async function runChecker(opts: CheckerOptions): Promise<CheckerReport> {
  const report: CheckerReport = {
    ops: {},
    wrongBytes: 0,
    failures: {},
    examples: [],
    expectedBodyErrors: 0,
    collapse: { groups: 0, extraOriginRequests: 0 },
    latencyMs: [],
  };
  let unique = 0;
  const fail = (kind: string, detail: string) => {
    report.failures[kind] = (report.failures[kind] ?? 0) + 1;
    if (report.examples.length < 40) report.examples.push(`${kind}: ${detail}`);
  };
  const noAnswer = (err: unknown) =>
    err instanceof DOMException && err.name === "TimeoutError";
  const pending = opts.pending ?? new Set<Pending>();
  // A response's entry in `pending`, removed once its body is read.
  const pendingOf = new WeakMap<Response, Pending>();
  /**
   * `fetch`, aborted (and counted) when head and body take ANSWER_MS; in
   * `pending` until readBody has its body.
   */
  const fetch = async (url: string, init: RequestInit = {}) => {
    const entry = {
      what: `${init.method ?? "GET"} ${url.replace(/^https?:\/\/[^/]+/, "")}`,
      sinceMs: performance.now(),
    };
    pending.add(entry);
    try {
      const res = await globalThis.fetch(url, {
        ...init,
        signal: AbortSignal.timeout(ANSWER_MS),
      });
      pendingOf.set(res, entry);
      return res;
    } catch (err) {
      pending.delete(entry);
      if (noAnswer(err)) {
        fail("no answer", `${url}: no head in ${ANSWER_MS} ms`);
      }
      throw err;
    }
  };
  const path = (kind: string, size = pick(SIZES), id = rand(300)) =>
    `/${kind}/${size}/${id}`;

  /** Reads a body to the end; null when it errors. */
  const readBody = async (res: Response): Promise<Uint8Array | null> => {
    try {
      return new Uint8Array(await res.arrayBuffer());
    } catch (err) {
      if (noAnswer(err)) {
        fail("no answer", `${res.url}: body unfinished in ${ANSWER_MS} ms`);
      }
      return null;
    } finally {
      const entry = pendingOf.get(res);
      if (entry !== undefined) pending.delete(entry);
    }
  };

  /** Checks the fields every answer from the proxy should have. */
  const checkFields = (p: string, res: Response, body: Uint8Array | null) => {
    const cache = res.headers.get("x-larder-cache");
    if (cache === null || !STATUSES.has(cache)) {
      fail("x-larder-cache", `${p}: ${cache} (status ${res.status})`);
    }
    const age = res.headers.get("age");
    if (age !== null) {
      const bound = (Date.now() - opts.startMs) / 1000 + 2;
      if (!/^\d+$/.test(age) || Number(age) > bound) {
        fail("age", `${p}: Age ${age}, bound ${bound.toFixed(0)}`);
      }
    }
    const length = res.headers.get("content-length");
    if (length !== null && body !== null && Number(length) !== body.length) {
      fail("content-length", `${p}: ${length} for ${body.length} bytes`);
    }
  };

  /** A GET whose answer must be the URL's bytes (or, allowBroken, an error). */
  const getAndVerify = async (
    p: string,
    init: { lang?: string; allowBroken?: boolean; status?: number } = {},
  ) => {
    const headers: Record<string, string> = {};
    if (init.lang) headers["accept-language"] = init.lang;
    const t0 = performance.now();
    let res: Response;
    try {
      res = await fetch(opts.proxyUrl + p, { headers });
    } catch (err) {
      if (init.allowBroken) return void report.expectedBodyErrors++;
      return fail("fetch", `${p}: ${err}`);
    }
    const body = await readBody(res);
    report.latencyMs.push(performance.now() - t0);
    const want = init.status ?? 200;
    if (res.status !== want) {
      if (init.allowBroken && res.status === 502) {
        return void report.expectedBodyErrors++;
      }
      return fail(`status ${res.status}`, `${p}: wanted ${want}`);
    }
    if (body === null) {
      if (init.allowBroken) return void report.expectedBodyErrors++;
      return fail("body error", p);
    }
    checkFields(p, res, body);
    const wrong = wrongBytes(body, bodyFor(p, init.lang ?? ""));
    if (wrong > 0) {
      report.wrongBytes += wrong;
      fail(
        "wrong bytes",
        `${p}: ${wrong} of ${body.length} (${
          res.headers.get("x-larder-cache")
        })`,
      );
    }
  };

  const ops: [string, number, () => Promise<void>][] = [
    ["get", 40, () => getAndVerify(path(pick(["o", "s", "e", "n"])))],
    ["get-vary", 8, async () => {
      await getAndVerify(path("v"), { lang: pick(LANGS) });
    }],
    ["get-slow", 3, () => getAndVerify(path("slow", pick([100, 65536])))],
    ["get-trickle", 2, () => getAndVerify(path("trickle"))],
    ["get-5xx", 3, async () => {
      const id = rand(300);
      await getAndVerify(`/5xx/${pick([100, 4096])}/${id}`, {
        status: id % 2 === 0 ? 500 : 503,
      });
    }],
    ["head", 6, async () => {
      const p = path("o");
      const res = await fetch(opts.proxyUrl + p, { method: "HEAD" });
      const body = await readBody(res);
      if (res.status !== 200) return fail(`head status ${res.status}`, p);
      if (body === null || body.length !== 0) return fail("head body", p);
      const length = res.headers.get("content-length");
      const size = bodyFor(p).length;
      if (length !== null && Number(length) !== size) {
        fail("head content-length", `${p}: ${length} for ${size}`);
      }
      checkFields(p, res, null);
    }],
    ["range", 8, async () => {
      const p = path(pick(["o", "s"]));
      const full = bodyFor(p);
      const a = rand(full.length);
      const b = Math.min(full.length - 1, a + rand(70_000));
      const res = await fetch(opts.proxyUrl + p, {
        headers: { range: `bytes=${a}-${b}` },
      });
      const body = await readBody(res);
      if (body === null) return fail("body error", `${p} range`);
      if (res.status === 200) {
        const wrong = wrongBytes(body, full);
        report.wrongBytes += wrong;
        if (wrong) fail("wrong bytes", `${p} range→200`);
        return;
      }
      if (res.status !== 206) return fail(`range status ${res.status}`, p);
      const cr = res.headers.get("content-range");
      if (cr !== `bytes ${a}-${b}/${full.length}`) {
        return fail("content-range", `${p}: ${cr} for ${a}-${b}`);
      }
      const wrong = wrongBytes(body, full.subarray(a, b + 1));
      report.wrongBytes += wrong;
      if (wrong) fail("wrong bytes", `${p} range ${a}-${b}: ${wrong}`);
    }],
    ["conditional", 6, async () => {
      const p = path(pick(["o", "e", "s"]));
      const res = await fetch(opts.proxyUrl + p, {
        headers: { "if-none-match": etagFor(p) },
      });
      const body = await readBody(res);
      if (body === null) return fail("body error", `${p} conditional`);
      if (res.status === 304) {
        if (body.length) fail("304 body", p);
        if (res.headers.get("etag") !== etagFor(p)) fail("304 etag", p);
        return;
      }
      if (res.status !== 200) return fail(`cond status ${res.status}`, p);
      const wrong = wrongBytes(body, bodyFor(p));
      report.wrongBytes += wrong;
      if (wrong) fail("wrong bytes", `${p} conditional→200`);
    }],
    ["disconnect", 5, () => disconnectMidBody(path("o", pick(SIZES.slice(5))))],
    ["purge", 3, async () => {
      const p = path("o");
      const res = await fetch(opts.proxyUrl + p, {
        method: "PURGE",
        headers: { authorization: `Bearer ${opts.purgeToken}` },
      });
      await readBody(res);
      if (res.status !== 200 && res.status !== 404) {
        return fail(`purge status ${res.status}`, p);
      }
      await getAndVerify(p);
    }],
    ["reset", 2, async () => {
      // The origin breaks every answer halfway: never a whole body, and
      // never a stored one.
      const p = path("reset", pick([65536, 1048576]));
      for (let i = 0; i < 2; i++) {
        let res: Response;
        try {
          res = await fetch(opts.proxyUrl + p);
        } catch {
          report.expectedBodyErrors++;
          continue;
        }
        const body = await readBody(res);
        if (body === null || res.status === 502) {
          report.expectedBodyErrors++;
          continue;
        }
        // A whole 200 is the defect; any other status (a 504: the origin's
        // head later than the soak's origin timeout, on a loaded box) is
        // named as what it is.
        fail(
          res.status === 200
            ? "reset served whole"
            : `reset status ${res.status}`,
          `${p}: ${res.status}, ${body.length} bytes (${
            res.headers.get("x-larder-cache")
          })`,
        );
      }
    }],
    ["flaky", 2, async () => {
      const p = path("flaky", pick([4096, 262144, 1048576]));
      await getAndVerify(p, { allowBroken: true });
      await getAndVerify(p, { allowBroken: true });
    }],
    ["hang", 1, async () => {
      const p = `/hang/100/h${unique++}`;
      const t0 = performance.now();
      const res = await fetch(opts.proxyUrl + p);
      await readBody(res);
      const ms = performance.now() - t0;
      if (res.status !== 504 && res.status !== 502) {
        fail(`hang status ${res.status}`, p);
      }
      if (ms > 4500) fail("hang slow", `${p}: ${ms.toFixed(0)} ms`);
    }],
    ["collapse", 2, async () => {
      const p = `/slow/${pick([1000, 262144])}/c${unique++}-${Date.now()}`;
      await Promise.all(Array.from({ length: 16 }, () => getAndVerify(p)));
      const count = await readBody(
        await fetch(`${opts.originUrl}/_count?path=${p}`),
      );
      const n = count === null ? NaN : Number(new TextDecoder().decode(count));
      report.collapse.groups++;
      if (n !== 1) {
        report.collapse.extraOriginRequests += n - 1;
        fail("collapse", `${p}: ${n} origin requests for 16 misses`);
      }
    }],
    ["disconnect-shared", 2, async () => {
      // One client leaves a miss halfway while another reads it whole.
      const p = `/trickle/1048576/d${unique++}-${Date.now()}`;
      await Promise.all([disconnectMidBody(p), getAndVerify(p)]);
      await getAndVerify(p);
    }],
  ];

  /**
   * Sends a GET over a raw socket, reads a little of the body, closes. The
   * request asks the proxy to close the connection after its answer: on a
   * kept-alive one a whole answer shorter than the bytes wanted (a 504 when
   * the origin is slow) would leave the read waiting for bytes that never
   * come.
   */
  async function disconnectMidBody(p: string) {
    const { port } = new URL(opts.proxyUrl);
    const entry = { what: `raw GET ${p}`, sinceMs: performance.now() };
    pending.add(entry);
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({ hostname: "127.0.0.1", port: +port });
    } catch (err) {
      pending.delete(entry);
      throw err;
    }
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      fail("no answer", `${p}: no head or body in ${ANSWER_MS} ms (raw)`);
      conn.close();
    }, ANSWER_MS);
    try {
      await conn.write(new TextEncoder().encode(
        `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
      ));
      const buf = new Uint8Array(16384);
      let got = 0;
      let statusLine = "";
      const want = 1 + rand(40_000);
      while (got < want) {
        const n = await conn.read(buf);
        if (n === null) break;
        if (got === 0) {
          const start = new TextDecoder().decode(buf.subarray(0, n));
          statusLine = start.split("\r\n")[0]!;
        }
        got += n;
      }
      const status = statusLine.split(" ")[1];
      if (status !== "200") fail(`raw status ${status}`, `${p}: ${statusLine}`);
    } catch (err) {
      if (!hung) throw err;
    } finally {
      clearTimeout(timer);
      pending.delete(entry);
      if (!hung) conn.close();
    }
  }

  const total = ops.reduce((s, [, w]) => s + w, 0);
  const pickOp = () => {
    let r = Math.random() * total;
    for (const op of ops) if ((r -= op[1]) <= 0) return op;
    return ops[0]!;
  };
  const worker = async () => {
    while (Date.now() < opts.untilMs) {
      const [name, , run] = pickOp();
      report.ops[name] = (report.ops[name] ?? 0) + 1;
      try {
        await run();
      } catch (err) {
        fail(`${name} threw`, String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: opts.workers }, worker));
  return report;
}
