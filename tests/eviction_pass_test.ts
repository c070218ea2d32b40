// The incremental eviction pass (src/_eviction_pass.ts) of large tables,
// on small ones: `Eviction.incrementalAbove` is lowered, and so is the
// store's `maxCandidates`, so that a walk takes many slices.
import assert from "node:assert/strict";
import { BackingStore, type OpenOptions } from "../mod.ts";
import { Eviction } from "../src/_eviction.ts";
import { IndexMemory } from "../src/index_memory.ts";
import { checkStore } from "../src/check.ts";
import { assertBytes, bytesFor, read, tempStore } from "./_helpers.ts";

const INCREMENTAL_ABOVE = 256;
const CANDIDATES = 128;
const SIZE = 300;

/**
 * Runs `f` with the incremental path on for small tables: every store's
 * index looks at `candidates` entries a slice. Restored afterwards.
 */
async function withPass(
  f: () => Promise<void>,
  candidates = CANDIDATES,
): Promise<void> {
  const above = Eviction.incrementalAbove;
  const add = IndexMemory.prototype.add;
  const evict = Object.getOwnPropertyDescriptor(Eviction.prototype, "evict")!;
  Eviction.incrementalAbove = INCREMENTAL_ABOVE;
  IndexMemory.prototype.add = function (this: IndexMemory, ...a) {
    this.maxCandidates = Math.min(this.maxCandidates, candidates);
    return add.apply(this, a);
  };
  // The test went through the pass: it collected slices.
  const collect = IndexMemory.prototype.collectRange;
  let slices = 0;
  IndexMemory.prototype.collectRange = function (this: IndexMemory, ...a) {
    slices++;
    return collect.apply(this, a);
  };
  try {
    await f();
    assert.ok(slices > 0, "no pass slice");
  } finally {
    Eviction.incrementalAbove = above;
    IndexMemory.prototype.add = add;
    IndexMemory.prototype.collectRange = collect;
    Object.defineProperty(Eviction.prototype, "evict", evict);
  }
}

/** Whether an eviction is under way (its steps or slices still to come). */
function stepping(store: BackingStore): boolean {
  // deno-lint-ignore no-explicit-any
  const ev = (store as any)[EVICTION_OF]?.() as Eviction | undefined;
  return ev?.stepping ?? false;
}

// The store's Eviction, found the first time it evicts.
const EVICTION_OF = Symbol("eviction");
function watchEvictions(store: BackingStore): void {
  const evict = Eviction.prototype.evict;
  let seen: Eviction | undefined;
  // deno-lint-ignore no-explicit-any
  (store as any)[EVICTION_OF] = () => seen;
  Eviction.prototype.evict = function (this: Eviction, ...a) {
    seen = this;
    return evict.apply(this, a);
  };
}

/** Whether `key` has an entry, without using it (no fetch). */
async function has(store: BackingStore, key: string): Promise<boolean> {
  return (await store.attrs(key)) !== undefined;
}

/** Until the eviction under way has ended (fails if it does not). */
async function evictionEnds(store: BackingStore): Promise<void> {
  for (let n = 0; stepping(store); n++) {
    if (n >= 20_000) throw new Error("the eviction does not end");
    await new Promise((r) => setTimeout(r, 0));
  }
}

const LIMIT = 400_000;
const HYSTERESIS = 100_000;
const BYTES: OpenOptions = { limit: LIMIT, hysteresis: HYSTERESIS };

Deno.test("an incremental pass keeps every put under the byte limit and the table under capacity", async () => {
  await withPass(async () => {
    await using s = await tempStore({ ...BYTES, entryBits: 11 });
    const st = s.store;
    watchEvictions(st);
    let passes = 0;
    for (let i = 0; i < 12_000; i++) {
      const size = SIZE + (i * 7919) % 400;
      await st.store(`k${i}`, bytesFor(`k${i}`, size));
      const stats = st.stats();
      assert.ok(
        stats.diskBytes < LIMIT,
        `${stats.diskBytes} disk bytes at ${i}`,
      );
      assert.ok(stats.entries <= stats.capacity, `${stats.entries} at ${i}`);
      if (stepping(st)) passes++;
      // A new entry is never its own victim.
      assertBytes(await read(st, `k${i}`), bytesFor(`k${i}`, size), `k${i}`);
      if (i % 97 === 0) await new Promise((r) => setTimeout(r, 0));
    }
    assert.ok(passes > 0, "no eviction ran in steps or slices");
    assert.ok(st.stats().evictions > 10_000);
  });
});

Deno.test("an incremental pass on a full table of small entries keeps it under capacity", async () => {
  await withPass(async () => {
    await using s = await tempStore({ entryBits: 10 });
    const st = s.store;
    watchEvictions(st);
    let passes = 0;
    for (let i = 0; i < 6_000; i++) {
      await st.store(`k${i}`, bytesFor(`k${i}`, 40));
      assert.ok(st.stats().entries <= 1024, `${st.stats().entries} at ${i}`);
      if (stepping(st)) passes++;
      assertBytes(await read(st, `k${i}`), bytesFor(`k${i}`, 40), `k${i}`);
    }
    assert.ok(passes > 0, "no eviction ran in steps or slices");
  });
});

Deno.test("an incremental pass never evicts the entry its put replaces", async () => {
  await withPass(async () => {
    // Most of the store goes each time: the pass walks the whole table.
    const options = { limit: LIMIT, hysteresis: LIMIT * 3 / 4 };
    await using s = await tempStore(options);
    const st = s.store;
    watchEvictions(st);
    let i = 0;
    for (let r = 1; r <= 8; r++) {
      // "kept" is the least used entry, the first a
      // selection would take. Its attribute goes with the entry: a put
      // after evicting it would store a new entry without one.
      await st.invalidate("kept");
      await st.store("kept", bytesFor("kept0", SIZE));
      await st.setAttr("kept", "a", "1");
      // Up to the limit, no eviction yet; the others are used once more.
      while (st.stats().diskBytes + 4 * SIZE < LIMIT) {
        await st.store(`k${i}`, bytesFor(`k${i}`, SIZE));
        (await st.fetch(`k${i}`))?.release();
        i++;
      }
      assert.ok(st.stats().entries > INCREMENTAL_ABOVE);
      const evictions = st.stats().evictions;
      // A replacement growing past the limit starts an eviction.
      const bytes = bytesFor(`kept${r}`, SIZE + 4000);
      await st.store("kept", bytes);
      assert.ok(st.stats().evictions > evictions, `no eviction at ${r}`);
      assert.ok(st.stats().diskBytes < LIMIT);
      // (Not read: a use would make it no longer the least used.)
      assert.equal(await st.getAttr("kept", "a"), "1", `round ${r}`);
      // Nor does the rest of that eviction take it.
      await evictionEnds(st);
      assert.equal(await st.getAttr("kept", "a"), "1", `round ${r}, after`);
      assertBytes(await read(st, "kept"), bytes, `kept, round ${r}, after`);
    }
  });
});

Deno.test("an incremental pass takes mostly the least used entries", async () => {
  await withPass(async () => {
    await using s = await tempStore(BYTES);
    const st = s.store;
    watchEvictions(st);
    const n = 800;
    for (let i = 0; i < n; i++) {
      await st.store(`k${i}`, bytesFor(`k${i}`, SIZE));
    }
    assert.equal(st.stats().evictions, 0);
    // Every fourth entry is used three times more; the others never.
    for (let r = 0; r < 3; r++) {
      for (let i = 0; i < n; i += 4) (await st.fetch(`k${i}`))?.release();
    }
    for (let i = 0; i < 600; i++) {
      await st.store(`n${i}`, bytesFor(`n${i}`, SIZE));
    }
    await evictionEnds(st);
    assert.ok(st.stats().evictions > n / 2);
    let hot = 0;
    let cold = 0;
    for (let i = 0; i < n; i++) {
      if ((await read(st, `k${i}`)) === undefined) continue;
      if (i % 4 === 0) hot++;
      else cold++;
    }
    assert.ok(hot >= 0.95 * n / 4, `${hot} of ${n / 4} used entries stayed`);
    assert.ok(cold <= 0.05 * n, `${cold} of ${n * 3 / 4} unused stayed`);
  });
});

Deno.test("close during an incremental pass leaves a clean store with exact bytes", async () => {
  await withPass(async () => {
    await using s = await tempStore(BYTES);
    const st = s.store;
    watchEvictions(st);
    const sizes = new Map<string, number>();
    let i = 0;
    while (!stepping(st)) {
      const size = SIZE + (i * 131) % 500;
      await st.store(`k${i}`, bytesFor(`k${i}`, size));
      sizes.set(`k${i}`, size);
      i++;
      assert.ok(i < 20_000, "no pass started");
    }
    const evictions = st.stats().evictions;
    await st.close();
    const report = await checkStore(s.dir);
    assert.equal(report.ok, true, JSON.stringify(report.problems));
    await using again = await BackingStore.open(s.dir, BYTES);
    const stats = again.stats();
    assert.ok(stats.diskBytes < LIMIT);
    assert.ok(stats.entries > 0);
    // The put's steps, and the victims in hand removed by close.
    assert.ok(evictions > 0);
    assert.ok(stats.entries <= sizes.size - evictions);
    let present = 0;
    for (const [k, size] of sizes) {
      const got = await read(again, k);
      if (got === undefined) continue;
      assertBytes(got, bytesFor(k, size), k);
      present++;
    }
    assert.equal(present, stats.entries);
    assertBytes(
      await read(again, `k${i - 1}`),
      bytesFor(`k${i - 1}`, sizes.get(`k${i - 1}`)!),
    );
  });
});

Deno.test("a pass interleaved with uses, replacements and deletes removes only what was not re-used", async () => {
  await withPass(async () => {
    // One slice holds all the pass's victims (more than a step takes):
    // those the put did not remove are in hand across macrotasks.
    const options = { limit: LIMIT, hysteresis: LIMIT / 2 };
    await using s = await tempStore(options);
    const st = s.store;
    watchEvictions(st);
    let i = 0;
    while (!stepping(st)) {
      await st.store(`k${i}`, bytesFor(`k${i}`, SIZE));
      i++;
      assert.ok(i < 20_000, "no pass started");
    }
    // Between its steps: the oldest entries left (the victims it holds)
    // are used, replaced or deleted.
    const left: number[] = [];
    for (let j = 0; j < i && left.length < 240; j++) {
      if (await has(st, `k${j}`)) left.push(j);
    }
    assert.equal(left.length, 240);
    const used = left.filter((_, n) => n % 3 === 0);
    const replaced = left.filter((_, n) => n % 3 === 1);
    const deleted = left.filter((_, n) => n % 3 === 2);
    const before = st.stats().evictions;
    // Those used while still there (the pass may take one first) stay.
    const stay: number[] = [];
    for (let r = 0; r < used.length; r++) {
      if ((await read(st, `k${used[r]}`)) !== undefined) stay.push(used[r]!);
      await st.store(`k${replaced[r]}`, bytesFor(`r${replaced[r]}`, SIZE));
      await st.invalidate(`k${deleted[r]}`);
    }
    assert.ok(stay.length > used.length / 2, `${stay.length} used`);
    await evictionEnds(st);
    assert.ok(st.stats().evictions > before, "the pass removed nothing more");
    for (const j of stay) {
      assertBytes(await read(st, `k${j}`), bytesFor(`k${j}`, SIZE), `k${j}`);
    }
    for (const j of replaced) {
      assertBytes(await read(st, `k${j}`), bytesFor(`r${j}`, SIZE), `k${j}`);
    }
    for (const j of deleted) assert.equal(await has(st, `k${j}`), false);
    // The next oldest were not re-used: the pass took them.
    const last = left[left.length - 1]!;
    let taken = 0;
    for (let j = last + 1; j < last + 101; j++) {
      if (!(await has(st, `k${j}`))) taken++;
    }
    assert.ok(taken > 50, `${taken} of the next 100 oldest were evicted`);
    assert.ok(st.stats().diskBytes < LIMIT);
  }, 2048);
});
