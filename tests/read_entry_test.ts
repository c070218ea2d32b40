// BackingStore.readEntry: a slot entry as its verified bytes (no reference
// kept), a large file as a reader, a damaged element a miss.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { BackingStore } from "../src/store.ts";
import { tempDir } from "./_helpers.ts";

Deno.test("readEntry gives slot data as bytes with no pin kept, a large file as a reader", async () => {
  await using dir = await tempDir();
  const store = await BackingStore.open(dir.path);
  try {
    assert.equal(await store.readEntry("none"), undefined);
    const small = new Uint8Array(40_000).map((_, i) => i * 7);
    const meta = new Uint8Array([1, 2, 3]);
    await store.storeEntry("small", small, meta);
    const got = await store.readEntry("small");
    assert.ok(got !== undefined && got.reader === undefined);
    assert.deepEqual(got.data, small);
    assert.deepEqual(got.meta, meta);
    assert.equal(store.stats().pinned, 0, "nothing to release");
    // Replaced meanwhile: the bytes handed out stay as they were read.
    await store.storeEntry("small", new Uint8Array(40_000), meta);
    assert.deepEqual(got.data, small);
    await store.store("bare", new Uint8Array([9]));
    const bare = await store.readEntry("bare");
    assert.deepEqual([bare?.data, bare?.meta], [
      new Uint8Array([9]),
      undefined,
    ]);
    const large = new Uint8Array(3 * 2 ** 20).map((_, i) => i % 251);
    await store.storeEntry("large", large, meta);
    const opened = await store.readEntry("large");
    assert.ok(opened?.reader !== undefined && opened.data === undefined);
    assert.deepEqual(opened.meta, meta);
    assert.equal(opened.reader.size, large.length);
    assert.equal(store.stats().pinned > 0, true, "the reader pins it");
    assert.deepEqual(
      await opened.reader.read(2 ** 20, 10),
      large.subarray(2 ** 20, 2 ** 20 + 10),
    );
    opened.reader.release();
    assert.equal(store.stats().pinned, 0);
    // Counted as openEntry counts the same reads.
    const count = async (read: () => Promise<unknown>) => {
      const before = store.stats();
      await read();
      const after = store.stats();
      return [after.hits - before.hits, after.misses - before.misses];
    };
    assert.deepEqual(
      await count(() => store.readEntry("small")),
      await count(async () => (await store.openEntry("small"))?.release()),
    );
    assert.deepEqual(await count(() => store.readEntry("none")), [0, 1]);
  } finally {
    await store.close();
  }
  await assert.rejects(store.readEntry("small"), "closed");
});

Deno.test("readEntry: a damaged slot element is a miss, never wrong bytes", async () => {
  await using dir = await tempDir();
  let store = await BackingStore.open(dir.path);
  const body = new Uint8Array(5000).fill(66);
  await store.storeEntry("k", body, new Uint8Array([1]));
  await store.close();
  // Flip every 0x42 run byte in the data block files.
  let flipped = 0;
  const paths: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      if (e.isDirectory) await walk(`${d}/${e.name}`);
      else if (e.isFile) paths.push(`${d}/${e.name}`);
    }
  };
  await walk(dir.path);
  for (const path of paths) {
    const b = await Deno.readFile(path);
    const at = Buffer.from(b.buffer, b.byteOffset, b.length).indexOf(
      Buffer.alloc(4000, 66),
    );
    if (at < 0) continue;
    b[at + 100] = b[at + 100]! ^ 1;
    await Deno.writeFile(path, b);
    flipped++;
  }
  assert.ok(flipped > 0, "the body was found on disk");
  store = await BackingStore.open(dir.path);
  try {
    assert.equal(await store.readEntry("k"), undefined);
    assert.ok(store.stats().corruptions > 0);
  } finally {
    await store.close();
  }
});

Deno.test("useEntry hands the entry over in the same turn and reuses the bytes of a read no one holds", async () => {
  await using dir = await tempDir();
  const store = await BackingStore.open(dir.path);
  try {
    const a = new Uint8Array(1000).fill(1);
    const b = new Uint8Array(1000).fill(2);
    const meta = new Uint8Array([7, 8]);
    await store.storeEntry("a", a, meta);
    await store.storeEntry("b", b, meta);
    assert.equal(
      store.useEntry("none", () => assert.fail("called")),
      undefined,
    );
    const seen: Uint8Array[] = [];
    const copy = store.useEntry("a", (got) => {
      assert.ok(got.reader === undefined);
      assert.deepEqual(got.meta, meta);
      seen.push(got.data);
      return got.data.slice();
    });
    assert.deepEqual(copy, a);
    assert.equal(store.stats().pinned, 0, "nothing to release");
    // The next read overwrites the bytes handed to `use`: they were valid
    // only while it ran.
    store.useEntry("b", (got) => {
      assert.equal(got.data?.buffer, seen[0]!.buffer);
      assert.equal(got.data?.byteOffset, seen[0]!.byteOffset);
      assert.deepEqual(got.data, b);
    });
    // Bytes someone else holds (a reader opened before) are not reused.
    const reader = await store.openEntry("a");
    assert.ok(reader !== undefined);
    const held = await reader.read(0, reader.size);
    store.useEntry("a", (got) => assert.deepEqual(got.data, a));
    store.useEntry("b", (got) => assert.deepEqual(got.data, b));
    assert.deepEqual(held, a);
    assert.deepEqual(await reader.read(0, reader.size), a);
    reader.release();
    // Bytes from readEntry are the caller's for good.
    const kept = await store.readEntry("a");
    store.useEntry("b", (got) => assert.deepEqual(got.data, b));
    assert.deepEqual(kept?.data, a);
    // A large file comes as a reader, the caller's to release.
    const large = new Uint8Array(3 * 2 ** 20).map((_, i) => i % 251);
    await store.storeEntry("large", large, meta);
    const r = store.useEntry("large", (got) => got.reader);
    assert.ok(r !== undefined);
    assert.deepEqual(await r.read(0, 10), large.subarray(0, 10));
    r.release();
    assert.equal(store.stats().pinned, 0);
    // What `use` throws is thrown, and a reader is released then.
    assert.throws(() =>
      store.useEntry("large", () => {
        throw new Error("boom");
      }), /boom/);
    assert.equal(store.stats().pinned, 0);
  } finally {
    await store.close();
  }
  assert.throws(() => store.useEntry("a", () => 1), /closed/i);
});
