/**
 * Requests to the origin over `node:http`, as a fetch-like Response.
 *
 * Not `fetch`: Deno's fetch decodes gzip and br bodies yet keeps their
 * `Content-Encoding` and `Content-Length`, so a proxy passing them on would
 * send decoded bytes labelled as encoded. `node:http` hands over the bytes
 * the origin sent.
 *
 * @module
 */
import http from "node:http";
import https from "node:https";

// Statuses whose responses have no content (RFC 9110 §6.4.1).
const NO_CONTENT = new Set([101, 204, 205, 304]);

// RFC 9110 §9.2.2: requests that may be repeated without changing what they do.
const IDEMPOTENT = new Set([
  "GET",
  "HEAD",
  "OPTIONS",
  "TRACE",
  "PUT",
  "DELETE",
]);

/** A pooled connection the origin had closed while it sat idle. */
class StaleConnection extends Error {}

/**
 * The connection sat idle for the exchange's `idleMs` before the response
 * head: the origin took nothing of the request, or sent nothing back.
 */
export class OriginIdle extends Error {}

/**
 * A keep-alive connection pool for one origin.
 *
 * A pooled connection can be closed by the origin (its keep-alive timeout)
 * just as a request is written to it; the request then fails with no
 * response, through no fault of either side. A bodiless idempotent request
 * that meets this is sent once more on a new connection (RFC 9110 §9.2.2).
 * Others are never sent on a pooled connection at all: a proxy must not
 * retry a non-idempotent request, and a streamed body cannot be sent twice.
 */
export class OriginClient {
  readonly #agent: http.Agent;
  readonly #fresh: http.Agent;
  readonly #request: typeof http.request;

  /**
   * A pool for `origin`'s scheme.
   *
   * @param origin The origin URL.
   */
  constructor(origin: URL) {
    const secure = origin.protocol === "https:";
    this.#agent = secure
      ? new https.Agent({ keepAlive: true })
      : new http.Agent({ keepAlive: true });
    this.#fresh = secure
      ? new https.Agent({ keepAlive: false })
      : new http.Agent({ keepAlive: false });
    this.#request = secure ? https.request : http.request;
  }

  /**
   * Sends one request; resolves with the response head, its body streamed.
   *
   * @param url The target.
   * @param init Method, header fields, body, an abort signal that ends
   *   the exchange, how long the connection may be idle (before or during
   *   the body) before it is cut, and whom to tell when the request is
   *   sent.
   * @returns The response.
   */
  async send(url: URL, init: SendInit): Promise<Response> {
    const pooled = init.body === null && IDEMPOTENT.has(init.method);
    if (!pooled) return await this.#once(url, init, this.#fresh);
    try {
      return await this.#once(url, init, this.#agent);
    } catch (err) {
      if (!(err instanceof StaleConnection) || init.signal.aborted) throw err;
      return await this.#once(url, init, this.#fresh);
    }
  }

  #once(url: URL, init: SendInit, agent: http.Agent): Promise<Response> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = {};
      for (const [name, value] of init.headers) headers[name] = value;
      const req = this.#request(url, {
        method: init.method,
        headers,
        agent,
      });
      // Settled once, by whichever comes first. An abort or a timeout
      // settles it itself: destroying a request on a reused socket emits
      // no "error" under Deno's node:http, so waiting for one would hang;
      // Deno then sends the request again on a new connection, and that
      // late response is dropped below.
      let settled = false;
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        init.signal.removeEventListener("abort", abort);
        reject(err);
      };
      const cut = (err: Error) => {
        req.destroy(err);
        fail(err);
      };
      // An origin that stops taking the request, or never answers, must
      // not hang the client. (Once the head is in, the body has its own
      // timer: bodyOf.)
      req.setTimeout(init.idleMs, () => {
        cut(
          new OriginIdle(
            `Cannot read origin response: nothing for ${init.idleMs} ms`,
          ),
        );
      });
      const abort = () => cut(init.signal.reason);
      if (init.signal.aborted) abort();
      init.signal.addEventListener("abort", abort, { once: true });
      req.on("error", (err) => {
        // No response on a pooled connection: the origin closed it idle.
        const code = (err as { code?: string }).code;
        if (
          req.reusedSocket && !init.signal.aborted &&
          (code === "ECONNRESET" || code === "EPIPE")
        ) {
          fail(new StaleConnection(err.message, { cause: err }));
        } else {
          fail(err);
        }
      });
      req.on("response", (res) => {
        if (settled) {
          // Too late: the exchange was given up.
          res.destroy();
          return;
        }
        settled = true;
        init.signal.removeEventListener("abort", abort);
        // The body keeps its own idle timer, which runs only while the
        // proxy waits for the origin: a socket timer would also run while
        // a slow client holds the origin back, and cut a body (and its
        // store) the origin was sending well.
        req.setTimeout(0);
        try {
          resolve(toResponse(res, init.method, init.idleMs));
        } catch (err) {
          // Whatever the origin sent, a bad head is the origin's failure
          // (502), never an exception thrown out of this event handler.
          res.destroy();
          reject(err);
        }
      });
      if (init.body === null) {
        req.end();
        init.onSent?.();
        return;
      }
      (async () => {
        try {
          for await (const chunk of init.body!) {
            if (!req.write(chunk)) {
              await new Promise((r) => req.once("drain", r));
            }
          }
          req.end();
          init.onSent?.();
        } catch (err) {
          req.destroy(err as Error);
        }
      })();
    });
  }

  /** Closes the pooled connections. */
  close(): void {
    this.#agent.destroy();
    this.#fresh.destroy();
  }
}

/** What {@linkcode OriginClient.send} sends. */
interface SendInit {
  method: string;
  headers: Headers;
  body: ReadableStream<Uint8Array> | null;
  signal: AbortSignal;
  idleMs: number;
  /**
   * Told when the request, body and all, has been handed to the
   * connection: the wait for the response head starts there (an upload
   * that takes longer than the head's timeout is not the origin's delay).
   */
  onSent?: () => void;
}

/**
 * The origin's response head and body as a Response.
 *
 * @throws {Error} when the head cannot be passed on: a status outside
 *   200–599 (a 1xx here is not a final response; 600 and up is not HTTP),
 *   or a field `Headers` refuses.
 */
function toResponse(
  res: http.IncomingMessage,
  method: string,
  idleMs: number,
): Response {
  const status = res.statusCode ?? 0;
  if (!(status >= 200 && status <= 599)) {
    throw new Error(
      `Cannot read origin response: status ${status} is outside 200–599`,
    );
  }
  const headers = new Headers();
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    headers.append(raw[i]!, raw[i + 1]!);
  }
  // A reason phrase Response refuses is dropped, not fatal: it carries
  // no meaning (RFC 9112 §4).
  const statusText = /^[\t\x20-\x7e\x80-\xff]*$/.test(res.statusMessage ?? "")
    ? res.statusMessage
    : "";
  if (NO_CONTENT.has(status) || method === "HEAD") {
    res.resume();
    return new Response(null, { status, statusText, headers });
  }
  return new Response(bodyOf(res, idleMs), { status, statusText, headers });
}

/**
 * The error a client's body ends with when the origin's ends early.
 * Deno.serve prints a failed body's error on stderr, stack, cause and
 * all: this one is one line a failure, its code in the message.
 */
function midBody(what: string, code?: string): Error {
  const detail = what.replace(/^Cannot read origin response: /, "");
  const err = new Error(
    `Cannot read origin response: ${detail}${
      code === undefined ? "" : ` (${code})`
    } mid-body`,
  );
  err.stack = err.message;
  return err;
}

/**
 * The origin's body as a stream that pauses the socket under pressure,
 * cut when the origin sends nothing for `idleMs` while the stream waits
 * for it (never while it is paused for its reader).
 */
function bodyOf(
  res: http.IncomingMessage,
  idleMs: number,
): ReadableStream<Uint8Array> {
  let settled = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const rest = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  const fail = (err: Error) => {
    rest();
    if (settled) return;
    settled = true;
    controller.error(err);
  };
  // Waiting for the origin: it has `idleMs` to send the next bytes.
  const wait = () => {
    rest();
    if (settled) return;
    timer = setTimeout(() => {
      fail(midBody(`nothing for ${idleMs} ms`));
      res.destroy();
    }, idleMs);
  };
  return new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      // Flowing from here.
      wait();
      res.on("data", (chunk: Uint8Array) => {
        if (settled) return;
        controller.enqueue(
          new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength),
        );
        if ((controller.desiredSize ?? 0) <= 0) {
          // Held back for the reader: the origin is not late.
          res.pause();
          rest();
        } else wait();
      });
      res.on("end", () => {
        rest();
        if (settled) return;
        settled = true;
        controller.close();
      });
      res.on("close", () => fail(midBody("connection closed")));
      res.on(
        "error",
        (err) => fail(midBody(err.message, (err as { code?: string }).code)),
      );
    },
    pull() {
      res.resume();
      wait();
    },
    cancel() {
      rest();
      settled = true;
      res.destroy();
    },
  }, { highWaterMark: 8 });
}
