// What open reads of the index (src/_persist.ts): a journal is continued
// only when every byte after its header is zero, to its last byte, though
// open reads only its first 64 KiB and compares the rest through a small
// buffer; and a snapshot read straight into the table is refused (and the
// index rebuilt) for any length that does not match its header.
import assert from "node:assert/strict";
import { BackingStore, checkStore } from "../mod.ts";
import { bytesFor, read, tempDir } from "./_helpers.ts";

function journals(dir: string): string[] {
  return [...Deno.readDirSync(dir)]
    .map((e) => e.name)
    .filter((n) => n.startsWith("journal-"));
}

function poke(path: string, at: number, byte: number): void {
  const f = Deno.openSync(path, { read: true, write: true });
  try {
    f.seekSync(at, Deno.SeekMode.Start);
    f.writeSync(new Uint8Array([byte]));
  } finally {
    f.close();
  }
}

Deno.test("open continues a journal of zeros only, wherever a stray byte is", async (t) => {
  const size = 8 * 2 ** 20; // the default journal
  const cases: [string, number | undefined][] = [
    ["all zeros", undefined],
    ["a byte right after the header", 40],
    ["a byte at the end of the first 64 KiB", 64 * 1024 - 1],
    ["a byte just past the first 64 KiB", 64 * 1024 + 5],
    ["a byte at 3 MiB", 3 * 2 ** 20 + 7],
    ["the last byte", size - 1],
  ];
  for (const [name, at] of cases) {
    await t.step(name, async () => {
      await using d = await tempDir();
      {
        await using st = await BackingStore.open(d.path);
        await st.store("k", bytesFor("k", 500));
      }
      const [before] = journals(d.path);
      assert.ok(before !== undefined);
      assert.equal(Deno.statSync(`${d.path}/${before}`).size, size);
      if (at !== undefined) poke(`${d.path}/${before}`, at, 0x5a);
      await using st = await BackingStore.open(d.path);
      const now = journals(d.path);
      assert.equal(now.length, 1);
      if (at === undefined) {
        assert.equal(now[0], before, "a pristine journal is continued");
      } else {
        assert.notEqual(now[0], before, "a journal with a stray byte is not");
      }
      assert.deepEqual(await read(st, "k"), bytesFor("k", 500));
      await st.store("k2", bytesFor("k2", 700));
      assert.deepEqual(await read(st, "k2"), bytesFor("k2", 700));
      assert.equal(st.stats().corruptions, 0);
    });
  }
});

Deno.test("a snapshot whose length disagrees with its header is rebuilt", async (t) => {
  for (const change of ["one byte more", "one record more", "one byte less"]) {
    await t.step(change, async () => {
      await using d = await tempDir();
      {
        await using st = await BackingStore.open(d.path);
        for (let i = 0; i < 5; i++) {
          await st.store(`k${i}`, bytesFor(`k${i}`, 100 + 900 * i));
        }
      }
      const path = `${d.path}/entries`;
      const b = Deno.readFileSync(path);
      const changed = change === "one byte more"
        ? new Uint8Array([...b, 0])
        : change === "one record more"
        ? new Uint8Array([...b, ...b.subarray(64, 104)])
        : b.subarray(0, b.length - 1);
      Deno.writeFileSync(path, changed);
      await using st = await BackingStore.open(d.path);
      assert.ok(st.stats().repairedOnOpen >= 1);
      assert.equal(st.stats().entries, 5);
      for (let i = 0; i < 5; i++) {
        assert.deepEqual(
          await read(st, `k${i}`),
          bytesFor(`k${i}`, 100 + 900 * i),
        );
      }
    });
  }
});

Deno.test("close keeps a journal that is small beside the table, and open appends to it (FORMAT.md §10.3)", async () => {
  await using d = await tempDir();
  const opts = { entryBits: 12, journalBytes: 65536 };
  const want = new Map<string, Uint8Array>();
  {
    await using st = await BackingStore.open(d.path, opts);
    for (let i = 0; i < 1000; i++) {
      want.set(`k${i}`, bytesFor(`k${i}`, 50 + (i % 200)));
      await st.store(`k${i}`, want.get(`k${i}`)!);
    }
    await st.flush(); // a snapshot of 1,000 entries, an empty journal
  }
  const snapshot = Deno.readFileSync(`${d.path}/entries`);
  const [tag] = journals(d.path);
  for (let round = 0; round < 3; round++) {
    await using st = await BackingStore.open(d.path, opts);
    assert.deepEqual(journals(d.path), [tag], "the journal is continued");
    for (let i = 0; i < 10; i++) {
      const key = `k${round * 10 + i}`;
      want.set(key, bytesFor(`${key}#${round}`, 3000 + i));
      await st.store(key, want.get(key)!);
    }
    await st.invalidate(`k${500 + round}`);
    want.delete(`k${500 + round}`);
    await st.setAttr("k900", `a${round}`, String(round));
  }
  assert.deepEqual(journals(d.path), [tag], "close kept the journal");
  assert.deepEqual(
    Deno.readFileSync(`${d.path}/entries`),
    snapshot,
    "and wrote no snapshot",
  );
  const report = await checkStore(d.path);
  assert.deepEqual(report.problems, []);
  await using st = await BackingStore.open(d.path, opts);
  for (let i = 0; i < 1000; i++) {
    assert.deepEqual(await read(st, `k${i}`), want.get(`k${i}`), `k${i}`);
  }
  assert.deepEqual(Object.fromEntries((await st.attrs("k900"))!), {
    a0: "0",
    a1: "1",
    a2: "2",
  });
  assert.equal(st.stats().corruptions, 0);
});

Deno.test("close rotates a journal that is large beside the table", async () => {
  await using d = await tempDir();
  {
    await using st = await BackingStore.open(d.path);
    for (let i = 0; i < 20; i++) await st.store(`k${i}`, bytesFor(`k${i}`, 90));
  }
  const [tag] = journals(d.path);
  const snapshot = Deno.readFileSync(`${d.path}/entries`);
  {
    await using st = await BackingStore.open(d.path);
    assert.deepEqual(
      journals(d.path),
      [tag],
      "a pristine journal is continued",
    );
    for (let i = 0; i < 20; i++) {
      await st.store(`k${i}`, bytesFor(`again${i}`, 90));
    }
  }
  assert.notDeepEqual(journals(d.path), [tag], "a new journal");
  assert.notDeepEqual(Deno.readFileSync(`${d.path}/entries`), snapshot);
  await using st = await BackingStore.open(d.path);
  for (let i = 0; i < 20; i++) {
    assert.deepEqual(await read(st, `k${i}`), bytesFor(`again${i}`, 90));
  }
});

Deno.test("open reads a journal's entries past its first 64 KiB and continues it only when zeros follow them", async (t) => {
  const opts = { entryBits: 14 };
  const key = (i: number) => `https://example.com/a/long/path/to/item/${i}`;
  const cases: [string, ((end: number) => number) | undefined][] = [
    ["zeros after the entries", undefined],
    ["a byte right after the entries", (end) => end + 3],
    ["a byte at 3 MiB", () => 3 * 2 ** 20 + 1],
    ["the last byte", () => 8 * 2 ** 20 - 1],
  ];
  for (const [name, at] of cases) {
    await t.step(name, async () => {
      await using d = await tempDir();
      {
        await using st = await BackingStore.open(d.path, opts);
        for (let i = 0; i < 12_000; i++) {
          await st.store(key(i), bytesFor(key(i), 20));
        }
        await st.flush(); // a snapshot of 12,000 entries, an empty journal
      }
      {
        await using st = await BackingStore.open(d.path, opts);
        for (let i = 0; i < 700; i++) {
          await st.store(key(i), bytesFor(`${key(i)}#2`, 30));
        }
      }
      const [before] = journals(d.path);
      const path = `${d.path}/${before}`;
      const bytes = Deno.readFileSync(path);
      let end = bytes.length;
      while (end > 0 && bytes[end - 1] === 0) end--;
      assert.ok(end > 64 * 1024, `entries end at ${end}`);
      if (at !== undefined) poke(path, at(end), 0x5a);
      await using st = await BackingStore.open(d.path, opts);
      const now = journals(d.path);
      assert.equal(now.length, 1);
      if (at === undefined) {
        assert.equal(now[0], before, "the journal is continued");
      } else {
        assert.notEqual(now[0], before, "a journal with a stray byte is not");
      }
      for (const i of [0, 350, 699]) {
        assert.deepEqual(await read(st, key(i)), bytesFor(`${key(i)}#2`, 30));
      }
      assert.deepEqual(await read(st, key(700)), bytesFor(key(700), 20));
      assert.equal(st.stats().entries, 12_000);
      assert.equal(st.stats().repairedOnOpen, 0);
    });
  }
});
