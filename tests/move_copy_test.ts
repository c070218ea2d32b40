// move and copy-on-write copy (issue 15 part 2): what each key holds
// afterwards, missing sources, same keys, existing destinations, copies of
// copies, chains of copy-on-write stores, attributes kept apart, limit
// accounting and eviction of shared entries, pins, and persistence through
// the journal and the snapshot.
import assert from "node:assert/strict";
import { BackingStore, checkStore, StoreError } from "../mod.ts";
import { decodeEntries, encodeEntries } from "../src/format.ts";
import {
  bytesFor,
  MOD_URL,
  read,
  runChild,
  sameBytes,
  tempDir,
  tempStore,
} from "./_helpers.ts";

import { findInFile, flipBit, largeFileOf } from "./_damage.ts";

const HELPERS_URL = new URL("./_helpers.ts", import.meta.url).href;

const A = "https://example.com/a";
const B = "https://example.com/b";
const C = "https://example.com/c";
const D = "https://example.com/d";

/** Sizes that land in one slot, a run of slots, and a large file. */
const SIZES = [100, 20_000, 3_000_000];

Deno.test("move gives the destination data, metadata and attributes; the source is gone", async (t) => {
  for (const size of SIZES) {
    await t.step(`${size} bytes`, async () => {
      await using s = await tempStore();
      const st = s.store;
      const body = bytesFor(`a${size}`, size);
      await st.storeEntry(A, body, new Uint8Array([9, 8, 7]));
      await st.setAttr(A, "mime", "text/plain");
      const before = st.stats();
      assert.equal(await st.move(A, B), true);
      assert.equal(await read(st, A), undefined);
      assert.equal(await st.attrs(A), undefined);
      assert.deepEqual(await read(st, B), body);
      assert.deepEqual(
        await read(st, B, { meta: true }),
        new Uint8Array([9, 8, 7]),
      );
      assert.equal(await st.getAttr(B, "mime"), "text/plain");
      const after = st.stats();
      assert.equal(after.entries, 1);
      assert.equal(after.bytes, before.bytes);
      assert.equal(after.dataSlotsUsed, before.dataSlotsUsed);
      assert.equal(after.sharedElements, 0);
      // Moving back makes the elements the source key's own again.
      assert.equal(await st.move(B, A), true);
      assert.deepEqual(await read(st, A), body);
      assert.equal(await read(st, B), undefined);
    });
  }
});

Deno.test("move and copy: missing source is false, same key is true and changes nothing", async () => {
  await using s = await tempStore();
  const st = s.store;
  assert.equal(await st.move(A, B), false);
  assert.equal(await st.copy(A, B), false);
  assert.equal(st.stats().entries, 0);
  await st.store(A, new Uint8Array([1]));
  assert.equal(await st.move(A, A), true);
  assert.equal(await st.copy(A, A), true);
  assert.deepEqual(await read(st, A), new Uint8Array([1]));
  assert.equal(st.stats().entries, 1);
  assert.equal(st.stats().sharedElements, 0);
  await assert.rejects(st.move(A, 5 as unknown as string), TypeError);
  await assert.rejects(st.copy(7 as unknown as string, A), TypeError);
});

Deno.test("move and copy onto an existing key replace everything it had", async () => {
  await using s = await tempStore();
  const st = s.store;
  await st.storeEntry(A, bytesFor("a", 5000), new Uint8Array([1]));
  await st.storeEntry(B, bytesFor("b", 7000), new Uint8Array([2, 2]));
  await st.setAttr(B, "old", "x");
  await st.store(C, bytesFor("c", 300));
  assert.equal(await st.copy(C, B), true);
  assert.deepEqual(await read(st, B), bytesFor("c", 300));
  assert.equal(await read(st, B, { meta: true }), undefined);
  assert.equal((await st.attrs(B))?.size, 0);
  assert.equal(st.stats().bytes, 5000 + 1 + 300);
  assert.equal(await st.move(A, C), true);
  assert.deepEqual(await read(st, C), bytesFor("a", 5000));
  assert.deepEqual(await read(st, C, { meta: true }), new Uint8Array([1]));
  assert.deepEqual(await read(st, B), bytesFor("c", 300));
  assert.equal(st.stats().entries, 2);
  assert.equal(st.stats().sharedElements, 0);
  assert.equal(st.stats().bytes, 5000 + 1 + 300);
});

Deno.test("copy shares the elements; a store to either key writes only that key's storage", async (t) => {
  for (const size of SIZES) {
    await t.step(`${size} bytes`, async () => {
      await using s = await tempStore();
      const st = s.store;
      const body = bytesFor(`c${size}`, size);
      await st.storeEntry(A, body, new Uint8Array([5]));
      await st.setAttr(A, "info", new Uint8Array([1, 2, 3]));
      const before = st.stats();
      assert.equal(await st.copy(A, B), true);
      const shared = st.stats();
      // No element bytes written: the same slots, the same byte count
      // (plus the copied attribute), one shared element a kind.
      assert.equal(shared.dataSlotsUsed, before.dataSlotsUsed);
      assert.equal(shared.metaSlotsUsed, before.metaSlotsUsed);
      assert.equal(shared.entries, 2);
      assert.equal(shared.sharedElements, 2);
      assert.equal(shared.bytesSaved, size + 1);
      assert.equal(shared.bytes, before.bytes * 2 - size - 1);
      assert.deepEqual(await read(st, B), body);
      assert.deepEqual(await read(st, B, { meta: true }), new Uint8Array([5]));
      // writeAttr on one never shows through the other.
      await st.writeAttr(B, "info", new Uint8Array([9]), 1);
      assert.deepEqual(await st.getAttr(A, "info"), new Uint8Array([1, 2, 3]));
      assert.deepEqual(await st.getAttr(B, "info"), new Uint8Array([1, 9, 3]));
      // Copy-on-write: the store goes to new storage for B only.
      const other = bytesFor(`o${size}`, size);
      await st.store(B, other);
      assert.deepEqual(await read(st, A), body);
      assert.deepEqual(await read(st, B), other);
      assert.deepEqual(await read(st, B, { meta: true }), new Uint8Array([5]));
      // Metadata in the data's slot (the small sizes) is stored again with
      // the new data; in a slot of its own it is still shared.
      const metaApart = size > 1_000_000;
      assert.equal(st.stats().sharedElements, metaApart ? 1 : 0);
      const attrBytes = 2 * ("info".length + 2 + 3);
      assert.equal(
        st.stats().bytes,
        2 * size + (metaApart ? 1 : 2) + attrBytes,
      );
      // The last reference frees the storage.
      assert.equal(await st.invalidate(A), true);
      assert.equal(st.stats().sharedElements, 0);
      assert.deepEqual(await read(st, B, { meta: true }), new Uint8Array([5]));
      assert.equal(await st.invalidate(B), true);
      assert.equal(st.stats().bytes, 0);
      assert.equal(st.stats().dataSlotsUsed, 0);
      assert.equal(st.stats().metaSlotsUsed, 0);
    });
  }
});

Deno.test("copies of copies and chains of copy-on-write stores", async () => {
  await using s = await tempStore();
  const st = s.store;
  const body = bytesFor("chain", 9000);
  await st.store(A, body);
  assert.equal(await st.copy(A, B), true);
  assert.equal(await st.copy(B, C), true);
  assert.equal(await st.copy(C, D), true);
  assert.equal(st.stats().sharedElements, 1);
  assert.equal(st.stats().bytesSaved, 3 * 9000);
  assert.equal(st.stats().bytes, 9000);
  for (const k of [A, B, C, D]) assert.deepEqual(await read(st, k), body);
  // Each store breaks one key away; the rest still share.
  const keys = [B, A, D];
  for (let n = 0; n < keys.length; n++) {
    await st.store(keys[n]!, bytesFor(keys[n]!, 100 + n));
    const left = 4 - (n + 1);
    assert.equal(st.stats().sharedElements, left > 1 ? 1 : 0);
    assert.equal(st.stats().bytesSaved, left > 1 ? (left - 1) * 9000 : 0);
  }
  assert.deepEqual(await read(st, C), body);
  for (let n = 0; n < keys.length; n++) {
    assert.deepEqual(await read(st, keys[n]!), bytesFor(keys[n]!, 100 + n));
  }
  // A moved copy keeps sharing; moving onto a sharer drops one reference.
  await st.copy(C, A);
  assert.equal(await st.move(A, B), true);
  assert.deepEqual(await read(st, B), body);
  assert.equal(st.stats().sharedElements, 1);
  assert.equal(await st.move(B, C), true);
  assert.equal(st.stats().sharedElements, 0);
  assert.deepEqual(await read(st, C), body);
  assert.equal(st.stats().bytes, 9000 + 102);
});

Deno.test("a pinned shared element stays readable after every reference goes", async () => {
  await using s = await tempStore();
  const st = s.store;
  const body = bytesFor("pin", 30_000);
  await st.store(A, body);
  await st.copy(A, B);
  using hit = await st.fetch(B);
  const reader = await st.openEntry(A);
  assert.ok(hit !== undefined && reader !== undefined);
  await st.invalidate(A);
  await st.store(B, new Uint8Array([1]));
  assert.equal(st.stats().deferredBytes, 30_000);
  // New stores cannot take the pinned slots.
  for (let n = 0; n < 8; n++) {
    await st.store(`${C}${n}`, bytesFor(`${n}`, 30_000));
  }
  assert.deepEqual(hit.data, body);
  const got = new Uint8Array(await new Response(reader.stream()).arrayBuffer());
  assert.deepEqual(got, body);
  hit[Symbol.dispose]();
  reader.release();
  assert.equal(st.stats().deferredBytes, 0);
  assert.equal(st.stats().bytes, 1 + 8 * 30_000);
});

Deno.test("eviction counts a shared element once and still ends under limit - hysteresis", async () => {
  const limit = 1_000_000;
  const hysteresis = 200_000;
  await using s = await tempStore({ limit, hysteresis });
  const st = s.store;
  // Ten bodies of 60 KB, each copied to nine more keys: 600 KB held by 100
  // entries, which a sum over the entries would count as 6 MB.
  for (let n = 0; n < 10; n++) {
    await st.store(`${A}/${n}`, bytesFor(`e${n}`, 60_000));
    for (let c = 0; c < 9; c++) await st.copy(`${A}/${n}`, `${B}/${n}/${c}`);
  }
  assert.equal(st.stats().entries, 100);
  assert.equal(st.stats().bytes, 600_000);
  assert.equal(st.stats().evictions, 0);
  // Past the limit: eviction frees shared bytes only with their last
  // reference, and goes on until the store is under limit - hysteresis.
  await st.store(C, bytesFor("big", 500_000));
  const after = st.stats();
  assert.ok(after.evictions > 0);
  assert.ok(
    after.bytes <= limit - hysteresis,
    `${after.bytes} bytes after eviction`,
  );
  assert.deepEqual(await read(st, C), bytesFor("big", 500_000));
  // What is left reads right, and the counts agree with a reopen.
  for (let n = 0; n < 10; n++) {
    const want = bytesFor(`e${n}`, 60_000);
    for (
      const k of [
        `${A}/${n}`,
        ...[...Array(9).keys()].map((c) => `${B}/${n}/${c}`),
      ]
    ) {
      const got = await read(st, k);
      if (got !== undefined) assert.deepEqual(got, want);
    }
  }
  const { bytes, entries, sharedElements, bytesSaved } = st.stats();
  await st.close();
  const again = await BackingStore.open(s.dir, { limit, hysteresis });
  const re = again.stats();
  assert.deepEqual(
    [re.bytes, re.entries, re.sharedElements, re.bytesSaved],
    [bytes, entries, sharedElements, bytesSaved],
  );
  await again.close();
});

Deno.test("moves and copies survive a reopen from the journal and from the snapshot", async (t) => {
  for (const flush of [false, true]) {
    await t.step(flush ? "snapshot" : "journal", async () => {
      await using dir = await tempDir();
      // A child makes them and exits without closing (the journal holds
      // them) or after a flush (the snapshot does).
      const r = await runChild(
        `import { BackingStore } from ${JSON.stringify(MOD_URL)};
         import { bytesFor } from ${JSON.stringify(HELPERS_URL)};
         const st = await BackingStore.open(${JSON.stringify(dir.path)});
         await st.storeEntry(${
          JSON.stringify(A)
        }, bytesFor("a", 20_000), new Uint8Array([3]));
         await st.store(${JSON.stringify(B)}, bytesFor("b", 3_000_000));
         await st.setAttr(${JSON.stringify(B)}, "k", "v");
         await st.copy(${JSON.stringify(A)}, ${JSON.stringify(C)});
         await st.move(${JSON.stringify(B)}, ${JSON.stringify(D)});
         await st.copy(${JSON.stringify(D)}, ${JSON.stringify(B)});
         ${flush ? "await st.flush();" : ""}
         const s = st.stats();
         console.log(JSON.stringify([s.entries, s.bytes, s.sharedElements, s.bytesSaved, s.dataSlotsUsed, s.metaSlotsUsed]));
         Deno.exit(0);`,
      );
      assert.equal(r.code, 0, r.err);
      const before = JSON.parse(r.out);
      const again = await BackingStore.open(dir.path);
      try {
        assert.equal(again.stats().repairedOnOpen, 0);
        assert.deepEqual(await read(again, A), bytesFor("a", 20_000));
        assert.deepEqual(await read(again, C), bytesFor("a", 20_000));
        assert.deepEqual(
          await read(again, C, { meta: true }),
          new Uint8Array([3]),
        );
        assert.deepEqual(await read(again, D), bytesFor("b", 3_000_000));
        assert.deepEqual(await read(again, B), bytesFor("b", 3_000_000));
        assert.equal(await again.getAttr(B, "k"), "v");
        assert.equal(await again.getAttr(D, "k"), "v");
        const s2 = again.stats();
        assert.deepEqual(
          [
            s2.entries,
            s2.bytes,
            s2.sharedElements,
            s2.bytesSaved,
            s2.dataSlotsUsed,
            s2.metaSlotsUsed,
          ],
          before,
        );
        // Copy-on-write still holds after the reopen.
        await again.store(C, new Uint8Array([1]));
        assert.deepEqual(await read(again, A), bytesFor("a", 20_000));
        await again.invalidate(D);
        assert.deepEqual(await read(again, B), bytesFor("b", 3_000_000));
      } finally {
        await again.close();
      }
      const report = await checkStore(dir.path);
      assert.deepEqual(report.problems.map((p) => p.code), []);
    });
  }
});

/** Rewrites the origin section of `dir`'s snapshot through `edit`. */
function editOrigins(dir: string, edit: (origins: Uint8Array) => void): void {
  const b = Deno.readFileSync(`${dir}/entries`);
  const { header, records, attrs, origins } = decodeEntries(b);
  assert.ok(origins.length > 0);
  const o = origins.slice();
  edit(o);
  const out = encodeEntries(header, records, attrs, o);
  Deno.writeFileSync(`${dir}/entries`, out);
}

Deno.test("check-store accepts shares claimed alike and reports claims that disagree", async (t) => {
  await t.step(
    "an origin naming no entry: ORIGIN_CORRUPT, repaired",
    async () => {
      await using dir = await tempDir();
      const st = await BackingStore.open(dir.path);
      await st.store(A, bytesFor("a", 20_000));
      await st.copy(A, B);
      await st.close();
      // The item's entry index points past the table.
      editOrigins(
        dir.path,
        (o) => new DataView(o.buffer).setUint32(0, 999, true),
      );
      const report = await checkStore(dir.path);
      const codes = report.problems.map((p) => p.code);
      assert.ok(codes.includes("ORIGIN_CORRUPT"), codes.join());
      // B's record claims A's slot with no origin: its element is another
      // key's, and the claim disagrees with A's.
      assert.ok(codes.includes("ELEMENT_KEY"), codes.join());
      const fixed = await checkStore(dir.path, { repair: true });
      assert.ok(fixed.repaired.length > 0);
      assert.deepEqual(
        (await checkStore(dir.path)).problems.map((p) => p.code),
        [],
      );
      const again = await BackingStore.open(dir.path);
      try {
        assert.deepEqual(await read(again, A), bytesFor("a", 20_000));
        assert.equal(await read(again, B), undefined);
      } finally {
        await again.close();
      }
    },
  );
  await t.step(
    "open drops what the damage leaves unverifiable, never serving it",
    async () => {
      await using dir = await tempDir();
      const st = await BackingStore.open(dir.path);
      await st.store(A, bytesFor("a", 20_000));
      await st.copy(A, B);
      await st.close();
      editOrigins(
        dir.path,
        (o) => new DataView(o.buffer).setUint32(0, 999, true),
      );
      const again = await BackingStore.open(dir.path);
      try {
        assert.ok(again.stats().repairedOnOpen > 0);
        // Of two records claiming one slot unlike, open keeps one (FORMAT.md
        // §9); whichever it kept, a read returns the bytes stored or a miss.
        for (const k of [A, B]) {
          const got = await read(again, k);
          assert.ok(
            got === undefined || sameBytes(got, bytesFor("a", 20_000)),
          );
        }
        await again.invalidate(A);
        await again.invalidate(B);
        assert.equal(again.stats().bytes, 0);
        assert.equal(again.stats().dataSlotsUsed, 0);
      } finally {
        await again.close();
      }
    },
  );
  await t.step(
    "an origin naming another hash: ELEMENT_KEY, repaired",
    async () => {
      await using dir = await tempDir();
      const st = await BackingStore.open(dir.path);
      await st.store(A, bytesFor("a", 3_000_000));
      await st.copy(A, B);
      await st.close();
      // The first origin's hash low word (after the 16-byte item head and
      // B's key).
      editOrigins(dir.path, (o) => {
        const v = new DataView(o.buffer);
        const at = 16 + v.getUint16(12, true);
        v.setUint32(at, v.getUint32(at, true) ^ 1, true);
      });
      const codes = (await checkStore(dir.path)).problems.map((p) => p.code);
      assert.ok(
        codes.includes("ELEMENT_KEY") || codes.includes("FILE_SHARED"),
        codes.join(),
      );
      await checkStore(dir.path, { repair: true });
      assert.deepEqual(
        (await checkStore(dir.path)).problems.map((p) => p.code),
        [],
      );
      const again = await BackingStore.open(dir.path);
      try {
        assert.deepEqual(await read(again, A), bytesFor("a", 3_000_000));
        assert.equal(await read(again, B), undefined);
        // B starts afresh: what it stores is its own.
        await again.store(B, new Uint8Array([4, 5]));
        assert.deepEqual(await read(again, B), new Uint8Array([4, 5]));
        await again.invalidate(B);
        await again.invalidate(A);
        assert.equal(again.stats().bytes, 0);
      } finally {
        await again.close();
      }
    },
  );
});

Deno.test("copy and move of an entry holding only attributes", async () => {
  await using s = await tempStore();
  const st = s.store;
  await st.setAttr(A, "x", "1");
  assert.equal(await st.copy(A, B), true);
  assert.equal(await st.getAttr(B, "x"), "1");
  await st.setAttr(B, "x", "2");
  assert.equal(await st.getAttr(A, "x"), "1");
  assert.equal(await st.move(A, C), true);
  assert.equal(await st.attrs(A), undefined);
  assert.equal(await st.getAttr(C, "x"), "1");
  assert.equal(await read(st, C), undefined);
  assert.equal(st.stats().entries, 2);
});

Deno.test("a copy into a full table evicts another entry, not its source", async () => {
  await using s = await tempStore({ entryBits: 8, identBits: 9 });
  const st = s.store;
  const cap = st.stats().capacity;
  await st.store(A, bytesFor("src", 500));
  for (let n = 1; n < cap; n++) {
    await st.store(`${D}/${n}`, bytesFor(`${n}`, 10));
    (await st.fetch(`${D}/${n}`))?.release(); // used more than the source
  }
  assert.equal(st.stats().entries, cap);
  assert.equal(await st.copy(A, B), true);
  assert.ok(st.stats().evictions > 0);
  assert.deepEqual(await read(st, A), bytesFor("src", 500));
  assert.deepEqual(await read(st, B), bytesFor("src", 500));
});

Deno.test("move, copy and dedup on a closed store reject with CLOSED", async () => {
  await using dir = await tempDir();
  const st = await BackingStore.open(dir.path);
  await st.store(A, new Uint8Array([1]));
  await st.close();
  for (const call of [st.move(A, B), st.copy(A, B), st.dedup()]) {
    await assert.rejects(
      call,
      (err: unknown) => err instanceof StoreError && err.code === "CLOSED",
    );
  }
});

Deno.test("a damaged shared element is a miss for every sharer, and freed with its last reference", async (t) => {
  for (const size of [20_000, 3_000_000]) {
    await t.step(`${size} bytes`, async () => {
      await using dir = await tempDir();
      const body = bytesFor(`dmg${size}`, size);
      let st = await BackingStore.open(dir.path);
      await st.store(A, body);
      await st.copy(A, B);
      await st.copy(A, C);
      await st.close();
      // One flipped bit in the element's bytes (after its header and key).
      const path = size > 1_000_000
        ? `${dir.path}/${largeFileOf(dir.path, A)}`
        : `${dir.path}/dblk/A`;
      const at = findInFile(path, A) + A.length + 1000;
      flipBit(path, at);
      st = await BackingStore.open(dir.path);
      try {
        for (const k of [B, A, C]) assert.equal(await read(st, k), undefined);
        const s2 = st.stats();
        assert.deepEqual(
          [s2.entries, s2.bytes, s2.dataSlotsUsed, s2.sharedElements],
          [0, 0, 0, 0],
        );
        assert.ok(s2.corruptions >= 3);
      } finally {
        await st.close();
      }
    });
  }
});

Deno.test("copies count once in disk bytes too (FORMAT.md §5.4), live and after a reopen", async () => {
  await using d = await tempDir();
  const opts = { limit: 64 * 2 ** 20 };
  let before: number[];
  {
    await using st = await BackingStore.open(d.path, opts);
    for (let i = 0; i < 50; i++) {
      await st.store(`k${i}`, bytesFor(`k${i}`, 10_000 + i));
      await st.store(`t${i}`, bytesFor(`t${i}`, 200));
    }
    const a = st.stats();
    before = [a.bytes, a.diskBytes];
    for (let i = 0; i < 50; i++) assert.ok(await st.copy(`k${i}`, `c${i}`));
    const b = st.stats();
    assert.deepEqual([b.entries, b.bytes, b.diskBytes], [150, ...before]);
    assert.equal(b.sharedElements, 50);
  }
  await using st = await BackingStore.open(d.path, opts);
  const c = st.stats();
  assert.deepEqual([c.entries, c.bytes, c.diskBytes], [150, ...before]);
  for (let i = 0; i < 50; i++) await st.invalidate(`k${i}`);
  const e = st.stats();
  assert.deepEqual([e.bytes, e.diskBytes, e.sharedElements], [
    ...before,
    0,
  ]);
  for (let i = 0; i < 50; i++) {
    assert.deepEqual(await read(st, `c${i}`), bytesFor(`k${i}`, 10_000 + i));
    await st.invalidate(`c${i}`);
  }
  const f = st.stats();
  assert.equal(f.bytes, 50 * 200);
  assert.ok(f.diskBytes < before[1]! / 10, `${f.diskBytes}`);
});
