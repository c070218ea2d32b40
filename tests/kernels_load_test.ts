// Loading a table at open (asm/load.ts): the address map built in one
// kernel call (entries inserted in the order of their home cells) must
// find every entry exactly as entry-by-entry insertion does, keep working
// under removals, and the totals must match a plain pass over the table.
import assert from "node:assert/strict";
import { DATA, IndexMemory, META } from "../src/index_memory.ts";
import { rng } from "./_reference/rng.ts";
import { recordDisk } from "../src/_slot_fit.ts";
import { blocksMatch } from "../src/_open.ts";
import { sameBytes } from "../src/_bytes.ts";
import { concat } from "./_damage.ts";
import {
  decodeBlocks,
  encodeBlocksHeader,
  readBlocks,
  storedDataMap,
} from "../src/format.ts";

/** n entries with hash low words from `lo`, some elements, some pinned. */
function table(
  n: number,
  entryBits: number,
  identBits: number,
  lo: (k: number) => number,
  rand: (n: number) => number,
): IndexMemory {
  const mem = new IndexMemory({ entryBits, identBits });
  for (let k = 0; k < n; k++) {
    const i = mem.add(lo(k) >>> 0, k, 0);
    mem.setUsage(i, 1 + rand(9), 1_700_000_000 + rand(1_000_000));
    if (rand(2) === 0) {
      mem.setElement(i, DATA, {
        size: rand(70_000),
        loc: k,
        crc: k,
        inFile: rand(4) === 0,
        slots: 1 + rand(128),
      });
    }
    if (rand(3) === 0) {
      mem.setElement(i, META, {
        size: rand(900),
        loc: k,
        crc: 0,
        inFile: rand(2) === 0,
      });
    }
    if (rand(5) === 0) mem.setPinned(i, true);
  }
  return mem;
}

/** Every entry is found from its own hash, at a position naming it. */
function assertAllFound(mem: IndexMemory): void {
  for (let i = 0; i < mem.count; i++) {
    const lo = mem.hashLo(i);
    const hi = mem.hashHi(i);
    let pos = mem.lookupFirst(lo, hi);
    while (pos >= 0 && mem.entryAt(pos) !== i) {
      pos = mem.lookupNext(lo, hi, pos);
    }
    assert.ok(pos >= 0, `entry ${i} (hash ${lo}) not found`);
  }
}

function copyOf(mem: IndexMemory): Uint8Array {
  return mem.withRecords((r) => r.slice());
}

const SHAPES = {
  // Homes spread over the map.
  spread: (k: number) => Math.imul(k, 2654435761),
  // Long probe runs: 16 entries a home.
  clustered: (k: number) => Math.imul(k >>> 4, 2654435761),
  // Homes at the map's last cells: probe runs wrap to cell 0.
  wrapping: (k: number) => -1 - (k >>> 3),
  // Every entry on one home.
  one: (_k: number) => 12345,
};

Deno.test("a loaded table finds every entry, as inserted one by one", async (t) => {
  for (const [name, lo] of Object.entries(SHAPES)) {
    for (
      const [n, entryBits, identBits] of [
        [0, 8, 9],
        [1, 8, 9],
        [256, 8, 9], // a full table, the map half full
        [3000, 12, 13],
        [40_000, 16, 20], // buckets of 2^11 cells, 512 of them
        [70_000, 17, 24], // the most buckets, 2^12
      ] as const
    ) {
      // One long probe run: quadratic by design, so kept small.
      if ((name === "one" || name === "wrapping") && n > 3000) continue;
      await t.step(`${name}, ${n} entries, identBits ${identBits}`, () => {
        const rand = rng(n + identBits);
        const src = table(n, entryBits, identBits, lo, rand);
        assertAllFound(src);
        const records = copyOf(src);
        const mem = new IndexMemory({ entryBits, identBits });
        mem.loadRecords(records, n);
        assert.equal(mem.count, n);
        assertAllFound(mem);
        // Runtime flags (pinned) are cleared, everything else kept.
        for (let i = 0; i < n; i++) {
          assert.equal(mem.pinned(i), false);
          assert.deepEqual(mem.element(i, DATA), src.element(i, DATA));
          assert.deepEqual(mem.element(i, META), src.element(i, META));
          assert.equal(mem.lastUsed(i), src.lastUsed(i));
        }
        // Backward-shift deletion works on the loaded layout.
        for (let k = 0; k < n / 2; k++) mem.remove(rand(mem.count));
        assertAllFound(mem);
        // A reload over a used map starts from an empty one.
        mem.loadRecords(records, n);
        assertAllFound(mem);
      });
    }
  }
});

Deno.test("totals are the latest use, the element bytes and the disk bytes of the table", () => {
  const rand = rng(7);
  const mem = table(5000, 13, 14, SHAPES.spread, rand);
  let latestUse = 0;
  let elementBytes = 0;
  let elementDisk = 0;
  for (let i = 0; i < mem.count; i++) {
    latestUse = Math.max(latestUse, mem.lastUsed(i));
    elementBytes += mem.elementSize(i, DATA) + mem.elementSize(i, META);
    for (const kind of [DATA, META] as const) {
      const rec = mem.element(i, kind);
      if (rec !== undefined) elementDisk += recordDisk(kind, rec);
    }
  }
  assert.ok(elementDisk > 0);
  assert.deepEqual(mem.totals(), { latestUse, elementBytes, elementDisk });
  assert.deepEqual(
    new IndexMemory({ entryBits: 8, identBits: 9 }).totals(),
    { latestUse: 0, elementBytes: 0, elementDisk: 0 },
  );
  // Element bytes past 2^32 are summed exactly.
  const big = new IndexMemory({ entryBits: 8, identBits: 9 });
  for (let k = 0; k < 4; k++) {
    const i = big.add(k, k, 0);
    big.setElement(i, DATA, {
      size: 2 ** 32 - 1,
      loc: k,
      crc: 0,
      inFile: true,
    });
  }
  assert.equal(big.totals().elementBytes, 4 * (2 ** 32 - 1));
});

Deno.test("a use map loaded from the claims equals one marked slot by slot", () => {
  const entryBits = 12;
  const rand = rng(11);
  const build = () => new IndexMemory({ entryBits, identBits: 13 });
  const a = build();
  const b = build();
  // Data runs and metadata slots, no two claiming a slot; whole 64-slot
  // words full (their summary bit cleared), others partly used.
  const dataSlots = a.slotCounts[DATA];
  let next = 0;
  for (let k = 0; k < 1500 && next < dataSlots - 8; k++) {
    const slots = 1 + rand(3);
    const loc = next;
    next += slots + (k % 40 < 30 ? 0 : rand(3));
    for (const mem of [a, b]) {
      const i = mem.add(k, k, 0);
      mem.setElement(i, DATA, { size: 100, loc, crc: 0, inFile: false, slots });
      if (k % 3 === 0) {
        mem.setElement(i, META, { size: 10, loc: k, crc: 0, inFile: false });
      } else if (k % 3 === 1) {
        mem.setElement(i, META, {
          size: 10,
          loc,
          crc: 0,
          inFile: false,
          withData: true,
        });
      }
    }
  }
  a.clearUseMaps();
  for (let i = 0; i < a.count; i++) {
    for (const kind of [DATA, META] as const) {
      const rec = a.element(i, kind);
      if (rec === undefined || rec.inFile || rec.withData) continue;
      a.markRun(kind, rec.loc, rec.slots ?? 1);
    }
  }
  assert.equal(b.loadUseMap(DATA), 0);
  assert.equal(b.loadUseMap(META), 0);
  for (const kind of [DATA, META] as const) {
    assert.deepEqual(b.useMap(kind), a.useMap(kind));
    // The summaries agree too: claims then find the same free slots.
    for (let n = 0; n < 200; n++) {
      assert.equal(
        b.claimSlot(kind, b.slotCounts[kind]),
        a.claimSlot(kind, a.slotCounts[kind]),
      );
    }
  }
  // Two claims of one slot, and a slot out of range, are counted.
  const c = build();
  for (const loc of [5, 5, c.slotCounts[META]]) {
    const i = c.add(loc, loc, 0);
    c.setElement(i, META, { size: 1, loc, crc: 0, inFile: false });
  }
  assert.equal(c.loadUseMap(META), 2);
});

Deno.test("use maps cleared or loaded over marks anywhere hold only what they should", () => {
  const build = () =>
    new IndexMemory({ entryBits: 12, identBits: 13, dataSlotBits: 20 });
  const mem = build();
  const last = mem.slotCounts[DATA] - 1;
  const zeros = (kind: 0 | 1) => new Uint8Array(mem.useMap(kind).length);
  // Marks by every way in: the map's last slot, a run, claims.
  const markAll = () => {
    mem.markSlot(DATA, last);
    mem.markRun(DATA, last - 200, 100);
    mem.markSlot(META, mem.slotCounts[META] - 1);
    assert.ok(mem.claimRun(DATA, mem.slotCounts[DATA], 40, 1 << 19) >= 0);
    assert.ok(mem.claimSlot(META, mem.slotCounts[META]) >= 0);
  };
  markAll();
  mem.clearUseMaps();
  assert.deepEqual(mem.useMap(DATA), zeros(DATA));
  assert.deepEqual(mem.useMap(META), zeros(META));
  // Loaded from the entries over stale marks: only the entries' claims.
  const i = mem.add(1, 1, 0);
  mem.setElement(i, DATA, {
    size: 100,
    loc: 3,
    crc: 0,
    inFile: false,
    slots: 2,
  });
  markAll();
  assert.equal(mem.loadUseMap(DATA), 0);
  assert.equal(mem.loadUseMap(META), 0);
  const want = zeros(DATA);
  want[0] = 0b11000;
  assert.deepEqual(mem.useMap(DATA), want);
  assert.deepEqual(mem.useMap(META), zeros(META));
  // The prefix is the map up to its last mark, zeros after it.
  const { prefix, bytes } = mem.usedMapPrefix(DATA);
  assert.equal(bytes, want.length);
  assert.deepEqual(prefix, want.subarray(0, prefix.length));
  assert.ok(prefix.length >= 1 && prefix.length < 64);
  // After a claim near the end the prefix reaches it.
  mem.markSlot(DATA, last);
  assert.equal(mem.usedMapPrefix(DATA).prefix.length, want.length);
  // Slots are then claimed as in a fresh map loaded the same way.
  mem.clearUseMaps();
  const fresh = build();
  const j = fresh.add(1, 1, 0);
  fresh.setElement(j, DATA, {
    size: 100,
    loc: 3,
    crc: 0,
    inFile: false,
    slots: 2,
  });
  assert.equal(mem.loadUseMap(DATA), 0);
  assert.equal(fresh.loadUseMap(DATA), 0);
  for (let n = 0; n < 100; n++) {
    assert.equal(
      mem.claimRun(DATA, mem.slotCounts[DATA], 1 + (n % 5), 1 << 19),
      fresh.claimRun(DATA, fresh.slotCounts[DATA], 1 + (n % 5), 1 << 19),
    );
  }
});

Deno.test("a blocks file matches the use maps as comparing them whole does", async (t) => {
  const mem = new IndexMemory({
    entryBits: 12,
    identBits: 13,
    dataSlotBits: 20,
  });
  for (let k = 0; k < 300; k++) {
    const i = mem.add(k, k, 0);
    mem.setElement(i, DATA, {
      size: 9,
      loc: 3 * k,
      crc: 0,
      inFile: false,
      slots: 2,
    });
    if (k % 2 === 0) {
      mem.setElement(i, META, { size: 9, loc: k, crc: 0, inFile: false });
    }
  }
  assert.equal(mem.loadUseMap(DATA), 0);
  assert.equal(mem.loadUseMap(META), 0);
  const data = mem.useMap(DATA);
  const meta = mem.useMap(META);
  const file = (d: Uint8Array, m: Uint8Array, slots = mem.slotCounts) =>
    concat(encodeBlocksHeader(slots, d, m), d, m);
  const whole = (b: Uint8Array) => {
    const { maps } = decodeBlocks(b);
    return sameBytes(maps[0], data) && sameBytes(maps[1], meta);
  };
  const edited = (map: Uint8Array, at: number, bits: number) => {
    const c = map.slice();
    c[at] = c[at]! ^ bits;
    return c;
  };
  const used = storedDataMap(data).length;
  const cases: Record<string, Uint8Array> = {
    "as rotation writes it": file(storedDataMap(data), meta),
    "the data map stored whole": file(data, meta),
    "stored with a few zero words more": file(
      data.subarray(0, used + 24),
      meta,
    ),
    "a used data slot cleared": file(storedDataMap(edited(data, 0, 1)), meta),
    "the last used data word changed": file(edited(data, used - 1, 0x80), meta),
    "a data slot right past the used ones": file(
      edited(data, used, 1).subarray(0, used + 8),
      meta,
    ),
    "the last data slot of the map": file(
      edited(data, data.length - 1, 0x80),
      meta,
    ),
    "the data map cut short of its used words": file(
      data.subarray(0, used - 8),
      meta,
    ),
    "a metadata slot cleared": file(storedDataMap(data), edited(meta, 0, 1)),
    "the last metadata slot": file(
      storedDataMap(data),
      edited(meta, meta.length - 1, 0x80),
    ),
    "another data slot count": file(storedDataMap(data), meta, [
      2 * mem.slotCounts[DATA],
      mem.slotCounts[META],
    ]),
  };
  for (const [name, b] of Object.entries(cases)) {
    await t.step(name, () => {
      const want = whole(b);
      assert.equal(blocksMatch(readBlocks(b), mem), want);
      assert.equal(want, name.startsWith("as") || name.includes("stored"));
    });
  }
});

Deno.test("both use maps loaded in one pass are each kind's loaded alone", () => {
  const rand = rng(77);
  for (const n of [0, 1, 500, 70_000]) {
    const a = table(n, 17, 18, () => rand(2 ** 32), rand);
    // Clashes: some entries claim a slot another one does.
    for (let k = 0; k < n; k += 97) {
      const rec = a.element(k, DATA);
      if (rec !== undefined && !rec.inFile && k + 1 < n) {
        a.setElement(k + 1, DATA, { ...rec });
      }
    }
    const alone = [a.loadUseMap(DATA), a.loadUseMap(META)];
    const maps = [a.useMap(DATA).slice(), a.useMap(META).slice()];
    const both = a.loadUseMaps();
    assert.deepEqual(both, alone, `${n} entries`);
    assert.deepEqual(a.useMap(DATA), maps[0]);
    assert.deepEqual(a.useMap(META), maps[1]);
    // Checked for soundness in the same pass: the same maps and counts.
    const slots = [a.slotCounts[DATA], a.slotCounts[META]] as const;
    const sound = a.loadUseMapsIfSound(slots);
    if (sound.sound) {
      assert.deepEqual(sound.bad, alone, `${n} entries, checked`);
      assert.deepEqual(a.useMap(DATA), maps[0]);
      assert.deepEqual(a.useMap(META), maps[1]);
    }
  }
});
