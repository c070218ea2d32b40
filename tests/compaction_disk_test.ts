// A block file copied without its free slots (FORMAT.md §5.2) is copied in
// pieces between turns of the event loop: while a copy is under way the
// directory's allocated blocks stay within limit + 10% + the fixed
// overhead + one block file (the copy, FORMAT.md §5.4), without one within
// limit + 10% + the fixed overhead, and what is stored meanwhile (written
// to the old file and the copy) reads back whole.
import assert from "node:assert/strict";
import { BackingStore, checkStore } from "../mod.ts";
import { copyOverhead, fixedOverhead } from "./_disk_bound.ts";
import {
  allocatedBytes,
  assertBytes,
  bytesFor,
  read,
  tempDir,
} from "./_helpers.ts";

const MIB = 2 ** 20;

// Mostly elements in slots (their evictions leave free slots between used
// ones), some large files (each evicts many slots at once).
function sizeAt(i: number): number {
  const r = (i * 2654435761) >>> 0;
  const pick = r % 100;
  if (pick < 60) return 1 + (r >>> 8) % 2000;
  if (pick < 92) return 1 + (r >>> 8) % 60_000;
  return 1 + (r >>> 8) % (3 * MIB);
}

/** Copies (`NAME.tmp`) under `dir` and their allocated bytes. */
function copies(dir: string): number {
  let n = 0;
  const walk = (p: string) => {
    for (const e of Deno.readDirSync(p)) {
      if (e.isDirectory) walk(`${p}/${e.name}`);
      else if (e.name.endsWith(".tmp") && /[dm]blk/.test(p)) n++;
    }
  };
  walk(dir);
  return n;
}

const macrotask = () => new Promise((r) => setTimeout(r, 0));

Deno.test("a block file's copy under way keeps the directory within the documented bound", async () => {
  await using d = await tempDir();
  const o = { limit: 24 * MIB, entryBits: 12, journalBytes: MIB };
  const bound = o.limit * 1.1 + fixedOverhead(o);
  const copying = bound + copyOverhead(o);
  const pool = bytesFor("pool", 4 * MIB);
  const bodyAt = (i: number) =>
    pool.subarray(i % 1000, (i % 1000) + Math.min(sizeAt(i), 3 * MIB));
  const st = await BackingStore.open(d.path, o);
  let written = 0;
  let withCopy = 0;
  let without = 0;
  let worst = 0;
  for (let i = 0; written < 10 * o.limit; i++) {
    const body = bodyAt(i);
    if (i % 3 === 0) {
      await st.storeEntry(
        `https://copy.example/${i}`,
        body,
        pool.subarray(0, 1 + i % 700),
      );
    } else await st.store(`https://copy.example/${i}`, body);
    written += body.length;
    // A turn of the event loop: the next piece of a copy runs.
    await macrotask();
    const used = allocatedBytes(d.path);
    worst = Math.max(worst, used);
    if (copies(d.path) > 0) {
      withCopy++;
      assert.ok(
        used <= copying,
        `store ${i}, a copy under way: ${used} allocated > ${copying}`,
      );
    } else {
      without++;
      assert.ok(used <= bound, `store ${i}: ${used} allocated > ${bound}`);
    }
    // What was stored while a copy went on reads back whole.
    if (i > 0) {
      const got = await read(st, `https://copy.example/${i - 1}`);
      if (got !== undefined) assertBytes(got, bodyAt(i - 1), `${i - 1}`);
    }
  }
  assert.ok(withCopy > 0, "some copy was seen under way");
  // No element written while a copy went on was left out of it.
  assert.equal(st.stats().corruptions, 0);
  assert.ok(without > 0);
  assert.ok(worst > o.limit / 2, `at most ${worst} allocated`);
  // Everything left reads back whole, after the copies.
  for (let k = 0; k < 50; k++) await macrotask();
  assert.equal(copies(d.path), 0, "the copies are done");
  assert.ok(allocatedBytes(d.path) <= bound);
  let kept = 0;
  for (let i = 0; kept < st.stats().entries && i < 5000; i++) {
    const got = await read(st, `https://copy.example/${i}`);
    if (got === undefined) continue;
    assertBytes(got, bodyAt(i), `${i}`);
    kept++;
  }
  assert.equal(kept, st.stats().entries);
  assert.equal(st.stats().corruptions, 0);
  await st.close();
  assert.ok(allocatedBytes(d.path) <= bound);
  assert.deepEqual((await checkStore(d.path)).problems, []);
});
