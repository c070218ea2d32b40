// The use-map kernels against a boolean-array reference, and the bulk
// audit check-store runs.
import assert from "node:assert/strict";
import {
  DATA,
  type ElementKind,
  IndexMemory,
  META,
} from "../src/index_memory.ts";
import { RefBitmap } from "./_reference/bitmap.ts";
import { rng } from "./_reference/rng.ts";

Deno.test("claimSlot hands out slots in order and reports a full map", () => {
  const mem = new IndexMemory({ entryBits: 10, identBits: 11 });
  for (let s = 0; s < 1000; s++) assert.equal(mem.claimSlot(DATA, 1000), s);
  assert.equal(mem.claimSlot(DATA, 1000), -1);
  assert.equal(mem.usedSlots(DATA, 1000), 1000);
  assert.equal(mem.usedSlots(META, 1000), 0);
  mem.freeSlot(DATA, 517);
  assert.equal(mem.claimSlot(DATA, 1000), 517);
  assert.equal(mem.claimSlot(DATA, 0), -1);
});

Deno.test("use-map kernels equal the reference under random operations", async (t) => {
  for (const slots of [1, 63, 64, 65, 200, 1000, 4096]) {
    await t.step(`${slots} slots`, () => {
      const rand = rng(slots);
      const mem = new IndexMemory({ entryBits: 12, identBits: 13 });
      const ref = new RefBitmap(slots);
      let hint = 0; // mirrors IndexMemory's: after the last claim, back to a freed slot
      for (let op = 0; op < 6000; op++) {
        const r = rand(10);
        if (r < 5) {
          const s = mem.claimSlot(META, slots);
          const want = ref.claim(hint);
          assert.equal(s, want, `op ${op}`);
          if (want >= 0) hint = want + 1;
        } else if (r < 8) {
          const s = rand(slots);
          mem.freeSlot(META, s);
          ref.free(s);
          if (s < hint) hint = s;
        } else {
          const s = rand(slots);
          mem.markSlot(META, s);
          ref.used[s] = true;
        }
        if (op % 97 === 0) {
          assert.equal(mem.usedSlots(META, slots), ref.count());
          const s = rand(slots);
          assert.equal(mem.slotUsed(META, s), ref.used[s]);
        }
      }
      assert.deepEqual(
        mem.useMap(META).subarray(0, Math.ceil(slots / 8)),
        ref.bytes(),
      );
      assert.equal(mem.usedSlots(DATA, slots), 0);
      mem.clearUseMaps();
      assert.equal(mem.usedSlots(META, slots), 0);
    });
  }
});

Deno.test("a run of claims is linear, not quadratic", () => {
  // 2^20 claims on an empty map then on a map freed in reverse: each
  // claim must start at the hint, so this takes milliseconds. A scan from
  // slot 0 each time would be ~2^34 word reads and time the test out.
  const mem = new IndexMemory({ entryBits: 20, identBits: 21 });
  const n = 1 << 20;
  for (let s = 0; s < n; s++) assert.ok(mem.claimSlot(DATA, n) === s);
  for (let s = n - 1; s >= 0; s--) mem.freeSlot(DATA, s);
  for (let s = 0; s < n; s++) assert.ok(mem.claimSlot(DATA, n) === s);
  assert.equal(mem.usedSlots(DATA, n), n);
});

Deno.test("auditSlots finds every disagreement between entries and use map", async (t) => {
  const mem = new IndexMemory({ entryBits: 8, identBits: 9 });
  const slots = 200;
  const put = (slot: number, kind: ElementKind = DATA, inFile = false) => {
    const i = mem.add(mem.count * 7919, 0, 0);
    mem.setElement(i, kind, { size: 10, loc: slot, crc: 0, inFile });
    return i;
  };
  for (let s = 0; s < 100; s++) {
    put(s);
    mem.markSlot(DATA, s);
  }
  await t.step("a consistent store", () => {
    const { claimed, ...counts } = mem.auditSlots(DATA, slots);
    assert.deepEqual(claimed.subarray(0, 25), mem.useMap(DATA).subarray(0, 25));
    assert.deepEqual(counts, {
      badClaims: 0,
      claimedUnmarked: 0,
      firstClaimedUnmarked: -1,
      markedUnclaimed: 0,
      firstMarkedUnclaimed: -1,
    });
  });
  await t.step("large files and other kinds claim no slot", () => {
    put(150, DATA, true);
    put(160, META);
    assert.equal(mem.auditSlots(DATA, slots).claimedUnmarked, 0);
    const meta = mem.auditSlots(META, slots);
    assert.equal(meta.claimedUnmarked, 1);
    assert.equal(meta.firstClaimedUnmarked, 160);
  });
  await t.step("claimed but unmarked, marked but unclaimed", () => {
    mem.freeSlot(DATA, 40);
    mem.freeSlot(DATA, 41);
    mem.markSlot(DATA, 120);
    mem.markSlot(DATA, 199);
    const a = mem.auditSlots(DATA, slots);
    assert.equal(a.claimedUnmarked, 2);
    assert.equal(a.firstClaimedUnmarked, 40);
    assert.equal(a.markedUnclaimed, 2);
    assert.equal(a.firstMarkedUnclaimed, 120);
  });
  await t.step("double and out-of-range claims", () => {
    put(7);
    put(slots + 3);
    assert.equal(mem.auditSlots(DATA, slots).badClaims, 2);
  });
  await t.step("agrees with a slot-by-slot check on random tables", () => {
    const rand = rng(0xa0d17);
    for (let round = 0; round < 20; round++) {
      const m = new IndexMemory({ entryBits: 9, identBits: 10 });
      const nslots = 1 + rand(512);
      const claimed = new Map<number, number>();
      let bad = 0;
      for (let e = 0; e < 300; e++) {
        const i = m.add(e * 2654435761 >>> 0, 0, 0);
        const slot = rand(nslots + 20);
        const inFile = rand(5) === 0;
        m.setElement(i, META, { size: 1, loc: slot, crc: 0, inFile });
        if (inFile) continue;
        if (slot >= nslots || claimed.has(slot)) bad++;
        else claimed.set(slot, i);
      }
      const marked = new Set<number>();
      for (let k = 0; k < 250; k++) {
        const s = rand(nslots);
        m.markSlot(META, s);
        marked.add(s);
      }
      const onlyClaimed = [...claimed.keys()].filter((s) => !marked.has(s))
        .sort((a, b) => a - b);
      const onlyMarked = [...marked].filter((s) => !claimed.has(s)).sort((
        a,
        b,
      ) => a - b);
      const { claimed: claimedMap, ...counts } = m.auditSlots(META, nslots);
      const bits = [];
      for (let s = 0; s < nslots; s++) {
        if ((claimedMap[s >> 3]! >> (s & 7)) & 1) bits.push(s);
      }
      assert.deepEqual(bits, [...claimed.keys()].sort((a, b) => a - b));
      assert.deepEqual(counts, {
        badClaims: bad,
        claimedUnmarked: onlyClaimed.length,
        firstClaimedUnmarked: onlyClaimed[0] ?? -1,
        markedUnclaimed: onlyMarked.length,
        firstMarkedUnclaimed: onlyMarked[0] ?? -1,
      }, `round ${round}`);
    }
  });
});

Deno.test("run claims equal the reference under random operations", async (t) => {
  for (
    const [slots, group] of [[200, 64], [1000, 256], [4096, 4096], [
      5000,
      4096,
    ]] as const
  ) {
    await t.step(`${slots} slots in groups of ${group}`, () => {
      const rand = rng(slots + group);
      const mem = new IndexMemory({ entryBits: 13, identBits: 14 });
      const ref = new RefBitmap(slots);
      let hint = 0; // mirrors IndexMemory's
      for (let op = 0; op < 4000; op++) {
        const r = rand(10);
        if (r < 4) {
          const n = 1 + (rand(4) === 0 ? rand(group) : rand(8));
          const s = mem.claimRun(DATA, slots, n, group);
          const want = n === 1 ? ref.claim(hint) : ref.claimRun(hint, n, group);
          assert.equal(s, want, `op ${op}: run of ${n} from ${hint}`);
          if (want >= 0 && (n === 1 || want === hint)) hint = want + n;
        } else {
          const s = rand(slots);
          mem.freeSlot(DATA, s);
          ref.free(s);
          if (s < hint) hint = s;
        }
      }
      assert.deepEqual(
        mem.useMap(DATA).subarray(0, Math.ceil(slots / 8)),
        ref.bytes(),
      );
      assert.equal(mem.usedSlots(DATA, slots), ref.count());
    });
  }
});

Deno.test("a run never crosses a group boundary and reports -1 when none fits", () => {
  const mem = new IndexMemory({ entryBits: 12, identBits: 13 });
  // 4096 slots in groups of 1024: a run of 1000 fits once in each group.
  for (let g = 0; g < 4; g++) {
    assert.equal(mem.claimRun(DATA, 4096, 1000, 1024), g * 1024);
  }
  assert.equal(mem.claimRun(DATA, 4096, 25, 1024), -1);
  assert.equal(mem.claimRun(DATA, 4096, 24, 1024), 1000);
  assert.equal(mem.claimRun(DATA, 4096, 1025, 1024), -1);
  assert.equal(mem.claimRun(DATA, 4096, 0, 1024), -1);
});

Deno.test("run kernels (free, mark, count, last used) equal the reference under random operations", async (t) => {
  for (const slots of [64, 130, 1000, 5000]) {
    await t.step(`${slots} slots`, () => {
      const rand = rng(slots * 3 + 1);
      const mem = new IndexMemory({ entryBits: 13, identBits: 14 });
      const ref = new RefBitmap(slots);
      let hint = 0; // mirrors IndexMemory's
      for (let op = 0; op < 3000; op++) {
        const r = rand(10);
        const from = rand(slots);
        const n = rand(5) === 0 ? rand(slots - from + 1) : rand(
          Math.min(130, slots - from + 1),
        );
        if (r < 3) {
          mem.freeRun(DATA, from, n);
          for (let s = from; s < from + n; s++) ref.free(s);
          if (n > 0 && from < hint) hint = from;
        } else if (r < 6) {
          mem.markRun(DATA, from, n);
          for (let s = from; s < from + n; s++) ref.used[s] = true;
        } else if (r < 8) {
          // Claims read the summary: they find every freed word.
          const s = mem.claimSlot(DATA, slots);
          const want = ref.claim(hint);
          assert.equal(s, want, `op ${op}: claim`);
          if (want >= 0) hint = want + 1;
        } else {
          const used = ref.used.slice(from, from + n);
          assert.equal(
            mem.usedIn(DATA, from, n),
            used.filter((u) => u).length,
            `op ${op}: count of ${n} from ${from}`,
          );
          assert.equal(mem.runUsed(DATA, from, n), used.some((u) => u));
          assert.equal(
            mem.usedPrefix(DATA, from, n),
            used.lastIndexOf(true) + 1,
            `op ${op}: used prefix of ${n} from ${from}`,
          );
        }
      }
      assert.deepEqual(
        mem.useMap(DATA).subarray(0, Math.ceil(slots / 8)),
        ref.bytes(),
      );
      assert.equal(mem.usedSlots(DATA, slots), ref.count());
    });
  }
});
