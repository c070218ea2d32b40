// Victim selection against the reference: sort everything with a
// comparator, then take the shortest prefix meeting the targets.
import assert from "node:assert/strict";
import {
  DATA,
  type ElementRecord,
  IndexMemory,
  META,
} from "../src/index_memory.ts";
import { runSlotsOf } from "../src/format.ts";
import { recordDisk } from "../src/_slot_fit.ts";
import { prefixOf, type RefEntry, refOrder } from "./_reference/evict.ts";
import { rng } from "./_reference/rng.ts";

interface Ranges {
  useCounts: number;
  lastUsed: number;
  pinnedOneIn: number;
}

/** A table of n random entries, and the same entries for the reference. */
function table(
  rand: (n: number) => number,
  n: number,
  entryBits: number,
  r: Ranges,
): { mem: IndexMemory; ref: RefEntry[] } {
  const mem = new IndexMemory({ entryBits, identBits: entryBits + 1 });
  const ref: RefEntry[] = [];
  const base = 1_700_000_000;
  for (let k = 0; k < n; k++) {
    const i = mem.add((k * 2654435761) >>> 0, k, 0);
    const useCount = rand(r.useCounts);
    const lastUsed = r.lastUsed >= 2 ** 31
      ? rand(2 ** 32)
      : base + rand(r.lastUsed);
    mem.setUsage(i, useCount, lastUsed);
    const pinned = r.pinnedOneIn > 0 && rand(r.pinnedOneIn) === 0;
    mem.setPinned(i, pinned);
    let bytes = 0;
    // Elements absent, present, or present with size 0, in slots (data in
    // runs of any code; metadata in its own slot or after the data) or
    // files: eviction weighs the disk they take (FORMAT.md §5.4).
    for (const kind of [DATA, META] as const) {
      if (rand(4) === 0) continue;
      const size = rand(3) === 0 ? 0 : rand(kind === DATA ? 9000 : 1100);
      const rec: ElementRecord = {
        size,
        loc: k,
        crc: 0,
        inFile: rand(9) === 0,
      };
      if (kind === DATA && !rec.inFile) rec.slots = runSlotsOf(rand(256));
      const data = mem.element(i, DATA);
      if (
        kind === META && !rec.inFile && data !== undefined && !data.inFile &&
        rand(2) === 0
      ) {
        rec.withData = true;
        rec.loc = data.loc;
      }
      mem.setElement(i, kind, rec);
      bytes += recordDisk(kind, rec);
    }
    ref.push({ pinned, useCount, lastUsed, bytes });
  }
  return { mem, ref };
}

const NARROW: Ranges = { useCounts: 3, lastUsed: 5, pinnedOneIn: 4 };
const WIDE: Ranges = { useCounts: 65536, lastUsed: 2 ** 32, pinnedOneIn: 3 };
const TYPICAL: Ranges = {
  useCounts: 40,
  lastUsed: 86400 * 30,
  pinnedOneIn: 50,
};

Deno.test("evictionOrder equals the reference order", async (t) => {
  for (const [name, r] of Object.entries({ NARROW, WIDE, TYPICAL })) {
    for (const n of [0, 1, 2, 47, 49, 3000]) {
      await t.step(`${name}, ${n} entries`, () => {
        const { mem, ref } = table(rng(n * 31 + name.length), n, 12, r);
        assert.deepEqual([...mem.evictionOrder()], refOrder(ref, -1));
      });
    }
  }
});

Deno.test("selectVictims equals the reference on random tables and targets", async (t) => {
  for (const [name, r] of Object.entries({ NARROW, WIDE, TYPICAL })) {
    await t.step(name, () => {
      const rand = rng(name.length * 7);
      for (let round = 0; round < 30; round++) {
        const n = [1, 5, 60, 500, 4000][round % 5]!;
        const { mem, ref } = table(rand, n, 12, r);
        const total = ref.reduce((a, e) => a + e.bytes, 0);
        const keep = rand(3) === 0 ? -1 : rand(n);
        const order = refOrder(ref, keep);
        for (let q = 0; q < 12; q++) {
          const byteTarget = [
            0,
            1,
            rand(total + 1),
            total,
            total + 1,
            Infinity,
          ][q % 6]!;
          const entryTarget = [0, 1, rand(n + 1), n, n + 5][rand(5)]!;
          const got = [...mem.selectVictims(byteTarget, entryTarget, keep)];
          const want = prefixOf(order, ref, byteTarget, entryTarget);
          assert.deepEqual(
            got,
            want,
            `round ${round}, n ${n}, targets ${byteTarget}/${entryTarget}, keep ${keep}`,
          );
        }
      }
    });
  }
});

Deno.test("selectVictims on 65,536 entries equals the reference", () => {
  const rand = rng(65536);
  const { mem, ref } = table(rand, 65536, 16, TYPICAL);
  const total = ref.reduce((a, e) => a + e.bytes, 0);
  const order = refOrder(ref, 123);
  for (
    const byteTarget of [
      Math.floor(total / 10),
      Math.floor(total / 2),
      Infinity,
    ]
  ) {
    const want = prefixOf(order, ref, byteTarget, 100);
    assert.deepEqual([...mem.selectVictims(byteTarget, 100, 123)], want);
  }
});

Deno.test("selectVictims ties go by index and fractional targets round up", () => {
  const mem = new IndexMemory({ entryBits: 8, identBits: 9 });
  for (let k = 0; k < 10; k++) {
    const i = mem.add(k, 0, 0);
    mem.setUsage(i, 1, 100);
    mem.setElement(i, DATA, { size: 10, loc: k, crc: 0, inFile: false });
  }
  // Each is one 64-byte data slot on disk (FORMAT.md §5.4).
  assert.deepEqual([...mem.selectVictims(160, 0, 1)], [0, 2, 3]);
  assert.deepEqual([...mem.selectVictims(131.2, 0, -1)], [0, 1, 2]);
  assert.deepEqual([...mem.selectVictims(0, 0, -1)], []);
  assert.deepEqual([...mem.selectVictims(0, 2.2, -1)], [0, 1, 2]);
  assert.throws(() => mem.selectVictims(NaN, 0, -1), RangeError);
});

// Tables above exactSelectionMax select through a sampled threshold; the
// victims must be the same. With the candidates capped the selection may
// return a prefix (selectionComplete false): it must be the reference's
// prefix of that length.
Deno.test("sampled selection equals the reference, or returns a prefix of it", async (t) => {
  for (const [name, r] of Object.entries({ NARROW, WIDE, TYPICAL })) {
    await t.step(name, () => {
      const rand = rng(name.length * 13 + 1);
      let partial = 0;
      for (let round = 0; round < 24; round++) {
        const n = [60, 500, 4000, 4096][round % 4]!;
        const { mem, ref } = table(rand, n, 12, r);
        mem.exactSelectionMax = [0, 1, 50][round % 3]!;
        mem.maxCandidates = [4096, 1000, 64, 5][Math.floor(round / 6)]!;
        const total = ref.reduce((a, e) => a + e.bytes, 0);
        const keep = rand(3) === 0 ? -1 : rand(n);
        const order = refOrder(ref, keep);
        for (let q = 0; q < 12; q++) {
          const byteTarget = [
            0,
            1,
            rand(total + 1),
            total,
            total + 1,
            Infinity,
          ][
            q % 6
          ]!;
          const entryTarget = [0, 1, rand(n + 1), n, n + 5, rand(40)][rand(6)]!;
          const got = [...mem.selectVictims(byteTarget, entryTarget, keep)];
          const want = prefixOf(order, ref, byteTarget, entryTarget);
          const what =
            `round ${round}, n ${n}, max ${mem.maxCandidates}, targets ${byteTarget}/${entryTarget}, keep ${keep}`;
          if (mem.selectionComplete) {
            assert.deepEqual(got, want, what);
          } else {
            partial++;
            assert.ok(got.length > 0 && got.length < want.length, what);
            assert.deepEqual(got, want.slice(0, got.length), what);
          }
        }
      }
      assert.ok(partial > 0, "some selections returned a prefix");
    });
  }
});

Deno.test("sampled selection over 2^20 + 1 entries equals the reference", () => {
  const rand = rng(99);
  const n = 2 ** 20 + 1;
  const { mem, ref } = table(rand, n, 21, TYPICAL);
  const total = ref.reduce((a, e) => a + e.bytes, 0);
  const order = refOrder(ref, 77);
  for (
    const [bytes, entries] of [
      [0, 1],
      [0, Math.ceil(n / 64)],
      [Math.floor(total / 20), 0],
      [Math.floor(total / 5), 1000],
    ]
  ) {
    const got = [...mem.selectVictims(bytes!, entries!, 77)];
    assert.ok(mem.selectionComplete);
    assert.deepEqual(got, prefixOf(order, ref, bytes!, entries!));
  }
});
