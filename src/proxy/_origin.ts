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

/** A keep-alive connection pool for one origin. */
export class OriginClient {
  readonly #agent: http.Agent;
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
    this.#request = secure ? https.request : http.request;
  }

  /**
   * Sends one request; resolves with the response head, its body streamed.
   *
   * @param url The target.
   * @param init Method, header fields, body, an abort signal that ends
   *   the exchange, and how long the connection may be idle (before or
   *   during the body) before it is cut.
   * @returns The response.
   */
  send(url: URL, init: {
    method: string;
    headers: Headers;
    body: ReadableStream<Uint8Array> | null;
    signal: AbortSignal;
    idleMs: number;
  }): Promise<Response> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = {};
      for (const [name, value] of init.headers) headers[name] = value;
      const req = this.#request(url, {
        method: init.method,
        headers,
        agent: this.#agent,
      });
      // An origin that stops sending mid-body must not hang the client.
      req.setTimeout(init.idleMs, () => {
        req.destroy(
          new Error(
            `Cannot read origin response: nothing for ${init.idleMs} ms`,
          ),
        );
      });
      const abort = () => req.destroy(init.signal.reason);
      if (init.signal.aborted) abort();
      init.signal.addEventListener("abort", abort, { once: true });
      req.on("error", (err) => {
        init.signal.removeEventListener("abort", abort);
        reject(err);
      });
      req.on("response", (res) => {
        init.signal.removeEventListener("abort", abort);
        const h = new Headers();
        const raw = res.rawHeaders;
        for (let i = 0; i + 1 < raw.length; i += 2) {
          h.append(raw[i]!, raw[i + 1]!);
        }
        const status = res.statusCode ?? 502;
        if (NO_CONTENT.has(status) || init.method === "HEAD") {
          res.resume();
          resolve(
            new Response(null, {
              status,
              statusText: res.statusMessage,
              headers: h,
            }),
          );
          return;
        }
        let settled = false;
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            res.on("data", (chunk: Uint8Array) => {
              if (settled) return;
              controller.enqueue(
                new Uint8Array(
                  chunk.buffer,
                  chunk.byteOffset,
                  chunk.byteLength,
                ),
              );
              if ((controller.desiredSize ?? 0) <= 0) res.pause();
            });
            res.on("end", () => {
              if (settled) return;
              settled = true;
              controller.close();
            });
            res.on("close", () => {
              if (settled) return;
              settled = true;
              controller.error(
                new Error(
                  "Cannot read origin response: connection closed mid-body",
                ),
              );
            });
            res.on("error", (err) => {
              if (settled) return;
              settled = true;
              controller.error(err);
            });
          },
          pull() {
            res.resume();
          },
          cancel() {
            settled = true;
            res.destroy();
          },
        }, { highWaterMark: 8 });
        resolve(
          new Response(body, {
            status,
            statusText: res.statusMessage,
            headers: h,
          }),
        );
      });
      if (init.body === null) {
        req.end();
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
        } catch (err) {
          req.destroy(err as Error);
        }
      })();
    });
  }

  /** Closes the pooled connections. */
  close(): void {
    this.#agent.destroy();
  }
}
