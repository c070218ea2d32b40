// The entries file holds each record without the metadata fields it does
// not need (FORMAT.md §4, entries version 6): 28 bytes for one data
// element, 36 with its metadata after the data, 40 with metadata apart.
// Version 5 files (40-byte records) are still read, and a reopened store
// writes version 6.
import assert from "node:assert/strict";
import { crc32 } from "node:zlib";
import { BackingStore, checkStore } from "../mod.ts";
import {
  decodeEntries,
  encodeEntries,
  ENTRIES_HEADER,
  VERSION,
} from "../src/format.ts";
import {
  expandRecordsJs,
  packedLength,
  packRecords,
  unpackInPlace,
  unpackRecords,
} from "../src/_entry_pack.ts";
import { CorruptError } from "../src/errors.ts";
import { IndexMemory } from "../src/index_memory.ts";
import { assertSurvivors, buildStore } from "./_damage.ts";
import { bytesFor, read, tempDir } from "./_helpers.ts";

const RECORD = 40;

function recordFlags(records: Uint8Array, i: number): number {
  return records[i * RECORD + 14]!;
}

/** A table of `n` records of every kind, with random other fields. */
function randomRecords(n: number, seed: number): Uint8Array {
  let x = seed >>> 0;
  const next = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0);
  const b = new Uint8Array(n * RECORD);
  const v = new DataView(b.buffer);
  for (let i = 0; i < n; i++) {
    for (let w = 0; w < 10; w++) v.setUint32(i * RECORD + w * 4, next(), true);
    const kind = next() % 3;
    // flags: data, +meta in the data's slot, +meta apart.
    const flags = kind === 0 ? 0x01 : kind === 1 ? 0x13 : 0x03;
    b[i * RECORD + 14] = flags;
    if (kind === 0) b.fill(0, i * RECORD + 28, i * RECORD + 40);
    if (kind === 1) {
      v.setUint32(i * RECORD + 32, v.getUint32(i * RECORD + 20, true), true);
    }
  }
  return b;
}

Deno.test("packed records are 28, 36 or 40 bytes and expand to the table exactly", () => {
  for (const n of [0, 1, 2, 7, 16384, 16385, 40000]) {
    const table = randomRecords(n, n + 1);
    const chunks: Uint8Array[] = [];
    const { length, crc } = packRecords(
      table,
      n,
      (c) => chunks.push(c.slice()),
    );
    const packed = new Uint8Array(length);
    let at = 0;
    for (const c of chunks) (packed.set(c, at), at += c.length);
    assert.equal(at, length);
    assert.equal(crc, crc32(packed));
    let expected = 0;
    for (let i = 0; i < n; i++) {
      const f = recordFlags(table, i);
      expected += f === 0x01 ? 28 : f === 0x13 ? 36 : 40;
    }
    assert.equal(length, expected, `${n} records`);
    assert.equal(packedLength(table, n), expected);
    assert.deepEqual(unpackRecords(packed, n), table, `${n} records`);
    // In place, from the tail of the table's own region.
    const region = new Uint8Array(n * RECORD);
    region.set(packed, region.length - length);
    unpackInPlace(region, n, length);
    assert.deepEqual(region, table);
  }
});

/** The packed form of `table`'s `n` records, in one buffer. */
function packAll(table: Uint8Array, n: number): Uint8Array {
  const chunks: Uint8Array[] = [];
  const { length } = packRecords(table, n, (c) => chunks.push(c.slice()));
  const packed = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) (packed.set(c, at), at += c.length);
  return packed;
}

Deno.test("the kernel expands packed records in place as the reference does", () => {
  const mem = new IndexMemory({ entryBits: 17, identBits: 18 });
  const expand = (packed: Uint8Array, n: number) => {
    const js = new Uint8Array(n * RECORD);
    js.set(packed, js.length - packed.length);
    const jsOk = expandRecordsJs(js, n, packed.length);
    let kernel = new Uint8Array(0);
    let kernelOk = false;
    mem.loadRecordsWith(n, (dest) => {
      dest.set(packed, dest.length - packed.length);
      kernelOk = mem.expandRecords(n, packed.length);
      kernel = dest.slice();
    });
    assert.equal(kernelOk, jsOk, `${n} records`);
    assert.deepEqual(kernel, js, `${n} records`);
    return kernelOk;
  };
  // Across the kernel's chunks (65,536 records a call).
  for (const n of [1, 2, 7, 16385, 65536, 65537, 131071]) {
    const table = randomRecords(n, n + 3);
    const packed = packAll(table, n);
    if (packed.length === n * RECORD) continue; // the table itself
    assert.ok(expand(packed, n));
    const dest = new Uint8Array(n * RECORD);
    mem.loadRecordsWith(n, (d) => {
      d.set(packed, d.length - packed.length);
      mem.expandRecords(n, packed.length);
      dest.set(d);
    });
    assert.deepEqual(dest, table, `${n} records`);
  }
  // Damage: records too few or too many for the length, flags flipped.
  const table = randomRecords(70000, 11);
  const packed = packAll(table, 70000);
  // (Both must agree, whatever the damage happens to frame to.)
  let refused = 0;
  if (!expand(packed.subarray(4), 70000)) refused++;
  if (!expand(packed.subarray(0, packed.length - 28), 70000)) refused++;
  let x = 5;
  for (let round = 0; round < 20; round++) {
    const bad = packed.slice();
    for (let k = 0; k < 1 + (round % 4); k++) {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      const at = (x % (bad.length >>> 2)) * 4 + 2;
      bad[at] = [0x01, 0x03, 0x13, 0x11][x % 4]!;
    }
    if (!expand(bad, 70000)) refused++;
  }
  assert.ok(refused > 0);
});

Deno.test("packed records that do not fill their length exactly are refused", () => {
  const table = randomRecords(50, 9);
  const chunks: Uint8Array[] = [];
  const { length } = packRecords(table, 50, (c) => chunks.push(c.slice()));
  const packed = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) (packed.set(c, at), at += c.length);
  // One record too few, one too many, a length cut short by a word.
  assert.throws(() => unpackRecords(packed, 49), CorruptError);
  assert.throws(() => unpackRecords(packed, 51), CorruptError);
  assert.throws(() => unpackRecords(packed.subarray(0, length - 4), 50));
  // A flag flipped from "metadata apart" to "no metadata" shifts the rest.
  const i = [...Array(50).keys()].find((k) => recordFlags(table, k) === 0x03)!;
  let p = 0;
  for (let k = 0; k < i; k++) {
    const f = recordFlags(table, k);
    p += f === 0x01 ? 28 : f === 0x13 ? 36 : 40;
  }
  const bad = packed.slice();
  bad[p + 14] = 0x01;
  assert.throws(() => unpackRecords(bad, 50), CorruptError);
});

Deno.test("a store's entries file takes 28 bytes a record of one element", async () => {
  await using d = await tempDir();
  {
    await using st = await BackingStore.open(d.path);
    for (let i = 0; i < 100; i++) {
      await st.store(`k${i}`, bytesFor(`k${i}`, 100));
    }
    for (let i = 0; i < 50; i++) {
      await st.storeEntry(
        `e${i}`,
        bytesFor(`e${i}`, 200),
        bytesFor(`m${i}`, 30),
      );
    }
  }
  const b = Deno.readFileSync(`${d.path}/entries`);
  const v = new DataView(b.buffer);
  assert.equal(v.getUint32(8, true), VERSION.entries);
  assert.equal(VERSION.entries, 6);
  assert.equal(v.getUint32(16, true), 150);
  assert.equal(v.getUint32(12, true), 100 * 28 + 50 * 36);
  assert.equal(b.length, ENTRIES_HEADER + 100 * 28 + 50 * 36);
  await using st = await BackingStore.open(d.path);
  for (let i = 0; i < 100; i++) {
    assert.deepEqual(await read(st, `k${i}`), bytesFor(`k${i}`, 100));
  }
  const e = await st.fetchEntry("e7");
  assert.deepEqual(e?.data, bytesFor("e7", 200));
  assert.deepEqual(e?.meta, bytesFor("m7", 30));
  e?.release();
});

/** `dir`'s entries file rewritten as version 5: 40-byte records whole. */
function downgradeToV5(dir: string): void {
  const { header, records, attrs, origins } = decodeEntries(
    Deno.readFileSync(`${dir}/entries`),
  );
  const head = new Uint8Array(ENTRIES_HEADER);
  const v = new DataView(head.buffer);
  head.set(new TextEncoder().encode("LARDERIX"));
  v.setUint32(8, 5, true);
  v.setUint32(12, RECORD, true);
  v.setUint32(16, header.count, true);
  v.setUint32(20, header.nextFileId, true);
  v.setUint32(24, header.journalTag, true);
  v.setUint32(28, crc32(records), true);
  v.setUint32(32, attrs.length, true);
  v.setUint32(36, attrs.length === 0 ? 0 : crc32(attrs), true);
  v.setUint32(40, origins.length, true);
  v.setUint32(44, origins.length === 0 ? 0 : crc32(origins), true);
  v.setUint32(60, crc32(head.subarray(0, 60)), true);
  const out = new Uint8Array(
    head.length + records.length + attrs.length + origins.length,
  );
  out.set(head);
  out.set(records, head.length);
  out.set(attrs, head.length + records.length);
  out.set(origins, head.length + records.length + attrs.length);
  Deno.writeFileSync(`${dir}/entries`, out);
}

Deno.test("a version 5 entries file is read, checked, and written as version 6", async () => {
  await using b = await buildStore();
  downgradeToV5(b.dir);
  const v5 = Deno.readFileSync(`${b.dir}/entries`);
  assert.equal(new DataView(v5.buffer).getUint32(8, true), 5);
  const report = await checkStore(b.dir);
  assert.deepEqual(report.problems, []);
  await assertSurvivors(b.dir, b.values);
  // The next snapshot (a flush) is version 6 and smaller.
  {
    await using st = await BackingStore.open(b.dir);
    await st.store("new", bytesFor("new", 10));
    await st.flush();
  }
  const v6 = Deno.readFileSync(`${b.dir}/entries`);
  assert.equal(new DataView(v6.buffer).getUint32(8, true), 6);
  assert.ok(v6.length < v5.length + 40, `${v6.length} vs ${v5.length}`);
  b.values.set("new", { data: bytesFor("new", 10), meta: new Uint8Array(0) });
  const hits = await assertSurvivors(b.dir, b.values, []);
  assert.equal(hits, b.values.size);
});

Deno.test("an entries file whose records disagree with its length is corrupt to check-store, and open rebuilds", async () => {
  await using b = await buildStore();
  const { header, records } = decodeEntries(
    Deno.readFileSync(`${b.dir}/entries`),
  );
  // Claim one record fewer than the packed records hold, with every
  // CRC-32 right: only the packing's own check can tell.
  const file = encodeEntries(header, records);
  const v = new DataView(file.buffer);
  v.setUint32(16, header.count - 1, true);
  v.setUint32(60, crc32(file.subarray(0, 60)), true);
  assert.throws(() => decodeEntries(file), CorruptError);
  Deno.writeFileSync(`${b.dir}/entries`, file);
  const report = await checkStore(b.dir);
  assert.ok(
    report.problems.some((p) => p.code === "ENTRIES_CORRUPT"),
    JSON.stringify(report.problems),
  );
  await using st = await BackingStore.open(b.dir);
  for (const [key, val] of b.values) {
    assert.deepEqual(await read(st, key), val.data, key);
  }
});

Deno.test("expanding while loading leaves the table and map of expanding, then loading", () => {
  const a = new IndexMemory({ entryBits: 17, identBits: 18 });
  const b = new IndexMemory({ entryBits: 17, identBits: 18 });
  // Across the kernel's chunks (65,536 records a call).
  for (const n of [1, 7, 65536, 65537, 131071]) {
    const table = randomRecords(n, n + 5);
    const packed = packAll(table, n);
    if (packed.length === n * RECORD) continue; // the table itself
    const load = (mem: IndexMemory, loading: boolean) =>
      mem.loadRecordsWith(n, (dest) => {
        dest.set(packed, dest.length - packed.length);
        assert.ok(
          loading
            ? mem.expandRecordsLoading(n, packed.length)
            : mem.expandRecords(n, packed.length),
        );
      });
    load(a, false);
    load(b, true);
    assert.deepEqual(
      b.withRecords((r) => r.slice()),
      a.withRecords((r) => r.slice()),
      `${n} records`,
    );
    // Every entry found, at the same map position.
    for (let i = 0; i < n; i++) {
      const pos = a.lookupFirst(a.hashLo(i), a.hashHi(i));
      assert.equal(b.lookupFirst(b.hashLo(i), b.hashHi(i)), pos);
    }
    // Then a plain load of as many records: homes of its own, not these.
    const other = randomRecords(n, n + 6);
    b.loadRecords(other, n);
    a.loadRecords(other, n);
    for (let i = 0; i < n; i += 97) {
      assert.equal(
        b.lookupFirst(b.hashLo(i), b.hashHi(i)),
        a.lookupFirst(a.hashLo(i), a.hashHi(i)),
      );
      assert.equal(b.entryAt(b.lookupFirst(b.hashLo(i), b.hashHi(i))), i);
    }
  }
  // Packed records running past their length: refused, nothing noted.
  const table = randomRecords(70000, 12);
  const packed = packAll(table, 70000);
  b.loadRecordsWith(70000, (dest) => {
    dest.set(
      packed.subarray(0, packed.length - 4),
      dest.length - packed.length + 4,
    );
    assert.equal(b.expandRecordsLoading(70000, packed.length - 4), false);
  });
});
