import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  bytesFor,
  FILE_SIZED,
  read,
  tempStore,
  walkFiles,
} from "./_helpers.ts";

/** A Uint8Array of `n` bytes whose buffer has been detached, `how`. */
function detached(n: number, how: "transfer" | "structuredClone"): Uint8Array {
  const u = bytesFor("gone", n);
  const buf = u.buffer as ArrayBuffer;
  if (how === "transfer") buf.transfer();
  else structuredClone(u, { transfer: [buf] });
  assert.equal(buf.detached, true);
  return u;
}

Deno.test("storing a view of a detached buffer is a TypeError and changes nothing", async (t) => {
  for (const how of ["transfer", "structuredClone"] as const) {
    for (const n of [10, FILE_SIZED]) {
      await t.step(`${how}, ${n} bytes`, async () => {
        await using s = await tempStore();
        const st = s.store;
        await st.storeEntry("k", bytesFor("d", 100), bytesFor("m", 10));
        const files = walkFiles(s.dir).sort();
        const before = st.stats();
        const bad = () => detached(n, how);
        const msg = /detached or out-of-bounds ArrayBuffer/;
        await assert.rejects(() => st.store("k", bad()), TypeError);
        await assert.rejects(() => st.store("new", bad()), msg);
        await assert.rejects(
          () => st.store("k", bad(), { meta: true }),
          TypeError,
        );
        await assert.rejects(() => st.storeEntry("k", bad()), TypeError);
        await assert.rejects(
          () => st.storeEntry("k", bytesFor("x", 5), bad()),
          /meta is a view of a detached/,
        );
        await assert.rejects(
          () => st.storeEntry("new", bad(), bytesFor("x", 5)),
          TypeError,
        );
        const after = st.stats();
        assert.equal(after.stores, before.stores);
        assert.equal(after.entries, before.entries);
        assert.equal(after.dataSlotsUsed, before.dataSlotsUsed);
        assert.equal(after.metaSlotsUsed, before.metaSlotsUsed);
        assert.deepEqual(walkFiles(s.dir).sort(), files, "no file written");
        using e = await st.fetchEntry("k");
        assert.deepEqual(e?.data, bytesFor("d", 100));
        assert.deepEqual(e?.meta, bytesFor("m", 10));
      });
    }
  }
});

Deno.test("storing a view of a shrunk resizable buffer is a TypeError", async () => {
  await using s = await tempStore();
  const buf = new ArrayBuffer(100, { maxByteLength: 200 });
  const view = new Uint8Array(buf, 50, 40); // fixed length
  buf.resize(60); // now out of bounds: reads as empty
  assert.equal(view.length, 0);
  await assert.rejects(() => s.store.store("k", view), TypeError);
  assert.equal(s.store.stats().entries, 0);
  // An empty view that is in bounds is an empty element.
  await s.store.store("e", new Uint8Array(buf, 60, 0));
  assert.deepEqual(await read(s.store, "e"), new Uint8Array(0));
});

Deno.test("elements may be any Uint8Array view; other views are a TypeError", async (t) => {
  await using s = await tempStore();
  const st = s.store;
  for (const n of [100, FILE_SIZED]) {
    await t.step(`${n} bytes`, async () => {
      const want = bytesFor(`v${n}`, n);
      // A Node Buffer is a Uint8Array.
      await st.store(`buffer${n}`, Buffer.from(want));
      assert.deepEqual(await read(st, `buffer${n}`), want);
      // A view at an offset into a larger buffer stores only its bytes.
      const big = new Uint8Array(n + 64);
      big.set(want, 32);
      await st.store(`offset${n}`, big.subarray(32, 32 + n));
      assert.deepEqual(await read(st, `offset${n}`), want);
      // A SharedArrayBuffer view: read during the call, copied; later
      // writes to it do not reach the stored element.
      const shared = new Uint8Array(new SharedArrayBuffer(n));
      shared.set(want);
      await st.storeEntry(`shared${n}`, shared, shared.subarray(0, 10));
      shared.fill(0);
      using e = await st.fetchEntry(`shared${n}`);
      assert.deepEqual(e?.data, want);
      assert.deepEqual(e?.meta, want.subarray(0, 10));
      for (
        const v of [
          new DataView(new ArrayBuffer(n)),
          new Uint16Array(n),
          new Int8Array(n),
          want.buffer,
          Array.from(want),
        ]
      ) {
        await assert.rejects(
          () => st.store(`bad${n}`, v as unknown as Uint8Array),
          (e: unknown) =>
            e instanceof TypeError && /must be a Uint8Array/.test(e.message),
        );
      }
    });
  }
  assert.equal(await read(st, "bad100"), undefined);
});
