/**
 * The status page at `/_larder/`: one HTML document with inline CSS and
 * inline SVG plots drawn here (no script, no external asset), so it reads
 * the same in any browser, with JavaScript off, and in a test.
 *
 * The time plots span the time since the proxy started: at least 60
 * buckets (10 minutes of 10 s buckets), at most the ring (an hour).
 *
 * Every plot is an `<svg class="plot">` with `data-plot` (its name),
 * `data-buckets` (the x positions it spans) and `data-points` (the data
 * points drawn, one `<circle>` or `<rect class="bar">` each), so a test
 * can check what it shows. Every key and URL is escaped.
 *
 * ```ts ignore
 * const html = statusPage({ metrics, stats, adminPath: "/_larder/" });
 * ```
 *
 * @module
 */
import type { StoreStats } from "../store.ts";
import {
  CACHE_STATUSES,
  type HistogramBar,
  type ProxyMetrics,
  type SeriesBucket,
} from "./_metrics.ts";

/** Text made safe for HTML content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Bytes in binary units, 3 significant digits. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${n.toPrecision(3)} ${units[u]}`;
}

function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) {
    return `${Math.floor(s / 3600)} h ${Math.floor(s / 60) % 60} min`;
  }
  return `${Math.floor(s / 86400)} d ${Math.floor(s / 3600) % 24} h`;
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

/** A round number at or above `v` (1, 2 or 5 times a power of ten). */
function niceCeil(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** Time buckets a plot spans at least (10 min of 10 s buckets). */
const MIN_SHOWN = 60;

const W = 600;
const H = 200;
const PAD = { left: 74, right: 12, top: 12, bottom: 26 };
const PLOT_W = W - PAD.left - PAD.right;
const PLOT_H = H - PAD.top - PAD.bottom;

interface Series {
  name: string;
  color: string;
  /** One value per bucket; null where there is none (no requests). */
  values: (number | null)[];
  /** Whether a zero is a point worth marking. */
  markZeros?: boolean;
}

function n2(v: number): string {
  return v.toFixed(1);
}

/** A line chart over the time buckets, with a circle per data point. */
function lineChart(opts: {
  plot: string;
  title: string;
  buckets: SeriesBucket[];
  bucketMs: number;
  series: Series[];
  yMax?: number;
  yLabel: (v: number) => string;
}): string {
  const { buckets, series } = opts;
  const n = buckets.length;
  const all = series.flatMap((s) => s.values.filter((v) => v !== null));
  const yMax = opts.yMax ?? niceCeil(Math.max(0, ...(all as number[])));
  const x = (i: number) =>
    PAD.left + (n === 1 ? PLOT_W : (i * PLOT_W) / (n - 1));
  const y = (v: number) => PAD.top + PLOT_H - (v / yMax) * PLOT_H;
  const parts: string[] = [];
  // Grid and y labels.
  parts.push(...yGrid((f) => opts.yLabel(f * yMax)));
  // x labels: the window's start, quarter marks and now.
  const windowMin = Math.round((n * opts.bucketMs) / 60_000);
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    const i = Math.round(f * (n - 1));
    const label = f === 1 ? "now" : `−${+((1 - f) * windowMin).toFixed(1)} min`;
    parts.push(
      `<text class="axis" x="${n2(x(i))}" y="${H - 8}" text-anchor="${
        f === 0 ? "start" : f === 1 ? "end" : "middle"
      }">${label}</text>`,
    );
  }
  let points = 0;
  for (const s of series) {
    // A line through runs of values; a gap where there is none.
    let run: string[] = [];
    const flush = () => {
      if (run.length > 0) {
        parts.push(
          `<polyline class="line" data-series="${
            escapeHtml(s.name)
          }" stroke="${s.color}" points="${run.join(" ")}"/>`,
        );
      }
      run = [];
    };
    s.values.forEach((v, i) => {
      if (v === null) return flush();
      run.push(`${n2(x(i))},${n2(y(v))}`);
    });
    flush();
    s.values.forEach((v, i) => {
      if (v === null || (v === 0 && !s.markZeros)) return;
      points++;
      const when = new Date(buckets[i]!.start).toISOString().slice(11, 19);
      parts.push(
        `<circle class="point" data-series="${escapeHtml(s.name)}" cx="${
          n2(x(i))
        }" cy="${n2(y(v))}" r="2.5" fill="${s.color}"><title>${when} ${
          escapeHtml(s.name)
        }: ${escapeHtml(opts.yLabel(v))}</title></circle>`,
      );
    });
  }
  const legend = series.map((s) =>
    `<span class="key"><i style="background:${s.color}"></i>${
      escapeHtml(s.name)
    }</span>`
  ).join(" ");
  return `<figure><figcaption>${escapeHtml(opts.title)} ${legend}</figcaption>
<svg class="plot" data-plot="${opts.plot}" data-buckets="${n}" data-points="${points}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${
    escapeHtml(opts.title)
  }">
<rect class="frame" x="${PAD.left}" y="${PAD.top}" width="${PLOT_W}" height="${PLOT_H}"/>
${parts.join("\n")}
</svg></figure>`;
}

/**
 * Grid lines at 0, half and full height with their y labels (`label`
 * gets the fraction of the plot's height).
 */
function yGrid(label: (f: number) => string): string[] {
  return [0, 0.5, 1].flatMap((f) => {
    const yy = n2(PAD.top + PLOT_H - f * PLOT_H);
    return [
      `<line class="grid" x1="${PAD.left}" x2="${
        W - PAD.right
      }" y1="${yy}" y2="${yy}"/>`,
      `<text class="axis" x="${
        PAD.left - 6
      }" y="${yy}" text-anchor="end" dominant-baseline="middle">${
        escapeHtml(label(f))
      }</text>`,
    ];
  });
}

/** A bar chart of a histogram, a `<rect class="bar">` per bucket with entries. */
function barChart(plot: string, title: string, bars: HistogramBar[]): string {
  const max = niceCeil(Math.max(0, ...bars.map((b) => b.count)));
  const slot = PLOT_W / bars.length;
  const parts: string[] = [];
  let points = 0;
  parts.push(...yGrid((f) => String(Math.round(f * max))));
  bars.forEach((b, i) => {
    const h = (b.count / max) * PLOT_H;
    const bx = PAD.left + i * slot + slot * 0.15;
    if (b.count > 0) {
      points++;
      parts.push(
        `<rect class="bar" data-count="${b.count}" x="${n2(bx)}" y="${
          n2(PAD.top + PLOT_H - h)
        }" width="${n2(slot * 0.7)}" height="${n2(h)}"><title>${
          escapeHtml(b.label)
        }: ${b.count}</title></rect>`,
        `<text class="count" x="${n2(bx + slot * 0.35)}" y="${
          n2(PAD.top + PLOT_H - h - 4)
        }" text-anchor="middle">${b.count}</text>`,
      );
    }
    parts.push(
      `<text class="axis" x="${n2(bx + slot * 0.35)}" y="${
        H - 8
      }" text-anchor="middle">${escapeHtml(b.label)}</text>`,
    );
  });
  return `<figure><figcaption>${escapeHtml(title)}</figcaption>
<svg class="plot" data-plot="${plot}" data-buckets="${bars.length}" data-points="${points}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${
    escapeHtml(title)
  }">
<rect class="frame" x="${PAD.left}" y="${PAD.top}" width="${PLOT_W}" height="${PLOT_H}"/>
${parts.join("\n")}
</svg></figure>`;
}

/** A horizontal bar of `used` against `limit`. */
function usageBar(plot: string, used: number, limit: number): string {
  const f = limit > 0 ? Math.min(1, used / limit) : 0;
  return `<svg class="usage" data-plot="${plot}" data-fraction="${
    f.toFixed(4)
  }" viewBox="0 0 ${W} 18" preserveAspectRatio="none" role="img" aria-label="${
    pct(f)
  }"><rect class="track" x="0" y="0" width="${W}" height="18"/><rect class="fill" x="0" y="0" width="${
    n2(f * W)
  }" height="18"/></svg>`;
}

const CSS = `
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 24px 24px;color:#1d2433;background:#f6f7f9}
h1{font-size:20px;margin:16px 0 4px}h2{font-size:15px;margin:18px 0 8px}h3{font-size:13px;margin:12px 0 4px}
.sub{color:#5b6475;margin:0 0 12px}
.cards{display:grid;grid-template-columns:repeat(6,1fr);gap:10px}
.card{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:8px 10px}
.card b{display:block;font-size:20px}.card span{color:#5b6475;font-size:12px}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:12px}
figure{margin:0;background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:8px}
figcaption{font-weight:600;margin-bottom:4px}
.key{font-weight:400;color:#5b6475;margin-left:10px;font-size:12px}
.key i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
svg.plot{width:100%;height:auto;display:block}
.frame{fill:none;stroke:#c9ced8}.grid{stroke:#eceef2}
.axis{font-size:11px;fill:#5b6475}.count{font-size:11px;fill:#1d2433}
.line{fill:none;stroke-width:1.5}.bar{fill:#4c78a8}
svg.usage{width:100%;height:18px;display:block;margin:6px 0}
.usage .track{fill:#eceef2}.usage .fill{fill:#54a24b}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e8}
td,th{padding:3px 8px;border-bottom:1px solid #eceef2;text-align:left;font-size:13px}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
td.k{font-family:ui-monospace,monospace;word-break:break-all}
.note{color:#5b6475;font-size:12px}
`;

/** What the page shows. */
export interface StatusPageInput {
  metrics: ProxyMetrics;
  /** The store's counters, if it has them. */
  stats: StoreStats | undefined;
  /** The admin prefix, for the links. */
  adminPath: string;
  /** The origin, shown in the heading. */
  origin: string;
  /** Seconds between automatic reloads; 0 for none. */
  refreshSeconds?: number;
}

/**
 * The status page.
 *
 * @param input The metrics and the store's counters.
 * @returns A complete HTML document.
 */
export function statusPage(input: StatusPageInput): string {
  const { metrics: m, stats } = input;
  const now = m.now();
  // The time since start, at least MIN_SHOWN buckets, at most the ring.
  const ring = m.series.read();
  const since = Math.floor(now / m.series.bucketMs) -
    Math.floor(m.started / m.series.bucketMs) + 1;
  const buckets = ring.slice(-Math.max(MIN_SHOWN, since));
  const bucketMs = m.series.bucketMs;
  const seconds = bucketMs / 1000;
  const total = CACHE_STATUSES.reduce((a, s) => a + m.requests[s], 0);
  const fromCache = m.requests.hit + m.requests.stale + m.requests.revalidated;
  const refresh = input.refreshSeconds ?? 10;
  const ap = escapeHtml(input.adminPath);

  const cards = [
    [String(total), "requests"],
    [total > 0 ? pct(fromCache / total) : "–", "hit ratio (all)"],
    [String(m.origin.requests), "origin requests"],
    [formatBytes(m.bytes.cache), "sent from cache"],
    [formatBytes(m.bytes.origin), "sent from origin"],
    [formatDuration(now - m.started), "uptime"],
  ].map(([v, l]) =>
    `<div class="card"><b>${escapeHtml(v!)}</b><span>${l}</span></div>`
  )
    .join("");

  const hitRatio = lineChart({
    plot: "hit-ratio",
    title: `Hit ratio per ${seconds} s`,
    buckets,
    bucketMs,
    series: [{
      name: "from cache",
      color: "#54a24b",
      values: buckets.map((b) => b.total > 0 ? b.fromCache / b.total : null),
      markZeros: true,
    }],
    yMax: 1,
    yLabel: (v) => `${Math.round(v * 100)}%`,
  });
  const rate = lineChart({
    plot: "requests",
    title: `Requests/s (${seconds} s average)`,
    buckets,
    bucketMs,
    series: [{
      name: "all",
      color: "#4c78a8",
      values: buckets.map((b) => b.total / seconds),
    }, {
      name: "from cache",
      color: "#54a24b",
      values: buckets.map((b) => b.fromCache / seconds),
    }],
    yLabel: (v) => v >= 100 ? v.toFixed(0) : String(+v.toPrecision(2)),
  });
  const bytes = lineChart({
    plot: "bytes",
    title: "Body bytes/s sent",
    buckets,
    bucketMs,
    series: [{
      name: "from cache",
      color: "#54a24b",
      values: buckets.map((b) => b.cacheBytes / seconds),
    }, {
      name: "from origin",
      color: "#e45756",
      values: buckets.map((b) => b.originBytes / seconds),
    }],
    yLabel: (v) => `${formatBytes(Math.round(v))}/s`,
  });

  const sentAll = m.bytes.cache + m.bytes.origin;
  const split =
    `<figure><figcaption>Bytes sent: from cache vs from origin</figcaption>
${usageBar("bytes-split", m.bytes.cache, sentAll)}
<div class="note">${formatBytes(m.bytes.cache)} from cache (${
      sentAll > 0 ? pct(m.bytes.cache / sentAll) : "–"
    }), ${formatBytes(m.bytes.origin)} from origin</div>
<h3>Origin</h3><table>${
      [
        ["requests", m.origin.requests],
        ["timeouts", m.origin.timeouts],
        ["unreachable", m.origin.unreachable],
        ["client bodies cut (send timeout)", m.sendTimeouts],
        ["collapsed misses served by another's fetch", m.collapsed.served],
        ["collapsed misses that timed out waiting", m.collapsed.timeout],
        ["collapsed misses sent on themselves", m.collapsed.forwarded],
        [
          "collapsed misses whose stored response was gone, not kept (waited again)",
          m.collapsed.gone,
        ],
        ["store write errors", m.storeErrors],
        ["bodies the store refused (too large)", m.storeRefusals],
      ].map(([k, v]) => `<tr><td>${k}</td><td class="n">${v}</td></tr>`).join(
        "",
      )
    }</table></figure>`;

  const store = stats === undefined
    ? `<figure><figcaption>Store</figcaption><div class="note">This store reports no counters.</div></figure>`
    : `<figure><figcaption>Store size against its limit</figcaption>
${usageBar("store", stats.diskBytes, stats.limit)}
<div class="note">${formatBytes(stats.diskBytes)} on disk of ${
      formatBytes(stats.limit)
    } (${
      pct(stats.limit > 0 ? stats.diskBytes / stats.limit : 0)
    }; the limit counts disk bytes), ${
      formatBytes(stats.bytes)
    } of data; ${stats.entries} entries of ${stats.capacity};
${stats.evictions} evicted (${
      formatBytes(stats.evictedBytes)
    }), ${stats.corruptions} dropped as damaged since open</div></figure>`;

  const sampleNote =
    `Over the ${m.sample.size} URLs this process most recently stored or served (at most ${m.sample.capacity}; the store keeps no list of its keys)`;
  const sizes = barChart("entry-sizes", "Entry body sizes", m.sizeHistogram());
  const ages = barChart(
    "entry-ages",
    "Entry ages (since received or revalidated)",
    m.ageHistogram(),
  );

  const top = m.topHits.top(15);
  const rows = top.length === 0
    ? `<tr><td colspan="3" class="note">No hits yet.</td></tr>`
    : top.map((t) =>
      `<tr><td class="k">${
        escapeHtml(t.key)
      }</td><td class="n">${t.count}</td><td class="n">${
        t.error > 0 ? `≤ ${t.error}` : "0"
      }</td></tr>`
    ).join("\n");

  const statusRows = CACHE_STATUSES.map((s) =>
    `<tr><td>${s}</td><td class="n">${m.requests[s]}</td></tr>`
  ).join("");

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${refresh > 0 ? `<meta http-equiv="refresh" content="${refresh}">` : ""}
<title>larder proxy status</title>
<link rel="icon" href="data:,">
<style>${CSS}</style></head>
<body>
<h1>larder proxy</h1>
<p class="sub">in front of <b>${escapeHtml(input.origin)}</b> · ${
    new Date(now).toISOString().replace("T", " ").slice(0, 19)
  } UTC · <a href="${ap}metrics">metrics</a> · <a href="${ap}health">health</a>${
    refresh > 0 ? ` · reloads every ${refresh} s` : ""
  }</p>
<div class="cards">${cards}</div>
<h2>Last ${Math.round(buckets.length * bucketMs / 60_000)} minutes</h2>
<div class="grid2">${hitRatio}${rate}${bytes}${split}</div>
<h2>Store</h2>
<div class="grid2">${store}
<figure><figcaption>Requests by cache status</figcaption><table>${statusRows}</table></figure></div>
<h2>Entries</h2>
<p class="note">${escapeHtml(sampleNote)}.</p>
<div class="grid2">${sizes}${ages}</div>
<h2>Top keys by hits</h2>
<p class="note">Space-saving counters over ${m.topHits.capacity} keys: a count is at most its error above the true one.</p>
<table><thead><tr><th>key</th><th class="n">hits</th><th class="n">error</th></tr></thead>
<tbody>${rows}</tbody></table>
</body></html>
`;
}
