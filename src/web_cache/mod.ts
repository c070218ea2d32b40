/**
 * The Web Cache API (`CacheStorage`, `Cache`) on disk, bounded, on larder.
 *
 * @example
 * ```ts
 * import { openCacheStorage } from "@larder/larder/web-cache";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await using caches = await openCacheStorage(dir, { limit: 64 * 2 ** 20 });
 * const cache = await caches.open("v1");
 * await cache.put(new Request("https://example.com/"), new Response("hi"));
 * assert.equal(await (await cache.match("https://example.com/"))?.text(), "hi");
 * await caches.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
export { createCacheStorage, openCacheStorage } from "./cache.ts";
export type {
  CacheQueryOptions,
  CacheStorageOptions,
  LarderCache,
  LarderCacheStorage,
  MultiCacheQueryOptions,
  RequestLike,
} from "./cache.ts";
export { backingResponseStore } from "./response_store.ts";
export { BackingStore } from "../store.ts";
export type {
  BackingResponseStoreOptions,
  GetOptions,
  ResponseStore,
  StoredEntry,
} from "./response_store.ts";
export {
  decodeResponseRecord,
  encodeResponseRecord,
  MAX_RECORD_BYTES,
  RECORD_VERSION,
  RecordError,
  varyNames,
} from "../http/record.ts";
export type {
  HeaderPairs,
  RecordErrorCode,
  ResponseRecord,
} from "../http/record.ts";
