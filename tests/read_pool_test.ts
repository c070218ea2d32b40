import assert from "node:assert/strict";
import { ReadPool } from "../src/_read_pool.ts";

Deno.test("ReadPool: buffers of every size class never overlap while live", () => {
  const pool = new ReadPool();
  const sizes = [1, 100, 16 * 1024, 16 * 1024 + 1, 32 * 1024, 64 * 1024];
  const taken: [Uint8Array, number][] = [];
  for (let round = 0; round < 40; round++) {
    for (const n of sizes) {
      const b = pool.take(n);
      assert.equal(b.length, n);
      const mark = taken.length & 0xff;
      b.fill(mark);
      taken.push([b, mark]);
    }
  }
  // Every buffer taken still holds what was written to it.
  for (const [b, mark] of taken) assert.ok(b.every((x) => x === mark));
  const large = pool.take(64 * 1024 + 1);
  assert.equal(large.length, 64 * 1024 + 1);
  assert.equal(large.byteOffset, 0);
});

Deno.test("ReadPool: giveBack takes back only the last buffer taken", () => {
  const pool = new ReadPool();
  for (const n of [100, 32 * 1024]) {
    const a = pool.take(n);
    a.fill(1);
    const b = pool.take(n);
    // Not the last one: kept, and so is what it holds.
    assert.equal(pool.giveBack(a), false);
    assert.equal(pool.giveBack(b.subarray(10, 20)), true);
    const c = pool.take(n);
    assert.equal(c.buffer, b.buffer);
    assert.equal(c.byteOffset, b.byteOffset, "the next read reuses it");
    assert.ok(a.every((x) => x === 1));
    // Taken back once: what came before is not the last any more.
    assert.equal(pool.giveBack(c), true);
    assert.equal(pool.giveBack(a), false);
    // Bytes of another buffer, or a large read, are never taken.
    assert.equal(pool.giveBack(new Uint8Array(n)), false);
    assert.equal(pool.giveBack(pool.take(64 * 1024 + 1)), false);
  }
});
