// A long random mix of stores, entry stores, invalidations, fetches and
// reopens over a small store that evicts all the time, so runs of data
// slots are freed, fragmented, reused and sometimes do not fit (and become
// large files). Every hit must be the last value stored for its key, the
// store stays under its limit, and at the end check-store finds nothing
// wrong.
import assert from "node:assert/strict";
import { BackingStore, checkStore } from "../mod.ts";
import { assertBytes, bytesFor, largeFiles, tempDir } from "./_helpers.ts";
import { rng } from "./_reference/rng.ts";

const KEYS = 80;
const LIMIT = 4 * 2 ** 20;

Deno.test("random stores over a small evicting store: every hit is the last value stored", async () => {
  for (const seed of [1, 2, 3]) {
    await using d = await tempDir();
    const rand = rng(seed);
    const size = () => {
      const c = rand(10);
      if (c < 5) return rand(4096);
      if (c < 9) return 8192 + rand(60_000);
      return 100_000 + rand(500_000);
    };
    const model = new Map<string, { data: Uint8Array; meta?: Uint8Array }>();
    // Created with a 64 KiB limit: 512 data slots (4 MiB), kept when
    // reopened with the 4 MiB limit, so runs often find no room.
    (await BackingStore.open(d.path, { entryBits: 8, limit: 65536 })).close();
    let st = await BackingStore.open(d.path, { limit: LIMIT });
    let hits = 0;
    let filesSeen = 0;
    for (let op = 0; op < 2500; op++) {
      const key = `https://model.example/${rand(KEYS)}`;
      const r = rand(100);
      const tag = `${seed}/${op}`;
      if (r < 40) {
        const data = bytesFor(`d${tag}`, size());
        const meta = rand(4) === 0 ? undefined : bytesFor(`m${tag}`, rand(900));
        await st.storeEntry(key, data, meta);
        model.set(key, { data, meta });
      } else if (r < 55) {
        const data = bytesFor(`d${tag}`, size());
        await st.store(key, data);
        const old = model.get(key);
        model.set(key, { data, meta: old?.meta });
      } else if (r < 63) {
        await st.invalidate(key);
        model.delete(key);
      } else if (r < 97) {
        using hit = await st.fetchEntry(key);
        const want = model.get(key);
        if (hit?.data !== undefined) {
          assert.ok(want !== undefined, `${tag}: a hit for a key never stored`);
          assertBytes(hit.data, want.data, `${tag} data`);
          hits++;
        }
        if (hit?.meta !== undefined) {
          assert.ok(want?.meta !== undefined, `${tag}: metadata never stored`);
          assertBytes(hit.meta, want.meta, `${tag} meta`);
        }
      } else {
        await st.close();
        st = await BackingStore.open(d.path, { limit: LIMIT });
        assert.equal(st.stats().repairedOnOpen, 0, `${tag}: reopen repaired`);
      }
      // An evicted key is gone for good: forget it, so a later hit for
      // it would be an error above.
      if (op % 50 === 49) {
        for (const k of [...model.keys()]) {
          using hit = await st.fetchEntry(k);
          if (hit === undefined) model.delete(k);
        }
        filesSeen = Math.max(filesSeen, largeFiles(d.path).length);
      }
      assert.ok(st.stats().bytes < LIMIT, `${tag}: over the limit`);
    }
    await st.close();
    assert.ok(hits > 200, `seed ${seed}: only ${hits} hits`);
    assert.ok(filesSeen > 0, `seed ${seed}: no run ever fell back to a file`);
    assert.deepEqual((await checkStore(d.path)).problems, [], `seed ${seed}`);
    console.log(`seed ${seed}: ${hits} hits, up to ${filesSeen} large files`);
  }
});
