/**
 * A damaged `control` never makes a store unusable: either copy serves, and
 * with both lost the record is rebuilt; a foreign directory stays refused.
 */
import assert from "node:assert/strict";
import { BackingStore, checkStore, StoreError } from "../mod.ts";
import { assertBytes, bytesFor, tempDir, walkFiles } from "./_helpers.ts";

const DAMAGE: Record<string, (b: Uint8Array) => Uint8Array> = {
  "a flipped bit": (b) => {
    const c = b.slice();
    c[12]! ^= 0x10;
    return c;
  },
  "a truncation": (b) => b.subarray(0, b.length >> 1),
  "an empty file": () => new Uint8Array(0),
};

async function storeWithValues(
  dir: string,
  hash: "siphash13" | "nsurl",
): Promise<Map<string, Uint8Array>> {
  const values = new Map<string, Uint8Array>();
  await using st = await BackingStore.open(dir, { hash });
  for (const size of [100, 20_000, 3_000_000]) {
    const key = `https://example.com/${size}`;
    values.set(key, bytesFor(key, size));
    await st.store(key, values.get(key)!);
  }
  return values;
}

Deno.test("control damaged in one copy opens from the other and serves every element", async (t) => {
  for (const [what, damage] of Object.entries(DAMAGE)) {
    for (const name of ["control", "control.bak"]) {
      await t.step(`${name}: ${what}`, async () => {
        await using d = await tempDir();
        const values = await storeWithValues(d.path, "siphash13");
        const path = `${d.path}/${name}`;
        Deno.writeFileSync(path, damage(Deno.readFileSync(path)));
        const before = await checkStore(d.path);
        assert.equal(before.ok, false);
        {
          await using st = await BackingStore.open(d.path);
          for (const [key, value] of values) {
            using hit = await st.fetch(key);
            assertBytes(hit?.data, value);
          }
        }
        assert.equal((await checkStore(d.path)).ok, true);
      });
    }
  }
});

Deno.test("control lost in both copies is rebuilt: an nsurl store keeps its elements", async () => {
  await using d = await tempDir();
  const values = await storeWithValues(d.path, "nsurl");
  Deno.writeFileSync(`${d.path}/control`, new Uint8Array(0));
  Deno.removeSync(`${d.path}/control.bak`);
  const r = await checkStore(d.path);
  assert.ok(r.problems.some((p) => p.code === "CONTROL_LOST"));
  {
    await using st = await BackingStore.open(d.path);
    for (const [key, value] of values) {
      using hit = await st.fetch(key);
      assertBytes(hit?.data, value);
    }
  }
  assert.equal((await checkStore(d.path)).ok, true);
});

Deno.test("control lost in both copies of a SipHash store opens empty and stores again", async () => {
  await using d = await tempDir();
  await storeWithValues(d.path, "siphash13");
  Deno.writeFileSync(`${d.path}/control`, new Uint8Array([1, 2, 3]));
  Deno.writeFileSync(`${d.path}/control.bak`, new Uint8Array(0));
  {
    await using st = await BackingStore.open(d.path);
    assert.equal(await st.fetch("https://example.com/100"), undefined);
    await st.store("k", bytesFor("k", 5000));
    using hit = await st.fetch("k");
    assertBytes(hit?.data, bytesFor("k", 5000));
  }
  await using st = await BackingStore.open(d.path);
  using hit = await st.fetch("k");
  assertBytes(hit?.data, bytesFor("k", 5000));
});

Deno.test("control damaged in a directory larder did not write stays NOT_A_STORE and untouched", async () => {
  await using d = await tempDir();
  Deno.writeFileSync(`${d.path}/control`, new Uint8Array([9, 9, 9, 9]));
  Deno.writeFileSync(`${d.path}/notes.txt`, new Uint8Array([1]));
  const before = walkFiles(d.path);
  await assert.rejects(
    BackingStore.open(d.path),
    (e: unknown) => e instanceof StoreError && e.code === "NOT_A_STORE",
  );
  // Only the lock file, taken before anything is read, is added.
  assert.deepEqual(walkFiles(d.path).filter((f) => f !== "lock"), before);
});

Deno.test("BackingStore.open at the maximum table dimensions opens, stores, fetches and reopens", async () => {
  await using d = await tempDir();
  const opts = { entryBits: 24, identBits: 28, limit: 2 ** 26 };
  {
    await using st = await BackingStore.open(d.path, opts);
    await st.store("k", bytesFor("k", 9000));
  }
  await using st = await BackingStore.open(d.path, opts);
  using hit = await st.fetch("k");
  assertBytes(hit?.data, bytesFor("k", 9000));
});
