// An entry's data and metadata in one data slot (FORMAT.md §6.1): one write
// to store them, one read to fetch them, and every path that must keep the
// metadata with its slot (replacement, damage, check-store, rebuild).
import assert from "node:assert/strict";
import fs from "node:fs";
import { crc32 } from "node:zlib";
import { BackingStore, checkStore } from "../mod.ts";
import { runSlots } from "../src/elements.ts";
import {
  decodeEntries,
  ENTRIES_HEADER,
  MAX_RUN_SLOTS,
  SLOT_SIZE,
  VERSION,
} from "../src/format.ts";
import { NodeFileIO } from "../src/io.ts";
import { readEntries } from "../src/journal.ts";
import { OP, opTag } from "../src/ops.ts";
import { blockFileParts } from "../src/paths.ts";
import { flipBit } from "./_damage.ts";
import {
  bytesFor,
  FILE_SIZED,
  largeFiles,
  read,
  tempDir,
  tempStore,
} from "./_helpers.ts";
import { openForTest } from "../src/_testing.ts";

const KEY = "https://pair.example/app.js";
const DATA = bytesFor("data", 3000);
const META = bytesFor("meta", 600);
/** Where the data slot 0 starts in data block file 0. */
const SLOT0 = 4096;
/** Offset of the metadata element in the slot: after header, key, data. */
const META_AT = 32 + KEY.length + DATA.length;

/** Data slots a pair takes: one run for both (FORMAT.md §5.3, §6.1). */
function pairSlots(key: string, data: number, meta: number): number {
  return runSlots(key.length, data, meta);
}
const PAIR = pairSlots(KEY, DATA.length, META.length);

/** Counts reads and writes of block files and journals. */
class CountingIO extends NodeFileIO {
  reads = 0;
  writes = 0;
  override pread(fd: number, buf: Uint8Array, pos: number): number {
    this.reads++;
    return super.pread(fd, buf, pos);
  }
  override pwrite(fd: number, buf: Uint8Array, pos: number): void {
    this.writes++;
    super.pwrite(fd, buf, pos);
  }
}

function dataBlockFile(dir: string): string {
  return `${dir}/${blockFileParts(0, 0, 1).join("/")}`;
}

async function both(st: BackingStore, key: string) {
  using hit = await st.fetchEntry(key);
  return { data: hit?.data?.slice(), meta: hit?.meta?.slice() };
}

Deno.test("a small entry takes one data slot, one write and one read", async () => {
  await using d = await tempDir();
  const io = new CountingIO();
  const st = await openForTest(d.path, { maintenanceDelayMs: 60_000 }, {
    io,
  });
  try {
    await st.fetchEntry("https://pair.example/warm"); // opens nothing to write
    await st.storeEntry("https://pair.example/warm", DATA, META);
    const writes = io.writes;
    await st.storeEntry(KEY, DATA, META);
    // The pair in its slot, then the journal entry.
    assert.equal(io.writes - writes, 2);
    const s = st.stats();
    assert.equal(
      s.dataSlotsUsed,
      PAIR + pairSlots("https://pair.example/warm", DATA.length, META.length),
    );
    assert.equal(s.metaSlotsUsed, 0, "the metadata claims no slot of its own");
    assert.equal(s.bytes, 2 * (DATA.length + META.length));

    const reads = io.reads;
    const got = await both(st, KEY);
    assert.equal(io.reads - reads, 1, "both elements in one read");
    assert.deepEqual(got, { data: DATA, meta: META });
    // The element API reads either element of the pair.
    assert.deepEqual(await read(st, KEY), DATA);
    assert.deepEqual(await read(st, KEY, { meta: true }), META);
  } finally {
    await st.close();
  }
  // The snapshot keeps it (entries version 2, flag bit 4).
  const again = await BackingStore.open(d.path);
  try {
    assert.deepEqual(await both(again, KEY), { data: DATA, meta: META });
    assert.equal(again.stats().metaSlotsUsed, 0);
  } finally {
    await again.close();
  }
  const { records } = decodeEntries(Deno.readFileSync(`${d.path}/entries`));
  assert.equal(records[14]! & 0x10, 0x10, "flag bit 4 on the first record");
});

Deno.test("only pairs that fit one run share it", () => {
  // 2 × (32 + K) + data + meta ≤ the longest run (2 MiB).
  const most = MAX_RUN_SLOTS * SLOT_SIZE[0];
  assert.equal(runSlots(28, most - 120 - 1000, 1000), MAX_RUN_SLOTS);
  assert.equal(runSlots(28, most - 120 - 1000, 1001), 0);
});

Deno.test("a pair in one slot is replayed from the journal after a kill", async () => {
  await using d = await tempDir();
  await using copy = await tempDir();
  const st = await BackingStore.open(d.path, { maintenanceDelayMs: 60_000 });
  try {
    await st.storeEntry(KEY, DATA, META);
    await st.storeEntry("https://pair.example/b", bytesFor("b", 10), META);
    const journal = [...Deno.readDirSync(d.path)]
      .find((e) => e.name.startsWith("journal-"))!.name;
    const { entries } = readEntries(
      Deno.readFileSync(`${d.path}/${journal}`),
    );
    assert.deepEqual(entries.map((e) => opTag(e.body)), [
      OP.storeEntry,
      OP.storeEntry,
    ]);
    // The metadata record's location byte is 2: in the data's slot.
    assert.equal(entries[0]!.body.getUint8(8 + 32), 2);
    Deno.removeSync(copy.path, { recursive: true });
    fs.cpSync(d.path, copy.path, { recursive: true });
  } finally {
    await st.close();
  }
  const again = await BackingStore.open(copy.path);
  try {
    assert.equal(again.stats().repairedOnOpen, 0);
    assert.equal(again.stats().entries, 2);
    assert.deepEqual(await both(again, KEY), { data: DATA, meta: META });
    assert.equal(
      again.stats().dataSlotsUsed,
      PAIR + pairSlots("https://pair.example/b", 10, META.length),
    );
    assert.equal(again.stats().metaSlotsUsed, 0);
  } finally {
    await again.close();
  }
  assert.deepEqual((await checkStore(copy.path)).problems, []);
});

Deno.test("storing one element of a pair keeps the other", async () => {
  await using t = await tempStore();
  const st = t.store;
  await st.storeEntry(KEY, DATA, META);

  // New data alone: the metadata moves with it into the new data's slot.
  const d2 = bytesFor("d2", 2500);
  await st.store(KEY, d2);
  assert.deepEqual(await both(st, KEY), { data: d2, meta: META });
  assert.equal(
    st.stats().dataSlotsUsed,
    pairSlots(KEY, d2.length, META.length),
    "the old slots are free",
  );
  assert.equal(st.stats().metaSlotsUsed, 0);
  assert.equal(st.stats().bytes, d2.length + META.length);

  // New data too big to share even a run: the metadata gets a slot of
  // its own.
  const big = bytesFor("big", FILE_SIZED);
  await st.store(KEY, big);
  assert.deepEqual(await both(st, KEY), { data: big, meta: META });
  assert.equal(st.stats().dataSlotsUsed, 0);
  assert.equal(st.stats().metaSlotsUsed, 1);
  assert.equal(largeFiles(t.dir).length, 1);

  // Back to a pair, then new metadata alone: its own slot, data unchanged.
  await st.storeEntry(KEY, DATA, META);
  const m2 = bytesFor("m2", 700);
  await st.store(KEY, m2, { meta: true });
  assert.deepEqual(await both(st, KEY), { data: DATA, meta: m2 });
  assert.equal(st.stats().dataSlotsUsed, PAIR);
  assert.equal(st.stats().metaSlotsUsed, 1);
  assert.equal(st.stats().bytes, DATA.length + m2.length);

  // A pair again, then storeEntry without metadata drops it.
  await st.storeEntry(KEY, DATA, META);
  assert.equal(st.stats().metaSlotsUsed, 0);
  await st.storeEntry(KEY, d2);
  assert.deepEqual(await both(st, KEY), { data: d2, meta: undefined });
  assert.equal(st.stats().bytes, d2.length);
  await st.flush();
  const live = await checkStore(t.dir, { forceReadonly: true });
  // The large file's removal also removed its emptied directories.
  assert.deepEqual(live.problems.map((p) => p.code), []);
});

Deno.test("a held pair keeps its bytes while replaced; the slot is freed on release", async () => {
  await using t = await tempStore();
  const st = t.store;
  await st.storeEntry(KEY, DATA, META);
  const hit = (await st.fetchEntry(KEY))!;
  await st.storeEntry(KEY, bytesFor("d3", 100), bytesFor("m3", 100));
  const small = pairSlots(KEY, 100, 100);
  assert.equal(
    st.stats().dataSlotsUsed,
    PAIR + small,
    "the held slots are not reused",
  );
  assert.deepEqual(hit.data, DATA);
  assert.deepEqual(hit.meta, META);
  hit.release();
  assert.equal(st.stats().dataSlotsUsed, small);
  assert.equal(st.stats().metaSlotsUsed, 0);
});

Deno.test("damaged data drops the whole pair; damaged metadata only itself", async () => {
  await using t = await tempStore();
  await t.store.storeEntry(KEY, DATA, META);
  await t.store.storeEntry("https://pair.example/b", DATA, META);
  // Entry KEY is in data slot 0: damage its data.
  flipBit(dataBlockFile(t.dir), SLOT0 + 32 + KEY.length + 10);
  assert.equal(await t.store.fetchEntry(KEY), undefined, "never wrong bytes");
  assert.equal(t.store.stats().entries, 1, "the entry is gone");
  assert.equal(t.store.stats().corruptions, 1);

  // The run after it holds the other pair: damage its metadata.
  const other = "https://pair.example/b";
  flipBit(
    dataBlockFile(t.dir),
    SLOT0 + PAIR * SLOT_SIZE[0] + 32 + other.length + 3000 + 40,
  );
  assert.deepEqual(await both(t.store, other), { data: DATA, meta: undefined });
  assert.equal(t.store.stats().entries, 1);
  assert.equal(t.store.stats().corruptions, 2);
  assert.deepEqual(await read(t.store, other), DATA);
  await t.store.flush();
  const live = await checkStore(t.dir, { forceReadonly: true });
  assert.deepEqual(live.problems, []);
});

Deno.test("check-store verifies both elements of a pair and repairs either", async () => {
  for (
    const [what, at, kept] of [
      ["metadata", META_AT + 32 + KEY.length + 5, "data"],
      ["data", 32 + KEY.length + 5, "nothing"],
    ] as const
  ) {
    await using d = await tempDir();
    const st = await BackingStore.open(d.path);
    await st.storeEntry(KEY, DATA, META);
    await st.close();
    assert.deepEqual((await checkStore(d.path)).problems, [], "clean first");
    flipBit(dataBlockFile(d.path), SLOT0 + at);
    const found = await checkStore(d.path);
    assert.deepEqual(found.problems.map((p) => p.code), ["ELEMENT_CRC"], what);
    assert.match(found.problems[0]!.detail, new RegExp(`^${what}`));
    const fixed = await checkStore(d.path, { repair: true });
    assert.deepEqual(fixed.remaining, []);
    assert.deepEqual((await checkStore(d.path)).problems, []);
    const again = await BackingStore.open(d.path);
    try {
      const got = await both(again, KEY);
      if (kept === "data") {
        assert.deepEqual(got, { data: DATA, meta: undefined });
      } else assert.equal(again.stats().entries, 0);
    } finally {
      await again.close();
    }
  }
});

Deno.test("rebuild recovers a pair from its data slot", async () => {
  await using d = await tempDir();
  const st = await BackingStore.open(d.path);
  await st.storeEntry(KEY, DATA, META);
  await st.storeEntry("https://pair.example/solo", DATA); // no metadata
  await st.close();
  Deno.removeSync(`${d.path}/entries`);
  const again = await BackingStore.open(d.path);
  try {
    assert.deepEqual(await both(again, KEY), { data: DATA, meta: META });
    assert.deepEqual(await both(again, "https://pair.example/solo"), {
      data: DATA,
      meta: undefined,
    });
    assert.equal(again.stats().metaSlotsUsed, 0);
  } finally {
    await again.close();
  }
  assert.deepEqual((await checkStore(d.path)).problems, []);
});

Deno.test("a store of an earlier format (8 KiB data slots) is refused with VERSION_MISMATCH, untouched", async () => {
  // The versions an earlier larder wrote: entries 3 (byte 15 a slot
  // count), entries 4 (the attribute section, 8 KiB slots), control 3
  // (8 KiB data slots).
  const cases = [["entries", 3], ["entries", 4], ["control", 3]] as const;
  for (const [file, old] of cases) {
    await using d = await tempDir();
    const st = await BackingStore.open(d.path);
    await st.storeEntry(KEY, bytesFor("d", 8100), META);
    await st.setAttr(KEY, "a", "kept");
    await st.close();
    const path = `${d.path}/${file}`;
    const bytes = Deno.readFileSync(path);
    const v = new DataView(bytes.buffer);
    assert.equal(v.getUint32(8, true), VERSION[file]);
    v.setUint32(8, old, true);
    if (file === "entries") v.setUint32(60, crc32(bytes.subarray(0, 60)), true);
    else {
      const end = bytes.length - 4;
      v.setUint32(end, crc32(bytes.subarray(0, end)), true);
      Deno.writeFileSync(`${d.path}/control.bak`, bytes);
    }
    Deno.writeFileSync(path, bytes);
    assert.equal(bytes.length > ENTRIES_HEADER || file === "control", true);
    const before = Deno.readFileSync(`${d.path}/${file}`);
    const err = await BackingStore.open(d.path).then(
      () => undefined,
      (e) => e,
    );
    assert.equal(err?.code, "VERSION_MISMATCH", `${file} ${old}: ${err}`);
    assert.match(String(err.message), new RegExp(`version ${old}`));
    assert.deepEqual(Deno.readFileSync(`${d.path}/${file}`), before);
  }
});

Deno.test("new data for a pair is checked against the limit alone, as any data", async () => {
  await using t = await tempStore({ limit: 10_000 });
  await t.store.storeEntry(KEY, DATA, META);
  // Under the limit alone, over it with the metadata it carries along.
  const d2 = bytesFor("d2", 9_700);
  await t.store.store(KEY, d2);
  assert.deepEqual(await both(t.store, KEY), { data: d2, meta: META });
  await assert.rejects(t.store.store(KEY, bytesFor("d3", 10_001)), RangeError);
  assert.deepEqual(await both(t.store, KEY), { data: d2, meta: META });
});
