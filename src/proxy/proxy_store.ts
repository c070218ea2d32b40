/**
 * Where the caching proxy keeps responses: a {@linkcode ResponseStore}
 * (get, head, put, delete, close) plus `putHead`, which replaces a stored
 * response's head without rewriting its body (a 304's update, RFC 9111
 * §4.3.4). Small and asynchronous, so a remote tier can offer it too.
 *
 * Also the proxy's key scheme over it: a response without `Vary` lives
 * under its URL's primary key; a URL whose response has `Vary` gets a
 * small marker entry naming the fields and a generation, and each variant
 * lives under URL + generation + {@linkcode varyKey}. Invalidating a URL
 * drops the marker, so every variant of the old generation is unreachable
 * at once (eviction reclaims them) without listing them.
 *
 * @module
 */
import { varyKey } from "../http/policy.ts";
import {
  decodeResponseRecord,
  encodeResponseRecord,
  type ResponseRecord,
} from "../http/record.ts";
import type { BackingStore, StoreStats } from "../store.ts";
import {
  backingResponseStore,
  type ResponseStore,
  type StoredEntry,
} from "../web_cache/response_store.ts";

/** A {@linkcode ResponseStore} that can also replace a head alone. */
export interface ProxyStore extends ResponseStore {
  /**
   * Replaces the head (metadata) of `key`'s entry, keeping its body; does
   * nothing when there is no entry.
   */
  putHead(key: string, meta: Uint8Array): Promise<void>;
  /**
   * The store's counters and totals, for the status page and metrics
   * (optional: a store without them shows none).
   */
  stats?(): StoreStats;
}

/**
 * A {@linkcode ProxyStore} over a BackingStore.
 *
 * @param store The store; closed by the ProxyStore's `close()`.
 * @returns The ProxyStore.
 */
export function backingProxyStore(store: BackingStore): ProxyStore {
  const base = backingResponseStore(store);
  return {
    ...base,
    async putHead(key, meta) {
      // A head without its body would be served as an empty response.
      if (await base.head(key) === undefined) return;
      await store.store(key, meta, { meta: true });
    },
    stats: () => store.stats(),
  };
}

// FORMAT.md §12.4. No URL starts with "~", so these keys are verbatim.
const PRIMARY = "~px/r/";
const MARKER = "~px/v/";

interface VaryMarker {
  names: string[];
  gen: string;
}

/** A stored response found for a request, with the key it lives under. */
export interface Found {
  /** The key of the variant. */
  key: string;
  /** Its decoded record. */
  record: ResponseRecord;
  /** Its entry; the caller releases it (or reads its body to the end). */
  entry: StoredEntry;
}

/** The proxy's view of its store: responses by URL and request headers. */
export class ProxyCache {
  readonly #store: ProxyStore;

  /**
   * Wraps a store.
   *
   * @param store Where the entries live.
   */
  constructor(store: ProxyStore) {
    this.#store = store;
  }

  async #marker(url: string): Promise<VaryMarker | undefined> {
    const meta = await this.#store.head(MARKER + url);
    if (meta === undefined) return undefined;
    try {
      const m = JSON.parse(new TextDecoder().decode(meta));
      return Array.isArray(m?.names) && typeof m?.gen === "string"
        ? m
        : undefined;
    } catch {
      return undefined; // a damaged marker is a miss
    }
  }

  static #variantKey(
    url: string,
    marker: VaryMarker | undefined,
    request: Headers,
  ): string {
    if (marker === undefined) return PRIMARY + url;
    return `${PRIMARY}${url}\n${marker.gen}\n${varyKey(marker.names, request)}`;
  }

  /**
   * The stored response that `request`'s headers select for `url`, if any.
   *
   * @param url The target URI.
   * @param request The request's header fields.
   * @returns The entry with its record, or undefined.
   */
  async lookup(url: string, request: Headers): Promise<Found | undefined> {
    const key = ProxyCache.#variantKey(url, await this.#marker(url), request);
    const entry = await this.#store.get(key);
    if (entry === undefined) return undefined;
    let record: ResponseRecord;
    try {
      record = decodeResponseRecord(entry.meta);
    } catch {
      entry.release();
      return undefined; // an unreadable record is a miss
    }
    if (record.url !== url) {
      entry.release();
      return undefined;
    }
    return { key, record, entry };
  }

  /**
   * The key a response with `record.vary` to `request` is stored under,
   * writing or dropping the URL's Vary marker when the response's `Vary`
   * differs from it.
   *
   * @param record The record to store.
   * @param request The request's header fields.
   * @returns The key.
   */
  async keyFor(record: ResponseRecord, request: Headers): Promise<string> {
    const url = record.url;
    const old = await this.#marker(url);
    const names = [...record.vary].sort();
    if (names.length === 0) {
      if (old !== undefined) await this.#store.delete(MARKER + url);
      return PRIMARY + url;
    }
    let marker = old;
    if (old === undefined || old.names.join(",") !== names.join(",")) {
      marker = { names, gen: crypto.randomUUID() };
      await this.#store.put(
        MARKER + url,
        new TextEncoder().encode(JSON.stringify(marker)),
        new Uint8Array(0),
      );
      await this.#store.delete(PRIMARY + url);
    }
    return ProxyCache.#variantKey(url, marker, request);
  }

  /**
   * Stores a response: its record and the whole of `body`.
   *
   * @param key From {@linkcode keyFor}.
   * @param record The record.
   * @param body The body.
   */
  put(
    key: string,
    record: ResponseRecord,
    body: Uint8Array | ReadableStream<Uint8Array>,
  ): Promise<void> {
    return this.#store.put(key, encodeResponseRecord(record), body);
  }

  /**
   * Replaces a stored record, keeping the body.
   *
   * @param key The variant's key.
   * @param record The new record.
   */
  putHead(key: string, record: ResponseRecord): Promise<void> {
    return this.#store.putHead(key, encodeResponseRecord(record));
  }

  /**
   * Makes every stored response for `url` unreachable.
   *
   * @param url The URI.
   */
  async invalidate(url: string): Promise<void> {
    await this.#store.delete(MARKER + url);
    await this.#store.delete(PRIMARY + url);
  }

  /** Closes the store. */
  close(): Promise<void> {
    return this.#store.close();
  }
}
