/**
 * What the proxy counts for its status page and `/_larder/metrics`, in
 * bounded memory whatever the traffic:
 *
 * - counters since start: requests by cache status, origin requests and
 *   failures, collapsed waits by outcome, body bytes sent by source, store
 *   write failures, and a histogram of the time to the response head;
 * - a time series in a ring buffer (default 360 buckets of 10 s: the last
 *   hour) of requests by cache status and bytes sent by source;
 * - the keys with the most hits, by the space-saving algorithm (Metwally,
 *   Agrawal, El Abbadi 2005) over `TOP_KEYS` counters;
 * - a sample of stored entries for the size and age histograms: the
 *   `SAMPLE_ENTRIES` URLs most recently stored or served, each with its
 *   body size and the time its response was received or revalidated.
 *   The store cannot list its entries cheaply (it keeps key hashes), and a
 *   lookup to check each one would count as a use and change what it
 *   evicts, so the sample holds what this process has seen: a URL leaves
 *   it when the proxy invalidates it or finds it gone, and the least
 *   recently seen go when it holds more URLs than the store has entries;
 *   another entry the store evicted stays in it until then.
 *
 * ```ts ignore
 * const m = new ProxyMetrics();
 * m.request({ status: "hit", bytes: 512, seconds: 0.001, key: "/a" });
 * m.series(); // the last hour, oldest bucket first
 * ```
 *
 * @module
 */
import type { CacheStatus } from "./proxy.ts";

/** Every cache status, in the order the page and the metrics list them. */
export const CACHE_STATUSES: readonly CacheStatus[] = [
  "hit",
  "stale",
  "revalidated",
  "miss",
  "bypass",
  "error",
];

/** Statuses whose body came from the store. */
export const FROM_CACHE: ReadonlySet<CacheStatus> = new Set<CacheStatus>([
  "hit",
  "stale",
  "revalidated",
]);

/** Statuses whose body came from the origin. */
const FROM_ORIGIN: ReadonlySet<CacheStatus> = new Set<CacheStatus>([
  "miss",
  "bypass",
]);

/** Upper bounds (seconds) of the response-time histogram's buckets. */
export const DURATION_BUCKETS: readonly number[] = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** Keys the top-hits counter keeps. */
export const TOP_KEYS = 64;
/** URLs the entry sample keeps. */
export const SAMPLE_ENTRIES = 4096;

/** One bucket of the time series. */
export interface SeriesBucket {
  /** Start of the bucket, ms since the epoch. */
  start: number;
  /** Requests by cache status. */
  requests: Record<CacheStatus, number>;
  /** All requests. */
  total: number;
  /** Requests answered from the store (hit, stale, revalidated). */
  fromCache: number;
  /** Body bytes sent from the store. */
  cacheBytes: number;
  /** Body bytes sent from the origin. */
  originBytes: number;
}

/** Fields per bucket in the ring: the statuses, then the two byte sums. */
const FIELDS = CACHE_STATUSES.length + 2;
const CACHE_BYTES = CACHE_STATUSES.length;
const ORIGIN_BYTES = CACHE_STATUSES.length + 1;

/**
 * Counts per fixed-width time bucket in a ring: memory is
 * `buckets × 8 fields`, whatever the traffic; a bucket is cleared when the
 * ring comes round to it again.
 */
export class TimeSeries {
  readonly bucketMs: number;
  readonly buckets: number;
  readonly #now: () => number;
  readonly #values: Float64Array;
  /** The bucket number (time / bucketMs) each ring slot holds. */
  readonly #epochs: Float64Array;

  /**
   * @param options `bucketMs` (default 10,000), `buckets` (default 360),
   *   `now` (default `Date.now`).
   */
  constructor(
    options: { bucketMs?: number; buckets?: number; now?: () => number } = {},
  ) {
    this.bucketMs = options.bucketMs ?? 10_000;
    this.buckets = options.buckets ?? 360;
    if (!(this.bucketMs >= 1) || !Number.isInteger(this.buckets)) {
      throw new RangeError("Cannot make time series: bad bucket size");
    }
    if (this.buckets < 1) {
      throw new RangeError("Cannot make time series: no buckets");
    }
    this.#now = options.now ?? Date.now;
    this.#values = new Float64Array(this.buckets * FIELDS);
    this.#epochs = new Float64Array(this.buckets).fill(-1);
  }

  #slot(): number {
    const epoch = Math.floor(this.#now() / this.bucketMs);
    const slot = epoch % this.buckets;
    if (this.#epochs[slot] !== epoch) {
      this.#epochs[slot] = epoch;
      this.#values.fill(0, slot * FIELDS, (slot + 1) * FIELDS);
    }
    return slot * FIELDS;
  }

  /** Counts one request, and its body bytes by source. */
  add(status: CacheStatus, bytes: number): void {
    const at = this.#slot();
    this.#values[at + CACHE_STATUSES.indexOf(status)]! += 1;
    this.addBytes(status, bytes, at);
  }

  /** Counts body bytes of a request already counted (a streamed body). */
  addBytes(status: CacheStatus, bytes: number, at = this.#slot()): void {
    if (FROM_CACHE.has(status)) this.#values[at + CACHE_BYTES]! += bytes;
    else if (FROM_ORIGIN.has(status)) this.#values[at + ORIGIN_BYTES]! += bytes;
  }

  /**
   * Every bucket of the window, oldest first, the current (partial) one
   * last; buckets without traffic are zeros.
   */
  read(): SeriesBucket[] {
    const current = Math.floor(this.#now() / this.bucketMs);
    const out: SeriesBucket[] = [];
    for (let epoch = current - this.buckets + 1; epoch <= current; epoch++) {
      const slot = ((epoch % this.buckets) + this.buckets) % this.buckets;
      const live = epoch >= 0 && this.#epochs[slot] === epoch;
      const v = (field: number) =>
        live ? this.#values[slot * FIELDS + field]! : 0;
      const requests = Object.fromEntries(
        CACHE_STATUSES.map((s, i) => [s, v(i)]),
      ) as Record<CacheStatus, number>;
      let total = 0;
      let fromCache = 0;
      for (const s of CACHE_STATUSES) {
        total += requests[s];
        if (FROM_CACHE.has(s)) fromCache += requests[s];
      }
      out.push({
        start: epoch * this.bucketMs,
        requests,
        total,
        fromCache,
        cacheBytes: v(CACHE_BYTES),
        originBytes: v(ORIGIN_BYTES),
      });
    }
    return out;
  }
}

/** A key the top-k counter reports. */
export interface TopKey {
  key: string;
  /** Counted hits; over-counts by at most `error`. */
  count: number;
  /** The count the key inherited when it took a counter over. */
  error: number;
}

/**
 * The space-saving heavy-hitters counter: at most `capacity` keys; a new
 * key takes over the counter of the smallest, inheriting its count as its
 * error. Any key with more than total/capacity hits is kept, and each
 * reported count is at most `error` above the true one.
 *
 * O(1) amortised per key: the counters with the smallest count are found
 * by one scan and handed out one by one until none is left (a counter
 * that has grown since is skipped), then scanned for again.
 */
export class TopK {
  readonly capacity: number;
  readonly #index = new Map<string, number>();
  readonly #keys: string[] = [];
  readonly #counts: Float64Array;
  readonly #errors: Float64Array;
  /** Counters that had the smallest count, `#min`, at the last scan. */
  #smallest: number[] = [];
  #min = 0;

  /** @param capacity Counters kept. */
  constructor(capacity = TOP_KEYS) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(
        `Cannot make top-k counter: capacity must be a positive integer, got ${capacity}`,
      );
    }
    this.capacity = capacity;
    this.#counts = new Float64Array(capacity);
    this.#errors = new Float64Array(capacity);
  }

  #takeSmallest(): number {
    for (;;) {
      const i = this.#smallest.pop();
      if (i === undefined) {
        let min = Infinity;
        for (const c of this.#counts) min = Math.min(min, c);
        this.#min = min;
        for (let j = this.capacity - 1; j >= 0; j--) {
          if (this.#counts[j] === min) this.#smallest.push(j);
        }
        continue;
      }
      if (this.#counts[i] === this.#min) return i;
    }
  }

  /** Counts one occurrence of `key`. */
  add(key: string): void {
    const at = this.#index.get(key);
    if (at !== undefined) {
      this.#counts[at]!++;
      return;
    }
    let i = this.#keys.length;
    if (i < this.capacity) {
      this.#keys.push(key);
      this.#errors[i] = 0;
      this.#counts[i] = 1;
      // A counter now at 1 may be below the smallest the last scan found.
      this.#smallest = [];
    } else {
      i = this.#takeSmallest();
      this.#index.delete(this.#keys[i]!);
      this.#keys[i] = key;
      this.#errors[i] = this.#counts[i]!;
      this.#counts[i]!++;
    }
    this.#index.set(key, i);
  }

  /** The `n` largest counts, largest first (ties by key). */
  top(n = this.capacity): TopKey[] {
    return this.#keys
      .map((key, i) => ({
        key,
        count: this.#counts[i]!,
        error: this.#errors[i]!,
      }))
      .sort((a, b) =>
        b.count - a.count || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
      )
      .slice(0, n);
  }
}

/** One sampled entry. */
export interface SampledEntry {
  /** Body bytes. */
  size: number;
  /** When its response was received or last revalidated, ms since the epoch. */
  time: number;
}

/**
 * At most `capacity` URLs recently stored or served, with body size and
 * response time. When full, a new URL replaces one chosen by the CLOCK
 * algorithm: a hand sweeps the slots, sparing (once) each URL seen again
 * since the hand last passed, so the replaced one is among the least
 * recently seen, at O(1) amortised per call.
 */
export class EntrySample {
  readonly capacity: number;
  readonly #index = new Map<string, number>();
  readonly #urls: (string | undefined)[];
  readonly #sizes: Float64Array;
  readonly #times: Float64Array;
  readonly #seenAgain: Uint8Array;
  #hand = 0;

  /** @param capacity URLs kept. */
  constructor(capacity = SAMPLE_ENTRIES) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(
        `Cannot make entry sample: capacity must be a positive integer, got ${capacity}`,
      );
    }
    this.capacity = capacity;
    this.#urls = new Array(capacity).fill(undefined);
    this.#sizes = new Float64Array(capacity);
    this.#times = new Float64Array(capacity);
    this.#seenAgain = new Uint8Array(capacity);
  }

  /** Moves the hand to a slot to reuse, emptying it. */
  #victim(): number {
    for (;;) {
      const i = this.#hand;
      this.#hand = (i + 1) % this.capacity;
      const url = this.#urls[i];
      if (url === undefined) return i;
      if (this.#seenAgain[i]) {
        this.#seenAgain[i] = 0;
        continue;
      }
      this.#index.delete(url);
      this.#urls[i] = undefined;
      return i;
    }
  }

  /**
   * Notes `url`'s stored entry; a size left undefined keeps the one known
   * (a URL without a known size is not sampled).
   */
  seen(url: string, size: number | undefined, time: number): void {
    const at = this.#index.get(url);
    if (at !== undefined) {
      if (size !== undefined) this.#sizes[at] = size;
      this.#times[at] = time;
      this.#seenAgain[at] = 1;
      return;
    }
    if (size === undefined) return;
    const i = this.#victim();
    this.#urls[i] = url;
    this.#sizes[i] = size;
    this.#times[i] = time;
    this.#seenAgain[i] = 0;
    this.#index.set(url, i);
  }

  /** The size noted for `url`, if any. */
  sizeOf(url: string): number | undefined {
    const at = this.#index.get(url);
    return at === undefined ? undefined : this.#sizes[at];
  }

  /** Forgets `url` (invalidated, or found gone). */
  drop(url: string): void {
    const at = this.#index.get(url);
    if (at === undefined) return;
    this.#index.delete(url);
    this.#urls[at] = undefined;
  }

  /**
   * Drops URLs beyond `n` (the store's entry count: it cannot hold more),
   * the least recently seen first as the hand finds them: eviction takes
   * the least used.
   */
  trimTo(n: number): void {
    while (this.#index.size > Math.max(0, n)) this.#victim();
  }

  /** Sampled entries now. */
  get size(): number {
    return this.#index.size;
  }

  /** The sampled entries, in slot order. */
  *values(): IterableIterator<SampledEntry> {
    for (let i = 0; i < this.capacity; i++) {
      if (this.#urls[i] !== undefined) {
        yield { size: this.#sizes[i]!, time: this.#times[i]! };
      }
    }
  }
}

/** A histogram's bucket: values in [`from`, `to`). */
export interface HistogramBar {
  label: string;
  from: number;
  to: number;
  count: number;
}

const KIB = 1024;
const SIZE_EDGES = [
  0,
  KIB,
  4 * KIB,
  16 * KIB,
  64 * KIB,
  256 * KIB,
  KIB * KIB,
  4 * KIB * KIB,
  16 * KIB * KIB,
  Infinity,
];
const SIZE_LABELS = [
  "<1K",
  "1–4K",
  "4–16K",
  "16–64K",
  "64–256K",
  "256K–1M",
  "1–4M",
  "4–16M",
  "≥16M",
];
const AGE_EDGES = [0, 60, 600, 3600, 6 * 3600, 86400, 7 * 86400, Infinity];
const AGE_LABELS = ["<1m", "1–10m", "10m–1h", "1–6h", "6–24h", "1–7d", "≥7d"];

function histogram(
  values: Iterable<number>,
  edges: number[],
  labels: string[],
): HistogramBar[] {
  const bars = labels.map((label, i) => ({
    label,
    from: edges[i]!,
    to: edges[i + 1]!,
    count: 0,
  }));
  for (const v of values) {
    const i = bars.findIndex((b) => v < b.to);
    bars[i < 0 ? bars.length - 1 : i]!.count++;
  }
  return bars;
}

/** Request outcome the handler reports. */
export interface RequestSample {
  status: CacheStatus;
  /** Body bytes, when known now (else counted later with `bodyBytes`). */
  bytes: number;
  /** Time to the response head, seconds. */
  seconds: number;
  /** The request's path and query. */
  key: string;
}

/**
 * How a collapsed miss's wait ended: served from what the flight stored
 * (from the store, or from the body the flight kept when the store had
 * evicted it); timed out; sent on to the origin itself; or `gone`: the
 * flight stored its (Vary-less) response but it was no longer in the
 * store when this waiter looked and the flight kept no body for it (over
 * 2 MiB, the waiter came after the body began, or the URL was
 * invalidated), so the waiter waits again or leads a new fetch, and that
 * is counted too.
 */
export type CollapseOutcome = "served" | "timeout" | "forwarded" | "gone";

/** Everything the proxy counts; see the module doc. */
export class ProxyMetrics {
  readonly started: number;
  readonly series: TimeSeries;
  readonly topHits: TopK;
  readonly sample: EntrySample;
  readonly requests: Record<CacheStatus, number>;
  readonly durations: Record<CacheStatus, { buckets: number[]; sum: number }>;
  readonly bytes = { cache: 0, origin: 0 };
  readonly origin = { requests: 0, timeouts: 0, unreachable: 0 };
  readonly collapsed: Record<CollapseOutcome, number> = {
    served: 0,
    timeout: 0,
    forwarded: 0,
    gone: 0,
  };
  storeErrors = 0;
  /** Client bodies cut because the client took nothing for the send timeout. */
  sendTimeouts = 0;
  /**
   * Bodies the store refused with a RangeError (over its element limit,
   * or streams being written together past its limit): served, not stored.
   */
  storeRefusals = 0;
  lastStoreError: { code: string; message: string; time: number } | undefined;
  readonly #now: () => number;

  /**
   * @param options `now` (default `Date.now`) and the time series' shape.
   */
  constructor(
    options: {
      now?: () => number;
      bucketMs?: number;
      buckets?: number;
      topKeys?: number;
      sampleEntries?: number;
    } = {},
  ) {
    this.#now = options.now ?? Date.now;
    this.started = this.#now();
    this.series = new TimeSeries({ ...options, now: this.#now });
    this.topHits = new TopK(options.topKeys);
    this.sample = new EntrySample(options.sampleEntries);
    this.requests = Object.fromEntries(
      CACHE_STATUSES.map((s) => [s, 0]),
    ) as Record<CacheStatus, number>;
    this.durations = Object.fromEntries(
      CACHE_STATUSES.map((s) => [s, {
        buckets: new Array(DURATION_BUCKETS.length).fill(0),
        sum: 0,
      }]),
    ) as Record<CacheStatus, { buckets: number[]; sum: number }>;
  }

  /** The time now, by this instance's clock. */
  now(): number {
    return this.#now();
  }

  /** Counts one answered request. */
  request(r: RequestSample): void {
    const status = r.status;
    this.requests[status]++;
    const d = this.durations[status];
    d.sum += r.seconds;
    // Every request comes here: a loop, no closure.
    let i = 0;
    while (i < DURATION_BUCKETS.length && r.seconds > DURATION_BUCKETS[i]!) i++;
    // Beyond the last: +Inf, which is the count.
    if (i < DURATION_BUCKETS.length) d.buckets[i]!++;
    // The request and its bytes in one bucket lookup.
    this.series.add(status, r.bytes);
    if (FROM_CACHE.has(status)) {
      this.bytes.cache += r.bytes;
      this.topHits.add(r.key);
    } else if (FROM_ORIGIN.has(status)) this.bytes.origin += r.bytes;
  }

  /** Counts body bytes sent for a request counted before. */
  bodyBytes(status: CacheStatus, bytes: number): void {
    if (bytes === 0) return;
    if (FROM_CACHE.has(status)) this.bytes.cache += bytes;
    else if (FROM_ORIGIN.has(status)) this.bytes.origin += bytes;
    this.series.addBytes(status, bytes);
  }

  /** Notes a store write that failed for a reason of the store's. */
  storeError(code: string, message: string): void {
    this.storeErrors++;
    this.lastStoreError = { code, message, time: this.#now() };
  }

  /** Histogram of the sampled entries' body sizes. */
  sizeHistogram(): HistogramBar[] {
    const sizes = [...this.sample.values()].map((e) => e.size);
    return histogram(sizes, SIZE_EDGES, SIZE_LABELS);
  }

  /** Histogram of the sampled entries' ages (seconds since received). */
  ageHistogram(): HistogramBar[] {
    const now = this.#now();
    const ages = [...this.sample.values()].map((e) =>
      Math.max(0, (now - e.time) / 1000)
    );
    return histogram(ages, AGE_EDGES, AGE_LABELS);
  }
}

/**
 * `stream` passed through chunk by chunk, pulled only on demand, with
 * each chunk's length (and the chunk, before it is passed on) given to
 * `onBytes`.
 */
export function countBytes(
  stream: ReadableStream<Uint8Array>,
  onBytes: (n: number, chunk: Uint8Array) => void,
): ReadableStream<Uint8Array> {
  const reader = stream.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) {
        controller.close();
        return;
      }
      onBytes(value.length, value);
      controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
