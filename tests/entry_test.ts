// storeEntry / fetchEntry: both elements of an entry in one call, recorded
// by one journal operation (FORMAT.md §11, op 5).
import assert from "node:assert/strict";
import fs from "node:fs";
import { crc32 as crc } from "node:zlib";
import { BackingStore, ClosedError, VersionMismatchError } from "../mod.ts";
import {
  bytesFor,
  FILE_SIZED,
  largeFiles,
  read,
  tempDir,
  tempStore,
} from "./_helpers.ts";
import {
  decodeJournalHeader,
  encodeJournalHeader,
  JOURNAL_VERSION,
  readEntries,
} from "../src/journal.ts";
import { OP, opTag } from "../src/ops.ts";
import { blockFileParts } from "../src/paths.ts";
import { flipBit } from "./_damage.ts";

function journalOf(dir: string): Uint8Array {
  const name = [...Deno.readDirSync(dir)].map((e) => e.name)
    .find((n) => n.startsWith("journal-"))!;
  return Deno.readFileSync(`${dir}/${name}`);
}

/** A copy of a live store's files: what a restart after SIGKILL finds. */
function copyLive(from: string, to: string): void {
  fs.cpSync(from, to, { recursive: true });
}

Deno.test("storeEntry round-trips data and metadata of every size class", async () => {
  await using d = await tempDir();
  // [data, meta]: slot/slot, file/slot, slot/file, file/file, no meta.
  const shapes: [number, number | undefined][] = [
    [0, 0],
    [3000, 600],
    [8200, 900],
    [100, 5000],
    [50_000, 20_000],
    [4000, undefined],
  ];
  const key = (n: number) => `https://e.example/${n}`;
  {
    const st = await BackingStore.open(d.path);
    for (const [n, [ds, ms]] of shapes.entries()) {
      await st.storeEntry(
        key(n),
        bytesFor(`d${n}`, ds),
        ms === undefined ? undefined : bytesFor(`m${n}`, ms),
      );
    }
    await st.close();
  }
  const st = await BackingStore.open(d.path);
  try {
    for (const [n, [ds, ms]] of shapes.entries()) {
      using hit = await st.fetchEntry(key(n));
      assert.ok(hit, `entry ${n}`);
      assert.deepEqual(hit.data, bytesFor(`d${n}`, ds));
      assert.deepEqual(
        hit.meta,
        ms === undefined ? undefined : bytesFor(`m${n}`, ms),
      );
      assert.equal(hit.key, key(n));
      // The element API sees the same elements.
      assert.deepEqual(await read(st, key(n)), bytesFor(`d${n}`, ds));
    }
    assert.equal(await st.fetchEntry("https://e.example/none"), undefined);
  } finally {
    await st.close();
  }
});

Deno.test("storeEntry replaces the whole entry and frees what it replaced", async () => {
  await using t = await tempStore();
  const url = "https://e.example/page";
  await t.store.storeEntry(url, bytesFor("d1", 2000), bytesFor("m1", 500));
  const slots = t.store.stats();
  await t.store.storeEntry(url, bytesFor("d2", 2100), bytesFor("m2", 400));
  assert.equal(t.store.stats().dataSlotsUsed, slots.dataSlotsUsed);
  assert.equal(t.store.stats().metaSlotsUsed, slots.metaSlotsUsed);
  assert.equal(t.store.stats().bytes, 2100 + 400);
  assert.deepEqual(
    await read(t.store, url, { meta: true }),
    bytesFor("m2", 400),
  );

  // No metadata given: the old metadata goes too.
  await t.store.storeEntry(url, bytesFor("d3", 100));
  assert.equal(await read(t.store, url, { meta: true }), undefined);
  assert.equal(t.store.stats().metaSlotsUsed, 0);
  assert.equal(t.store.stats().bytes, 100);

  // Large files are removed when replaced.
  await t.store.storeEntry(
    url,
    bytesFor("d4", FILE_SIZED + 40_000),
    bytesFor("m4", 9000),
  );
  assert.equal(largeFiles(t.dir).length, 2);
  await t.store.storeEntry(url, bytesFor("d5", 30), bytesFor("m5", 30));
  assert.equal(largeFiles(t.dir).length, 0);
  assert.equal(t.store.stats().entries, 1);
  assert.equal(t.store.stats().stores, 5);
});

Deno.test("storeEntry is one journal operation, replayed after a kill", async () => {
  await using d = await tempDir();
  await using copy = await tempDir();
  const st = await BackingStore.open(d.path, { maintenanceDelayMs: 60_000 });
  try {
    await st.storeEntry("a", bytesFor("a", 3000), bytesFor("am", 700));
    await st.storeEntry("b", bytesFor("b", 20_000), bytesFor("bm", 2000));
    await st.storeEntry("a", bytesFor("a2", 10)); // drops a's metadata
    const { entries } = readEntries(journalOf(d.path));
    assert.deepEqual(entries.map((e) => opTag(e.body)), [
      OP.storeEntry,
      OP.storeEntry,
      OP.storeEntry,
    ]);
    Deno.removeSync(copy.path, { recursive: true });
    copyLive(d.path, copy.path);
  } finally {
    await st.close();
  }
  // The copy was never closed: its entries exist only in the journal.
  const again = await BackingStore.open(copy.path);
  try {
    assert.equal(again.stats().repairedOnOpen, 0);
    using a = await again.fetchEntry("a");
    assert.deepEqual(a?.data, bytesFor("a2", 10));
    assert.equal(a?.meta, undefined);
    using b = await again.fetchEntry("b");
    assert.deepEqual(b?.data, bytesFor("b", 20_000));
    assert.deepEqual(b?.meta, bytesFor("bm", 2000));
    assert.equal(again.stats().entries, 2);
  } finally {
    await again.close();
  }
});

Deno.test("fetchEntry returns the elements an entry has and pins them", async () => {
  await using t = await tempStore();
  await t.store.store("m-only", bytesFor("m", 50), { meta: true });
  {
    using hit = await t.store.fetchEntry("m-only");
    assert.equal(hit?.data, undefined);
    assert.deepEqual(hit?.meta, bytesFor("m", 50));
    const before = t.store.stats();
    assert.equal(before.pinned, 1);
    // Replacing a pinned element defers freeing its storage.
    await t.store.storeEntry("m-only", bytesFor("d", 10), bytesFor("m2", 60));
    assert.equal(t.store.stats().deferredBytes, 50);
    hit?.release();
    hit?.release(); // idempotent
    assert.equal(t.store.stats().pinned, 0);
    assert.equal(t.store.stats().deferredBytes, 0);
  }
  const s = t.store.stats();
  assert.equal(s.hits, 1, "one element served");
  assert.equal(s.misses, 1, "the missing data element");
});

Deno.test("fetchEntry keeps the metadata when only the data element is damaged", async () => {
  await using t = await tempStore();
  // Stored one at a time: each element has a slot of its own.
  await t.store.store("k", bytesFor("d", 8000));
  await t.store.store("k", bytesFor("m", 300), { meta: true });
  // Flip a byte of the data element inside its slot (block file 0, slot 0).
  flipBit(`${t.dir}/${blockFileParts(0, 0, 1).join("/")}`, 4096 + 500);
  using hit = await t.store.fetchEntry("k");
  assert.equal(hit?.data, undefined, "never damaged bytes");
  assert.deepEqual(hit?.meta, bytesFor("m", 300));
  assert.equal(t.store.stats().corruptions, 1);
});

Deno.test("storeEntry rejects bad arguments before anything changes", async () => {
  await using t = await tempStore({ limit: 2 ** 20 });
  const ok = new Uint8Array(1);
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    t.store.storeEntry("k", "text" as any, ok),
    TypeError,
  );
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    t.store.storeEntry("k", ok, [1] as any),
    TypeError,
  );
  // Each fits the limit; together they do not.
  const half = new Uint8Array(2 ** 19 + 1);
  await assert.rejects(t.store.storeEntry("k", half, half), RangeError);
  assert.equal(t.store.stats().entries, 0);
  await t.store.close();
  await assert.rejects(t.store.storeEntry("k", ok), ClosedError);
  await assert.rejects(t.store.fetchEntry("k"), ClosedError);
});

Deno.test("journal version 5 is read; earlier ones (stores of 8 KiB slots) and newer ones are refused", () => {
  const v1 = encodeJournalHeader(7, 65536);
  const set = (b: Uint8Array, version: number) => {
    const c = b.slice();
    new DataView(c.buffer).setUint32(8, version, true);
    return c;
  };
  // The header CRC covers the version, so rebuild it the way the writer does.
  const withCrc = (b: Uint8Array) => {
    const v = new DataView(b.buffer);
    v.setUint32(24, crc(b.subarray(0, 20)), true);
    return b;
  };
  assert.equal(decodeJournalHeader(withCrc(set(v1, JOURNAL_VERSION))).tag, 7);
  for (const version of [1, 2, 3, 4, 5, JOURNAL_VERSION + 1]) {
    assert.throws(
      () => decodeJournalHeader(withCrc(set(v1, version))),
      VersionMismatchError,
      `version ${version}`,
    );
  }
});

// 5: the attribute journal of a store of 8 KiB data slots.
for (const old of [1, 4, 5]) {
  Deno.test(`a journal of version ${old} is refused at open (VERSION_MISMATCH), untouched`, async () => {
    await using d = await tempDir();
    await (await BackingStore.open(d.path)).close();
    const name = [...Deno.readDirSync(d.path)].map((e) => e.name)
      .find((n) => n.startsWith("journal-"))!;
    // Make it what an earlier larder left behind.
    const fd = fs.openSync(`${d.path}/${name}`, "r+");
    const head = new Uint8Array(32);
    fs.readSync(fd, head, 0, 32, 0);
    const v = new DataView(head.buffer);
    v.setUint32(8, old, true);
    v.setUint32(24, crc(head.subarray(0, 20)), true);
    fs.writeSync(fd, head, 0, 32, 0);
    fs.closeSync(fd);
    const before = Deno.readFileSync(`${d.path}/${name}`);
    await assert.rejects(BackingStore.open(d.path), VersionMismatchError);
    assert.deepEqual(Deno.readFileSync(`${d.path}/${name}`), before);
  });
}
