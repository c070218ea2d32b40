import assert from "node:assert/strict";
import { crc32 } from "node:zlib";
import { BackingStore, StoreError } from "../mod.ts";
import { encodeControl, VERSION } from "../src/format.ts";
import { bytesFor, MOD_URL, read, runChild, tempDir } from "./_helpers.ts";

const CHILD = (mod: string) =>
  `import { BackingStore } from "${mod}";
   const st = await BackingStore.open(Deno.args[0], { maintenanceDelayMs: 3600000 });
   const enc = (s, n) => new TextEncoder().encode(s.repeat(n));
   for (let i = 0; i < 20; i++) await st.store("k" + i, enc("old" + i, 30));
   await st.store("big", enc("big-old", 3000));
   await st.flush();
   for (let i = 0; i < 10; i++) await st.invalidate("k" + i);
   for (let i = 0; i < 10; i++) await st.store("n" + i, enc("new" + i, 30));
   for (let i = 10; i < 20; i++) await st.store("k" + i, enc("upd" + i, 30));
   await st.store("big", enc("big-new", 4000));
   Deno.exit(0);`;
const enc = (s: string, n: number) => new TextEncoder().encode(s.repeat(n));

Deno.test("a process that exits without close keeps every acknowledged change", async () => {
  await using d = await tempDir();
  const r = await runChild(CHILD(MOD_URL), [d.path]);
  assert.equal(r.code, 0, r.err);
  await using st = await BackingStore.open(d.path);
  for (let i = 0; i < 10; i++) {
    assert.equal(await read(st, `k${i}`), undefined, `k${i} was invalidated`);
  }
  for (let i = 10; i < 20; i++) {
    assert.deepEqual(await read(st, `k${i}`), enc(`upd${i}`, 30));
  }
  for (let i = 0; i < 10; i++) {
    assert.deepEqual(await read(st, `n${i}`), enc(`new${i}`, 30));
  }
  assert.deepEqual(await read(st, "big"), enc("big-new", 4000));
  assert.equal(st.stats().entries, 21);
  assert.equal(st.stats().corruptions, 0);
});

Deno.test("with the journal lost, a stale snapshot yields misses, never wrong bytes", async () => {
  await using d = await tempDir();
  const r = await runChild(CHILD(MOD_URL), [d.path]);
  assert.equal(r.code, 0, r.err);
  // Lose the journal: the snapshot from flush() still lists k0..k9, whose
  // slots now hold n0..n9's elements.
  for (const name of Deno.readDirSync(d.path)) {
    if (name.name.startsWith("journal-")) {
      Deno.removeSync(`${d.path}/${name.name}`);
    }
  }
  await using st = await BackingStore.open(d.path);
  for (let i = 0; i < 20; i++) {
    const got = await read(st, `k${i}`);
    if (i < 10) {
      assert.equal(got, undefined, `k${i}: its slot holds another key now`);
    } else {
      assert.ok(
        got === undefined || String(got) === String(enc(`old${i}`, 30)) ||
          String(got) === String(enc(`upd${i}`, 30)),
        `k${i}`,
      );
    }
  }
  for (let i = 0; i < 10; i++) {
    assert.equal(await read(st, `n${i}`), undefined, "not in the stale index");
  }
  const big = await read(st, "big");
  assert.ok(big === undefined || String(big) === String(enc("big-old", 3000)));
  assert.ok(
    st.stats().corruptions >= 10,
    "the stale entries were found and dropped",
  );
  assert.ok(st.stats().repairedOnOpen >= 1, "the missing journal was noticed");
});

Deno.test("a damaged or lost entries file is rebuilt from the elements", async (t) => {
  for (const damage of ["flip", "truncate", "garbage", "delete"] as const) {
    await t.step(damage, async () => {
      await using d = await tempDir();
      {
        await using st = await BackingStore.open(d.path);
        for (let i = 0; i < 10; i++) {
          await st.store(`k${i}`, bytesFor(`k${i}`, 100 + i * 3000));
        }
        await st.store("k0", bytesFor("k0-meta", 50), { meta: true });
      }
      const path = `${d.path}/entries`;
      const b = Deno.readFileSync(path);
      if (damage === "flip") b[100]! ^= 0x10;
      if (damage === "delete") Deno.removeSync(path);
      else {
        Deno.writeFileSync(
          path,
          damage === "truncate"
            ? b.subarray(0, 90)
            : damage === "garbage"
            ? bytesFor("g", 500)
            : b,
        );
      }
      await using st = await BackingStore.open(d.path);
      assert.ok(st.stats().repairedOnOpen >= 1);
      assert.equal(st.stats().entries, 10);
      for (let i = 0; i < 10; i++) {
        assert.deepEqual(
          await read(st, `k${i}`),
          bytesFor(`k${i}`, 100 + i * 3000),
        );
      }
      assert.deepEqual(
        await read(st, "k0", { meta: true }),
        bytesFor("k0-meta", 50),
      );
      await st.store("fresh", bytesFor("fresh", 100));
      assert.deepEqual(await read(st, "fresh"), bytesFor("fresh", 100));
      assert.equal(st.stats().corruptions, 0);
    });
  }
});

Deno.test("a newer format version is refused with VERSION_MISMATCH", async (t) => {
  await t.step("control", async () => {
    await using d = await tempDir();
    await (await BackingStore.open(d.path)).close();
    const b = Deno.readFileSync(`${d.path}/control`);
    const v = new DataView(b.buffer);
    v.setUint32(8, VERSION.control + 1, true);
    // A real newer control is checksummed; a bad checksum is damage.
    v.setUint32(40, crc32(b.subarray(0, 40)), true);
    Deno.writeFileSync(`${d.path}/control`, b);
    await assert.rejects(
      BackingStore.open(d.path),
      (e: unknown) => e instanceof StoreError && e.code === "VERSION_MISMATCH",
    );
  });
  await t.step("entries", async () => {
    await using d = await tempDir();
    {
      await using st = await BackingStore.open(d.path);
      await st.store("k", new Uint8Array(4));
    }
    const b = Deno.readFileSync(`${d.path}/entries`);
    new DataView(b.buffer).setUint32(8, 9, true);
    Deno.writeFileSync(`${d.path}/entries`, b);
    await assert.rejects(
      BackingStore.open(d.path),
      (e: unknown) => e instanceof StoreError && e.code === "VERSION_MISMATCH",
    );
  });
});

Deno.test("stored options win on reopen; contradicting ones are OPTION_MISMATCH", async () => {
  await using d = await tempDir();
  await (await BackingStore.open(d.path, { entryBits: 12, hash: "nsurl" }))
    .close();
  {
    await using st = await BackingStore.open(d.path); // no options: uses 12 and nsurl
    assert.equal(st.stats().capacity, 4096);
    await st.store("http://example.com/", new Uint8Array([1]));
  }
  await assert.rejects(
    BackingStore.open(d.path, { entryBits: 13 }),
    (e: unknown) => e instanceof StoreError && e.code === "OPTION_MISMATCH",
  );
  await assert.rejects(
    BackingStore.open(d.path, { hash: "siphash13" }),
    (e: unknown) => e instanceof StoreError && e.code === "OPTION_MISMATCH",
  );
  await using st = await BackingStore.open(d.path, { identBits: 22 }); // the map is rebuilt: allowed
  assert.deepEqual(
    await read(st, "HTTP://EXAMPLE.COM:80/"),
    new Uint8Array([1]),
  );
  void encodeControl;
});

Deno.test("the nsurl hash option stores and finds keys", async () => {
  await using d = await tempDir();
  await using st = await BackingStore.open(d.path, { hash: "nsurl" });
  for (let i = 0; i < 200; i++) {
    await st.store(
      `http://www.netsurf-browser.org/p${i}`,
      bytesFor(`${i}`, 50),
    );
  }
  for (let i = 0; i < 200; i++) {
    assert.deepEqual(
      await read(st, `http://www.netsurf-browser.org/p${i}`),
      bytesFor(`${i}`, 50),
    );
  }
});
