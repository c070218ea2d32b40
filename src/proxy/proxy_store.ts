/**
 * Where the caching proxy keeps responses: a {@linkcode ResponseStore}
 * (get, head, put, delete, close) plus `putHead`, which replaces a stored
 * response's head without rewriting its body (a 304's update, RFC 9111
 * §4.3.4) while the entry still holds the head it was read with. Small and asynchronous, so a remote tier can offer it too.
 *
 * Also the proxy's key scheme over it: a response without `Vary` lives
 * under its URL's primary key; a URL whose response has `Vary` gets a
 * small marker entry naming the fields and a generation, and each variant
 * lives under URL + generation + {@linkcode varyKey}. A lookup reads the
 * URL's primary key first and the marker only when that is missing, so
 * the primary entry is deleted before a marker is written (and whenever
 * a variant is stored). Invalidating a URL
 * drops the marker, so every variant of the old generation is unreachable
 * at once (eviction reclaims them) without listing them.
 *
 * @module
 */
import {
  type PolicyOptions,
  type PreparedHead,
  prepareHead,
  type StoredHead,
  varyKey,
} from "../http/policy.ts";
import {
  decodeResponseRecord,
  encodeResponseRecord,
  type ResponseRecord,
} from "../http/record.ts";
import type { BackingStore, StoreStats } from "../store.ts";
import {
  backingResponseStore,
  releasingStream,
  type ResponseStore,
  type StoredEntry,
} from "../web_cache/response_store.ts";
import { sameBytes } from "../_bytes.ts";

/** Bodies up to this length are read whole (the largest slot element). */
const WHOLE_BODY = 2 * 2 ** 20;

/** An entry opened for byte-range reads: its head, its body unread. */
export interface RangedEntry {
  /** The metadata element (a response record). */
  readonly meta: Uint8Array;
  /** The body's length in bytes. */
  readonly size: number;
  /**
   * The body bytes `[start, end)` as a stream, read (and verified) as it
   * is consumed; the entry is released when the stream ends, errors or is
   * cancelled. Call it at most once.
   *
   * @param start First byte, 0 ≤ start ≤ end.
   * @param end Byte after the last, ≤ size.
   */
  stream(start: number, end: number): ReadableStream<Uint8Array>;
  /** Ends the reference that keeps the entry's storage (idempotent). */
  release(): void;
}

/**
 * A {@linkcode ResponseStore} that can also replace a head alone. A body
 * `get` returns as bytes may be the store's own (shared with other
 * lookups): the proxy reads it and never writes into it.
 */
export interface ProxyStore extends ResponseStore {
  /**
   * Replaces the head (metadata) of `key`'s entry with `meta`, keeping its
   * body, only while the entry still holds the head `expected` (and so the
   * body stored with it: every `put` writes a head with its body), checked
   * and written as one step no other call can come between; does nothing
   * when the entry is missing, has no body or holds another head.
   *
   * @returns Whether `meta` was stored.
   */
  putHead(
    key: string,
    meta: Uint8Array,
    expected: Uint8Array,
  ): Promise<boolean>;
  /**
   * The entry under `key` with its body unread, to read in byte ranges
   * (`Range` requests read only the bytes they ask for); undefined when
   * there is none. Optional: over a store without it the proxy answers a
   * `Range` from a body `get` returns as bytes (over a BackingStore, one
   * of at most 2 MiB) and with a full 200 from a streamed one.
   */
  getRanged?(key: string): Promise<RangedEntry | undefined>;
  /**
   * `key`'s entry handed to `use` in the same turn, as `get` would give
   * it, except that a body given as bytes, and the entry's `meta`, are
   * valid only while `use` runs (the store may reuse their memory for its
   * next read): `use` copies what it keeps. A stream body is the
   * caller's, as from `get`. Optional, for stores that read without
   * waiting.
   *
   * @returns `use`'s result; null when there is no entry (`use` is not
   *   called); undefined when the entry cannot be handed over at once
   *   (ask `get`).
   */
  getNow?<T>(key: string, use: (entry: StoredEntry) => T): T | null | undefined;
  /**
   * The store's counters and totals, for the status page and metrics
   * (optional: a store without them shows none).
   */
  stats?(): StoreStats;
  /**
   * Resolves when the store answers, rejects with its error when it does
   * not (closed, directory gone), counting no lookup: `/_larder/health`
   * asks it, and must not show in the hit and miss counters. Optional: over
   * a store without it health looks up a key no one stores.
   */
  ping?(): Promise<void>;
}

/**
 * A key no one stores (FORMAT.md §12.4's `~px/` namespace) that `ping`
 * asks an attribute of: the store checks it is open and its directory is
 * still its own (every 64th call) and reads no element.
 */
const PING_KEY = "~px/health";

/**
 * A {@linkcode ProxyStore} over a BackingStore.
 *
 * @param store The store; closed by the ProxyStore's `close()`.
 * @returns The ProxyStore.
 */
export function backingProxyStore(store: BackingStore): ProxyStore {
  // Bodies held in slots (FORMAT.md §6.2: at most 2 MiB) are read and
  // verified whole by openEntry anyway: handed to Deno.serve as bytes, not
  // chunked through two streams. Large files still stream chunk by chunk.
  const base = backingResponseStore(store, { wholeBodyBytes: WHOLE_BODY });
  return {
    ...base,
    // A slot body as the store's verified bytes, shared (the proxy never
    // writes into a body: a Response copies it), with no reader to make
    // and release: `readEntry`. A large file's stream is read in chunks.
    async get(key, options) {
      if (options?.deferBody === true) return await base.get(key, options);
      const got = await store.readEntry(key);
      if (got === undefined) return undefined;
      const { meta, reader } = got;
      if (reader === undefined) {
        return meta === undefined
          ? undefined
          : { meta, body: got.data, release() {} };
      }
      let handed = false;
      try {
        if (meta === undefined) return undefined;
        if (reader.size <= WHOLE_BODY) {
          return {
            meta,
            body: await reader.read(0, reader.size),
            release() {},
          };
        }
        handed = true;
        return {
          meta,
          body: releasingStream(reader, () => reader.stream()),
          size: reader.size,
          release: reader.release,
        };
      } finally {
        if (!handed) reader.release();
      }
    },
    // `get`'s entry, in the same turn: a slot body as the bytes of the
    // read itself, which go back to the store's read buffers afterwards
    // (`useEntry`), so a hit answered at once allocates none.
    getNow(key, use) {
      let later = false;
      const got = store.useEntry(key, (got) => {
        const { meta, reader } = got;
        if (reader === undefined) {
          return meta === undefined
            ? null
            : use({ meta, body: got.data, release() {} });
        }
        if (meta === undefined || reader.size <= WHOLE_BODY) {
          // Read whole by `get`, which waits for it.
          reader.release();
          later = meta !== undefined;
          return null;
        }
        let handed = false;
        try {
          const out = use({
            meta,
            body: releasingStream(reader, () => reader.stream()),
            size: reader.size,
            release: reader.release,
          });
          handed = true;
          return out;
        } finally {
          if (!handed) reader.release();
        }
      });
      return later ? undefined : got ?? null;
    },
    // Conditional: a body stored since the head `expected` was read came
    // with its own head, which a revalidation of the old one must not
    // replace (and a head without its body would be served empty).
    putHead: (key, meta, expected) => store.replaceMeta(key, meta, expected),
    async getRanged(key) {
      // Deferred: a slot element is read whole, and a large file's chunks
      // one by one, only when the stream asks (FORMAT.md §6.2).
      const reader = await store.openEntry(key, { defer: true });
      if (reader === undefined) return undefined;
      if (reader.meta === undefined) {
        reader.release();
        return undefined;
      }
      return {
        meta: reader.meta.slice(), // shared with other references
        size: reader.size,
        stream: (start, end) =>
          releasingStream(reader, () => reader.stream(start, end)),
        release: reader.release,
      };
    },
    stats: () => store.stats(),
    // An attribute lookup: it counts no hit or miss (StoreStats counts
    // element fetches).
    ping: async () => void await store.getAttr(PING_KEY, "ping"),
  };
}

// FORMAT.md §12.4. No URL starts with "~", so these keys are verbatim.
const PRIMARY = "~px/r/";
const MARKER = "~px/v/";

interface VaryMarker {
  names: string[];
  gen: string;
}

/**
 * What a head's update needs of a lookup's find: the key, the record and
 * the record's bytes as read (a {@linkcode Found} is one).
 */
export interface HeadOf {
  /** The key of the variant. */
  key: string;
  /** Its decoded record (shared: never modify it). */
  record: ResponseRecord;
  /** The entry's record bytes as read. */
  entry: { readonly meta: Uint8Array };
}

/** A stored response found for a request, with the key it lives under. */
export interface Found {
  /** The key of the variant. */
  key: string;
  /** Its decoded record (shared: never modify it). */
  record: ResponseRecord;
  /** Its head, prepared with the cache's policy options (shared). */
  prepared: PreparedHead;
  /** Its entry; the caller releases it (or reads its body to the end). */
  entry: StoredEntry;
  /**
   * The same entry for byte-range reads, when the lookup asked for one and
   * the store can (`entry.body` then reads through it, on first use).
   */
  ranged?: RangedEntry;
}

/** Options of {@linkcode ProxyCache.lookup}. */
export interface LookupOptions {
  /** Open the entry for byte-range reads (`Found.ranged`) when the store can. */
  ranged?: boolean;
}

/** A record as the policy sees it. */
export function recordToHead(r: ResponseRecord): StoredHead {
  return {
    method: r.method,
    url: r.url,
    requestHeaders: r.requestHeaders,
    status: r.status,
    // One Headers for every policy call on this head (each would build
    // its own from pairs).
    headers: new Headers(r.responseHeaders),
    requestTime: r.requestTime,
    responseTime: r.responseTime,
  };
}

/**
 * Decoded records kept at most (FIFO), the heap they may cost by
 * {@linkcode decodedCost}, and the largest record kept. 32 MiB holds
 * about 10,800 records of the hit benchmark's kind (a 247-byte record:
 * its 10,000 URLs stay decoded), about 8,500 of the soak's (about 330 bytes).
 */
const DECODED_ENTRIES = 16_384;
export const DECODED_HEAP_BYTES = 32 * 2 ** 20;
const DECODED_MAX_BYTES = 16 * 1024;

/**
 * An estimate, a little over, of the heap one decoded entry costs: its
 * key, the record's bytes and their words, the decoded record and the
 * prepared head (Headers and the rest grow with the record). Measured
 * with bench/proxy/decoded_cost.ts: 3.0 KiB for a 247-byte record, 3.9
 * KiB for 387 bytes, 7.2 KiB for 827 bytes.
 */
export function decodedCost(key: string, meta: Uint8Array): number {
  return 1024 + 8 * meta.length + 2 * key.length;
}

/** A stored record's bytes, decoded and prepared. */
interface Decoded {
  meta: Uint8Array;
  /** Its {@linkcode decodedCost}. */
  cost: number;
  /** `meta`'s whole 32-bit words, to compare a record read again by. */
  words: Int32Array;
  record: ResponseRecord;
  prepared: PreparedHead;
}

/**
 * Whether `meta` holds `known`'s bytes. Every hit asks this of a record of
 * a few hundred bytes: a word at a time where `meta` is aligned (it is a
 * fresh copy), without the Buffer views `sameBytes` makes.
 */
function sameRecord(known: Decoded, meta: Uint8Array): boolean {
  const n = meta.length;
  if (n !== known.meta.length) return false;
  if (meta.byteOffset % 4 !== 0) return sameBytes(known.meta, meta);
  const words = known.words;
  const w = new Int32Array(meta.buffer, meta.byteOffset, words.length);
  for (let i = 0; i < words.length; i++) if (words[i] !== w[i]) return false;
  const a = known.meta;
  for (let i = words.length * 4; i < n; i++) if (a[i] !== meta[i]) return false;
  return true;
}

/** What {@linkcode ProxyCache.lookupNow} gets from the store. */
type NowGot<R> = "miss" | { served: R } | Found;

/** The proxy's view of its store: responses by URL and request headers. */
export class ProxyCache {
  readonly #store: ProxyStore;
  readonly #policy: PolicyOptions;
  /** Puts under way, by URL; those marked when the URL is invalidated. */
  readonly #filling = new Map<string, Set<{ invalidated: boolean }>>();
  /**
   * The last record decoded for each key, with its bytes: a lookup that
   * reads (and verifies) the very same bytes again reuses it instead of
   * decoding and preparing them again. Keyed by the bytes themselves, so
   * an entry rewritten in any way (a new response, a 304's new head, an
   * invalidation followed by another store) never gets an old record.
   */
  readonly #decoded = new Map<string, Decoded>();
  /** The {@linkcode decodedCost} of what `#decoded` holds. */
  #decodedCost = 0;

  /**
   * Wraps a store.
   *
   * @param store Where the entries live.
   * @param policy The policy options heads are prepared with.
   */
  constructor(store: ProxyStore, policy: PolicyOptions = {}) {
    this.#store = store;
    this.#policy = policy;
  }

  /** `meta` (a record read from `key`) decoded, or undefined when it is not one. */
  #decode(key: string, meta: Uint8Array): Decoded | undefined {
    const known = this.#decoded.get(key);
    if (known !== undefined && sameRecord(known, meta)) return known;
    let record: ResponseRecord;
    try {
      record = decodeResponseRecord(meta);
    } catch {
      return undefined; // an unreadable record is a miss
    }
    const copy = meta.slice(); // offset 0: aligned
    const decoded = {
      meta: copy,
      cost: decodedCost(key, copy),
      words: new Int32Array(copy.buffer, 0, copy.length >> 2),
      record,
      prepared: prepareHead(recordToHead(record), this.#policy),
    };
    this.#forget(key);
    // A long key may cost more than the bound alone: not kept.
    if (
      meta.length <= DECODED_MAX_BYTES && decoded.cost <= DECODED_HEAP_BYTES
    ) {
      while (
        this.#decoded.size >= DECODED_ENTRIES ||
        this.#decodedCost + decoded.cost > DECODED_HEAP_BYTES
      ) {
        this.#forget(this.#decoded.keys().next().value!);
      }
      this.#decoded.set(key, decoded);
      this.#decodedCost += decoded.cost;
    }
    return decoded;
  }

  #forget(key: string): void {
    const known = this.#decoded.get(key);
    if (known === undefined) return;
    this.#decoded.delete(key);
    this.#decodedCost -= known.cost;
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
   * @param options `ranged` to open the entry for byte-range reads.
   * @returns The entry with its record, or undefined.
   */
  async lookup(
    url: string,
    request: Headers,
    options: LookupOptions = {},
  ): Promise<Found | undefined> {
    // The Vary-less entry first: most URIs have one, and it answers any
    // request (FORMAT.md §12.4, invariant 1).
    const key = PRIMARY + url;
    const whole = this.#openWhole(key, options);
    const [entry, ranged] = whole === undefined
      ? await this.#open(key, options)
      : [await whole, undefined];
    if (entry === undefined) {
      return await this.lookupVariant(url, request, options);
    }
    return this.#found(url, key, entry, ranged);
  }

  /**
   * {@linkcode lookup} in the same turn, for a request that wants no
   * ranges, over a store with `getNow`: the URL's `Vary`-less entry
   * handed to `serve` while its bytes are valid. What `serve` returns (a
   * response built from them: it copies what it keeps) is returned; when
   * it returns undefined, the entry is returned as `lookup` would, its
   * bytes copied.
   *
   * @param url The target URI.
   * @param serve Answers from the entry found, or declines.
   * @returns `serve`'s response; the entry `serve` declined; `"miss"`
   *   when the entry is not the URL's (as `lookup` finds it, a miss);
   *   `"vary"` when the URL has no `Vary`-less entry (look its variants up
   *   with {@linkcode lookupVariant}); undefined when the store cannot
   *   answer at once (use `lookup`).
   */
  lookupNow<R>(
    url: string,
    serve: (found: Found) => R | undefined,
  ): R | Found | "miss" | "vary" | undefined {
    const store = this.#store;
    if (store.getNow === undefined) return undefined;
    const key = PRIMARY + url;
    const got = store.getNow<NowGot<R>>(key, (entry) => {
      const decoded = this.#decode(key, entry.meta);
      if (decoded === undefined || decoded.record.url !== url) {
        entry.release();
        return "miss" as const;
      }
      const { record, prepared } = decoded;
      const found = { key, record, prepared, entry };
      const served = serve(found);
      if (served !== undefined) return { served };
      // Kept past this turn: the bytes copied out of the store's buffers.
      const body = entry.body;
      const kept = {
        meta: entry.meta.slice(),
        body: body instanceof Uint8Array ? body.slice() : body,
        ...(entry.size === undefined ? {} : { size: entry.size }),
        release: entry.release,
      };
      return { key, record, prepared, entry: kept };
    });
    if (got === undefined) return undefined;
    if (got === null) return "vary";
    if (got === "miss") return got;
    return "served" in got ? got.served : got;
  }

  /**
   * {@linkcode lookup} past the URL's `Vary`-less entry, which the caller
   * found missing: the variant its `Vary` marker and `request` select.
   *
   * @param url The target URI.
   * @param request The request's header fields.
   * @param options `ranged` to open the entry for byte-range reads.
   * @returns The entry with its record, or undefined.
   */
  async lookupVariant(
    url: string,
    request: Headers,
    options: LookupOptions = {},
  ): Promise<Found | undefined> {
    const marker = await this.#marker(url);
    if (marker === undefined) return undefined;
    const key = ProxyCache.#variantKey(url, marker, request);
    const [entry, ranged] = await this.#open(key, options);
    if (entry === undefined) return undefined;
    return this.#found(url, key, entry, ranged);
  }

  #found(
    url: string,
    key: string,
    entry: StoredEntry,
    ranged: RangedEntry | undefined,
  ): Found | undefined {
    const decoded = this.#decode(key, entry.meta);
    if (decoded === undefined || decoded.record.url !== url) {
      entry.release();
      return undefined;
    }
    const { record, prepared } = decoded;
    return ranged === undefined
      ? { key, record, prepared, entry }
      : { key, record, prepared, entry, ranged };
  }

  async #open(
    key: string,
    options: LookupOptions,
  ): Promise<[StoredEntry | undefined, RangedEntry | undefined]> {
    if (options.ranged === true && this.#store.getRanged !== undefined) {
      const ranged = await this.#store.getRanged(key);
      return ranged === undefined
        ? [undefined, undefined]
        : [wholeBody(ranged), ranged];
    }
    return [await this.#store.get(key), undefined];
  }

  /** `#open` for a lookup that wants no ranges: one await less a hit. */
  #openWhole(
    key: string,
    options: LookupOptions,
  ): Promise<StoredEntry | undefined> | undefined {
    return options.ranged === true && this.#store.getRanged !== undefined
      ? undefined
      : this.#store.get(key);
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
    // The Vary-less entry goes first, and whenever a variant is stored: a
    // lookup reads it before the marker, so it would hide the variants.
    await this.#store.delete(PRIMARY + url);
    let marker = old;
    if (old === undefined || old.names.join(",") !== names.join(",")) {
      marker = { names, gen: crypto.randomUUID() };
      await this.#store.put(
        MARKER + url,
        new TextEncoder().encode(JSON.stringify(marker)),
        new Uint8Array(0),
      );
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
  async put(
    key: string,
    record: ResponseRecord,
    body: Uint8Array | ReadableStream<Uint8Array>,
  ): Promise<void> {
    const url = record.url;
    const fill = { invalidated: false };
    let fills = this.#filling.get(url);
    if (fills === undefined) this.#filling.set(url, fills = new Set());
    fills.add(fill);
    try {
      await this.#store.put(key, encodeResponseRecord(record), body);
    } finally {
      fills.delete(fill);
      if (fills.size === 0 && this.#filling.get(url) === fills) {
        this.#filling.delete(url);
      }
    }
    // A response that was being stored when its URL was invalidated (a
    // purge, an unsafe method) predates the invalidation: it must not
    // come back when its store ends after it.
    if (fill.invalidated) await this.#store.delete(key);
  }

  /**
   * Replaces the record `found` was read with, keeping the body: only
   * while the entry still holds that record (so that body), never over a
   * response stored since.
   *
   * @param found What a lookup found (its key and its record's bytes).
   * @param record The new record.
   * @returns Whether it was stored.
   */
  putHead(found: HeadOf, record: ResponseRecord): Promise<boolean> {
    return this.#store.putHead(
      found.key,
      encodeResponseRecord(record),
      found.entry.meta,
    );
  }

  /**
   * Makes every stored response for `url` unreachable: the response
   * without `Vary`, or every variant at once (their marker goes, and with
   * it their generation; eviction reclaims their bytes). A response still
   * being stored for `url` is removed when its store ends.
   *
   * @param url The URI.
   * @returns Whether anything was stored, or being stored, for `url`.
   */
  async invalidate(url: string): Promise<boolean> {
    const fills = this.#filling.get(url) ?? new Set();
    for (const fill of fills) fill.invalidated = true;
    const marker = await this.#store.delete(MARKER + url);
    const primary = await this.#store.delete(PRIMARY + url);
    this.#forget(PRIMARY + url);
    return marker || primary || fills.size > 0;
  }

  /** Closes the store. */
  close(): Promise<void> {
    return this.#store.close();
  }
}

/** A ranged entry as a StoredEntry whose body, read on first use, is all of it. */
function wholeBody(ranged: RangedEntry): StoredEntry {
  let body: ReadableStream<Uint8Array> | undefined;
  return {
    meta: ranged.meta,
    get body() {
      return body ??= ranged.stream(0, ranged.size);
    },
    release: ranged.release,
  };
}
