/**
 * The proxy's metrics in the Prometheus text exposition format, version
 * 0.0.4: for each metric a `# HELP` and a `# TYPE` line, then its
 * samples; counters end in `_total`; the histogram has cumulative
 * `_bucket{le=…}` samples, `+Inf` among them, with `_sum` and `_count`.
 *
 * ```ts ignore
 * const text = prometheusText(metrics, store.stats());
 * ```
 *
 * @module
 */
import type { StoreStats } from "../store.ts";
import {
  CACHE_STATUSES,
  type CollapseOutcome,
  DURATION_BUCKETS,
  type ProxyMetrics,
} from "./_metrics.ts";

/** The `Content-Type` of the exposition. */
export const PROMETHEUS_CONTENT_TYPE =
  "text/plain; version=0.0.4; charset=utf-8";

type Labels = Record<string, string>;

/** A label value escaped as the format asks (backslash, quote, newline). */
function labelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** A sample value: integers as such, others in full precision. */
function num(v: number): string {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return Number.isNaN(v) ? "NaN" : String(v);
}

class Exposition {
  readonly lines: string[] = [];

  metric(
    name: string,
    type: "counter" | "gauge" | "histogram",
    help: string,
    samples: [Labels, number][],
  ): void {
    this.lines.push(`# HELP ${name} ${help.replace(/\\/g, "\\\\")}`);
    this.lines.push(`# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) this.sample(name, labels, value);
  }

  sample(name: string, labels: Labels, value: number): void {
    const l = Object.entries(labels)
      .map(([k, v]) => `${k}="${labelValue(v)}"`)
      .join(",");
    this.lines.push(`${name}${l === "" ? "" : `{${l}}`} ${num(value)}`);
  }
}

/**
 * The exposition text.
 *
 * @param m The proxy's counters.
 * @param stats The store's, when it has them.
 * @returns Lines ending in `\n`.
 */
export function prometheusText(
  m: ProxyMetrics,
  stats: StoreStats | undefined,
): string {
  const e = new Exposition();
  e.metric(
    "larder_proxy_requests_total",
    "counter",
    "Requests answered, by cache status (x-larder-cache).",
    CACHE_STATUSES.map((s) => [{ cache: s }, m.requests[s]]),
  );
  e.metric(
    "larder_proxy_origin_requests_total",
    "counter",
    "Requests sent to the origin (misses, revalidations, background refreshes, unsafe methods).",
    [[{}, m.origin.requests]],
  );
  e.metric(
    "larder_proxy_origin_errors_total",
    "counter",
    "Origin requests that failed: no response head in time (timeout) or no connection or response (unreachable).",
    [[{ kind: "timeout" }, m.origin.timeouts], [{
      kind: "unreachable",
    }, m.origin.unreachable]],
  );
  e.metric(
    "larder_proxy_send_timeouts_total",
    "counter",
    "Streamed responses (from the origin or the store) cut because the client took nothing for the send timeout.",
    [[{}, m.sendTimeouts]],
  );
  e.metric(
    "larder_proxy_collapsed_waits_total",
    "counter",
    "Misses that waited for another request's origin fetch of their URL, by how the wait ended.",
    (["served", "timeout", "forwarded", "gone"] as CollapseOutcome[]).map((
      o,
    ) => [{ outcome: o }, m.collapsed[o]]),
  );
  e.metric(
    "larder_proxy_body_bytes_total",
    "counter",
    "Response body bytes sent to clients, by where they came from.",
    [[{ source: "cache" }, m.bytes.cache], [
      { source: "origin" },
      m.bytes.origin,
    ]],
  );
  e.metric(
    "larder_proxy_store_errors_total",
    "counter",
    "Store writes that failed for a reason of the store's (I/O, full disk, ...).",
    [[{}, m.storeErrors]],
  );
  e.metric(
    "larder_proxy_store_refusals_total",
    "counter",
    "Bodies served but not stored: over the element limit, or streams being written together past the limit.",
    [[{}, m.storeRefusals]],
  );
  const name = "larder_proxy_response_seconds";
  e.metric(
    name,
    "histogram",
    "Time from request to response head, seconds, by cache status.",
    [],
  );
  for (const s of CACHE_STATUSES) {
    const d = m.durations[s];
    let cumulative = 0;
    DURATION_BUCKETS.forEach((le, i) => {
      cumulative += d.buckets[i]!;
      e.sample(`${name}_bucket`, { cache: s, le: num(le) }, cumulative);
    });
    e.sample(`${name}_bucket`, { cache: s, le: "+Inf" }, m.requests[s]);
    e.sample(`${name}_sum`, { cache: s }, d.sum);
    e.sample(`${name}_count`, { cache: s }, m.requests[s]);
  }
  e.metric(
    "larder_proxy_start_time_seconds",
    "gauge",
    "When the proxy started, seconds since the epoch.",
    [[{}, m.started / 1000]],
  );
  if (stats !== undefined) {
    e.metric(
      "larder_store_bytes",
      "gauge",
      "Bytes of element data the store holds.",
      [[{}, stats.bytes]],
    );
    e.metric(
      "larder_store_disk_bytes",
      "gauge",
      "Bytes the store's elements take on disk, as its limit counts them.",
      [[{}, stats.diskBytes]],
    );
    e.metric(
      "larder_store_shared_elements",
      "gauge",
      "Elements more than one entry shares (copies, moves, dedup).",
      [[{}, stats.sharedElements]],
    );
    e.metric(
      "larder_store_saved_bytes",
      "gauge",
      "Element bytes sharing saves (what unshared copies would hold more).",
      [[{}, stats.bytesSaved]],
    );
    e.metric(
      "larder_store_limit_bytes",
      "gauge",
      "The store's byte limit.",
      [[{}, stats.limit]],
    );
    e.metric("larder_store_entries", "gauge", "Live entries in the store.", [[
      {},
      stats.entries,
    ]]);
    e.metric(
      "larder_store_capacity_entries",
      "gauge",
      "Entries the store's index can hold.",
      [[{}, stats.capacity]],
    );
    e.metric(
      "larder_store_evictions_total",
      "counter",
      "Entries the store evicted since it was opened.",
      [[{}, stats.evictions]],
    );
    e.metric(
      "larder_store_evicted_bytes_total",
      "counter",
      "Element bytes the store evicted since it was opened.",
      [[{}, stats.evictedBytes]],
    );
    e.metric(
      "larder_store_corruptions_total",
      "counter",
      "Elements the store dropped because they failed verification, since it was opened.",
      [[{}, stats.corruptions]],
    );
  }
  return e.lines.join("\n") + "\n";
}
