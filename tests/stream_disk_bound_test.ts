// Streamed bodies still being written count against the byte limit
// (FORMAT.md §5.4): many concurrent streams past the limit keep the
// store's directory (allocated blocks, as du counts them) within the limit
// + 10% + the documented fixed overhead while they are in flight, eviction
// makes room as they grow, and cancelled ones leave no file behind.
import assert from "node:assert/strict";
import { BackingStore, checkStore } from "../mod.ts";
import { fixedOverhead } from "./_disk_bound.ts";
import {
  allocatedBytes,
  assertBytes,
  bytesFor,
  largeFiles,
  read,
  tempDir,
} from "./_helpers.ts";

const MIB = 2 ** 20;
const CHUNK = 256 * 1024;

/**
 * A stream of `body` in chunks that waits for `gate` before its end, then
 * ends or (when `fail`) errors.
 */
function gatedStream(
  body: Uint8Array,
  gate: Promise<void>,
  fail: boolean,
): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      if (at >= body.length) {
        await gate;
        if (fail) c.error(new Error("origin reset"));
        else c.close();
        return;
      }
      c.enqueue(body.subarray(at, at + CHUNK));
      at += CHUNK;
    },
  });
}

Deno.test("concurrent streams far past the limit keep the directory within limit + 10% + the fixed overhead", async () => {
  await using d = await tempDir();
  const o = { limit: 24 * MIB, entryBits: 12, journalBytes: MIB };
  const bound = o.limit * 1.1 + fixedOverhead(o);
  const pool = bytesFor("streams", 10 * MIB);
  const st = await BackingStore.open(d.path, o);
  const stored = new Map<string, Uint8Array>();
  let written = 0;
  let worst = 0;
  let refused = 0;
  for (let round = 0; written < 8 * o.limit; round++) {
    let open!: () => void;
    const gate = new Promise<void>((r) => open = r);
    const runs = Array.from({ length: 6 }, (_, j) => {
      const n = round * 6 + j;
      const size = 3 * MIB + (n * 2654435761 >>> 0) % (6 * MIB);
      const key = `https://streams.example/${n}`;
      const body = pool.subarray(n % 1000, n % 1000 + size);
      const fail = n % 5 === 0;
      written += size;
      return st.storeEntry(
        key,
        gatedStream(body, gate, fail),
        bytesFor(`m${n}`, 200),
      ).then(() => {
        assert.ok(!fail, `${key} errored yet was stored`);
        stored.set(key, body);
      }, (err) => {
        if (err instanceof RangeError) refused++;
        else assert.ok(fail, `${key}: ${err}`);
      });
    });
    // Every stream has written all it will before its end.
    await new Promise((r) => setTimeout(r, 50));
    const used = allocatedBytes(d.path);
    worst = Math.max(worst, used);
    assert.ok(
      used <= bound,
      `round ${round}, in flight: ${used} allocated > ${bound}`,
    );
    open();
    await Promise.all(runs);
    const after = allocatedBytes(d.path);
    assert.ok(after <= bound, `round ${round}: ${after} allocated > ${bound}`);
    assert.ok(st.stats().diskBytes < o.limit);
  }
  assert.ok(st.stats().evictions > 0, "eviction made room for the streams");
  assert.ok(refused > 0, "streams together past the limit were refused");
  assert.ok(worst > o.limit / 2, `at most ${worst} allocated`);
  // What is left reads back whole; no cancelled stream left its file.
  let kept = 0;
  for (const [k, v] of stored) {
    const got = await read(st, k);
    if (got === undefined) continue;
    assertBytes(got, v, k);
    kept++;
  }
  assert.equal(kept, st.stats().entries);
  assert.equal(largeFiles(d.path).length, kept);
  await st.close();
  const report = await checkStore(d.path);
  assert.deepEqual(report.problems, []);
});

Deno.test("one stream alone still takes up to the limit", async () => {
  await using d = await tempDir();
  const o = { limit: 8 * MIB, entryBits: 12, journalBytes: MIB };
  const st = await BackingStore.open(d.path, o);
  for (let i = 0; i < 12; i++) {
    await st.store(`https://one.example/${i}`, bytesFor(`s${i}`, 600_000));
  }
  const body = bytesFor("big", 7 * MIB);
  await st.store(
    "https://one.example/big",
    gatedStream(body, Promise.resolve(), false),
  );
  assertBytes((await read(st, "https://one.example/big"))!, body, "big");
  assert.ok(st.stats().evictions > 0);
  assert.ok(st.stats().diskBytes < o.limit);
  await st.close();
  assert.ok(allocatedBytes(d.path) <= o.limit * 1.1 + fixedOverhead(o));
});
