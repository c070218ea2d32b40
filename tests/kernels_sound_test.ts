// The open's per-record checks in one kernel pass (asm/load.ts
// `table_sound`, IndexMemory.recordsSound; with the use maps marked in the
// same pass, asm/bitmap.ts `use_mark_sound`) must agree with the JavaScript
// reference (src/_open.ts `recordsSoundJs`) on every table: sound ones,
// with the greatest large-file id, and ones failing each check.
import assert from "node:assert/strict";
import { IndexMemory } from "../src/index_memory.ts";
import { recordsSoundJs } from "../src/_open.ts";
import { ENTRY_SIZE, runCode, SLOTS_PER_FILE } from "../src/format.ts";
import { DATA, META, type PerKind } from "../src/kinds.ts";
import { rng } from "./_reference/rng.ts";

const HAS_DATA = 0x01;
const HAS_META = 0x02;
const DATA_FILE = 0x04;
const META_FILE = 0x08;
const WITH_DATA = 0x10;

/** One record's fields (FORMAT.md §4), as stored. */
interface Rec {
  flags: number;
  code?: number;
  dSize?: number;
  dLoc?: number;
  mSize?: number;
  mLoc?: number;
}

const SLOTS: PerKind<number> = [
  2 * SLOTS_PER_FILE[DATA],
  2 * SLOTS_PER_FILE[META],
];

function loaded(recs: readonly Rec[]): IndexMemory {
  const bytes = new Uint8Array(recs.length * ENTRY_SIZE);
  const v = new DataView(bytes.buffer);
  recs.forEach((r, i) => {
    const b = i * ENTRY_SIZE;
    v.setUint32(b, Math.imul(i + 1, 2654435761) >>> 0, true);
    v.setUint32(b + 4, i, true);
    v.setUint8(b + 14, r.flags);
    v.setUint8(b + 15, r.code ?? 0);
    v.setUint32(b + 16, r.dSize ?? 0, true);
    v.setUint32(b + 20, r.dLoc ?? 0, true);
    v.setUint32(b + 28, r.mSize ?? 0, true);
    v.setUint32(b + 32, r.mLoc ?? 0, true);
  });
  const mem = new IndexMemory({ entryBits: 12, identBits: 13 });
  mem.loadRecords(bytes, recs.length);
  return mem;
}

function bothSay(
  recs: readonly Rec[],
  slots = SLOTS,
): { sound: boolean; maxFileId: number } {
  const mem = loaded(recs);
  const js = recordsSoundJs(mem, slots);
  assert.deepEqual(mem.recordsSound(slots), js);
  // Checked and marked in one pass: the same verdict, and when sound the
  // use maps (and claims not marked) of the pass that only marks.
  const fused = mem.loadUseMapsIfSound(slots);
  assert.deepEqual({ sound: fused.sound, maxFileId: fused.maxFileId }, js);
  if (js.sound) {
    const maps = [mem.useMap(DATA).slice(), mem.useMap(META).slice()];
    assert.deepEqual(mem.loadUseMaps(), fused.bad);
    assert.deepEqual(mem.useMap(DATA), maps[DATA]);
    assert.deepEqual(mem.useMap(META), maps[META]);
  } else {
    // What was marked before the unsound record is cleared whole.
    mem.clearUseMaps();
    assert.ok(mem.useMap(DATA).every((b) => b === 0));
    assert.ok(mem.useMap(META).every((b) => b === 0));
  }
  return js;
}

/** A sound table: data runs, metadata slots, pairs, large files. */
const BASE: Rec[] = [
  { flags: HAS_DATA, code: 0, dSize: 32, dLoc: 0 }, // exactly one slot
  { flags: HAS_DATA, code: runCode(128), dSize: 128 * 64 - 32, dLoc: 1 },
  { flags: HAS_DATA | DATA_FILE, dSize: 1 << 30, dLoc: 77 },
  { flags: HAS_META, mSize: 1024 - 32, mLoc: SLOTS[META] - 1 },
  { flags: HAS_META | META_FILE, mSize: 5000, mLoc: 901 },
  // Data and metadata in one run, exactly filling it.
  {
    flags: HAS_DATA | HAS_META | WITH_DATA,
    code: 1,
    dSize: 50,
    dLoc: 200,
    mSize: 128 - 64 - 50,
    mLoc: 200,
  },
  // A run ending at the last slot of the first block file and at the
  // last slot of the store.
  { flags: HAS_DATA, code: 3, dSize: 1, dLoc: SLOTS_PER_FILE[DATA] - 4 },
  { flags: HAS_DATA, code: 255, dSize: 9, dLoc: SLOTS[DATA] - 32768 },
  // A run code on data in a large file counts for nothing.
  { flags: HAS_DATA | DATA_FILE | HAS_META, code: 200, dSize: 9, dLoc: 3 },
];

Deno.test("table_sound passes a sound table, with its greatest file id", () => {
  assert.deepEqual(bothSay(BASE), { sound: true, maxFileId: 901 });
  assert.deepEqual(bothSay([]), { sound: true, maxFileId: -1 });
  assert.deepEqual(bothSay(BASE.slice(0, 2)), { sound: true, maxFileId: -1 });
  // File id 0, and the greatest u32.
  assert.deepEqual(
    bothSay([{ flags: HAS_DATA | DATA_FILE, dLoc: 0 }]),
    { sound: true, maxFileId: 0 },
  );
  assert.deepEqual(
    bothSay([{ flags: HAS_META | META_FILE, mLoc: 2 ** 32 - 1 }]),
    { sound: true, maxFileId: 2 ** 32 - 1 },
  );
});

/** Records that fail exactly one check each. */
const DEFECTS: Record<string, Rec> = {
  "no element": { flags: 0 },
  "only a run code": { flags: 0, code: 5 },
  "data past the last slot": { flags: HAS_DATA, dLoc: SLOTS[DATA] },
  "data run past the last slot": {
    flags: HAS_DATA,
    code: 255,
    dLoc: SLOTS[DATA] - 32767,
  },
  "data run across block files": {
    flags: HAS_DATA,
    code: 3,
    dLoc: SLOTS_PER_FILE[DATA] - 3,
  },
  "data at the greatest u32 slot": { flags: HAS_DATA, dLoc: 2 ** 32 - 1 },
  "data bigger than its slot": { flags: HAS_DATA, dSize: 33 },
  "data bigger than its run": {
    flags: HAS_DATA,
    code: runCode(136),
    dSize: 136 * 64 - 31,
  },
  "data of the greatest u32 size": {
    flags: HAS_DATA,
    code: 255,
    dSize: 2 ** 32 - 1,
  },
  "metadata past the last slot": { flags: HAS_META, mLoc: SLOTS[META] },
  "metadata bigger than its slot": { flags: HAS_META, mSize: 1024 - 31 },
  "metadata with data, no data": {
    flags: HAS_META | WITH_DATA,
    mLoc: 0,
  },
  "metadata with data, data in a file": {
    flags: HAS_DATA | DATA_FILE | HAS_META | WITH_DATA | META_FILE,
    dLoc: 4,
    mLoc: 4,
  },
  "metadata with data, at another slot": {
    flags: HAS_DATA | HAS_META | WITH_DATA,
    code: 1,
    dLoc: 10,
    mLoc: 11,
  },
  "metadata with data, not fitting the run": {
    flags: HAS_DATA | HAS_META | WITH_DATA,
    code: 1,
    dSize: 50,
    dLoc: 10,
    mSize: 128 - 64 - 49,
    mLoc: 10,
  },
  "metadata with data, a bad data run": {
    flags: HAS_DATA | HAS_META | WITH_DATA,
    dLoc: SLOTS[DATA],
    mLoc: SLOTS[DATA],
  },
};

Deno.test("table_sound fails a table with any record failing a check", async (t) => {
  for (const [name, bad] of Object.entries(DEFECTS)) {
    await t.step(name, () => {
      assert.deepEqual(bothSay([bad]), { sound: false, maxFileId: -1 });
      for (const at of [0, 4, BASE.length]) {
        const recs = [...BASE];
        recs.splice(at, 0, bad);
        assert.deepEqual(bothSay(recs), { sound: false, maxFileId: -1 });
      }
    });
  }
  // A record sound in a larger store fails in a smaller one.
  const small: PerKind<number> = [SLOTS_PER_FILE[DATA], SLOTS_PER_FILE[META]];
  assert.equal(bothSay(BASE, small).sound, false);
});

/** A field near a boundary that a check looks at. */
function near(rand: (n: number) => number, edges: readonly number[]): number {
  const e = edges[rand(edges.length)]!;
  return Math.min(2 ** 32 - 1, Math.max(0, e + rand(5) - 2));
}

Deno.test("table_sound agrees with the reference on random records", () => {
  const rand = rng(16);
  const locs = [
    0,
    SLOTS_PER_FILE[META],
    SLOTS_PER_FILE[DATA],
    SLOTS[META],
    SLOTS[DATA],
    SLOTS[DATA] - 32768,
    2 ** 32 - 1,
  ];
  let sound = 0;
  for (let round = 0; round < 3000; round++) {
    const recs: Rec[] = [];
    const n = 1 + rand(3);
    for (let k = 0; k < n; k++) {
      const code = rand(2) === 0 ? rand(256) : rand(4);
      const dLoc = near(rand, locs) - (rand(2) === 0 ? rand(40000) : 0);
      recs.push({
        flags: rand(3) === 0 ? rand(32) : [1, 2, 3, 5, 9, 19, 27][rand(7)]!,
        code,
        dSize: near(rand, [0, 32, 64, 1024, 8 * 1024, 2 ** 20, 2 ** 32 - 1]),
        dLoc: Math.max(0, dLoc),
        mSize: near(rand, [0, 992, 1024, 2 ** 32 - 1]),
        mLoc: rand(2) === 0 ? dLoc : near(rand, locs),
      });
    }
    if (bothSay(recs).sound) sound++;
  }
  // Both outcomes are reached often.
  assert.ok(sound > 300 && sound < 2700, `${sound} of 3000 sound`);
});
