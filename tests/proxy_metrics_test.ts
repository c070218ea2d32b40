// The proxy's counters, on their own: the time-series ring, the top-k
// counter, the entry sample and its histograms, the Prometheus text and the
// status page's plots. The clock is a parameter, set by each test.
import assert from "node:assert/strict";
import {
  EntrySample,
  ProxyMetrics,
  TimeSeries,
  TopK,
} from "../src/proxy/_metrics.ts";
import { prometheusText } from "../src/proxy/_prometheus.ts";
import { escapeHtml, statusPage } from "../src/proxy/_status_page.ts";
import { parseExposition } from "./_prometheus_parse.ts";

Deno.test("metrics TimeSeries counts per bucket and forgets a bucket the ring comes round to", async (t) => {
  let now = 1_000_000;
  const ts = new TimeSeries({ bucketMs: 1000, buckets: 4, now: () => now });
  await t.step("an empty window is zeros", () => {
    const r = ts.read();
    assert.equal(r.length, 4);
    assert.deepEqual(r.map((b) => b.start), [
      997_000,
      998_000,
      999_000,
      1_000_000,
    ]);
    assert.ok(r.every((b) => b.total === 0 && b.cacheBytes === 0));
  });
  await t.step("counts go to the current bucket", () => {
    ts.add("hit", 100);
    ts.add("hit", 50);
    ts.add("miss", 7);
    now += 999; // same bucket
    ts.add("error", 0);
    const last = ts.read().at(-1)!;
    assert.equal(last.total, 4);
    assert.equal(last.fromCache, 2);
    assert.equal(last.requests.hit, 2);
    assert.equal(last.requests.miss, 1);
    assert.equal(last.requests.error, 1);
    assert.equal(last.cacheBytes, 150);
    assert.equal(last.originBytes, 7);
  });
  await t.step("later buckets; a gap stays zero", () => {
    now = 1_002_000; // two buckets on
    ts.add("stale", 10);
    ts.addBytes("bypass", 5);
    const r = ts.read();
    assert.deepEqual(r.map((b) => b.total), [0, 4, 0, 1]);
    assert.deepEqual(r.map((b) => b.originBytes), [0, 7, 0, 5]);
    assert.deepEqual(r.map((b) => b.start), [
      999_000,
      1_000_000,
      1_001_000,
      1_002_000,
    ]);
  });
  await t.step("a bucket the ring reuses starts from zero", () => {
    now = 1_004_000; // slot of 1_000_000 comes round
    ts.add("miss", 1);
    const r = ts.read();
    assert.deepEqual(r.map((b) => b.start), [
      1_001_000,
      1_002_000,
      1_003_000,
      1_004_000,
    ]);
    assert.deepEqual(r.map((b) => b.total), [0, 1, 0, 1]);
    now = 1_010_000; // past the whole window
    assert.ok(ts.read().every((b) => b.total === 0));
  });
  await t.step("bad shapes", () => {
    assert.throws(() => new TimeSeries({ buckets: 0 }), RangeError);
    assert.throws(() => new TimeSeries({ bucketMs: 0 }), RangeError);
    assert.throws(() => new TimeSeries({ buckets: 1.5 }), RangeError);
  });
});

Deno.test("metrics TopK keeps the heavy hitters within its error bound", async (t) => {
  await t.step("exact while under capacity", () => {
    const top = new TopK(4);
    for (const k of ["a", "b", "a", "c", "a", "b"]) top.add(k);
    assert.deepEqual(top.top(), [
      { key: "a", count: 3, error: 0 },
      { key: "b", count: 2, error: 0 },
      { key: "c", count: 1, error: 0 },
    ]);
    assert.deepEqual(top.top(1).map((t) => t.key), ["a"]);
  });
  await t.step("a skewed stream over many keys", () => {
    // Seeded: keys 0..9 are hot (200 hits each), 5,000 cold keys get 1 to 3.
    let seed = 7;
    const rand = () =>
      (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const stream: string[] = [];
    for (let h = 0; h < 10; h++) {
      for (let i = 0; i < 200; i++) stream.push(`hot${h}`);
    }
    for (let c = 0; c < 5000; c++) {
      for (let i = 0; i < 1 + Math.floor(rand() * 3); i++) {
        stream.push(`cold${c}`);
      }
    }
    for (let i = stream.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [stream[i], stream[j]] = [stream[j]!, stream[i]!];
    }
    const truth = new Map<string, number>();
    for (const k of stream) truth.set(k, (truth.get(k) ?? 0) + 1);
    const top = new TopK(64);
    for (const k of stream) top.add(k);
    const reported = top.top();
    assert.equal(reported.length, 64);
    // Every key over total/capacity hits is kept (the space-saving bound).
    const threshold = stream.length / 64;
    for (const [k, n] of truth) {
      if (n > threshold) assert.ok(reported.some((r) => r.key === k), k);
    }
    // Each count over-counts by at most its error, never under-counts.
    for (const r of reported) {
      const real = truth.get(r.key)!;
      assert.ok(r.count >= real, `${r.key}: ${r.count} < ${real}`);
      assert.ok(r.count - r.error <= real, `${r.key}: error too small`);
    }
    // The ten hot keys lead.
    assert.deepEqual(
      reported.slice(0, 10).map((r) => r.key).sort(),
      Array.from({ length: 10 }, (_, h) => `hot${h}`).sort(),
    );
    // The counts add up to the stream's length.
    assert.equal(reported.reduce((a, r) => a + r.count, 0), stream.length);
  });
  await t.step("bad capacity", () => {
    assert.throws(() => new TopK(0), RangeError);
    assert.throws(() => new TopK(2.5), RangeError);
  });
});

Deno.test("metrics EntrySample replaces the least recently seen URL (CLOCK)", () => {
  const s = new EntrySample(3);
  s.seen("a", 10, 1);
  s.seen("b", 20, 2);
  s.seen("c", 30, 3);
  s.seen("a", undefined, 4); // keeps its size; spared once by the hand
  s.seen("d", 40, 5); // replaces b, the least recently seen
  assert.equal(s.size, 3);
  assert.deepEqual([...s.values()], [
    { size: 10, time: 4 },
    { size: 40, time: 5 },
    { size: 30, time: 3 },
  ]);
  assert.equal(s.sizeOf("b"), undefined);
  assert.equal(s.sizeOf("a"), 10);
  s.seen("e", undefined, 6); // no size known: not sampled
  assert.equal(s.sizeOf("e"), undefined);
  assert.equal(s.size, 3);
  s.drop("a");
  assert.equal(s.size, 2);
  s.seen("f", 60, 7); // the hand is at c, not seen again: replaced
  assert.deepEqual([...s.values()], [{ size: 40, time: 5 }, {
    size: 60,
    time: 7,
  }]);
  s.seen("f", 61, 8);
  s.trimTo(1); // d goes: f was seen again
  assert.deepEqual([...s.values()], [{ size: 61, time: 8 }]);
  s.trimTo(5);
  assert.equal(s.size, 1);
  assert.throws(() => new EntrySample(0), RangeError);
});

Deno.test("metrics EntrySample keeps a hot set through a stream of one-off URLs", () => {
  const s = new EntrySample(100);
  for (let i = 0; i < 10_000; i++) {
    s.seen(`hot${i % 50}`, 1, i); // each seen every 50 calls
    s.seen(`cold${i}`, 2, i);
  }
  for (let h = 0; h < 50; h++) assert.equal(s.sizeOf(`hot${h}`), 1, `hot${h}`);
  assert.equal(s.size, 100);
});

Deno.test("metrics ProxyMetrics histograms and duration buckets", () => {
  let now = 10_000_000;
  const m = new ProxyMetrics({ now: () => now, sampleEntries: 100 });
  for (const size of [0, 500, 1024, 5000, 70_000, 2 ** 20, 20 * 2 ** 20]) {
    m.sample.seen(`/s${size}`, size, now);
  }
  const sizes = m.sizeHistogram();
  assert.deepEqual(sizes.map((b) => b.count), [2, 1, 1, 0, 1, 0, 1, 0, 1]);
  m.sample.seen("/old", 1, now - 2 * 3600_000);
  now += 30_000;
  const ages = m.ageHistogram();
  // Seven at 30 s, one at 2 h 30 s.
  assert.deepEqual(ages.map((b) => b.count), [7, 0, 0, 1, 0, 0, 0]);
  m.request({ status: "hit", bytes: 10, seconds: 0.0004, key: "/a" });
  m.request({ status: "hit", bytes: 10, seconds: 0.002, key: "/a" });
  m.request({ status: "miss", bytes: 30, seconds: 60, key: "/b" });
  assert.deepEqual(m.durations.hit.buckets.slice(0, 3), [1, 0, 1]);
  assert.equal(m.durations.miss.buckets.reduce((a, b) => a + b, 0), 0); // +Inf only
  assert.deepEqual(m.bytes, { cache: 20, origin: 30 });
  assert.deepEqual(m.topHits.top(), [{ key: "/a", count: 2, error: 0 }]);
});

Deno.test("metrics prometheusText is well-formed and its counters grow", () => {
  let now = 5_000_000;
  const m = new ProxyMetrics({ now: () => now });
  const stats = {
    hits: 0,
    misses: 0,
    hitBytes: 0,
    dataBytesRead: 0,
    entries: 3,
    bytes: 1234,
    limit: 2 ** 20,
    hysteresis: 0,
    capacity: 65536,
    stores: 3,
    invalidations: 0,
    evictions: 1,
    evictedBytes: 10,
    corruptions: 0,
    pinned: 0,
    deferredBytes: 0,
    repairedOnOpen: 0,
    dataSlotsUsed: 1,
    metaSlotsUsed: 3,
    sharedElements: 2,
    bytesSaved: 500,
    diskBytes: 1 << 20,
  };
  m.request({ status: "miss", bytes: 100, seconds: 0.003, key: "/a" });
  const first = parseExposition(prometheusText(m, stats));
  m.request({ status: "hit", bytes: 100, seconds: 0.0001, key: "/a" });
  m.origin.requests++;
  m.collapsed.served++;
  now += 1000;
  const second = parseExposition(prometheusText(m, { ...stats, evictions: 2 }));
  assert.equal(
    first.value("larder_proxy_requests_total", { cache: "miss" }),
    1,
  );
  assert.equal(
    second.value("larder_proxy_requests_total", { cache: "hit" }),
    1,
  );
  assert.equal(second.value("larder_store_bytes", {}), 1234);
  assert.equal(second.value("larder_store_limit_bytes", {}), 2 ** 20);
  assert.equal(second.value("larder_store_disk_bytes", {}), 1 << 20);
  assert.equal(second.value("larder_store_shared_elements", {}), 2);
  assert.equal(second.value("larder_store_saved_bytes", {}), 500);
  assert.equal(
    second.value("larder_proxy_response_seconds_bucket", {
      cache: "hit",
      le: "0.0005",
    }),
    1,
  );
  assert.equal(
    second.value("larder_proxy_response_seconds_count", { cache: "miss" }),
    1,
  );
  second.assertCountersGrew(first);
  // The parser catches what a scraper would reject.
  assert.throws(() => parseExposition("foo 1\n"), /no TYPE/);
  assert.throws(
    () => parseExposition("# HELP a x\n# TYPE a counter\na 1\n"),
    /_total/,
  );
  assert.throws(
    () => parseExposition("# HELP 1a x\n# TYPE 1a gauge\n1a 1\n"),
    /name/,
  );
  assert.throws(
    () =>
      parseExposition(
        "# HELP a_total x\n# TYPE a_total counter\na_total one\n",
      ),
    /value/,
  );
  const dropped = parseExposition(
    "# HELP a_total x\n# TYPE a_total counter\na_total 1\n",
  );
  assert.throws(
    () =>
      parseExposition("# HELP a_total x\n# TYPE a_total counter\na_total 0\n")
        .assertCountersGrew(dropped),
    /went down/,
  );
});

Deno.test("metrics statusPage escapes keys and draws a point per bucket with data", () => {
  let now = 7_200_000;
  const m = new ProxyMetrics({
    now: () => now,
    bucketMs: 10_000,
    buckets: 360,
  });
  const evil = `/<script>alert("x")</script>?a=1&b='2'`;
  m.request({ status: "miss", bytes: 10, seconds: 0.01, key: evil });
  m.request({ status: "hit", bytes: 10, seconds: 0.001, key: evil });
  now += 20_000; // two buckets later
  m.request({ status: "hit", bytes: 10, seconds: 0.001, key: evil });
  m.sample.seen(evil, 10, now);
  const html = statusPage({
    metrics: m,
    stats: undefined,
    adminPath: "/_larder/",
    origin: "http://o/<b>",
  });
  assert.ok(!html.includes("<script>"));
  assert.ok(html.includes(escapeHtml(evil)));
  assert.ok(html.includes("http://o/&#60;b&#62;"));
  assert.ok(!/\s(src|href)="(https?:)?\/\//.test(html), "no external asset");
  const plot = (name: string) => {
    const m = new RegExp(
      `<svg class="plot" data-plot="${name}"[^>]*>([\\s\\S]*?)</svg>`,
    )
      .exec(html);
    assert.ok(m !== null, name);
    const attr = (a: string) =>
      Number(new RegExp(`${a}="(\\d+)"`).exec(m[0])![1]);
    return {
      buckets: attr("data-buckets"),
      points: attr("data-points"),
      circles: (m[1]!.match(/<circle /g) ?? []).length,
      bars: (m[1]!.match(/<rect class="bar"/g) ?? []).length,
      lines: [...m[1]!.matchAll(/<polyline [^>]*points="([^"]*)"/g)].map((l) =>
        l[1]!.split(" ").length
      ),
    };
  };
  // Just started: the plots span 10 minutes.
  const ratio = plot("hit-ratio");
  assert.equal(ratio.buckets, 60);
  assert.equal(ratio.points, 2);
  assert.equal(ratio.circles, 2);
  assert.deepEqual(ratio.lines, [1, 1]); // two runs: a gap between
  const rate = plot("requests");
  assert.equal(rate.circles, 4); // all: 2 buckets, from cache: 2 buckets
  assert.deepEqual(rate.lines, [60, 60]);
  assert.equal(plot("entry-sizes").bars, 1);
  assert.equal(plot("entry-ages").bars, 1);
});

Deno.test("metrics statusPage spans the time since start, at most the ring", () => {
  let now = 1_000_000_000;
  const m = new ProxyMetrics({
    now: () => now,
    bucketMs: 10_000,
    buckets: 360,
  });
  const spans = () => {
    const html = statusPage({
      metrics: m,
      stats: undefined,
      adminPath: "/_larder/",
      origin: "http://o/",
    });
    return Number(/data-plot="requests" data-buckets="(\d+)"/.exec(html)![1]);
  };
  assert.equal(spans(), 60);
  now += 20 * 60_000; // 20 minutes on: 121 buckets since start
  assert.equal(spans(), 121);
  now += 2 * 3600_000;
  assert.equal(spans(), 360);
});
