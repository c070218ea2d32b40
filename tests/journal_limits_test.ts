// The journal against operations larger than itself: an eviction's remove
// op (8 bytes a victim) and a use-count batch (16 bytes an entry) are split
// into entries that each fit an empty journal, replay of the pieces gives
// the table the live store had, and an open that fails part-way keeps
// neither the lock nor a descriptor.
import assert from "node:assert/strict";
import { BackingStore, StoreError } from "../mod.ts";
import { decodeControl, decodeEntries } from "../src/format.ts";
import { IndexMemory } from "../src/index_memory.ts";
import { readEntries } from "../src/journal.ts";
import { OP, opTag, replay } from "../src/ops.ts";
import { FaultFS } from "./_fault_fs.ts";
import {
  bytesFor,
  evictionsReach,
  MOD_URL,
  read,
  runChild,
  tempDir,
} from "./_helpers.ts";
import { openForTest } from "../src/_testing.ts";

// 16,384 entries; a full table evicts 90% of them (14,746 victims, 118 KB
// of remove op) through a 64 KiB journal.
const SMALL = {
  entryBits: 14,
  journalBytes: 65536,
  limit: 2 ** 30,
  hysteresis: Math.floor(2 ** 30 * 0.9),
} as const;
const CAPACITY = 2 ** SMALL.entryBits;
/** Victims of the eviction a full table triggers (90% of it, less one). */
const EVICTED = Math.ceil(CAPACITY * 0.9) - 1;
/** For the child processes, which import the wait helper by URL. */
const HELPERS_URL = new URL("./_helpers.ts", import.meta.url).href;

/** The current journal's valid entries (the one `entries` names). */
function journalEntries(dir: string) {
  const snap = Deno.readFileSync(`${dir}/entries`);
  const tag = new DataView(snap.buffer).getUint32(24, true);
  const name = `journal-${tag.toString(16).padStart(8, "0").toUpperCase()}`;
  return readEntries(Deno.readFileSync(`${dir}/${name}`)).entries;
}

Deno.test("eviction of more entries than a small journal holds splits into pieces and the store keeps storing", async () => {
  await using d = await tempDir();
  const st = await BackingStore.open(d.path, SMALL);
  try {
    const one = new Uint8Array([7]);
    for (let i = 0; i < CAPACITY; i++) await st.store(`k${i}`, one);
    assert.equal(st.stats().entries, CAPACITY);
    // The table is full: this store starts evicting 90% of it, in steps
    // that go on after it returns.
    await st.store("after", bytesFor("after", 100));
    await evictionsReach(st, EVICTED);
    const s = st.stats();
    assert.ok(s.evictions >= CAPACITY * 0.9 - 1, `evictions ${s.evictions}`);
    // The store is not wedged: every later store works.
    for (let i = 0; i < 50; i++) {
      await st.store(`more${i}`, bytesFor(`more${i}`, 200));
    }
    assert.deepEqual(await read(st, "after"), bytesFor("after", 100));
    assert.deepEqual(await read(st, "more49"), bytesFor("more49", 200));
    // Every journal entry fits the journal.
    for (const e of journalEntries(d.path)) {
      assert.ok(e.body.byteLength < SMALL.journalBytes);
    }
  } finally {
    await st.close();
  }
  // And the pieces replay to the same table.
  const again = await BackingStore.open(d.path, SMALL);
  try {
    assert.deepEqual(await read(again, "after"), bytesFor("after", 100));
    assert.deepEqual(await read(again, "more49"), bytesFor("more49", 200));
  } finally {
    await again.close();
  }
});

Deno.test("a split eviction replays to the table the store had when the process died", async () => {
  await using d = await tempDir();
  // The child fills the table, triggers the eviction, lists what is left
  // and dies without closing: the reopen replays the pieces.
  const r = await runChild(
    `
    import { BackingStore } from ${JSON.stringify(MOD_URL)};
    import { evictionsReach } from ${JSON.stringify(HELPERS_URL)};
    const st = await BackingStore.open(Deno.args[0], ${JSON.stringify(SMALL)});
    const one = new Uint8Array([7]);
    for (let i = 0; i < ${CAPACITY}; i++) await st.store("k" + i, one);
    await st.store("after", new Uint8Array([9]));
    // The eviction goes on in steps after the put: wait for all of them.
    await evictionsReach(st, ${EVICTED});
    const left = [];
    for (let i = 0; i < ${CAPACITY}; i++) {
      const hit = await st.fetch("k" + i);
      if (hit !== undefined) left.push(i);
      hit?.release();
    }
    console.log(JSON.stringify({ left, evictions: st.stats().evictions }));
    Deno.exit(0);
    `,
    [d.path],
  );
  assert.equal(r.code, 0, r.err);
  const { left, evictions } = JSON.parse(r.out) as {
    left: number[];
    evictions: number;
  };
  assert.ok(evictions > CAPACITY / 2, `evictions ${evictions}`);
  // The eviction needed more than one journal entry.
  assert.ok(evictions * 8 > SMALL.journalBytes);
  const st = await BackingStore.open(d.path, SMALL);
  try {
    const now: number[] = [];
    for (let i = 0; i < CAPACITY; i++) {
      if (await read(st, `k${i}`) !== undefined) now.push(i);
    }
    assert.deepEqual(now, left);
    assert.deepEqual(await read(st, "after"), new Uint8Array([9]));
    assert.equal(st.stats().entries, left.length + 1);
  } finally {
    await st.close();
  }
});

Deno.test("use counts of more entries than a small journal's batch are journaled, not dropped", async () => {
  await using d = await tempDir();
  const n = 5000; // 80 KB of touch op in one batch before the split
  const r = await runChild(
    `
    import { BackingStore } from ${JSON.stringify(MOD_URL)};
    const st = await BackingStore.open(Deno.args[0], {
      ...${JSON.stringify(SMALL)},
      maintenanceDelayMs: 10,
    });
    const one = new Uint8Array([7]);
    for (let i = 0; i < ${n}; i++) await st.store("k" + i, one);
    await st.flush(); // an empty journal
    for (let i = 0; i < ${n}; i++) (await st.fetch("k" + i))?.release();
    // The maintenance timer journals the counts; then die without closing.
    await new Promise((r) => setTimeout(r, 300));
    Deno.exit(0);
    `,
    [d.path],
  );
  assert.equal(r.code, 0, r.err);
  // The durable index (snapshot and journal) holds every fetch's count.
  const mem = new IndexMemory(
    decodeControl(Deno.readFileSync(`${d.path}/control`)),
  );
  const { header, records } = decodeEntries(
    Deno.readFileSync(`${d.path}/entries`),
  );
  mem.loadRecords(records, header.count);
  const entries = journalEntries(d.path);
  assert.ok(
    entries.some((e) => opTag(e.body) === OP.touch),
    "no touch op journaled",
  );
  assert.equal(replay(mem, entries).diverged, false);
  assert.equal(mem.count, n);
  let counted = 0;
  for (let i = 0; i < mem.count; i++) if (mem.useCount(i) >= 2) counted++;
  assert.equal(counted, n, `${counted} use counts kept of ${n}`);
});

Deno.test("flush journals use counts of more entries than a small journal's batch", async () => {
  await using d = await tempDir();
  const st = await BackingStore.open(d.path, SMALL);
  try {
    const one = new Uint8Array([7]);
    for (let i = 0; i < 5000; i++) await st.store(`k${i}`, one);
    for (let i = 0; i < 5000; i++) (await st.fetch(`k${i}`))?.release();
    await st.flush();
    await st.store("later", one);
    assert.deepEqual(await read(st, "later"), one);
  } finally {
    await st.close();
  }
});

Deno.test("open failing at any call releases the lock and every descriptor", async () => {
  const fs = new FaultFS();
  fs.tracksDurability = false;
  const opt = { ...SMALL, entryBits: 10 } as const;
  const hooks = { io: fs };
  // A store whose next open replays its journal and evicts (a smaller
  // limit): the open with the most work to fail in.
  {
    const st = await openForTest("/s", opt, hooks);
    for (let i = 0; i < 300; i++) {
      await st.store(`k${i}`, bytesFor(`k${i}`, 100 + i));
    }
    await st.store("big", bytesFor("big", 200_000));
    await st.close();
  }
  const reopen = { ...opt, limit: 150_000, hysteresis: 30_000 };
  const before = fs.counts.any;
  (await openForTest("/s", { ...opt }, hooks)).close();
  const calls = fs.counts.any - before;
  assert.ok(calls > 10);
  let failures = 0;
  for (let n = 1; n <= calls + 5; n++) {
    for (const code of ["ENOSPC", "EIO"] as const) {
      fs.failAt(n, code);
      let st: BackingStore | undefined;
      try {
        st = await openForTest("/s", reopen, hooks);
      } catch (err) {
        failures++;
        assert.ok(err instanceof StoreError, `${code} at ${n}: ${err}`);
        assert.deepEqual(fs.openFds, [], `${code} at ${n}: descriptors kept`);
      }
      fs.clearFault();
      await st?.close();
      // Not locked out: the next open works.
      const again = await openForTest("/s", reopen, hooks);
      await again.close();
      assert.deepEqual(fs.openFds, []);
    }
  }
  assert.ok(failures > 0);
});

Deno.test("open of a full table with a small journal evicts in pieces and opens", async () => {
  await using d = await tempDir();
  {
    const st = await BackingStore.open(d.path, SMALL);
    const one = new Uint8Array([7]);
    for (let i = 0; i < CAPACITY; i++) await st.store(`k${i}`, one);
    await st.close();
  }
  // The open evicts 90% of the table through a 64 KiB journal.
  const st = await BackingStore.open(d.path, SMALL);
  try {
    assert.ok(st.stats().entries < CAPACITY / 5, `${st.stats().entries}`);
    await st.store("after", new Uint8Array([1]));
  } finally {
    await st.close();
  }
  // Nothing kept the lock: it opens again.
  await (await BackingStore.open(d.path, SMALL)).close();
});
