// Open's journal read: entries checked by the WASM CRC-32 through the
// stage are the ones zlib's would keep, whatever the damage; an entry's
// operation decoded in place (decodeOpAt, as replay does) is the one
// decodeOp gives; and replay builds the table applying decodeOp's
// operations one by one would.
import assert from "node:assert/strict";
import { IndexMemory } from "../src/index_memory.ts";
import { readEntries } from "../src/journal.ts";
import { stagedChecksum } from "../src/_journal_crc.ts";
import { DATA, META } from "../src/kinds.ts";
import {
  apply,
  decodeOp,
  decodeOpAt,
  encodeOp,
  OP,
  type Op,
  replay,
} from "../src/ops.ts";

/** A small deterministic generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const hashOf = (n: number) => [(n * 0x9e3779b1) >>> 0, (n * 0x85ebca6b) >>> 0];

/**
 * `n` operations that replay onto an empty table: stores and store-entries
 * adding or replacing, removes and touches of live entries, and now and
 * then one that does not match (where replay stops).
 */
function ops(seed: number, n: number): Op[] {
  const r = rng(seed);
  const live: number[] = []; // live[i] = the id whose hash entry i has
  let next = 0;
  const out: Op[] = [];
  for (let k = 0; k < n; k++) {
    const x = r();
    const key = new TextEncoder().encode(`https://h/${k}`);
    const rec = () => ({
      size: 1 + Math.floor(r() * 60000),
      loc: Math.floor(r() * 1000),
      crc: Math.floor(r() * 2 ** 32),
      inFile: r() < 0.2,
    });
    if (x < 0.5 || live.length === 0) {
      const fresh = live.length === 0 || r() < 0.7;
      const index = fresh ? live.length : Math.floor(r() * live.length);
      const id = fresh ? next++ : live[index]!;
      if (fresh) live.push(id);
      const [lo, hi] = hashOf(id);
      out.push(
        r() < 0.5
          ? {
            tag: OP.storeEntry,
            time: k,
            index,
            hashLo: lo!,
            hashHi: hi!,
            data: rec(),
            meta: r() < 0.5 ? rec() : undefined,
            key,
          }
          : {
            tag: OP.store,
            time: k,
            index,
            hashLo: lo!,
            hashHi: hi!,
            kind: r() < 0.5 ? DATA : META,
            rec: rec(),
            key,
          },
      );
    } else if (x < 0.7) {
      const index = Math.floor(r() * live.length);
      const [lo] = hashOf(live[index]!);
      out.push({ tag: OP.remove, time: k, reason: 0, items: [[index, lo!]] });
      live[index] = live[live.length - 1]!;
      live.pop();
    } else if (x < 0.995) {
      const index = Math.floor(r() * live.length);
      const [lo] = hashOf(live[index]!);
      out.push({
        tag: OP.touch,
        time: k,
        items: [{ index, hashLo: lo!, lastUsed: k, useCount: 1 + k % 9 }],
      });
    } else {
      // Does not match the table: replay stops here.
      out.push({
        tag: OP.remove,
        time: k,
        reason: 0,
        items: [[live.length + 5, 1]],
      });
    }
  }
  return out;
}

function image(entries: readonly Op[], tail = 64): Uint8Array {
  const framed = entries.map((op) => encodeOp(op).slice());
  const file = new Uint8Array(
    32 + framed.reduce((n, e) => n + e.length, 0) + tail,
  );
  let at = 32;
  for (const e of framed) {
    file.set(e, at);
    at += e.length;
  }
  return file;
}

const shape = { entryBits: 16, identBits: 17 };

function tableOf(mem: IndexMemory): unknown[] {
  const rows: unknown[] = [];
  for (let i = 0; i < mem.count; i++) {
    rows.push([
      mem.hashLo(i),
      mem.hashHi(i),
      mem.useCount(i),
      mem.lastUsed(i),
      mem.element(i, DATA),
      mem.element(i, META),
    ]);
  }
  return rows;
}

Deno.test("the staged WASM checksum keeps exactly the entries zlib's does", () => {
  const mem = new IndexMemory(shape);
  const r = rng(7);
  // 20,000 operations: about 1.9 MB, so the 1 MiB stage window moves on.
  const clean = image(ops(1, 20000));
  for (let round = 0; round < 60; round++) {
    const file = clean.slice();
    const damage = Math.floor(r() * 3);
    const at = 32 + Math.floor(r() * (file.length - 32));
    if (damage === 1) file[at] = file[at]! ^ (1 + Math.floor(r() * 255));
    if (damage === 2) file.fill(0, at);
    const want = readEntries(file);
    const got = readEntries(file, stagedChecksum(mem));
    assert.equal(got.end, want.end);
    assert.deepEqual(
      got.entries.map((e) => [e.offset, e.size]),
      want.entries.map((e) => [e.offset, e.size]),
    );
  }
  // An entry longer than the window is checked by zlib.
  const big = new Uint8Array(32 + (1 << 20) + 64);
  const v = new DataView(big.buffer);
  const size = (1 << 20) + 16;
  v.setUint32(32, size, true);
  v.setUint32(32 + size - 4, size, true);
  const body = big.subarray(40, 32 + size);
  body.fill(5);
  v.setUint32(32 + size - 4, size, true);
  v.setUint32(36, mem.crc32Wasm(big.subarray(40, 32 + size)), true);
  const one = readEntries(big, stagedChecksum(mem));
  assert.equal(one.entries.length, 1);
  assert.equal(one.end, 32 + size);
});

Deno.test("decodeOpAt decodes in place what decodeOp decodes (keys left out on request)", () => {
  const { entries } = readEntries(image(ops(2, 3000)));
  for (const e of entries) {
    const want = decodeOp(e.body);
    assert.deepEqual(decodeOpAt(e.view, e.bodyAt, e.bodyLen), want);
    const bare = decodeOpAt(e.view, e.bodyAt, e.bodyLen, false);
    if (
      want !== undefined &&
      (want.tag === OP.store || want.tag === OP.storeEntry)
    ) {
      assert.deepEqual(bare, { ...want, key: new Uint8Array(0) });
    } else {
      assert.deepEqual(bare, want);
    }
  }
});

Deno.test("replay builds the table that applying decodeOp's operations builds", () => {
  let total = 0;
  for (let seed = 10; seed < 30; seed++) {
    const { entries } = readEntries(image(ops(seed, 2000)));
    const fast = new IndexMemory(shape);
    const r = replay(fast, entries);
    const slow = new IndexMemory(shape);
    const t = { mem: slow, dropped() {}, placed() {}, removed() {} };
    let applied = 0;
    for (const e of entries) {
      const op = decodeOp(e.body);
      if (op === undefined || !apply(t, op)) break;
      applied++;
    }
    assert.ok(applied > 0, `seed ${seed}: nothing applied`);
    total += applied;
    assert.equal(r.applied, applied);
    assert.equal(r.diverged, applied < entries.length);
    assert.deepEqual(tableOf(fast), tableOf(slow));
  }
  // One op in 200 does not match: runs of about 200 are compared, not
  // just their first operations.
  assert.ok(total > 2000, `${total} applied in all`);
});
