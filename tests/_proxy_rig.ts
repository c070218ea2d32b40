// The test rig of the caching proxy: an origin and the proxy, both
// Deno.serve servers on 127.0.0.1, requests over the loopback.
import { createProxy, type Proxy } from "../src/proxy/mod.ts";
import type { ProxyOptions } from "../src/proxy/proxy.ts";
import { backingProxyStore } from "../src/proxy/proxy_store.ts";
import { BackingStore } from "../src/store.ts";
import { tempDir } from "./_helpers.ts";

/** Answers the origin's requests; `n` counts them, this one included. */
export type OriginHandler = (
  req: Request,
  n: number,
) => Response | Promise<Response>;

export interface Rig {
  /** Requests the origin has seen, as `METHOD /path`. */
  seen: string[];
  /** The origin's last request headers. */
  lastHeaders: Headers;
  /** GETs the proxy over HTTP. */
  get(path: string, init?: RequestInit): Promise<Response>;
  /** The body bytes the proxy's handler returns, undecoded. */
  raw(path: string, acceptEncoding: string): Promise<Uint8Array>;
  /** Reopens the proxy on the same directory. */
  restart(): Promise<void>;
  /** The store the proxy runs on now (its `stats()`). */
  store: BackingStore;
  /** The proxy running now. */
  proxy: Proxy;
  proxyUrl: string;
  /** The origin's URL, `http://127.0.0.1:port`. */
  originUrl: string;
  dir: string;
}

/**
 * Runs `fn` against a proxy (on a store in a temp dir, limit 256 MiB
 * unless `extra.storeOptions` says otherwise) in front of an origin that
 * answers with `originHandler`; stops both and removes the dir after.
 */
export async function withRig(
  originHandler: OriginHandler,
  fn: (rig: Rig) => Promise<void>,
  extra: Partial<ProxyOptions> = {},
): Promise<void> {
  await using dir = await tempDir();
  const seen: string[] = [];
  let lastHeaders = new Headers();
  const origin = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => {
      seen.push(`${req.method} ${new URL(req.url).pathname}`);
      lastHeaders = req.headers;
      return originHandler(req, seen.length);
    },
  );
  let store!: BackingStore;
  const open = async () => {
    store = await BackingStore.open(dir.path, {
      limit: 256 * 2 ** 20,
      ...extra.storeOptions,
    });
    return await createProxy({
      origin: `http://127.0.0.1:${origin.addr.port}`,
      ...extra,
      store: backingProxyStore(store),
    });
  };
  let proxy: Proxy = await open();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req, info) => proxy.handler(req, info),
  );
  const proxyUrl = `http://127.0.0.1:${server.addr.port}`;
  const rig: Rig = {
    seen,
    get lastHeaders() {
      return lastHeaders;
    },
    get store() {
      return store;
    },
    get proxy() {
      return proxy;
    },
    get: (path, init) => fetch(proxyUrl + path, init),
    async raw(path, acceptEncoding) {
      const res = await proxy.handler(
        new Request(proxyUrl + path, {
          headers: { "accept-encoding": acceptEncoding },
        }),
      );
      return new Uint8Array(await res.arrayBuffer());
    },
    async restart() {
      await proxy.close();
      proxy = await open();
    },
    proxyUrl,
    originUrl: `http://127.0.0.1:${origin.addr.port}`,
    dir: dir.path,
  };
  try {
    await fn(rig);
  } finally {
    await server.shutdown();
    await proxy.close();
    await origin.shutdown();
  }
}

/** How many of the origin's requests were `what` (`METHOD /path`). */
export const count = (rig: Rig, what: string): number =>
  rig.seen.filter((s) => s === what).length;
