/**
 * An RFC 9111 caching reverse proxy on larder: a `Deno.serve` handler that
 * forwards to one origin and answers from a disk store what a shared cache
 * may, across restarts, within a byte limit.
 *
 * @example
 * ```ts
 * import { createProxy } from "@larder/larder/proxy";
 *
 * const dir = await Deno.makeTempDir();
 * const proxy = await createProxy({
 *   origin: "http://127.0.0.1:8000",
 *   dir,
 *   storeOptions: { limit: 2 ** 30 },
 * });
 * // Deno.serve({ hostname: "127.0.0.1", port: 8081 }, proxy.handler);
 * await proxy.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
export { createProxy } from "./proxy.ts";
export type { CacheStatus, Proxy, ProxyOptions, ServeInfo } from "./proxy.ts";
export { backingProxyStore } from "./proxy_store.ts";
export type { ProxyStore, RangedEntry } from "./proxy_store.ts";
