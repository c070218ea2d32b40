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
