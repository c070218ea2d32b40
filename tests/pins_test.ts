import assert from "node:assert/strict";
import {
  bytesFor,
  FILE_SIZED,
  largeFiles,
  read,
  slotsFor,
  tempStore,
} from "./_helpers.ts";

Deno.test("concurrent fetches of one element share it", async () => {
  await using s = await tempStore();
  await s.store.store("k", bytesFor("k", 5000));
  const [a, b] = await Promise.all([s.store.fetch("k"), s.store.fetch("k")]);
  assert.ok(a !== undefined && b !== undefined);
  assert.equal(a.data, b.data, "one buffer, two references");
  assert.equal(s.store.stats().pinned, 1);
  a.release();
  a.release(); // idempotent: does not end b's reference
  assert.equal(s.store.stats().pinned, 1);
  b.release();
  assert.equal(s.store.stats().pinned, 0);
  using c = await s.store.fetch("k");
  assert.notEqual(
    c?.data,
    a.data,
    "a new fetch after the last release reads again",
  );
  assert.deepEqual(c?.data, a.data);
});

Deno.test("invalidating a referenced entry hides it at once and frees storage at the last release", async () => {
  await using s = await tempStore();
  await s.store.store("k", bytesFor("k", FILE_SIZED));
  const a = await s.store.fetch("k");
  const b = await s.store.fetch("k");
  assert.equal(await s.store.invalidate("k"), true);
  assert.equal(await read(s.store, "k"), undefined, "hidden from fetch");
  assert.equal(largeFiles(s.dir).length, 1, "storage kept while referenced");
  assert.equal(s.store.stats().deferredBytes, FILE_SIZED);
  a?.release();
  assert.equal(largeFiles(s.dir).length, 1);
  b?.release();
  assert.deepEqual(largeFiles(s.dir), [], "freed at the last release");
  assert.equal(s.store.stats().bytes, 0);
  assert.deepEqual(
    a?.data,
    bytesFor("k", FILE_SIZED),
    "holders keep their bytes",
  );
});

Deno.test("replacing a referenced element serves the new bytes and frees the old at release", async () => {
  await using s = await tempStore();
  await s.store.store("k", bytesFor("old", 300));
  const old = await s.store.fetch("k");
  await s.store.store("k", bytesFor("new", 400));
  assert.deepEqual(await read(s.store, "k"), bytesFor("new", 400));
  assert.deepEqual(old?.data, bytesFor("old", 300));
  assert.equal(
    s.store.stats().dataSlotsUsed,
    slotsFor("k", 300) + slotsFor("k", 400),
    "old slots held by the reference",
  );
  old?.release();
  assert.equal(s.store.stats().dataSlotsUsed, slotsFor("k", 400));
  assert.equal(s.store.stats().bytes, 400);
});

Deno.test("a garbage-collected reference releases itself", async () => {
  await using s = await tempStore();
  await s.store.store("k", bytesFor("k", 100));
  await (async () => {
    await s.store.fetch("k"); // dropped without release
  })();
  assert.equal(s.store.stats().pinned, 1);
  // deno task test passes --v8-flags=--expose-gc.
  const gc = (globalThis as { gc?: () => void }).gc;
  assert.ok(gc !== undefined, "run with --v8-flags=--expose-gc");
  for (let i = 0; i < 50 && s.store.stats().pinned > 0; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(s.store.stats().pinned, 0);
});

Deno.test("closing with live references keeps the holders' bytes and frees deferred storage", async () => {
  await using s = await tempStore();
  await s.store.store("k", bytesFor("k", 40_000));
  const held = await s.store.fetch("k");
  await s.store.invalidate("k");
  await s.store.close();
  assert.deepEqual(largeFiles(s.dir), []);
  assert.deepEqual(held?.data, bytesFor("k", 40_000));
  held?.release(); // after close: a no-op, not an error
});
