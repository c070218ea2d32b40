import assert from "node:assert/strict";
import type { Hit } from "../mod.ts";
import { bytesFor, read, tempStore } from "./_helpers.ts";

const LIMIT = 100_000;
const HYSTERESIS = 20_000;

/** Fetches and holds `keys`, then replaces each: its old bytes stay pinned. */
async function holdAcrossReplacement(
  store: import("../mod.ts").BackingStore,
  keys: string[],
  size: number,
): Promise<Hit[]> {
  const hits: Hit[] = [];
  for (const k of keys) {
    const hit = await store.fetch(k);
    assert.ok(hit !== undefined, k);
    hits.push(hit);
  }
  for (const k of keys) await store.store(k, bytesFor(`new ${k}`, size));
  return hits;
}

Deno.test("references held across replacements do not make stores evict every unpinned entry", async () => {
  await using s = await tempStore({ limit: LIMIT, hysteresis: HYSTERESIS });
  const st = s.store;
  const held = Array.from({ length: 12 }, (_, i) => `h${i}`);
  for (const k of held) await st.store(k, bytesFor(k, 5000));
  const hits = await holdAcrossReplacement(st, held, 5000);
  let stats = st.stats();
  assert.equal(stats.deferredBytes, 60_000);
  assert.equal(stats.bytes, 120_000, "usage passes the limit meanwhile");
  assert.equal(stats.evictions, 0, "nothing eviction could free was due");
  for (const k of held) {
    assert.deepEqual(await read(st, k), bytesFor(`new ${k}`, 5000), k);
  }
  // Fill to the limit and beyond with more entries: each eviction frees
  // what live bytes need, no more.
  let lastEvictions = 0;
  for (let i = 0; i < 40; i++) {
    const before = st.stats();
    await st.store(`u${i}`, bytesFor(`u${i}`, 2000));
    stats = st.stats();
    const live = stats.bytes - stats.deferredBytes;
    assert.ok(live < LIMIT, `live bytes over the limit after u${i}: ${live}`);
    if (stats.evictions > lastEvictions) {
      const freed = before.bytes - before.deferredBytes + 2000 - live;
      assert.ok(
        freed > HYSTERESIS && freed <= HYSTERESIS + 5000,
        `round at u${i} freed ${freed} bytes`,
      );
      assert.ok(stats.entries > 20, `only ${stats.entries} entries left`);
      lastEvictions = stats.evictions;
    }
  }
  assert.ok(lastEvictions > 0, "the live bytes did reach the limit");
  assert.deepEqual(await read(st, "u39"), bytesFor("u39", 2000));
  assert.deepEqual(await read(st, "u38"), bytesFor("u38", 2000));
  // Released, the superseded bytes are freed: usage is under the limit.
  for (const hit of hits) hit.release();
  stats = st.stats();
  assert.equal(stats.deferredBytes, 0);
  assert.ok(stats.bytes < LIMIT, `${stats.bytes} bytes after release`);
  for (let i = 40; i < 60; i++) {
    await st.store(`u${i}`, bytesFor(`u${i}`, 2000));
    assert.ok(st.stats().bytes < LIMIT);
  }
  // The holders kept their old bytes throughout.
  assert.deepEqual(hits[0]!.data, bytesFor("h0", 5000));
});

Deno.test("superseded bytes held past pinTimeoutMs are freed by the next store over the limit", async () => {
  await using s = await tempStore({
    limit: LIMIT,
    hysteresis: HYSTERESIS,
    pinTimeoutMs: 50,
    maintenanceDelayMs: 60_000, // the maintenance timer does not do it
  });
  const st = s.store;
  const held = Array.from({ length: 12 }, (_, i) => `h${i}`);
  for (const k of held) await st.store(k, bytesFor(k, 5000));
  const hits = await holdAcrossReplacement(st, held, 5000);
  assert.equal(st.stats().deferredBytes, 60_000);
  await new Promise((r) => setTimeout(r, 80));
  await st.store("one more", bytesFor("one more", 100));
  const stats = st.stats();
  assert.equal(stats.deferredBytes, 0, "the timed-out pins ended");
  assert.equal(stats.bytes, 60_100);
  assert.equal(stats.evictions, 0);
  assert.deepEqual(hits[5]!.data, bytesFor("h5", 5000), "holders keep bytes");
  for (const hit of hits) hit.release(); // after the pin ended: a no-op
});
