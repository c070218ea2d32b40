// Data elements in runs of consecutive 64-byte data slots (FORMAT.md §4,
// §5.3): which sizes take a run and which a large file, the run codes that
// round a run's length, that a run stays inside one block file, falls back
// to a file when no run is free, is read whole or not at all, and that
// nsurl stores keep to aligned 8 KiB slots.
import assert from "node:assert/strict";
import { BackingStore, checkStore } from "../mod.ts";
import {
  dataSlotBitsFor,
  MAX_RUN_SLOTS,
  roundRun,
  runCode,
  runSlotsOf,
  SLOT_SIZE,
  SLOTS_PER_FILE,
} from "../src/format.ts";
import { blockFileParts } from "../src/paths.ts";
import { findInFile, flipBit } from "./_damage.ts";
import {
  assertBytes,
  bytesFor,
  largeFiles,
  read,
  slotsFor,
  tempDir,
  tempStore,
} from "./_helpers.ts";

const HEAD = 32;

Deno.test("dataSlotBitsFor: one slot an entry plus the limit and an eighth in slots, a power of two", () => {
  assert.equal(dataSlotBitsFor(16, 2 ** 30), 25); // 65,536 + 18,874,368 slots
  assert.equal(dataSlotBitsFor(8, 2 ** 20), 15); // 256 + 18,432
  assert.equal(dataSlotBitsFor(8, 1), 9); // 256 + 1
  assert.equal(dataSlotBitsFor(20, 2 ** 40), 28, "at most 512 block files");
  assert.equal(dataSlotBitsFor(24, 2 ** 30), 26); // 16,777,216 + 18,874,368
});

Deno.test("run codes: every code stands for one length, each run is rounded up by at most 1/16", () => {
  let last = 0;
  for (let c = 0; c < 256; c++) {
    const n = runSlotsOf(c);
    assert.ok(n > last, `code ${c} grows`);
    assert.equal(runCode(n), c);
    last = n;
  }
  assert.equal(runSlotsOf(0), 1);
  assert.equal(runSlotsOf(127), 128);
  assert.equal(runSlotsOf(128), 136);
  assert.equal(runSlotsOf(255), MAX_RUN_SLOTS);
  for (let n = 1; n <= MAX_RUN_SLOTS; n++) {
    const r = roundRun(n);
    assert.ok(r >= n && runCode(r) >= 0 && runSlotsOf(runCode(r)) === r);
    if (n > 128) assert.ok(r * 16 <= n * 17, `${n} rounds to ${r}`);
    else assert.equal(r, n);
  }
  assert.equal(roundRun(MAX_RUN_SLOTS + 1), 0, "longer: a large file");
});

Deno.test("a data element takes one slot, a run of slots, or a file by its size", async () => {
  await using t = await tempStore();
  const st = t.store;
  const key = "https://run.example/x";
  const room = MAX_RUN_SLOTS * SLOT_SIZE[0] - HEAD - key.length;
  const cases: [number, number, number][] = [
    // data length, data slots, large files
    [SLOT_SIZE[0] - HEAD - key.length, 1, 0],
    [SLOT_SIZE[0] - HEAD - key.length + 1, 2, 0],
    [100_000, slotsFor(key, 100_000), 0],
    [room, MAX_RUN_SLOTS, 0],
    [room + 1, 0, 1],
  ];
  for (const [len, slots, files] of cases) {
    const data = bytesFor(`d${len}`, len);
    await st.store(key, data);
    assert.equal(st.stats().dataSlotsUsed, slots, `${len} bytes`);
    assert.equal(largeFiles(t.dir).length, files, `${len} bytes`);
    assertBytes(await read(st, key), data);
  }
  // With metadata after the data (FORMAT.md §6.1): one run for both.
  const data = bytesFor("pair", 50_000);
  const meta = bytesFor("pairm", 700);
  await st.storeEntry(key, data, meta);
  const pairSlots = roundRun(Math.ceil(
    (2 * (HEAD + key.length) + data.length + meta.length) / SLOT_SIZE[0],
  ));
  assert.equal(st.stats().dataSlotsUsed, pairSlots);
  assert.equal(st.stats().metaSlotsUsed, 0);
  assert.deepEqual(largeFiles(t.dir), []);
  using hit = await st.fetchEntry(key);
  assertBytes(hit?.data, data);
  assertBytes(hit?.meta, meta);
  hit?.release();
  assert.equal(await st.invalidate(key), true);
  assert.equal(st.stats().dataSlotsUsed, 0, "the whole run is freed");
});

Deno.test("runs survive a reopen and check-store finds them clean", async () => {
  await using d = await tempDir();
  const values = new Map<string, Uint8Array>();
  {
    await using st = await BackingStore.open(d.path, { entryBits: 8 });
    for (let i = 0; i < 40; i++) {
      const v = bytesFor(`v${i}`, 9000 + i * 7919);
      values.set(`https://run.example/${i}`, v);
      // Every other one with its metadata after it in the run.
      if (i % 2 === 0) await st.store(`https://run.example/${i}`, v);
      else {
        await st.storeEntry(
          `https://run.example/${i}`,
          v,
          bytesFor(`m${i}`, 500),
        );
      }
      if (i % 5 === 0) await st.invalidate(`https://run.example/${i}`);
      if (i % 5 === 0) values.delete(`https://run.example/${i}`);
    }
  }
  const report = await checkStore(d.path);
  assert.deepEqual(report.problems, []);
  await using st = await BackingStore.open(d.path);
  for (const [k, v] of values) assertBytes(await read(st, k), v, k);
  for (const k of values.keys()) {
    const i = Number(k.slice(k.lastIndexOf("/") + 1));
    const meta = await read(st, k, { meta: true });
    if (i % 2 === 0) assert.equal(meta, undefined);
    else assertBytes(meta, bytesFor(`m${i}`, 500), `${k} meta`);
  }
  // A pair's run holds both elements, each with its header and key.
  const used = [...values].reduce((n, [k, v]) => {
    const i = Number(k.slice(k.lastIndexOf("/") + 1));
    const meta = i % 2 === 0 ? 0 : HEAD + k.length + 500;
    return n + slotsFor(k, v.length + meta);
  }, 0);
  assert.equal(st.stats().dataSlotsUsed, used);
  assert.deepEqual(largeFiles(d.path), []);
});

Deno.test("a run never crosses into the next block file", async () => {
  await using t = await tempStore({ entryBits: 13 });
  const st = t.store;
  const per = SLOTS_PER_FILE[0];
  // Fill block file 0 up to 6 slots before its end: 4095 runs of 128
  // slots, then one of 122.
  const sized = (key: string, slots: number) =>
    bytesFor(key, slots * SLOT_SIZE[0] - HEAD - key.length);
  for (let i = 0; i < 4095; i++) await st.store(`s${i}`, sized(`s${i}`, 128));
  await st.store("s-last", sized("s-last", 122));
  assert.equal(st.stats().dataSlotsUsed, per - 6);
  const key = "https://run.example/straddle";
  const data = bytesFor("straddle", 10 * SLOT_SIZE[0]);
  await st.store(key, data);
  assertBytes(await read(st, key), data);
  // It starts at slot 0 of block file 1.
  const files = 2 ** dataSlotBitsFor(13, 2 ** 30) / per;
  const second = `${t.dir}/${blockFileParts(0, 1, files).join("/")}`;
  assert.equal(findInFile(second, key), 4096 + HEAD);
  assert.equal(st.stats().dataSlotsUsed, per - 6 + 11);
  // The six slots left in file 0 still take small elements.
  await st.store("tail", bytesFor("tail", 10));
  assert.equal(st.stats().dataSlotsUsed, per - 5 + 11);
});

Deno.test("with no run free the element gets a large file, and a freed run is reused", async () => {
  await using d = await tempDir();
  // Created with a 1 MiB limit: 2^15 data slots, kept when reopened larger.
  (await BackingStore.open(d.path, { entryBits: 8, limit: 2 ** 20 })).close();
  await using st = await BackingStore.open(d.path, { limit: 2 ** 30 });
  const value = (i: number) => bytesFor(`r${i}`, 20_000);
  const run = slotsFor("k100", 20_000); // 320 slots each (run code 148)
  assert.equal(run, 320);
  const fit = Math.floor(2 ** 15 / run); // 102, and 128 slots left
  for (let i = 0; i < fit; i++) await st.store(`k${i}`, value(i));
  assert.equal(st.stats().dataSlotsUsed, fit * run);
  assert.deepEqual(largeFiles(d.path), []);
  await st.store(`k${fit}`, value(fit)); // 128 slots left: no run of 320
  assert.equal(largeFiles(d.path).length, 1);
  assertBytes(await read(st, `k${fit}`), value(fit));
  await st.invalidate("k7");
  await st.store(`k${fit + 1}`, value(fit + 1));
  assert.equal(largeFiles(d.path).length, 1, "into the freed run");
  assert.equal(st.stats().dataSlotsUsed, fit * run);
  for (let i = 0; i < fit + 2; i++) {
    if (i !== 7) assertBytes(await read(st, `k${i}`), value(i));
  }
});

Deno.test("damage anywhere in a run is a miss, never bytes", async () => {
  await using t = await tempStore();
  const key = "https://run.example/damaged";
  const data = bytesFor("damaged", 5 * SLOT_SIZE[0]);
  await t.store.storeEntry(key, data, bytesFor("m", 400));
  const file = `${t.dir}/${blockFileParts(0, 0, 64).join("/")}`;
  // A byte in the run's fourth slot (inside the data, past its first slot).
  flipBit(file, 4096 + 3 * SLOT_SIZE[0] + 100);
  using hit = await t.store.fetchEntry(key);
  assert.equal(hit, undefined, "the data and the metadata after it go");
  assert.equal(t.store.stats().corruptions, 1);
  assert.equal(t.store.stats().dataSlotsUsed, 0);
});

Deno.test("check-store reports a damaged run and its repair drops only that entry", async () => {
  await using t = await tempStore();
  const keep = bytesFor("keep", 30_000);
  const lose = bytesFor("lose", 30_000);
  await t.store.store("keep", keep);
  await t.store.store("lose", lose);
  await t.store.close();
  const file = `${t.dir}/${blockFileParts(0, 0, 64).join("/")}`;
  const at = findInFile(file, "lose");
  flipBit(file, at + 3 + 2 * SLOT_SIZE[0]);
  const report = await checkStore(t.dir, { repair: true });
  assert.deepEqual(report.problems.map((p) => p.code), ["ELEMENT_CRC"]);
  await using st = await BackingStore.open(t.dir);
  assertBytes(await read(st, "keep"), keep);
  assert.equal(await read(st, "lose"), undefined);
  assert.equal(st.stats().repairedOnOpen, 0);
});

Deno.test("nsurl stores keep data in aligned 8 KiB slots and files, never in other runs", async () => {
  await using t = await tempStore({ hash: "nsurl" });
  const url = "https://nsurl.example/big.js";
  const data = bytesFor("big", 20_000);
  await t.store.storeEntry(url, data, bytesFor("m", 300));
  assert.equal(t.store.stats().dataSlotsUsed, 0);
  assert.equal(largeFiles(t.dir).length, 1);
  assertBytes(await read(t.store, url), data);
  // Small elements: 128 slots each, each at a multiple of 128.
  for (let i = 0; i < 3; i++) {
    await t.store.store(`https://nsurl.example/${i}`, bytesFor(`s${i}`, 10));
  }
  assert.equal(t.store.stats().dataSlotsUsed, 3 * 128);
  const file = `${t.dir}/${blockFileParts(0, 0, 64).join("/")}`;
  for (let i = 0; i < 3; i++) {
    const at = findInFile(file, `https://nsurl.example/${i}`) - 4096 - HEAD;
    assert.equal(at % (128 * SLOT_SIZE[0]), 0, `element ${i} at ${at}`);
  }
  await t.store.close();
  // A rebuild finds them at those boundaries.
  Deno.removeSync(`${t.dir}/entries`);
  await using again = await BackingStore.open(t.dir, { hash: "nsurl" });
  for (let i = 0; i < 3; i++) {
    assertBytes(
      await read(again, `https://nsurl.example/${i}`),
      bytesFor(`s${i}`, 10),
    );
  }
  assert.equal(again.stats().dataSlotsUsed, 3 * 128);
});

Deno.test("a run a fetch still references is freed only at its release", async () => {
  await using t = await tempStore();
  const key = "https://run.example/pinned";
  const old = bytesFor("old", 30_000);
  await t.store.store(key, old);
  const slots = t.store.stats().dataSlotsUsed;
  assert.equal(slots, slotsFor(key, old.length));
  const hit = await t.store.fetch(key);
  await t.store.store(key, bytesFor("new", 20_000));
  assert.equal(
    t.store.stats().dataSlotsUsed,
    slots + slotsFor(key, 20_000),
    "the old run is kept while referenced",
  );
  assertBytes(hit?.data, old, "the holder's bytes");
  hit?.release();
  assert.equal(t.store.stats().dataSlotsUsed, slotsFor(key, 20_000));
  assertBytes(await read(t.store, key), bytesFor("new", 20_000));
});
