import assert from "node:assert/strict";
import { bytesFor, read, tempStore } from "./_helpers.ts";

Deno.test("eviction keeps the store under its limit and frees more than the hysteresis", async () => {
  const limit = 100_000;
  const hysteresis = 20_000;
  await using s = await tempStore({ limit, hysteresis });
  let lastEvictions = 0;
  let lastBytes = 0;
  for (let i = 0; i < 400; i++) {
    const size = 500 + (i * 7919) % 4000;
    await s.store.store(`k${i}`, bytesFor(`k${i}`, size));
    const st = s.store.stats();
    assert.ok(st.bytes < limit, `over the limit after store ${i}: ${st.bytes}`);
    if (st.evictions > lastEvictions) {
      // An eviction round ran: it freed more than the hysteresis.
      assert.ok(
        lastBytes + size - st.bytes > hysteresis,
        `round at ${i} freed too little`,
      );
      lastEvictions = st.evictions;
    }
    lastBytes = st.bytes;
  }
  assert.ok(s.store.stats().evictions > 0);
  assert.ok(s.store.stats().evictedBytes > 0);
});

Deno.test("eviction takes the least used first, then the oldest", async () => {
  await using s = await tempStore({ limit: 10_000, hysteresis: 2_500 });
  const st = s.store;
  for (const k of ["a", "b", "c", "d", "e", "f", "g", "h"]) {
    await st.store(k, bytesFor(k, 1000));
  }
  // Use counts: a,b,c,d fetched twice more; e,f once; g,h never.
  for (const k of ["a", "b", "c", "d", "a", "b", "c", "d", "e", "f"]) {
    (await st.fetch(k))?.release();
  }
  await st.store("new", bytesFor("new", 2000)); // 10,000 reached: evict > 2,500
  const present = [];
  for (const k of ["a", "b", "c", "d", "e", "f", "g", "h", "new"]) {
    if ((await read(st, k)) !== undefined) present.push(k);
  }
  // g and h (use 1) go first, then the oldest use-2 entry (e); everyone
  // else stays, and the new entry is never its own victim.
  assert.deepEqual(present, ["a", "b", "c", "d", "f", "new"]);
});

Deno.test("entries with live references are evicted last", async () => {
  await using s = await tempStore({ limit: 10_000, hysteresis: 1 });
  const st = s.store;
  await st.store("held", bytesFor("held", 3000));
  using held = await st.fetch("held"); // use count 2 now, and pinned
  for (let i = 0; i < 5; i++) {
    await st.store(`o${i}`, bytesFor(`o${i}`, 1000));
    for (let j = 0; j < 5; j++) (await st.fetch(`o${i}`))?.release(); // more used than held
  }
  await st.store("big", bytesFor("big", 4000));
  assert.ok(held !== undefined);
  assert.notEqual(
    await read(st, "held"),
    undefined,
    "the pinned entry survived",
  );
  assert.equal(st.stats().evictions > 0, true);
});

Deno.test("an unreleased reference stops protecting its entry after pinTimeoutMs", async () => {
  await using s = await tempStore({
    limit: 10_000,
    hysteresis: 1,
    pinTimeoutMs: 0,
  });
  const st = s.store;
  await st.store("leaked", bytesFor("leaked", 5000));
  const leaked = await st.fetch("leaked"); // never released
  for (let i = 0; i < 3; i++) {
    await st.store(`o${i}`, bytesFor(`o${i}`, 1000));
    for (let j = 0; j < 5; j++) (await st.fetch(`o${i}`))?.release();
  }
  await st.store("big", bytesFor("big", 4000));
  assert.equal(
    await read(st, "leaked"),
    undefined,
    "evicted despite the leaked reference",
  );
  assert.deepEqual(
    leaked?.data,
    bytesFor("leaked", 5000),
    "the holder keeps its bytes",
  );
  assert.equal(st.stats().deferredBytes, 0, "its storage was freed");
  assert.ok(st.stats().bytes < 10_000);
});

Deno.test("reopening with a smaller limit evicts below limit minus hysteresis", async () => {
  await using s = await tempStore();
  for (let i = 0; i < 200; i++) {
    await s.store.store(`k${i}`, bytesFor(`k${i}`, 5000));
  }
  await s.store.close();
  const { BackingStore } = await import("../mod.ts");
  await using st = await BackingStore.open(s.dir, {
    limit: 200_000,
    hysteresis: 50_000,
  });
  const stats = st.stats();
  assert.ok(stats.bytes <= 150_000, `${stats.bytes} bytes remain`);
  assert.ok(stats.bytes > 100_000, "but not much more than needed was evicted");
  assert.equal(stats.entries, stats.bytes / 5000);
});
