// Out-of-band deduplication (issue 15 part 3): identical bodies share one
// stored copy and free the rest of their disk; bodies that differ are never
// merged, even with the same size and CRC-32; a run is sliced (fetches are
// served while it runs), can be stopped and resumed after a restart, and
// leaves a store that check-store finds sound.
import assert from "node:assert/strict";
import { crc32 } from "node:zlib";
import { BackingStore, checkStore } from "../mod.ts";
import { bytesFor, read, tempDir, tempStore, walkFiles } from "./_helpers.ts";

const KEY = (n: number) => `https://dedup.example/${n}`;

/**
 * Disk blocks the store's element files take, in bytes: the block files
 * and large files that hold the bodies (the index grows by each merged
 * entry's origin, FORMAT.md §4.3, about 100 bytes here).
 */
function elementDisk(dir: string): number {
  let total = 0;
  for (const f of walkFiles(dir)) {
    if (!/^(dblk|mblk|d|m)\//.test(f)) continue;
    total += (Deno.statSync(`${dir}/${f}`).blocks ?? 0) * 512;
  }
  return total;
}

/**
 * `a` with byte `at` changed and its last four bytes rewritten so that
 * the result has the same length and the same CRC-32 as `a` (CRC-32 is
 * affine over GF(2): solve for the 32 bits that cancel the change).
 */
function sameCrcVariant(a: Uint8Array, at: number): Uint8Array {
  const n = a.length;
  const zero = crc32(new Uint8Array(n));
  // L(x) = crc32(x) ^ crc32(0…0) is linear in x.
  const lin = (flip: (b: Uint8Array) => void) => {
    const b = new Uint8Array(n);
    flip(b);
    return (crc32(b) ^ zero) >>> 0;
  };
  const target = lin((b) => b[at] = 0x01);
  const cols: number[] = [];
  for (let bit = 0; bit < 32; bit++) {
    cols.push(lin((b) => b[n - 4 + (bit >> 3)] = 1 << (bit & 7)));
  }
  // Gaussian elimination: find bits whose columns XOR to `target`.
  const rows = cols.map((c, bit) => ({ c, mask: 2 ** bit }));
  const basis: { c: number; mask: number }[] = [];
  for (const r of rows) {
    let { c, mask } = r;
    for (const b of basis) {
      if ((c ^ b.c) >>> 0 < c) {
        c = (c ^ b.c) >>> 0;
        mask ^= b.mask;
      }
    }
    if (c !== 0) basis.push({ c, mask });
    basis.sort((x, y) => y.c - x.c);
  }
  let t = target;
  let mask = 0;
  for (const b of basis) {
    if ((t ^ b.c) >>> 0 < t) {
      t = (t ^ b.c) >>> 0;
      mask ^= b.mask;
    }
  }
  assert.equal(t, 0, "the 32 bits span every CRC difference");
  const out = a.slice();
  out[at]! ^= 0x01;
  for (let bit = 0; bit < 32; bit++) {
    if ((mask >>> bit) & 1) out[n - 4 + (bit >> 3)]! ^= 1 << (bit & 7);
  }
  assert.notDeepEqual(out, a);
  assert.equal(crc32(out), crc32(a));
  return out;
}

Deno.test("dedup of 1,000 identical 100 KiB bodies frees 99.9% of their disk", async () => {
  await using t = await tempStore();
  const st = t.store;
  const empty = elementDisk(t.dir);
  const body = bytesFor("same", 100 * 1024);
  for (let n = 0; n < 1000; n++) await st.store(KEY(n), body);
  await st.flush();
  const full = elementDisk(t.dir);
  const r = await st.dedup();
  await st.flush();
  const after = elementDisk(t.dir);
  assert.deepEqual(r, {
    scanned: 1000,
    merged: 999,
    bytesFreed: 999 * 100 * 1024,
  });
  const s = st.stats();
  assert.equal(s.sharedElements, 1);
  assert.equal(s.bytesSaved, 999 * 100 * 1024);
  assert.equal(s.bytes, 100 * 1024);
  const freed = (full - after) / (full - empty);
  // One copy of a thousand is 0.1%; block file headers take a little more.
  assert.ok(freed >= 0.998, `freed ${(freed * 100).toFixed(3)}% of the disk`);
  assert.ok(full - empty >= 1000 * 100 * 1024);
  for (const n of [0, 1, 500, 999]) {
    assert.deepEqual(await read(st, KEY(n)), body);
  }
  // Copy-on-write after dedup: a store to one key leaves the others.
  await st.store(KEY(3), new Uint8Array([1]));
  assert.deepEqual(await read(st, KEY(4)), body);
  assert.equal(st.stats().bytesSaved, 998 * 100 * 1024);
});

Deno.test("dedup never merges bodies that differ in one byte, even with the same size and CRC-32", async (t) => {
  for (const size of [5000, 40_000, 3_000_000]) {
    await t.step(`${size} bytes`, async () => {
      await using s = await tempStore();
      const st = s.store;
      const a = bytesFor(`d${size}`, size);
      const forged = sameCrcVariant(a, 17);
      const plain = a.slice();
      plain[size - 1]! ^= 0xff;
      await st.store(KEY(1), a);
      await st.store(KEY(2), forged);
      await st.store(KEY(3), plain);
      await st.store(KEY(4), a.slice());
      const r = await st.dedup();
      assert.equal(r.merged, 1);
      assert.equal(r.bytesFreed, size);
      assert.deepEqual(await read(st, KEY(1)), a);
      assert.deepEqual(await read(st, KEY(2)), forged);
      assert.deepEqual(await read(st, KEY(3)), plain);
      assert.deepEqual(await read(st, KEY(4)), a);
      assert.equal(st.stats().sharedElements, 1);
    });
  }
});

Deno.test("dedup works in slices: fetches are served while it runs", async () => {
  await using s = await tempStore();
  const st = s.store;
  const body = bytesFor("slices", 50_000);
  for (let n = 0; n < 40; n++) await st.store(KEY(n), body);
  let done = false;
  const run = st.dedup({ sliceBytes: 100_000 }).then((r) => {
    done = true;
    return r;
  });
  // Between slices the store serves other calls.
  let served = 0;
  while (!done) {
    assert.deepEqual(await read(st, KEY(served % 40)), body);
    served++;
    await new Promise((res) => setTimeout(res, 0));
  }
  const r = await run;
  assert.equal(r.merged, 39);
  assert.ok(served >= 5, `${served} fetches served during the run`);
  // A second call joins or finds nothing left.
  assert.equal((await st.dedup()).merged, 0);
});

Deno.test("a stopped dedup keeps its merges and resumes after a restart", async () => {
  await using dir = await tempDir();
  const body = bytesFor("resume", 30_000);
  let st = await BackingStore.open(dir.path);
  for (let n = 0; n < 30; n++) await st.store(KEY(n), body);
  await st.store(KEY(99), bytesFor("other", 30_000));
  const stop = new AbortController();
  const first = st.dedup({ sliceBytes: 60_000, signal: stop.signal });
  await new Promise((res) => setTimeout(res, 0));
  await new Promise((res) => setTimeout(res, 0));
  stop.abort();
  const r1 = await first;
  assert.ok(
    r1.merged > 0 && r1.merged < 29,
    `${r1.merged} merged before the stop`,
  );
  await st.close();
  st = await BackingStore.open(dir.path);
  try {
    assert.equal(st.stats().bytesSaved, r1.merged * 30_000);
    const r2 = await st.dedup();
    assert.equal(r1.merged + r2.merged, 29);
    // The entries merged before the restart are not read again.
    assert.ok(r2.bytesFreed === r2.merged * 30_000);
    assert.equal(st.stats().bytes, 2 * 30_000);
    for (let n = 0; n < 30; n++) assert.deepEqual(await read(st, KEY(n)), body);
    assert.deepEqual(await read(st, KEY(99)), bytesFor("other", 30_000));
  } finally {
    await st.close();
  }
  const report = await checkStore(dir.path);
  assert.deepEqual(report.problems.map((p) => p.code), []);
});

Deno.test("dedup leaves data under metadata in its slot, and pinned duplicates readable", async () => {
  await using s = await tempStore();
  const st = s.store;
  const body = bytesFor("meta", 3000);
  await st.storeEntry(KEY(1), body, new Uint8Array([1, 2])); // one slot for both
  await st.store(KEY(2), body.slice());
  await st.store(KEY(3), body.slice());
  using hit = await st.fetch(KEY(3));
  const r = await st.dedup();
  // KEY(1)'s data cannot leave its slot (its metadata lives there); the
  // other two merge with it.
  assert.equal(r.merged, 2);
  assert.deepEqual(
    await read(st, KEY(1), { meta: true }),
    new Uint8Array([1, 2]),
  );
  for (const n of [1, 2, 3]) assert.deepEqual(await read(st, KEY(n)), body);
  assert.deepEqual(hit?.data, body);
  assert.equal(st.stats().sharedElements, 1);
});

Deno.test("check-store --dedup deduplicates a closed store and reports it", async () => {
  await using dir = await tempDir();
  const st = await BackingStore.open(dir.path);
  const body = bytesFor("cli", 12_000);
  for (let n = 0; n < 5; n++) await st.store(KEY(n), body);
  await st.close();
  const cli = new URL("../scripts/check_store.ts", import.meta.url);
  const run = async (...args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        cli.pathname,
        dir.path,
        ...args,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, text: new TextDecoder().decode(out.stdout) };
  };
  const human = await run("--dedup", "--quiet");
  assert.equal(human.code, 0);
  assert.match(human.text, /dedup: 5 data elements scanned, 4 merged/);
  const json = await run("--dedup", "--json");
  assert.equal(json.code, 0);
  assert.deepEqual(JSON.parse(json.text).dedup, {
    scanned: 5,
    merged: 0,
    bytesFreed: 0,
  });
  const again = await BackingStore.open(dir.path);
  try {
    assert.equal(again.stats().bytesSaved, 4 * 12_000);
    assert.deepEqual(await read(again, KEY(4)), body);
  } finally {
    await again.close();
  }
  assert.equal((await run("--dedup", "--force-readonly")).code, 2);
});

Deno.test("dedup compares again after a yield: a key re-stored meanwhile with other bytes of the same size and CRC-32 is never merged", async () => {
  await using s = await tempStore();
  const st = s.store;
  const body = bytesFor("yield", 5000);
  const forged = sameCrcVariant(body, 100);
  for (let n = 0; n < 4; n++) await st.store(KEY(n), body);
  // One element a slice: the kept copy (KEY(0)'s) is read in the first.
  const run = st.dedup({ sliceBytes: 1 });
  // Meanwhile KEY(0) is replaced: its slot is freed and the new value,
  // other bytes with the same size and CRC-32, takes that same slot.
  await st.invalidate(KEY(0));
  await st.store(KEY(0), forged);
  const r = await run;
  assert.deepEqual(await read(st, KEY(0)), forged);
  for (let n = 1; n < 4; n++) assert.deepEqual(await read(st, KEY(n)), body);
  // KEY(1..3) may merge among themselves, never with KEY(0).
  assert.ok(r.merged <= 2);
  assert.equal(st.stats().bytes, 5000 + 5000 * (3 - r.merged));
});

Deno.test("dedup rejects bad options with TypeError and RangeError, and changes nothing", async () => {
  await using d = await tempDir();
  await using st = await BackingStore.open(d.path);
  await st.store("a", bytesFor("same", 5000));
  await st.store("b", bytesFor("same", 5000));
  const bad: [unknown, typeof TypeError | typeof RangeError][] = [
    [null, TypeError],
    [7, TypeError],
    [{ sliceBytes: "1" }, TypeError],
    [{ minBytes: null }, TypeError],
    [{ signal: 1 }, TypeError],
    [{ signal: {} }, TypeError],
    [{ sliceBytes: 0 }, RangeError],
    [{ sliceBytes: -1 }, RangeError],
    [{ sliceBytes: NaN }, RangeError],
    [{ sliceBytes: 1.5 }, RangeError],
    [{ maxBytes: 0 }, RangeError],
    [{ minBytes: -1 }, RangeError],
    [{ minBytes: Infinity }, RangeError],
    [{ minBytes: 10, maxBytes: 9 }, RangeError],
  ];
  for (const [options, type] of bad) {
    await assert.rejects(
      () => st.dedup(options as never),
      type,
      JSON.stringify(options),
    );
  }
  assert.equal(st.stats().sharedElements, 0);
  const r = await st.dedup({ minBytes: 0, maxBytes: 5000, sliceBytes: 1 });
  assert.equal(r.merged, 1);
});
