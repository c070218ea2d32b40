/**
 * larder: a persistent, size-bounded, crash-safe object cache on local
 * disk for Deno, with its index in WebAssembly memory.
 *
 * Servers put fetched resources in it by URL and get them back across
 * restarts; it keeps itself under a byte limit by evicting what is least
 * used (NetSurf's backing store design, without its defects).
 *
 * @example
 * ```ts
 * import { BackingStore } from "./mod.ts";
 *
 * await using store = await BackingStore.open("./.cache", { limit: 256 * 2 ** 20 });
 * const url = "https://example.com/app.js";
 * await store.store(url, new TextEncoder().encode("console.log(1)"));
 * await store.store(url, new TextEncoder().encode('{"content-type":"text/javascript"}'), { meta: true });
 *
 * using body = await store.fetch(url);
 * using meta = await store.fetch(url, { meta: true });
 * console.log(new TextDecoder().decode(body?.data), store.stats().hits); // console.log(1) 1
 * ```
 *
 * @module
 */
export { BackingStore, MAX_ELEMENT_BYTES } from "./src/store.ts";
export type {
  ElementOptions,
  EntryHit,
  EntryReader,
  Hit,
  StoreStats,
} from "./src/store.ts";
export type { OpenOptions } from "./src/options.ts";
export type { Key } from "./src/key.ts";
export { MAX_KEY_BYTES } from "./src/index_memory.ts";
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
  Problem,
  ProblemCode,
  Repair,
} from "./src/check.ts";
