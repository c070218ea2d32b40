// The byte limit bounds the disk (FORMAT.md §5.4): a store written far past
// its limit with sizes from 1 byte to several MiB keeps its directory's
// allocated blocks (du) within the limit + 10% + the documented fixed
// overhead, and a store reopened with a lower limit gives its disk back.
import assert from "node:assert/strict";
import { BackingStore, checkStore } from "../mod.ts";
import { fixedOverhead } from "./_disk_bound.ts";
import {
  allocatedBytes,
  assertBytes,
  bytesFor,
  read,
  tempDir,
} from "./_helpers.ts";

const MIB = 2 ** 20;

// Sizes from 1 B to 4 MiB: most small, some runs, some large files.
function sizeAt(i: number): number {
  const r = (i * 2654435761) >>> 0;
  const pick = r % 100;
  if (pick < 50) return 1 + (r >>> 8) % 300;
  if (pick < 80) return 1 + (r >>> 8) % 20_000;
  if (pick < 95) return 1 + (r >>> 8) % 300_000;
  return 1 + (r >>> 8) % (4 * MIB);
}

/**
 * Writes 8 times a 24 MiB limit into a store at `dir` and checks its
 * allocated blocks every 50 stores; `tick(i)` runs before store `i` (a
 * clock to move).
 */
async function writeFarPast(
  dir: string,
  tick: (i: number) => void = () => {},
): Promise<void> {
  const o = { limit: 24 * MIB, entryBits: 12, journalBytes: MIB };
  const bound = o.limit * 1.1 + fixedOverhead(o);
  const pool = bytesFor("pool", 4 * MIB);
  const st = await BackingStore.open(dir, o);
  let written = 0;
  let worst = 0;
  for (let i = 0; written < 8 * o.limit; i++) {
    tick(i);
    const size = sizeAt(i);
    const body = pool.subarray(
      i % 1000,
      (i % 1000) + Math.min(size, 4 * MIB - 1000),
    );
    if (i % 3 === 0) {
      await st.storeEntry(
        `https://bound.example/${i}`,
        body,
        pool.subarray(0, 1 + i % 700),
      );
    } else if (i % 7 === 0) {
      await st.store(
        `https://bound.example/${i}`,
        body.subarray(0, 1 + i % 2000),
        { meta: true },
      );
    } else await st.store(`https://bound.example/${i}`, body);
    written += body.length;
    if (i % 50 === 0) {
      const used = allocatedBytes(dir);
      worst = Math.max(worst, used);
      assert.ok(
        used <= bound,
        `after ${written} bytes: ${used} allocated > ${bound}`,
      );
    }
  }
  assert.ok(st.stats().evictions > 0, "the limit was passed many times over");
  assert.ok(st.stats().diskBytes < o.limit);
  await st.close();
  const used = allocatedBytes(dir);
  assert.ok(used <= bound, `closed: ${used} allocated > ${bound}`);
  // And the store is far from empty: the limit is used, not just obeyed.
  assert.ok(worst > o.limit / 2, `at most ${worst} allocated`);
}

Deno.test("a store written far past its limit stays within limit + 10% + the fixed overhead on disk", async () => {
  await using d = await tempDir();
  await writeFarPast(d.path);
});

Deno.test("the disk bound holds whichever second the stores' use times fall in", async (t) => {
  // Use times order eviction, so where a second boundary falls changes
  // the victims and what holes they leave. The clock stands still (wall
  // and monotonic, as the crash workloads stop it), then moves one second
  // before store `at`: at 1200, a 4 MiB store once came after an
  // eviction's holes unweighed and the directory passed the bound. Each
  // step starts later than any time the store's clock gave before (it
  // never goes back).
  const realNow = Date.now;
  const mono = performance.now();
  let now = Math.ceil(realNow() / 1000) * 1000;
  try {
    Date.now = () => now;
    Object.defineProperty(performance, "now", {
      value: () => mono,
      configurable: true,
      writable: true,
    });
    for (const at of [100, 450, 800, 1200, 1325]) {
      await t.step(`the second turns before store ${at}`, async () => {
        await using d = await tempDir();
        now += 100_000;
        await writeFarPast(d.path, (i) => {
          if (i === at) now += 1000;
        });
      });
    }
  } finally {
    Date.now = realNow;
    // The own property shadowed Performance.prototype.now.
    delete (performance as { now?: unknown }).now;
  }
});

Deno.test("a store reopened with a lower limit gives its disk back", async () => {
  await using d = await tempDir();
  const o = { entryBits: 14, journalBytes: MIB };
  const values = new Map<string, Uint8Array>();
  {
    await using st = await BackingStore.open(d.path, { ...o, limit: 64 * MIB });
    for (let i = 0; i < 3000; i++) {
      const v = bytesFor(`v${i}`, 100 + (i * 7919) % 30_000);
      values.set(`https://shrink.example/${i}`, v);
      await st.storeEntry(
        `https://shrink.example/${i}`,
        v,
        bytesFor(`m${i}`, 300),
      );
    }
    assert.equal(st.stats().evictions, 0);
  }
  const before = allocatedBytes(d.path);
  assert.ok(before > 40 * MIB, `${before} allocated`);
  const limit = 8 * MIB;
  {
    await using st = await BackingStore.open(d.path, { ...o, limit });
    assert.ok(st.stats().evictions > 0);
    assert.ok(st.stats().diskBytes < limit);
    // What is left reads back whole.
    let kept = 0;
    for (const [k, v] of values) {
      const got = await read(st, k);
      if (got === undefined) continue;
      assertBytes(got, v, k);
      kept++;
    }
    assert.equal(kept, st.stats().entries);
    assert.ok(kept > 0);
  }
  const after = allocatedBytes(d.path);
  const bound = limit * 1.1 + fixedOverhead({ ...o, limit: 64 * MIB });
  assert.ok(
    after <= bound,
    `${after} allocated after shrinking (${before} before), > ${bound}`,
  );
  const report = await checkStore(d.path);
  assert.deepEqual(report.problems, []);
});
