// Records open drops (src/_open.ts checkRecords): each unsound record is
// dropped and counted, and of two entries claiming one slot the lower is
// dropped, whether open takes its one-pass path (nothing to drop) or
// checks record by record.
import assert from "node:assert/strict";
import { BackingStore } from "../mod.ts";
import { bytesFor, read, tempDir } from "./_helpers.ts";
import { editEntries, REC, RECORD } from "./_damage.ts";
import { MAX_DATA_SLOT_BITS, SLOTS_PER_FILE } from "../src/format.ts";
import { DATA } from "../src/kinds.ts";

const N = 6;
const value = (i: number) => bytesFor(`k${i}`, 200 + 100 * i);

async function build(dir: string): Promise<void> {
  await using st = await BackingStore.open(dir);
  for (let i = 0; i < N; i++) await st.store(`k${i}`, value(i));
}

async function reopen(
  dir: string,
  expectLost: number[],
  expectRepaired: boolean,
): Promise<void> {
  await using st = await BackingStore.open(dir);
  assert.equal(st.stats().repairedOnOpen > 0, expectRepaired);
  assert.equal(st.stats().entries, N - expectLost.length);
  for (let i = 0; i < N; i++) {
    const got = await read(st, `k${i}`);
    if (expectLost.includes(i)) assert.equal(got, undefined, `k${i} dropped`);
    else assert.deepEqual(got, value(i), `k${i} kept`);
  }
  // The use maps hold the kept slots: new elements never overwrite them.
  for (let i = 0; i < 40; i++) await st.store(`n${i}`, bytesFor(`n${i}`, 300));
  for (let i = 0; i < N; i++) {
    if (!expectLost.includes(i)) {
      assert.deepEqual(await read(st, `k${i}`), value(i));
    }
  }
  for (let i = 0; i < 40; i++) {
    assert.deepEqual(await read(st, `n${i}`), bytesFor(`n${i}`, 300));
  }
  assert.equal(st.stats().corruptions, 0);
}

/** Record index of key k{i} (records are in store order here). */
const rec = (i: number) => i * RECORD;

Deno.test("open keeps a sound table whole", async () => {
  await using d = await tempDir();
  await build(d.path);
  await reopen(d.path, [], false);
});

Deno.test("open drops the lower of two entries claiming one slot", async () => {
  await using d = await tempDir();
  await build(d.path);
  editEntries(d.path, (recs, v) => {
    // k1 points at k4's slot: k4 (the higher entry) keeps it.
    v.setUint32(
      rec(1) + REC.dataLoc,
      v.getUint32(rec(4) + REC.dataLoc, true),
      true,
    );
    void recs;
  });
  await reopen(d.path, [1], true);
});

Deno.test("open drops records that cannot be right", async (t) => {
  const cases: [string, (v: DataView) => void][] = [
    [
      "a slot past the last",
      (v) => v.setUint32(rec(2) + REC.dataLoc, 2 ** MAX_DATA_SLOT_BITS, true),
    ],
    ["no element", (v) => v.setUint8(rec(2) + REC.flags, 0)],
    ["a run across a block file's end", (v) => {
      v.setUint32(rec(2) + REC.dataLoc, SLOTS_PER_FILE[DATA] - 1, true);
      v.setUint8(rec(2) + 15, 1);
    }],
    [
      "a size its slot cannot hold",
      (v) => v.setUint32(rec(2) + REC.dataSize, 9000, true),
    ],
  ];
  for (const [name, edit] of cases) {
    await t.step(name, async () => {
      await using d = await tempDir();
      await build(d.path);
      editEntries(d.path, (_recs, v) => edit(v));
      await reopen(d.path, [2], true);
    });
  }
});
