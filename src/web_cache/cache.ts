/**
 * The Web Cache API (`CacheStorage`, `Cache`) on a larder store, following
 * the Service Workers specification's Cache algorithms: "query cache",
 * "request matches cached item" and "batch cache operations". How entries
 * are laid out in larder: FORMAT.md §12.
 *
 * Each cache's manifest (which entries it holds, in insertion order, with
 * the Vary data needed to match) is held in memory while the storage is
 * open and persisted in chunks of 256 entries; a match of a hit is one
 * lookup in that manifest, the Vary check, and one larder lookup that
 * returns the head and body together.
 *
 * @module
 */
import { BackingStore } from "../store.ts";
import type { OpenOptions } from "../options.ts";
import {
  decodeResponseRecord,
  encodeResponseRecord,
  type ResponseRecord,
  varyNames,
} from "../http/record.ts";
import {
  type CacheInfo,
  CHUNK_ENTRIES,
  decodeChunk,
  decodeRegistry,
  encodeChunk,
  encodeRegistry,
  type ManifestItem,
} from "./_manifest.ts";
import {
  backingResponseStore,
  readAll,
  type ResponseStore,
  type StoredEntry,
} from "./response_store.ts";

/** Options of {@linkcode openCacheStorage}: those of {@linkcode BackingStore.open}. */
export type CacheStorageOptions = OpenOptions;

/** The options of `Cache.match`, `matchAll`, `delete` and `keys`. */
export interface CacheQueryOptions {
  /** Ignore the URL's query when matching. */
  ignoreSearch?: boolean;
  /** Match requests whatever their method. */
  ignoreMethod?: boolean;
  /** Ignore the stored response's Vary header. */
  ignoreVary?: boolean;
}

/** The options of `CacheStorage.match`. */
export interface MultiCacheQueryOptions extends CacheQueryOptions {
  /** Look only in this cache. */
  cacheName?: string;
}

/** What the methods accept as a request. */
export type RequestLike = Request | string | URL;

const REGISTRY_KEY = "~wc/caches";
// The metadata of the registry and chunks, so a stray entry is recognised.
const MANIFEST_TAG = new TextEncoder().encode("larder-web-cache");
const EMPTY = new Uint8Array(0);
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

function itemKey(id: string, itemId: number): string {
  return `~wc/${id}/i/${itemId}`;
}

function chunkKey(id: string, chunk: number): string {
  return `~wc/${id}/m/${chunk}`;
}

function newCacheId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function withoutFragment(url: string): string {
  const at = url.indexOf("#");
  return at < 0 ? url : url.slice(0, at);
}

function withoutSearch(url: string): string {
  const u = new URL(url);
  u.hash = "";
  u.search = "";
  return u.href;
}

function isHttp(url: string): boolean {
  return url.startsWith("http:") || url.startsWith("https:");
}

/** A request as the algorithms see it. */
interface Query {
  method: string;
  url: string;
  headers: Headers;
}

function toRequest(request: RequestLike): Request {
  if (request instanceof Request) return request;
  return new Request(request);
}

/** "Request matches cached item" (the cached request is always GET). */
function matches(
  query: Query,
  item: ManifestItem,
  options: CacheQueryOptions | undefined,
): boolean {
  if (!options?.ignoreMethod && query.method !== "GET") return false;
  let queryUrl = withoutFragment(query.url);
  let cachedUrl = withoutFragment(item.url);
  if (options?.ignoreSearch) {
    queryUrl = withoutSearch(queryUrl);
    cachedUrl = withoutSearch(cachedUrl);
  }
  if (queryUrl !== cachedUrl) return false;
  if (item.vary === null || options?.ignoreVary) return true;
  for (const [name, value] of item.vary) {
    if (name === "*") return false;
    if (query.headers.get(name) !== value) return false;
  }
  return true;
}

/** One cache's manifest, in memory. */
class CacheState {
  readonly info: CacheInfo;
  /** Items by insertion order; the Map's order is that order. */
  readonly items = new Map<number, ManifestItem>();
  /** Items by URL without fragment, in insertion order. */
  readonly byUrl = new Map<string, ManifestItem[]>();
  /** Next item id and insertion order (one counter for both). */
  next: number;
  loaded: Promise<void> | undefined;

  constructor(info: CacheInfo) {
    this.info = info;
    this.next = info.nextChunk * CHUNK_ENTRIES;
  }

  add(item: ManifestItem): void {
    this.items.set(item.order, item);
    const key = withoutFragment(item.url);
    const list = this.byUrl.get(key);
    if (list === undefined) this.byUrl.set(key, [item]);
    else list.push(item);
  }

  remove(item: ManifestItem): void {
    this.items.delete(item.order);
    const key = withoutFragment(item.url);
    const list = this.byUrl.get(key);
    if (list === undefined) return;
    const rest = list.filter((i) => i !== item);
    if (rest.length === 0) this.byUrl.delete(key);
    else this.byUrl.set(key, rest);
  }

  /** "Query cache" over this cache's items (or `target`). */
  query(
    query: Query,
    options: CacheQueryOptions | undefined,
    target?: readonly ManifestItem[],
  ): ManifestItem[] {
    const candidates = target ??
      (options?.ignoreSearch
        ? [...this.items.values()]
        : this.byUrl.get(withoutFragment(query.url)) ?? []);
    return candidates.filter((item) => matches(query, item, options));
  }
}

/** A put prepared by writing its item: what the batch then commits. */
interface PreparedPut {
  request: Query;
  item: ManifestItem;
}

type Operation =
  | { type: "put"; put: PreparedPut }
  | { type: "delete"; request: Query; options: CacheQueryOptions | undefined };

/** The shared state of a storage: the store, the registry, the caches. */
class Storage {
  readonly store: ResponseStore;
  /** Caches by name, in creation order. */
  readonly caches = new Map<string, CacheState>();
  readonly pending = new Set<Promise<unknown>>();
  closed = false;

  constructor(store: ResponseStore, infos: CacheInfo[]) {
    this.store = store;
    for (const info of infos) this.caches.set(info.name, new CacheState(info));
  }

  checkOpen(action: string): void {
    if (this.closed) {
      throw new DOMException(
        `Cannot ${action}: the cache storage is closed`,
        "InvalidStateError",
      );
    }
  }

  /** Runs `work`, counted until settled so close() can wait for it. */
  track<T>(work: Promise<T>): Promise<T> {
    this.pending.add(work);
    const done = () => this.pending.delete(work);
    work.then(done, done);
    return work;
  }

  writeRegistry(): Promise<void> {
    const infos = [...this.caches.values()].map((s) => s.info);
    return this.store.put(REGISTRY_KEY, MANIFEST_TAG, encodeRegistry(infos));
  }

  writeChunk(state: CacheState, chunk: number): Promise<unknown> {
    const items: ManifestItem[] = [];
    for (let o = chunk * CHUNK_ENTRIES; o < (chunk + 1) * CHUNK_ENTRIES; o++) {
      const item = state.items.get(o);
      if (item !== undefined) items.push(item);
    }
    const key = chunkKey(state.info.id, chunk);
    if (items.length === 0) return this.store.delete(key);
    return this.store.put(key, MANIFEST_TAG, encodeChunk(items));
  }

  /** The whole body of one of the storage's own records, or undefined. */
  async small(key: string): Promise<Uint8Array | undefined> {
    const entry = await this.store.get(key);
    if (entry === undefined) return undefined;
    try {
      return entry.body instanceof Uint8Array
        ? entry.body
        : await readAll(entry.body);
    } finally {
      entry.release();
    }
  }

  load(state: CacheState): Promise<void> {
    state.loaded ??= (async () => {
      for (let chunk = 0; chunk < state.info.nextChunk; chunk++) {
        const key = chunkKey(state.info.id, chunk);
        const body = await this.small(key);
        if (body === undefined) continue;
        try {
          for (const item of decodeChunk(body, chunk)) state.add(item);
        } catch {
          // A damaged chunk loses its entries, as an evicted one does.
          await this.store.delete(key);
        }
      }
    })();
    // A failed load (an I/O error) is retried by the next call.
    state.loaded.catch(() => {
      state.loaded = undefined;
    });
    return state.loaded;
  }

  /**
   * "Batch cache operations": validates every operation and the duplicate
   * rule first, so a throw leaves the cache as it was, then applies them
   * and persists the changed manifest chunks. Returns the items removed.
   */
  async batch(
    state: CacheState,
    operations: Operation[],
  ): Promise<ManifestItem[]> {
    const added: ManifestItem[] = [];
    for (const op of operations) {
      const request = op.type === "put" ? op.put.request : op.request;
      const options = op.type === "put" ? undefined : op.options;
      if (state.query(request, options, added).length > 0) {
        throw new DOMException(
          "Cannot run cache batch: two operations match the same request",
          "InvalidStateError",
        );
      }
      if (op.type === "put") added.push(op.put.item);
    }
    const removed: ManifestItem[] = [];
    const dirty = new Set<number>();
    for (const op of operations) {
      const request = op.type === "put" ? op.put.request : op.request;
      const found = state.query(
        request,
        op.type === "put" ? undefined : op.options,
      );
      for (const item of found) {
        state.remove(item);
        removed.push(item);
        dirty.add(Math.floor(item.order / CHUNK_ENTRIES));
      }
      if (op.type === "put") {
        const item = op.put.item;
        item.order = state.next++;
        state.add(item);
        dirty.add(Math.floor(item.order / CHUNK_ENTRIES));
      }
    }
    let registryDirty = false;
    for (const chunk of dirty) {
      if (chunk >= state.info.nextChunk) {
        state.info.nextChunk = chunk + 1;
        registryDirty = true;
      }
    }
    // Issued in this order, so a crash leaves items the manifest does not
    // list (garbage, evicted in time), never a listed item not yet written.
    const writes: Promise<unknown>[] = [...dirty].map((c) =>
      this.writeChunk(state, c)
    );
    if (registryDirty && this.caches.get(state.info.name) === state) {
      writes.push(this.writeRegistry());
    }
    for (const item of removed) {
      writes.push(this.store.delete(itemKey(state.info.id, item.itemId)));
    }
    await Promise.all(writes);
    return removed;
  }

  /** Drops an item found missing (evicted) from the manifest. */
  forget(state: CacheState, item: ManifestItem): Promise<unknown> {
    if (state.items.get(item.order) !== item) return Promise.resolve();
    state.remove(item);
    return this.writeChunk(state, Math.floor(item.order / CHUNK_ENTRIES));
  }

  /** Writes a put's item (record and body) under a fresh id. */
  async prepare(
    state: CacheState,
    request: Request,
    response: Response,
    requestTime: number,
  ): Promise<PreparedPut> {
    const vary = varyNames(response.headers);
    const itemId = state.next++;
    const record: ResponseRecord = {
      requestTime,
      responseTime: Date.now(),
      seq: itemId,
      cacheName: state.info.name,
      method: request.method,
      url: request.url,
      requestHeaders: [...request.headers],
      status: response.status,
      statusText: response.statusText,
      responseUrl: response.url,
      responseHeaders: [...response.headers],
      vary,
    };
    const hasVary = response.headers.has("vary");
    const item: ManifestItem = {
      order: -1,
      itemId,
      url: request.url,
      vary: hasVary
        ? vary.map((name) => [name, request.headers.get(name)])
        : null,
    };
    let bodyError: unknown;
    let body: Uint8Array | ReadableStream<Uint8Array> = EMPTY;
    if (response.body !== null) {
      const reader = response.body.getReader();
      body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          try {
            const { done, value } = await reader.read();
            if (done) controller.close();
            else controller.enqueue(value);
          } catch (err) {
            bodyError = err;
            controller.error(err);
          }
        },
        cancel(reason) {
          return reader.cancel(reason);
        },
      });
    }
    const key = itemKey(state.info.id, itemId);
    try {
      await this.store.put(key, encodeResponseRecord(record), body);
    } catch (err) {
      await this.store.delete(key).catch(() => {});
      if (bodyError !== undefined) {
        throw new TypeError("Cannot put response: reading its body failed", {
          cause: bodyError,
        });
      }
      if (err instanceof RangeError) {
        throw new DOMException(
          `Cannot put response: ${err.message}`,
          "QuotaExceededError",
        );
      }
      throw err;
    }
    return {
      request: {
        method: request.method,
        url: request.url,
        headers: request.headers,
      },
      item,
    };
  }

  /** Deletes items written by prepare that were never committed. */
  async discard(state: CacheState, puts: PreparedPut[]): Promise<void> {
    await Promise.all(
      puts.map((p) =>
        this.store.delete(itemKey(state.info.id, p.item.itemId)).catch(() => {})
      ),
    );
  }

  /** The record of an item, without its body; undefined when it is gone. */
  async record(
    state: CacheState,
    item: ManifestItem,
  ): Promise<ResponseRecord | undefined> {
    const meta = await this.store.head(itemKey(state.info.id, item.itemId));
    const record = meta === undefined ? undefined : decodeOrUndefined(meta);
    if (record === undefined) await this.forget(state, item);
    return record;
  }
}

function decodeOrUndefined(bytes: Uint8Array): ResponseRecord | undefined {
  try {
    return decodeResponseRecord(bytes);
  } catch {
    return undefined;
  }
}

/** Ends an entry got but not handed out, and its body stream's pin. */
function discardEntry(entry: StoredEntry | undefined): void {
  if (entry === undefined) return;
  if (entry.body instanceof ReadableStream) entry.body.cancel().catch(() => {});
  entry.release();
}

function requestFrom(record: ResponseRecord): Request {
  return new Request(record.url, {
    method: record.method,
    headers: record.requestHeaders,
  });
}

/**
 * A Response built from a record. Deno cannot construct a Response with a
 * `url` or a `type` other than "default", so `url` (and `redirected`) are
 * set as own properties; `type` stays "default" (a browser says "basic" or
 * "cors").
 */
function responseFrom(record: ResponseRecord, entry: StoredEntry): Response {
  let body: BodyInit | null = entry.body as BodyInit;
  if (NULL_BODY_STATUS.has(record.status)) {
    if (entry.body instanceof ReadableStream) {
      entry.body.cancel().catch(() => {}); // ends its pin
    }
    entry.release();
    body = null;
  }
  const response = new Response(
    body,
    {
      status: record.status,
      statusText: record.statusText,
      headers: record.responseHeaders,
    },
  );
  if (record.responseUrl !== "") {
    Object.defineProperty(response, "url", {
      value: record.responseUrl,
      enumerable: true,
    });
  }
  return response;
}

function checkPutRequest(request: Request, action: string): void {
  if (!isHttp(request.url)) {
    throw new TypeError(
      `Cannot ${action}: the request URL is not http or https: ${request.url}`,
    );
  }
  if (request.method !== "GET") {
    throw new TypeError(
      `Cannot ${action}: the request method is ${request.method}, not GET`,
    );
  }
}

function checkPutResponse(response: Response, action: string): void {
  if (!(response instanceof Response)) {
    throw new TypeError(`Cannot ${action}: not a Response`);
  }
  if (response.type === "error") {
    throw new TypeError(`Cannot ${action}: the response is a network error`);
  }
  if (response.status === 206) {
    throw new TypeError(`Cannot ${action}: the response is partial (206)`);
  }
  if (varyNames(response.headers).includes("*")) {
    throw new TypeError(`Cannot ${action}: the response has Vary: *`);
  }
  if (response.bodyUsed || response.body?.locked) {
    throw new TypeError(
      `Cannot ${action}: the response body is already used or locked`,
    );
  }
}

/** The query request of match, matchAll, delete and keys, or null for none. */
function queryOf(request: RequestLike | undefined): Query | null {
  if (request === undefined) return null;
  const r = toRequest(request);
  return { method: r.method, url: r.url, headers: r.headers };
}

/** One named cache: the standard `Cache` interface, on disk. */
export interface LarderCache extends Cache {
  /** The first stored response matching `request`, or undefined. */
  match(
    request: RequestLike,
    options?: CacheQueryOptions,
  ): Promise<Response | undefined>;
  /** Every stored response matching `request` (all when undefined), in insertion order. */
  matchAll(
    request?: RequestLike,
    options?: CacheQueryOptions,
  ): Promise<readonly Response[]>;
  /** Fetches `request` and stores the response. */
  add(request: RequestLike): Promise<void>;
  /** Fetches every request and stores all the responses, or none. */
  addAll(requests: Iterable<RequestLike>): Promise<void>;
  /** Stores `response` for `request`. */
  put(request: RequestLike, response: Response): Promise<void>;
  /** Removes the stored responses matching `request`; true when any was removed. */
  delete(request: RequestLike, options?: CacheQueryOptions): Promise<boolean>;
  /** The stored requests matching `request` (all when undefined), in insertion order. */
  keys(
    request?: RequestLike,
    options?: CacheQueryOptions,
  ): Promise<readonly Request[]>;
}

/** The standard `CacheStorage` on a larder store, plus `close()`. */
export interface LarderCacheStorage extends CacheStorage, AsyncDisposable {
  /** Opens the cache named `cacheName`, creating it when there is none. */
  open(cacheName: string): Promise<LarderCache>;
  /** Whether a cache named `cacheName` exists. */
  has(cacheName: string): Promise<boolean>;
  /** Deletes the cache named `cacheName`, freeing its storage; true when it existed. */
  delete(cacheName: string): Promise<boolean>;
  /** The cache names, in creation order. */
  keys(): Promise<string[]>;
  /** The first match in any cache, in creation order (or in `options.cacheName`). */
  match(
    request: RequestLike,
    options?: MultiCacheQueryOptions,
  ): Promise<Response | undefined>;
  /** Waits for writes in progress, then closes the store (idempotent). */
  close(): Promise<void>;
}

/**
 * One named cache: the standard `Cache` interface, on disk. `keys()` reads
 * no bodies; a matched body streams from the store as it is consumed.
 *
 * @example
 * ```ts
 * import { openCacheStorage } from "@larder/larder";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await using caches = await openCacheStorage(dir);
 * const cache = await caches.open("v1");
 * await cache.put("https://example.com/a?x=1", new Response("a"));
 * const hit = await cache.match("https://example.com/a", { ignoreSearch: true });
 * assert.equal(await hit?.text(), "a");
 * assert.deepEqual((await cache.keys()).map((r) => r.url), ["https://example.com/a?x=1"]);
 * await caches.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
class CacheImpl implements LarderCache {
  readonly #storage: Storage;
  readonly #state: CacheState;

  constructor(storage: Storage, state: CacheState) {
    this.#storage = storage;
    this.#state = state;
  }

  async #ready(action: string): Promise<void> {
    this.#storage.checkOpen(action);
    await this.#storage.load(this.#state);
    this.#storage.checkOpen(action);
  }

  /**
   * The first stored response matching `request`, or undefined.
   *
   * @param request What to look for.
   * @param options `ignoreSearch`, `ignoreMethod`, `ignoreVary`.
   * @returns A Response whose body streams from the store; its pin on the
   *   entry ends when the body is read, cancelled or collected.
   */
  async match(
    request: RequestLike,
    options?: CacheQueryOptions,
  ): Promise<Response | undefined> {
    const query = queryOf(request);
    if (query === null) return undefined;
    await this.#ready("match");
    if (query.method !== "GET" && !options?.ignoreMethod) return undefined;
    const storage = this.#storage;
    const state = this.#state;
    for (const item of state.query(query, options)) {
      const entry = await storage.store.get(
        itemKey(state.info.id, item.itemId),
      );
      const record = entry === undefined
        ? undefined
        : decodeOrUndefined(entry.meta);
      if (entry === undefined || record === undefined) {
        discardEntry(entry);
        await storage.forget(state, item);
        continue;
      }
      return responseFrom(record, entry);
    }
    return undefined;
  }

  /**
   * Every stored response matching `request` (every one when undefined),
   * in insertion order. Each body is pinned when matched (it reads as it
   * was even if the entry is replaced meanwhile) and is read, verified,
   * only as it is consumed: matching loads no body. A body damaged on disk
   * errors its stream with `CORRUPT`.
   *
   * @param request What to look for, or undefined for all.
   * @param options `ignoreSearch`, `ignoreMethod`, `ignoreVary`.
   * @returns The responses.
   */
  async matchAll(
    request?: RequestLike,
    options?: CacheQueryOptions,
  ): Promise<readonly Response[]> {
    const query = queryOf(request);
    await this.#ready("match all");
    if (query !== null && query.method !== "GET" && !options?.ignoreMethod) {
      return Object.freeze([]);
    }
    const state = this.#state;
    const items = query === null
      ? [...state.items.values()]
      : state.query(query, options);
    // Each body is pinned now, unread, so it reads as matched even if the
    // entry is replaced or deleted before it is consumed, and no body is
    // read until it is.
    const found = await Promise.allSettled(
      items.map((item) =>
        this.#storage.store.get(itemKey(state.info.id, item.itemId), {
          deferBody: true,
        })
      ),
    );
    const failed = found.find((f) => f.status === "rejected");
    if (failed !== undefined) {
      for (const f of found) {
        if (f.status === "fulfilled") discardEntry(f.value);
      }
      throw failed.reason;
    }
    const responses: Response[] = [];
    for (let i = 0; i < items.length; i++) {
      const entry =
        (found[i] as PromiseFulfilledResult<StoredEntry | undefined>).value;
      const record = entry === undefined
        ? undefined
        : decodeOrUndefined(entry.meta);
      if (entry === undefined || record === undefined) {
        discardEntry(entry);
        await this.#storage.forget(state, items[i]!);
        continue;
      }
      responses.push(responseFrom(record, entry));
    }
    return Object.freeze(responses);
  }

  /** Records of the matching items (all when query is null), in order; no bodies read. */
  async #records(
    query: Query | null,
    options: CacheQueryOptions | undefined,
  ): Promise<{ item: ManifestItem; record: ResponseRecord }[]> {
    const state = this.#state;
    const items = query === null
      ? [...state.items.values()]
      : state.query(query, options);
    const records = await Promise.all(
      items.map((item) => this.#storage.record(state, item)),
    );
    const out: { item: ManifestItem; record: ResponseRecord }[] = [];
    items.forEach((item, i) => {
      const record = records[i];
      if (record !== undefined) out.push({ item, record });
    });
    return out;
  }

  /**
   * Fetches `request` and stores the response (`addAll` of one).
   *
   * @param request What to fetch.
   */
  add(request: RequestLike): Promise<void> {
    return this.addAll([request]);
  }

  /**
   * Fetches every request and stores all the responses, or none: a failed
   * fetch, a response that is not ok (or is 206, or has `Vary: *`), or two
   * requests matching each other (`InvalidStateError`) store nothing.
   *
   * @param requests What to fetch.
   */
  addAll(requests: Iterable<RequestLike>): Promise<void> {
    return this.#storage.track(this.#addAll(requests));
  }

  async #addAll(requests: Iterable<RequestLike>): Promise<void> {
    const list = [...requests].map((r) => {
      const request = new Request(r);
      checkPutRequest(request, "add request");
      return request;
    });
    await this.#ready("add requests");
    const abort = new AbortController();
    const storage = this.#storage;
    const state = this.#state;
    const prepared: PreparedPut[] = [];
    try {
      const fetched = await Promise.all(list.map(async (request) => {
        const requestTime = Date.now();
        let response: Response;
        try {
          response = await fetch(request, { signal: abort.signal });
        } catch (err) {
          throw new TypeError(
            `Cannot add request: fetching ${request.url} failed`,
            { cause: err },
          );
        }
        if (!response.ok || response.status === 206) {
          await response.body?.cancel();
          throw new TypeError(
            `Cannot add request: ${request.url} answered ${response.status}`,
          );
        }
        if (varyNames(response.headers).includes("*")) {
          await response.body?.cancel();
          throw new TypeError(
            `Cannot add request: ${request.url} answered with Vary: *`,
          );
        }
        return { request, response, requestTime };
      }));
      for (const { request, response, requestTime } of fetched) {
        prepared.push(
          await storage.prepare(state, request, response, requestTime),
        );
      }
      storage.checkOpen("add requests");
      const removed = await storage.batch(
        state,
        prepared.map((put) => ({ type: "put", put })),
      );
      void removed;
    } catch (err) {
      abort.abort();
      await storage.discard(state, prepared);
      throw err;
    }
  }

  /**
   * Stores `response` for `request`, replacing the stored responses the
   * request matches (under their Vary). The body streams into the store;
   * the entry changes once it has ended, and a body that errors part-way
   * stores nothing and leaves the old entry.
   *
   * @param request A GET request for an http or https URL.
   * @param response Not partial (206), not `Vary: *`, body unused.
   * @throws {TypeError} for a request or response the spec refuses.
   */
  put(request: RequestLike, response: Response): Promise<void> {
    return this.#storage.track(this.#put(request, response));
  }

  async #put(request: RequestLike, response: Response): Promise<void> {
    const r = toRequest(request);
    checkPutRequest(r, "put response");
    checkPutResponse(response, "put response");
    await this.#ready("put response");
    const storage = this.#storage;
    const state = this.#state;
    await (async () => {
      const put = await storage.prepare(state, r, response, Date.now());
      try {
        storage.checkOpen("put response");
        await storage.batch(state, [{ type: "put", put }]);
      } catch (err) {
        await storage.discard(state, [put]);
        throw err;
      }
    })();
  }

  /**
   * Removes the stored responses matching `request`.
   *
   * @param request What to remove.
   * @param options `ignoreSearch`, `ignoreMethod`, `ignoreVary`.
   * @returns True when something was removed.
   */
  delete(request: RequestLike, options?: CacheQueryOptions): Promise<boolean> {
    return this.#storage.track(this.#delete(request, options));
  }

  async #delete(
    request: RequestLike,
    options: CacheQueryOptions | undefined,
  ): Promise<boolean> {
    const query = queryOf(request);
    if (query === null) return false;
    if (query.method !== "GET" && !options?.ignoreMethod) return false;
    await this.#ready("delete response");
    const removed = await this.#storage.batch(this.#state, [
      { type: "delete", request: query, options },
    ]);
    return removed.length > 0;
  }

  /**
   * The stored requests matching `request` (every one when undefined), in
   * insertion order, with the headers they were stored with.
   *
   * @param request What to look for, or undefined for all.
   * @param options `ignoreSearch`, `ignoreMethod`, `ignoreVary`.
   * @returns The requests.
   */
  async keys(
    request?: RequestLike,
    options?: CacheQueryOptions,
  ): Promise<readonly Request[]> {
    const query = queryOf(request);
    await this.#ready("list keys");
    if (query !== null && query.method !== "GET" && !options?.ignoreMethod) {
      return Object.freeze([]);
    }
    const records = await this.#records(query, options);
    return Object.freeze(records.map(({ record }) => requestFrom(record)));
  }
}

/**
 * The standard `CacheStorage` on a larder store, plus `close()` and
 * `Symbol.asyncDispose`.
 *
 * @example
 * ```ts
 * import { openCacheStorage } from "@larder/larder";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const caches = await openCacheStorage(dir, { limit: 64 * 2 ** 20 });
 * await (await caches.open("v1")).put("https://example.com/", new Response("hello"));
 * assert.deepEqual(await caches.keys(), ["v1"]);
 * assert.equal(await (await caches.match("https://example.com/"))?.text(), "hello");
 * await caches.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
class StorageImpl implements LarderCacheStorage {
  readonly #storage: Storage;

  constructor(storage: Storage) {
    this.#storage = storage;
  }

  /**
   * Opens the cache named `cacheName`, creating it when there is none.
   *
   * @param cacheName The cache's name.
   * @returns The cache.
   */
  async open(cacheName: string): Promise<LarderCache> {
    const storage = this.#storage;
    storage.checkOpen("open cache");
    const name = String(cacheName);
    let state = storage.caches.get(name);
    if (state === undefined) {
      state = new CacheState({ name, id: newCacheId(), nextChunk: 0 });
      state.loaded = Promise.resolve();
      storage.caches.set(name, state);
      await storage.track(storage.writeRegistry());
    }
    return new CacheImpl(storage, state);
  }

  /**
   * Whether a cache named `cacheName` exists.
   *
   * @param cacheName The cache's name.
   * @returns True when it exists.
   */
  has(cacheName: string): Promise<boolean> {
    this.#storage.checkOpen("look up cache");
    return Promise.resolve(this.#storage.caches.has(String(cacheName)));
  }

  /**
   * Deletes the cache named `cacheName` and frees its entries' storage.
   * Cache objects opened on it keep working on their own, unlisted copy.
   *
   * @param cacheName The cache's name.
   * @returns True when it existed.
   */
  async delete(cacheName: string): Promise<boolean> {
    const storage = this.#storage;
    storage.checkOpen("delete cache");
    const name = String(cacheName);
    const state = storage.caches.get(name);
    if (state === undefined) return false;
    storage.caches.delete(name);
    await storage.track((async () => {
      await storage.writeRegistry();
      await storage.load(state);
      const id = state.info.id;
      const removals: Promise<unknown>[] = [];
      for (const item of state.items.values()) {
        removals.push(storage.store.delete(itemKey(id, item.itemId)));
      }
      for (let c = 0; c < state.info.nextChunk; c++) {
        removals.push(storage.store.delete(chunkKey(id, c)));
      }
      await Promise.all(removals);
    })());
    return true;
  }

  /**
   * The cache names, in creation order.
   *
   * @returns The names.
   */
  keys(): Promise<string[]> {
    this.#storage.checkOpen("list caches");
    return Promise.resolve([...this.#storage.caches.keys()]);
  }

  /**
   * The first match in any cache, in creation order (or only in
   * `options.cacheName`).
   *
   * @param request What to look for.
   * @param options `cacheName` and the {@linkcode CacheQueryOptions}.
   * @returns A Response, or undefined.
   */
  async match(
    request: RequestLike,
    options?: MultiCacheQueryOptions,
  ): Promise<Response | undefined> {
    const storage = this.#storage;
    storage.checkOpen("match");
    if (options?.cacheName !== undefined) {
      const state = storage.caches.get(options.cacheName);
      if (state === undefined) return undefined;
      return await new CacheImpl(storage, state).match(request, options);
    }
    for (const state of [...storage.caches.values()]) {
      const hit = await new CacheImpl(storage, state).match(request, options);
      if (hit !== undefined) return hit;
    }
    return undefined;
  }

  /** Waits for writes in progress, then closes the store (idempotent). */
  async close(): Promise<void> {
    const storage = this.#storage;
    if (storage.closed) return;
    while (storage.pending.size > 0) {
      await Promise.allSettled([...storage.pending]);
    }
    if (storage.closed) return;
    storage.closed = true;
    await storage.store.close();
  }

  /** Same as {@linkcode LarderCacheStorage.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * A CacheStorage kept in a {@linkcode ResponseStore} (for another tier
 * behind the same interface).
 *
 * @param store Where entries go; closed by `close()`.
 * @returns The storage.
 */
export async function createCacheStorage(
  store: ResponseStore,
): Promise<LarderCacheStorage> {
  let infos: CacheInfo[] = [];
  const registry = await new Storage(store, []).small(REGISTRY_KEY);
  if (registry !== undefined) {
    try {
      infos = decodeRegistry(registry);
    } catch {
      // A damaged registry is an empty storage; old entries are evicted in time.
      infos = [];
    }
  }
  return new StorageImpl(new Storage(store, infos));
}

/**
 * Opens (or creates) a persistent, size-bounded CacheStorage in `dir`.
 *
 * @param dir The store directory (several caches share it).
 * @param options {@linkcode BackingStore.open} options, `limit` above all.
 * @returns The storage; `close()` it (or `await using`).
 *
 * @example
 * ```ts
 * import { openCacheStorage } from "@larder/larder";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * {
 *   await using caches = await openCacheStorage(dir, { limit: 64 * 2 ** 20 });
 *   const cache = await caches.open("v1");
 *   await cache.put(new Request("https://example.com/a"), new Response("a"));
 * }
 * await using again = await openCacheStorage(dir);
 * const hit = await (await again.open("v1")).match("https://example.com/a");
 * assert.equal(await hit?.text(), "a");
 * await again.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function openCacheStorage(
  dir: string | URL,
  options?: CacheStorageOptions,
): Promise<LarderCacheStorage> {
  const store = await BackingStore.open(dir, options);
  try {
    return await createCacheStorage(backingResponseStore(store));
  } catch (err) {
    await store.close();
    throw err;
  }
}
