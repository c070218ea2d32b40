/**
 * `deno task demo [DIR]`: larder on a default store, as a server would
 * use it. Puts a few thousand synthetic responses (URL, headers, body) in
 * the store, closes it, reopens it as after a restart, serves them back
 * (checking every byte), invalidates some, then squeezes the limit to show
 * eviction. Prints what it did. DIR defaults to ./.larder-demo; the store
 * is kept so a second run shows the restart case.
 *
 * @module
 */
import { BackingStore } from "./mod.ts";

const dir = Deno.args[0] ?? "./.larder-demo";
const COUNT = 3000;
const enc = new TextEncoder();

function response(
  i: number,
): { url: string; headers: Uint8Array; body: Uint8Array } {
  const url = `https://cdn${i % 7}.example/assets/${i}.${
    ["js", "css", "png", "json"][i % 4]
  }?v=${i * 7919}`;
  const size = i % 10 === 0
    ? 20_000 + (i * 131) % 200_000
    : 200 + (i * 977) % 6000;
  const body = new Uint8Array(size);
  for (let j = 0; j < size; j++) body[j] = (i * 31 + j * 17) & 0xff;
  const headers = enc.encode(
    JSON.stringify({
      "content-type": "application/octet-stream",
      "content-length": size,
    }),
  );
  return { url, headers, body };
}

function same(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && a.length === b.length &&
    a.every((v, j) => v === b[j]);
}

const ms = (t: number) => `${(performance.now() - t).toFixed(0)} ms`;
const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

console.log(`larder demo: store in ${dir}`);
let t = performance.now();
{
  await using store = await BackingStore.open(dir);
  const before = store.stats();
  console.log(
    `opened in ${ms(t)}: ${before.entries} entries, ${
      mb(before.bytes)
    } from an earlier run`,
  );
  t = performance.now();
  let bytes = 0;
  for (let i = 0; i < COUNT; i++) {
    const r = response(i);
    // Body and headers as one entry: one call, one journal operation.
    await store.storeEntry(r.url, r.body, r.headers);
    bytes += r.body.length + r.headers.length;
  }
  console.log(
    `stored ${COUNT} responses (${mb(bytes)}, body + headers) in ${ms(t)}`,
  );
}
console.log("closed the store (index written); reopening as after a restart");

t = performance.now();
await using store = await BackingStore.open(dir);
console.log(
  `reopened in ${ms(t)}: ${store.stats().entries} entries, ${
    mb(store.stats().bytes)
  }`,
);
t = performance.now();
let good = 0;
for (let i = 0; i < COUNT; i++) {
  const r = response(i);
  using hit = await store.fetchEntry(r.url);
  if (same(hit?.data, r.body) && same(hit?.meta, r.headers)) good++;
}
console.log(`served ${good}/${COUNT} responses byte-for-byte in ${ms(t)}`);

let gone = 0;
for (let i = 0; i < COUNT; i += 10) {
  if (await store.invalidate(response(i).url)) gone++;
}
console.log(
  `invalidated ${gone} responses; fetching one now misses: ${
    await store.fetch(response(0).url) === undefined
  }`,
);
await store.close();

const limit = 4 * 2 ** 20;
await using small = await BackingStore.open(dir, { limit });
const s = small.stats();
console.log(
  `reopened with a ${mb(limit)} limit: evicted ${s.evictions} entries (${
    mb(s.evictedBytes)
  }), ` +
    `${s.entries} entries and ${mb(s.bytes)} remain`,
);
console.log("stats:", small.stats());
