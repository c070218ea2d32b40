import assert from "node:assert/strict";
import { bytesFor, read, tempStore } from "./_helpers.ts";

const url = (i: number) =>
  `https://host${i % 89}.example/static/js/${i}.js?v=${
    ((i * 40503) >>> 0).toString(16)
  }`;
const N = 70_000;

Deno.test("entryBits 17 holds more than 65,536 keys, each with its own bytes", async () => {
  await using s = await tempStore({ entryBits: 17 });
  for (let i = 0; i < N; i++) {
    await s.store.store(url(i), bytesFor(url(i), 8 + (i % 64)));
  }
  assert.equal(s.store.stats().entries, N);
  assert.equal(s.store.stats().evictions, 0);
  for (let i = 0; i < N; i++) {
    const got = await read(s.store, url(i));
    assert.deepEqual(got, bytesFor(url(i), 8 + (i % 64)), url(i));
  }
});

Deno.test("the default table holds at most 65,536 entries and never returns another key's bytes", async () => {
  await using s = await tempStore();
  for (let i = 0; i < N; i++) {
    await s.store.store(url(i), bytesFor(url(i), 8 + (i % 64)));
  }
  const st = s.store.stats();
  assert.ok(st.entries <= 65_536, `${st.entries} entries`);
  assert.ok(st.evictions > 0);
  let hits = 0;
  for (let i = 0; i < N; i++) {
    const got = await read(s.store, url(i));
    if (got === undefined) continue;
    hits++;
    assert.deepEqual(got, bytesFor(url(i), 8 + (i % 64)), url(i));
  }
  assert.equal(hits, st.entries, "every entry in the table is readable");
  assert.equal(s.store.stats().corruptions, 0);
});
