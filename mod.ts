/**
 * larder: a persistent, size-bounded, crash-safe object cache on local
 * disk for Deno, with its index in WebAssembly memory.
 *
 * Servers put fetched resources in it by URL and get them back across
 * restarts; it keeps itself under a byte limit by evicting what is least
 * used (NetSurf's backing store design, without its defects).
 *
 * @example Store a response, fetch it after a restart
 * ```ts
 * import { BackingStore } from "@larder/larder";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const store = await BackingStore.open(dir, { limit: 256 * 2 ** 20 });
 * const url = "https://example.com/app.js";
 * const body = new TextEncoder().encode("console.log(1)");
 * const headers = new TextEncoder().encode('{"content-type":"text/javascript"}');
 * await store.storeEntry(url, body, headers); // one entry: data and metadata
 * await store.close();
 *
 * // After a restart: the same bytes, from disk.
 * const again = await BackingStore.open(dir);
 * using hit = await again.fetchEntry(url);
 * assert.equal(new TextDecoder().decode(hit?.data), "console.log(1)");
 * assert.deepEqual(hit?.meta, headers);
 * assert.equal(again.stats().hits, 2); // one per element
 * await again.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
export { BackingStore, MAX_ELEMENT_BYTES } from "./src/store.ts";
export type {
  ElementOptions,
  EntryHit,
  EntryRead,
  EntryReader,
  Hit,
  OpenEntryOptions,
  StoreStats,
} from "./src/store.ts";
export type { OpenOptions } from "./src/options.ts";
export type { HashName } from "./src/format.ts";
export type { Key } from "./src/key.ts";
export { MAX_KEY_BYTES } from "./src/index_memory.ts";
export { ATTR_LIMITS, type AttrValue } from "./src/_attrs.ts";
export type { DedupOptions, DedupResult } from "./src/_dedup.ts";
export {
  ClosedError,
  CorruptError,
  IOError,
  LockedError,
  NoSpaceError,
  NotAStoreError,
  OptionMismatchError,
  ReplacedError,
  StoreError,
  VersionMismatchError,
} from "./src/errors.ts";
export type { StoreErrorCode } from "./src/errors.ts";
export { checkStore, PROBLEM_CODES } from "./src/check.ts";
export type {
  CheckOptions,
  CheckProgress,
  CheckReport,
  CheckStats,
  Problem,
  ProblemCode,
  Repair,
  RepairAction,
  Severity,
  SlotStats,
  StoreInfo,
} from "./src/check.ts";
export * from "./src/web_cache/mod.ts";
