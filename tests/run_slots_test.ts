// Data elements over 8 KiB in runs of consecutive data slots (FORMAT.md
// §5.3): which sizes take a run and which a large file, that a run stays
// inside one block file, falls back to a file when no run is free, is read
// whole or not at all, and that stores of the previous format (one data
// slot an entry) still open and gain runs.
import assert from "node:assert/strict";
import { crc32 } from "node:zlib";
import { BackingStore, checkStore } from "../mod.ts";
import {
  dataSlotBitsFor,
  decodeBlocks,
  encodeBlocksHeader,
  MAX_RUN_SLOTS,
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

Deno.test("dataSlotBitsFor: one slot an entry plus the limit in slots, a power of two", () => {
  assert.equal(dataSlotBitsFor(16, 2 ** 30), 18); // 65,536 + 131,072 slots
  assert.equal(dataSlotBitsFor(8, 2 ** 20), 9); // 256 + 128
  assert.equal(dataSlotBitsFor(8, 1), 9); // 256 + 1
  assert.equal(dataSlotBitsFor(20, 2 ** 40), 24, "at most 4096 block files");
  assert.equal(dataSlotBitsFor(24, 2 ** 30), 24);
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
  const pairSlots = Math.ceil(
    (2 * (HEAD + key.length) + data.length + meta.length) / SLOT_SIZE[0],
  );
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
  // Fill block file 0 up to 6 slots before its end, one slot an entry.
  for (let i = 0; i < SLOTS_PER_FILE - 6; i++) {
    await st.store(`s${i}`, bytesFor(`s${i}`, 10));
  }
  const key = "https://run.example/straddle";
  const data = bytesFor("straddle", 10 * SLOT_SIZE[0]);
  await st.store(key, data);
  assertBytes(await read(st, key), data);
  // It starts at slot 0 of block file 1.
  const second = `${t.dir}/${
    blockFileParts(0, 1, 2 ** 13 / SLOTS_PER_FILE).join("/")
  }`;
  assert.equal(findInFile(second, key), 4096 + HEAD);
  assert.equal(st.stats().dataSlotsUsed, SLOTS_PER_FILE - 6 + 11);
  // The six slots left in file 0 still take single-slot elements.
  await st.store("tail", bytesFor("tail", 10));
  assert.equal(st.stats().dataSlotsUsed, SLOTS_PER_FILE - 5 + 11);
});

Deno.test("with no run free the element gets a large file, and a freed run is reused", async () => {
  await using d = await tempDir();
  // Created with a 1 MiB limit: 2^9 data slots, kept when reopened larger.
  (await BackingStore.open(d.path, { entryBits: 8, limit: 2 ** 20 })).close();
  await using st = await BackingStore.open(d.path, { limit: 2 ** 30 });
  const value = (i: number) => bytesFor(`r${i}`, 20_000); // 3 slots each
  for (let i = 0; i < 170; i++) await st.store(`k${i}`, value(i));
  assert.equal(st.stats().dataSlotsUsed, 510);
  assert.deepEqual(largeFiles(d.path), []);
  await st.store("k170", value(170)); // two slots left: no run of three
  assert.equal(largeFiles(d.path).length, 1);
  assertBytes(await read(st, "k170"), value(170));
  await st.invalidate("k7");
  await st.store("k171", value(171));
  assert.equal(largeFiles(d.path).length, 1, "into the freed run");
  assert.equal(st.stats().dataSlotsUsed, 510);
  for (let i = 0; i < 172; i++) {
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

Deno.test("nsurl stores keep data in single slots and files, never in runs", async () => {
  await using t = await tempStore({ hash: "nsurl" });
  const url = "https://nsurl.example/big.js";
  const data = bytesFor("big", 20_000);
  await t.store.storeEntry(url, data, bytesFor("m", 300));
  assert.equal(t.store.stats().dataSlotsUsed, 0);
  assert.equal(largeFiles(t.dir).length, 1);
  assertBytes(await read(t.store, url), data);
});

/** Rewrites a closed store's control, blocks and entries as version 2/1/2. */
function toPreviousFormat(dir: string): void {
  const control = Deno.readFileSync(`${dir}/control`);
  const cv = new DataView(control.buffer);
  cv.setUint32(8, 2, true);
  control[15] = 0;
  cv.setUint32(40, crc32(control.subarray(0, 40)), true);
  Deno.writeFileSync(`${dir}/control`, control);

  const slots = 2 ** control[12]!;
  const { maps } = decodeBlocks(Deno.readFileSync(`${dir}/blocks`));
  const data = maps[0].slice(0, slots / 8);
  const meta = maps[1].slice(0, slots / 8);
  const head = encodeBlocksHeader([slots, slots], data, meta);
  const hv = new DataView(head.buffer);
  hv.setUint32(8, 1, true);
  hv.setUint32(24, 0, true);
  hv.setUint32(28, crc32(head.subarray(0, 28)), true);
  Deno.writeFileSync(
    `${dir}/blocks`,
    new Uint8Array([...head, ...data, ...meta]),
  );

  const entries = Deno.readFileSync(`${dir}/entries`);
  const ev = new DataView(entries.buffer);
  ev.setUint32(8, 2, true);
  ev.setUint32(60, crc32(entries.subarray(0, 60)), true);
  Deno.writeFileSync(`${dir}/entries`, entries);
}

Deno.test("a store of the previous format (one data slot an entry) opens and gains runs", async () => {
  await using d = await tempDir();
  const small = bytesFor("small", 3000);
  {
    await using st = await BackingStore.open(d.path, { entryBits: 8 });
    await st.store("small", small);
    await st.store("meta", bytesFor("meta", 100), { meta: true });
  }
  toPreviousFormat(d.path);
  assert.deepEqual((await checkStore(d.path)).problems, []);
  const big = bytesFor("big", 40_000);
  {
    await using st = await BackingStore.open(d.path);
    assertBytes(await read(st, "small"), small);
    assert.deepEqual(
      await read(st, "meta", { meta: true }),
      bytesFor("meta", 100),
    );
    await st.store("big", big);
    assert.deepEqual(largeFiles(d.path), [], "a run in the 256 data slots");
    assert.equal(st.stats().dataSlotsUsed, 1 + slotsFor("big", big.length));
  }
  assert.deepEqual((await checkStore(d.path)).problems, []);
  await using st = await BackingStore.open(d.path);
  assertBytes(await read(st, "big"), big);
  assert.equal(st.stats().repairedOnOpen, 0);
  const control = Deno.readFileSync(`${d.path}/control`);
  assert.equal(
    new DataView(control.buffer).getUint32(8, true),
    2,
    "control kept",
  );
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
