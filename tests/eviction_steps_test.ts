// Long evictions (more than STEPPED_VICTIMS victims) remove their victims
// in steps with the event loop turning between them.
import assert from "node:assert/strict";
import { BackingStore } from "../mod.ts";
import { EVICTION_STEP, STEPPED_VICTIMS } from "../src/_eviction.ts";
import { bytesFor, evictionsReach, read, tempStore } from "./_helpers.ts";

const ENTRY_BITS = 14;
const CAPACITY = 2 ** ENTRY_BITS;
const LIMIT = 2 ** 30;
// A full table frees capacity × hysteresis / limit entries: half of it.
const OPTIONS = { entryBits: ENTRY_BITS, limit: LIMIT, hysteresis: LIMIT / 2 };
const VICTIMS = CAPACITY / 2;

async function fill(store: BackingStore): Promise<void> {
  for (let i = 0; i < CAPACITY; i += 512) {
    const ps: Promise<void>[] = [];
    for (let k = i; k < i + 512; k++) {
      ps.push(store.store(`k${k}`, bytesFor(`k${k}`, 100)));
    }
    await Promise.all(ps);
  }
  // Used once more, so never among the least used.
  for (let k = 0; k < 100; k++) (await store.fetch(`k${k}`))?.release();
  assert.equal(store.stats().entries, CAPACITY);
}

Deno.test("a long eviction removes its victims in steps between event-loop turns", async () => {
  assert.ok(VICTIMS > STEPPED_VICTIMS);
  await using s = await tempStore(OPTIONS);
  const st = s.store;
  await fill(st);
  await st.store("new", bytesFor("new", 100));
  // The put had room after one step; the others are still to come.
  const right = st.stats();
  assert.equal(right.evictions, EVICTION_STEP);
  assert.equal(right.entries, CAPACITY - EVICTION_STEP + 1);
  // A timer set now fires between steps: the loop turns during eviction.
  const atTimer = await new Promise<number>((r) =>
    setTimeout(() => r(st.stats().evictions), 0)
  );
  assert.ok(atTimer < VICTIMS, `${atTimer} evictions by the first timer`);
  assert.ok((await read(st, "new")) !== undefined);
  await evictionsReach(st, VICTIMS);
  assert.equal(st.stats().evictions, VICTIMS);
  assert.equal(st.stats().entries, CAPACITY - VICTIMS + 1);
  for (let k = 0; k < 100; k++) {
    assert.ok((await read(st, `k${k}`)) !== undefined, `k${k} was evicted`);
  }
});

Deno.test("puts during a stepped eviction find room, and are not its victims", async () => {
  await using s = await tempStore(OPTIONS);
  const st = s.store;
  await fill(st);
  // More new entries than one step frees: later puts take steps early.
  const n = 3 * EVICTION_STEP;
  const ps: Promise<void>[] = [];
  for (let k = 0; k < n; k++) {
    ps.push(st.store(`n${k}`, bytesFor(`n${k}`, 100)));
  }
  await Promise.all(ps);
  assert.ok(st.stats().entries <= CAPACITY);
  await evictionsReach(st, VICTIMS);
  assert.equal(st.stats().entries, CAPACITY - VICTIMS + n);
  for (let k = 0; k < n; k++) {
    assert.ok((await read(st, `n${k}`)) !== undefined, `n${k} is missing`);
  }
});

Deno.test("close finishes a stepped eviction, and a reopen sees all of it", async () => {
  await using s = await tempStore(OPTIONS);
  await fill(s.store);
  await s.store.store("new", bytesFor("new", 100));
  assert.ok(s.store.stats().evictions < VICTIMS);
  await s.store.close();
  await using st = await BackingStore.open(s.dir, OPTIONS);
  assert.equal(st.stats().entries, CAPACITY - VICTIMS + 1);
  assert.ok((await read(st, "new")) !== undefined);
  assert.ok((await read(st, "k0")) !== undefined);
});
