// openEntry with `defer`: a slot or run element is pinned unread and read,
// verified whole, at the reader's first read; the pin keeps its slots from
// reuse until it ends, and an ending pin reads them first.
import assert from "node:assert/strict";
import { BackingStore, CorruptError } from "../mod.ts";
import { dataSlotOf, findInFile, flipBit } from "./_damage.ts";
import {
  assertBytes,
  bytesFor,
  read,
  tempDir,
  tempStore,
  walkFiles,
} from "./_helpers.ts";

const MiB = 2 ** 20;
const K = "https://example.com/pinned";
const OTHER = "https://example.com/other";

async function readAll(
  stream: ReadableStream<Uint8Array>,
): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Flips a bit in the middle of `body` where it lies on disk. */
function damage(dir: string, body: Uint8Array): void {
  for (const p of walkFiles(dir)) {
    const off = findInFile(`${dir}/${p}`, body.subarray(0, 64));
    if (off >= 0) return flipBit(`${dir}/${p}`, off + (body.length >> 1));
  }
  throw new Error("body not found on disk");
}

Deno.test("deferred entry reader reads no data until its first read", async (t) => {
  for (const size of [3000, 100_000, MiB]) {
    await t.step(`${size} bytes`, async () => {
      await using s = await tempStore();
      const body = bytesFor(`v${size}`, size);
      const meta = new TextEncoder().encode("head");
      await s.store.storeEntry("k", body, meta);
      const before = s.store.stats().dataBytesRead;
      const reader = (await s.store.openEntry("k", { defer: true }))!;
      assert.equal(reader.size, size);
      assert.deepEqual(reader.meta, meta);
      assert.equal(s.store.stats().dataBytesRead, before, "opened unread");
      assert.equal(s.store.stats().pinned, 2);
      assertBytes(await reader.read(1, 100), body.slice(1, 101), "read");
      assert.equal(s.store.stats().dataBytesRead, before + size, "read once");
      assertBytes(await readAll(reader.stream()), body, "stream");
      assert.equal(s.store.stats().dataBytesRead, before + size, "not again");
      reader.release();
      assert.equal(s.store.stats().pinned, 0);
    });
  }
  await t.step("bad options are a TypeError", async () => {
    await using s = await tempStore();
    await assert.rejects(
      s.store.openEntry("k", 1 as unknown as { defer: boolean }),
      TypeError,
    );
  });
});

Deno.test("deferred entry reader keeps its slots from reuse until released", async () => {
  await using s = await tempStore({ limit: 8 * MiB, hysteresis: 0 });
  const body = bytesFor("v", MiB);
  await s.store.store(K, body);
  const slot = dataSlotOf(s.dir, K);
  const reader = (await s.store.openEntry(K, { defer: true }))!;
  const before = s.store.stats().dataBytesRead;
  await s.store.invalidate(K);
  // Other elements of the same size, and more than the limit holds: none
  // may take the pinned run.
  for (let i = 0; i < 10; i++) {
    await s.store.store(`j${i}`, bytesFor(`j${i}`, MiB));
  }
  assert.ok(s.store.stats().evictions > 0);
  assert.equal(dataSlotOf(s.dir, K), slot, "its header is still in place");
  assert.equal(s.store.stats().dataBytesRead, before, "still unread");
  assert.ok(s.store.stats().deferredBytes >= MiB);
  assertBytes(await readAll(reader.stream()), body, "the pinned bytes");
  reader.release();
  assert.equal(s.store.stats().deferredBytes, 0);
});

Deno.test("deferred entry reader keeps its bytes past pinTimeoutMs and close", async (t) => {
  await t.step("the pin times out, the slots are reused", async () => {
    await using s = await tempStore({ pinTimeoutMs: 0 });
    const body = bytesFor("v", MiB);
    await s.store.store(K, body);
    const slot = dataSlotOf(s.dir, K);
    const reader = (await s.store.openEntry(K, { defer: true }))!;
    const before = s.store.stats().dataBytesRead;
    await s.store.flush(); // ends every pin older than 0 ms
    assert.equal(s.store.stats().pinned, 0);
    assert.equal(
      s.store.stats().dataBytesRead,
      before + MiB,
      "read at its end",
    );
    await s.store.invalidate(K);
    await s.store.store(OTHER, bytesFor("j", MiB));
    assert.equal(dataSlotOf(s.dir, OTHER), slot, "the run is reused");
    assertBytes(await reader.read(0, MiB), body, "the bytes opened");
    reader.release();
  });
  await t.step("the store is closed", async () => {
    await using d = await tempDir();
    const store = await BackingStore.open(d.path);
    const body = bytesFor("v", 100_000);
    await store.store("k", body);
    const reader = (await store.openEntry("k", { defer: true }))!;
    await store.close();
    assertBytes(await reader.read(0, body.length), body, "after close");
    reader.release();
  });
});

Deno.test("deferred entry reader shares the pin a fetch fills", async () => {
  await using s = await tempStore();
  const body = bytesFor("v", MiB);
  await s.store.store("k", body);
  using reader = (await s.store.openEntry("k", { defer: true }))!;
  using second = (await s.store.openEntry("k", { defer: true }))!;
  assert.equal(s.store.stats().pinned, 1);
  const before = s.store.stats().dataBytesRead;
  assertBytes(await read(s.store, "k"), body, "fetch");
  assertBytes(await reader.read(0, MiB), body, "reader");
  assertBytes(await second.read(0, MiB), body, "second reader");
  assert.equal(s.store.stats().dataBytesRead, before + MiB, "one read");
});

Deno.test("deferred entry reader of an element damaged after open fails, never wrong bytes", async (t) => {
  for (const size of [3000, 100_000, MiB]) {
    await t.step(`${size} bytes`, async () => {
      await using s = await tempStore();
      const body = bytesFor(`d${size}`, size);
      await s.store.storeEntry("k", body, new Uint8Array([1]));
      using reader = (await s.store.openEntry("k", { defer: true }))!;
      damage(s.dir, body);
      const corruptions = s.store.stats().corruptions;
      await assert.rejects(reader.read(0, 10), CorruptError);
      await assert.rejects(readAll(reader.stream()), CorruptError);
      assert.equal(s.store.stats().corruptions, corruptions + 1, "dropped");
      assert.equal(await read(s.store, "k"), undefined);
      assert.equal(await s.store.openEntry("k", { defer: true }), undefined);
    });
  }
});
