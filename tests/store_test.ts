import assert from "node:assert/strict";
import {
  BackingStore,
  ClosedError,
  MAX_KEY_BYTES,
  type OpenOptions,
  StoreError,
} from "../mod.ts";
import {
  bytesFor,
  largeFiles,
  read,
  slotsFor,
  tempDir,
  tempStore,
} from "./_helpers.ts";
import { readEntries } from "../src/journal.ts";

Deno.test("store keeps data and metadata as separate elements", async () => {
  await using t = await tempStore();
  const url = "https://example.com/app.js";
  const body = bytesFor("body", 3000);
  const meta = bytesFor("meta", 500);
  await t.store.store(url, body);
  assert.equal(
    await t.store.fetch(url, { meta: true }),
    undefined,
    "no metadata yet",
  );
  await t.store.store(url, meta, { meta: true });
  using b = await t.store.fetch(url);
  using m = await t.store.fetch(url, { meta: true });
  assert.deepEqual(b?.data, body);
  assert.deepEqual(m?.data, meta);
  assert.equal(m?.meta, true);
  assert.equal(b?.key, url);
});

Deno.test("store round-trips every size class across a reopen", async () => {
  await using dir = await tempDir();
  // Around each slot boundary (8 KiB data, 1 KiB meta, minus header+key) and large.
  const sizes = [
    0,
    1,
    127,
    1000,
    1024,
    4096,
    8100,
    8192,
    8193,
    65536,
    300_000,
    1_500_000,
  ];
  const key = (s: number, m: boolean) => `k-${s}-${m}`;
  {
    await using store = await BackingStore.open(dir.path);
    for (const s of sizes) {
      for (const m of [false, true]) {
        await store.store(key(s, m), bytesFor(key(s, m), s), { meta: m });
      }
    }
  }
  await using store = await BackingStore.open(dir.path);
  assert.equal(store.stats().entries, sizes.length * 2);
  for (const s of sizes) {
    for (const m of [false, true]) {
      using hit = await store.fetch(key(s, m), { meta: m });
      assert.deepEqual(hit?.data, bytesFor(key(s, m), s), key(s, m));
    }
  }
});

Deno.test("store replaces an element and the old value is gone", async (t) => {
  await using s = await tempStore();
  const st = s.store;
  await t.step("slot to slot", async () => {
    await st.store("a", bytesFor("1", 100));
    await st.store("a", bytesFor("2", 200));
    assert.deepEqual(await read(st, "a"), bytesFor("2", 200));
  });
  await t.step("slot to large file and back", async () => {
    await st.store("b", bytesFor("3", 100));
    await st.store("b", bytesFor("4", 50_000));
    assert.deepEqual(await read(st, "b"), bytesFor("4", 50_000));
    await st.store("b", bytesFor("5", 10));
    assert.deepEqual(await read(st, "b"), bytesFor("5", 10));
    assert.deepEqual(largeFiles(s.dir), [], "the large file was removed");
  });
  assert.equal(st.stats().entries, 2);
  assert.equal(st.stats().bytes, 200 + 10);
});

Deno.test("URL keys are normalised, other strings are verbatim", async () => {
  await using s = await tempStore();
  await s.store.store("HTTP://Example.COM:80/a/./b/../c", bytesFor("x", 10));
  assert.deepEqual(
    await read(s.store, "http://example.com/a/c"),
    bytesFor("x", 10),
  );
  assert.deepEqual(
    await read(s.store, new URL("http://example.com/a/c#top")),
    bytesFor("x", 10),
  );
  await s.store.store("Plain Key", bytesFor("y", 10));
  assert.equal(await s.store.fetch("plain key"), undefined);
  assert.equal(s.store.stats().entries, 2);
});

Deno.test("invalidate removes both elements and reports whether it existed", async () => {
  await using s = await tempStore();
  await s.store.store("k", bytesFor("d", 20_000));
  await s.store.store("k", bytesFor("m", 100), { meta: true });
  assert.equal(await s.store.invalidate("k"), true);
  assert.equal(await s.store.invalidate("k"), false);
  assert.equal(await s.store.fetch("k"), undefined);
  assert.equal(await s.store.fetch("k", { meta: true }), undefined);
  assert.equal(s.store.stats().bytes, 0);
  assert.deepEqual(largeFiles(s.dir), []);
});

Deno.test("stats count hits, misses and served bytes", async () => {
  await using s = await tempStore({ limit: 10_000_000 });
  await s.store.store("a", bytesFor("a", 1000));
  (await s.store.fetch("a"))?.release();
  (await s.store.fetch("a"))?.release();
  await s.store.fetch("missing");
  const st = s.store.stats();
  assert.equal(st.hits, 2);
  assert.equal(st.misses, 1);
  assert.equal(st.hitBytes, 2000);
  assert.equal(st.entries, 1);
  assert.equal(st.bytes, 1000);
  assert.equal(st.limit, 10_000_000);
  assert.equal(st.hysteresis, 2_000_000);
  assert.equal(st.capacity, 65536);
  assert.equal(st.stores, 1);
  // The 64-byte slots header, key and bytes need (FORMAT.md §5.3).
  assert.equal(st.dataSlotsUsed, slotsFor("a", 1000));
  assert.equal(st.diskBytes, slotsFor("a", 1000) * 64);
  assert.equal(st.metaSlotsUsed, 0);
});

Deno.test("bad arguments throw TypeError/RangeError before anything changes", async (t) => {
  await using s = await tempStore({ limit: 1_000_000 });
  const st = s.store;
  await st.store("keep", bytesFor("keep", 10));
  const before = st.stats();
  await t.step("bad key types", async () => {
    for (const k of [1, null, undefined, {}, new Uint8Array(2)]) {
      await assert.rejects(
        st.store(k as unknown as string, new Uint8Array(1)),
        TypeError,
      );
      await assert.rejects(st.fetch(k as unknown as string), TypeError);
      await assert.rejects(st.invalidate(k as unknown as string), TypeError);
    }
  });
  await t.step("bad element types", async () => {
    for (
      const b of ["str", [1, 2], new ArrayBuffer(4), new Uint16Array(2), null]
    ) {
      await assert.rejects(
        st.store("k", b as unknown as Uint8Array),
        TypeError,
      );
    }
  });
  await t.step("too long key, too large element", async () => {
    await assert.rejects(
      st.store("x".repeat(MAX_KEY_BYTES + 1), new Uint8Array(1)),
      RangeError,
    );
    await assert.rejects(st.store("k", new Uint8Array(1_000_001)), RangeError);
  });
  await t.step("bad options", async () => {
    await using d = await tempDir();
    const bad = [
      { entryBits: 7 },
      { entryBits: 25 },
      { entryBits: 16, identBits: 16 },
      { identBits: 29 },
      { limit: 0 },
      { limit: 1.5 },
      { hysteresis: -1 },
      { limit: 10, hysteresis: 11 },
      { hash: "md5" },
    ];
    for (const o of bad) {
      await assert.rejects(
        BackingStore.open(d.path, o as never),
        RangeError,
        JSON.stringify(o),
      );
    }
    await assert.rejects(
      BackingStore.open(d.path, { limit: "1" as unknown as number }),
      TypeError,
    );
    assert.deepEqual([...Deno.readDirSync(d.path)], [], "nothing was created");
  });
  const after = st.stats();
  assert.equal(after.entries, before.entries);
  assert.equal(after.bytes, before.bytes);
  assert.deepEqual((await st.fetch("keep"))?.data, bytesFor("keep", 10));
});

Deno.test("a closed store rejects calls with CLOSED; close is idempotent", async () => {
  await using d = await tempDir();
  const store = await BackingStore.open(d.path);
  await store.store("a", new Uint8Array(3));
  await store.close();
  await store.close();
  for (
    const p of [
      store.store("a", new Uint8Array(1)),
      store.fetch("a"),
      store.invalidate("a"),
      store.flush(),
    ]
  ) {
    const err = await assert.rejects(p, ClosedError);
    void err;
  }
  await assert.rejects(
    store.fetch("a"),
    (e: unknown) => e instanceof StoreError && e.code === "CLOSED",
  );
});

Deno.test("concurrent calls stay consistent", async () => {
  await using s = await tempStore();
  const st = s.store;
  const keys = Array.from({ length: 500 }, (_, i) => `https://h.example/${i}`);
  await Promise.all(keys.map((k, i) => st.store(k, bytesFor(k, 100 + i * 37))));
  const hits = await Promise.all(keys.map((k) => st.fetch(k)));
  hits.forEach((h, i) => {
    assert.deepEqual(h?.data, bytesFor(keys[i]!, 100 + i * 37));
    h?.release();
  });
  // Many writers on one key: the survivor is exactly one of the values.
  const values = Array.from(
    { length: 50 },
    (_, i) => bytesFor(`v${i}`, i % 2 ? 100 + i : 20_000 + i),
  );
  await Promise.all(values.map((v) => st.store("contended", v)));
  using h = await st.fetch("contended");
  assert.ok(
    values.some((v) =>
      v.length === h!.data.length && v.every((b, j) => h!.data[j] === b)
    ),
  );
  await Promise.all([
    ...keys.map((k) => st.invalidate(k)),
    ...keys.map((k) => st.fetch(k).then((x) => x?.release())),
  ]);
  assert.equal(st.stats().entries, 1);
  assert.equal(largeFiles(s.dir).length, h!.data.length > 8000 ? 1 : 0);
});

Deno.test("changes are journaled at once; flush writes a snapshot and empties the journal", async () => {
  await using d = await tempDir();
  const store = await BackingStore.open(d.path, { maintenanceDelayMs: 60_000 });
  const journal = () =>
    [...Deno.readDirSync(d.path)].map((e) => e.name).filter((n) =>
      n.startsWith("journal-")
    );
  const valid = () =>
    readEntries(Deno.readFileSync(`${d.path}/${journal()[0]}`)).entries.length;
  assert.equal(journal().length, 1);
  assert.equal(
    Deno.readFileSync(`${d.path}/entries`).length,
    64,
    "an empty snapshot",
  );
  await store.store("a", bytesFor("a", 10));
  await store.store("b", bytesFor("b", 10));
  await store.invalidate("b");
  assert.equal(valid(), 3, "store, store, remove");
  (await store.fetch("a"))?.release();
  assert.equal(valid(), 3, "use counts wait for the maintenance timer");
  await store.flush();
  assert.equal(
    Deno.readFileSync(`${d.path}/entries`).length,
    64 + 28,
    "header plus one record of one data element (28 bytes, FORMAT.md §4)",
  );
  assert.equal(journal().length, 1, "the old journal was removed");
  assert.equal(valid(), 0);
  await store.close();
});

Deno.test("OpenOptions carries no testing hooks (they go through src/_testing.ts)", () => {
  // @ts-expect-error: the file layer is not a public option
  const io: OpenOptions = { io: {} };
  // @ts-expect-error: nor is a replacement key hash
  const hash: OpenOptions = { hashOverride: () => 7 };
  assert.deepEqual([io, hash].map((o) => typeof o), ["object", "object"]);
});
