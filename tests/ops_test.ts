// Index operations (FORMAT.md §11): their encoding is on disk, so it is
// frozen here byte for byte; decoding refuses what is malformed; and the
// one apply refuses an operation that does not match the table, which is
// where a replay stops.
import assert from "node:assert/strict";
import { IndexMemory } from "../src/index_memory.ts";
import { readEntries } from "../src/journal.ts";
import { DATA, META } from "../src/kinds.ts";
import {
  apply,
  decodeOp,
  encodeOp,
  OP,
  type Op,
  replay,
  type Table,
} from "../src/ops.ts";

const key = new TextEncoder().encode("https://a.example/");
const keyB = new TextEncoder().encode("https://b.example/");
const LO = 0x11223344;
const HI = 0x55667788;

/** One operation of each tag, with its framed journal entry in hex. */
const KNOWN: [Op, string][] = [
  [
    {
      tag: OP.store,
      time: 1700000000,
      index: 0,
      hashLo: LO,
      hashHi: HI,
      kind: DATA,
      rec: { size: 20000, loc: 5, crc: 0xdeadbeef, inFile: false, slots: 3 },
      key,
    },
    "480000007ba84bce00f153650100000000000000443322118877665500001200204e0000" +
    "05000000efbeadde0200000068747470733a2f2f612e6578616d706c652f000048000000",
  ],
  [
    {
      tag: OP.store,
      time: 1700000001,
      index: 0,
      hashLo: LO,
      hashHi: HI,
      kind: META,
      rec: { size: 300, loc: 9, crc: 0x01020304, inFile: true },
      key,
    },
    "48000000e8a4df0e01f1536501000000000000004433221188776655010112002c010000" +
    "09000000040302010000000068747470733a2f2f612e6578616d706c652f000048000000",
  ],
  [
    {
      tag: OP.storeEntry,
      time: 1700000002,
      index: 1,
      hashLo: 9,
      hashHi: 10,
      data: { size: 100, loc: 7, crc: 0xcafef00d, inFile: false },
      meta: {
        size: 10,
        loc: 7,
        crc: 0x0badf00d,
        inFile: false,
        withData: true,
      },
      key,
    },
    "580000006d69028402f153650500000001000000090000000a0000000100120000000000" +
    "64000000070000000df0feca020000000a000000070000000df0ad0b68747470733a2f2f" +
    "612e6578616d706c652f000058000000",
  ],
  [
    { tag: OP.remove, time: 1700000003, reason: 1, items: [[1, 9], [0, LO]] },
    "2800000024ed62d403f15365020100000200000001000000090000000000000044332211" +
    "28000000",
  ],
  [
    {
      tag: OP.touch,
      time: 1700000004,
      items: [{ index: 0, hashLo: LO, lastUsed: 1700000004, useCount: 65535 }],
    },
    "28000000d0689b1904f153650300000001000000000000004433221104f15365ffff0000" +
    "28000000",
  ],
  [
    {
      tag: OP.clear,
      time: 1700000005,
      reason: 2,
      index: 0,
      hashLo: LO,
      kind: META,
    },
    "200000008737ac4d05f153650402000000000000443322110100000020000000",
  ],
  [
    {
      tag: OP.move,
      time: 1700000006,
      from: 0,
      fromLo: LO,
      fromHi: HI,
      to: 1,
      toLo: 9,
      toHi: 10,
      fromKey: key,
      toKey: keyB,
    },
    "5400000036b4106606f153650800000000000000443322118877665501000000090000000a" +
    "0000001200120068747470733a2f2f612e6578616d706c652f68747470733a2f2f622e65" +
    "78616d706c652f54000000",
  ],
  [
    {
      tag: OP.copy,
      time: 1700000007,
      from: 1,
      fromLo: 9,
      fromHi: 10,
      to: 2,
      toLo: 11,
      toHi: 12,
      fromKey: keyB,
      toKey: key,
    },
    "54000000e633b93907f153650900000001000000090000000a000000020000000b000000" +
    "0c0000001200120068747470733a2f2f622e6578616d706c652f68747470733a2f2f612e" +
    "6578616d706c652f54000000",
  ],
  [
    {
      tag: OP.share,
      time: 1700000008,
      index: 2,
      hashLo: 11,
      hashHi: 12,
      source: 0,
      sourceLo: LO,
      kind: DATA,
      ownKey: keyB,
      originKey: key,
      originLo: LO,
      originHi: HI,
    },
    "5c000000e74f2a8e08f153650a000000020000000b0000000c0000000000000044332211" +
    "0000120044332211887766551200000068747470733a2f2f622e6578616d706c652f6874" +
    "7470733a2f2f612e6578616d706c652f5c000000",
  ],
];

const hex = (b: Uint8Array) =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** A journal image holding `entries` after a zeroed 32-byte header. */
function image(...entries: Uint8Array[]): Uint8Array {
  const file = new Uint8Array(
    32 + entries.reduce((n, e) => n + e.length, 0) + 64,
  );
  let at = 32;
  for (const e of entries) {
    file.set(e, at);
    at += e.length;
  }
  return file;
}

function table(mem: IndexMemory): Table {
  return { mem, dropped() {}, placed() {}, removed() {} };
}

Deno.test("operation encoding is frozen byte for byte (journal version 4)", async (t) => {
  for (const [op, want] of KNOWN) {
    await t.step(`tag ${op.tag}`, () => {
      assert.equal(hex(encodeOp(op)), want);
    });
  }
});

Deno.test("operations decode to what was encoded, through the framing", () => {
  const { entries, end } = readEntries(
    image(...KNOWN.map(([op]) => encodeOp(op).slice())),
  );
  assert.equal(entries.length, KNOWN.length);
  assert.equal(end, 32 + KNOWN.reduce((n, [, h]) => n + h.length / 2, 0));
  entries.forEach((e, n) => {
    const got = decodeOp(e.body);
    assert.deepEqual(got, KNOWN[n]![0]);
  });
});

Deno.test("decodeOp refuses unknown tags and malformed payloads", async (t) => {
  const body = (hexEntry: string, patch?: (b: Uint8Array) => void) => {
    const b = Uint8Array.from(
      hexEntry.match(/../g)!.map((x) => parseInt(x, 16)),
    );
    patch?.(b);
    return new DataView(b.buffer, 8, b.length - 12);
  };
  await t.step("an unknown tag", () => {
    assert.equal(decodeOp(body(KNOWN[5]![1], (b) => b[12] = 6)), undefined);
  });
  await t.step("a kind that is neither data nor metadata", () => {
    assert.equal(decodeOp(body(KNOWN[0]![1], (b) => b[28] = 2)), undefined);
    assert.equal(decodeOp(body(KNOWN[5]![1], (b) => b[24] = 2)), undefined);
  });
  await t.step("an element location other than 0-2", () => {
    assert.equal(decodeOp(body(KNOWN[2]![1], (b) => b[32] = 3)), undefined);
  });
  await t.step("metadata in the data's slot at another location", () => {
    assert.equal(decodeOp(body(KNOWN[2]![1], (b) => b[56] = 8)), undefined);
  });
  await t.step("a count running past the payload", () => {
    assert.equal(decodeOp(body(KNOWN[3]![1], (b) => b[16] = 3)), undefined);
  });
  await t.step("a body shorter than its operation's fixed part", () => {
    const b = body(KNOWN[0]![1]);
    assert.equal(
      decodeOp(new DataView(b.buffer, b.byteOffset, 8 + 31)),
      undefined,
    );
  });
});

Deno.test("apply adds, replaces and removes as replay does, and refuses what does not match", async (t) => {
  const mem = new IndexMemory({ entryBits: 8, identBits: 9 });
  const tab = table(mem);
  const [store, , entry, remove, touch, clear] = KNOWN.map(([op]) => op);
  await t.step("store at index count adds the entry", () => {
    assert.equal(apply(tab, store!), true);
    assert.equal(mem.count, 1);
    assert.deepEqual(mem.element(0, DATA), (store as { rec: unknown }).rec);
    assert.equal(mem.useCount(0), 1);
    assert.equal(mem.lastUsed(0), 1700000000);
  });
  await t.step("store under another hash is refused", () => {
    assert.equal(apply(tab, { ...store!, hashHi: 1 } as Op), false);
    assert.equal(apply(tab, { ...store!, index: 5 } as Op), false);
  });
  await t.step("clear of an entry's only element is refused", () => {
    assert.equal(apply(tab, { ...clear!, kind: DATA } as Op), false);
    assert.equal(mem.has(0, DATA), true);
  });
  await t.step(
    "storeEntry adds a second entry with metadata in the data's slot",
    () => {
      assert.equal(apply(tab, entry!), true);
      assert.equal(mem.count, 2);
      assert.equal(mem.metaWithData(1), true);
    },
  );
  await t.step(
    "store of data alone under metadata in its slot is refused",
    () => {
      assert.equal(
        apply(tab, { ...store!, index: 1, hashLo: 9, hashHi: 10 } as Op),
        false,
      );
    },
  );
  await t.step("touch sets usage; remove in order empties the table", () => {
    assert.equal(apply(tab, touch!), true);
    assert.equal(mem.useCount(0), 65535);
    assert.equal(apply(tab, remove!), true);
    assert.equal(mem.count, 0);
  });
});

Deno.test("replay stops at the first operation that does not match and keeps what came before", () => {
  const [store, , entry, , , clear] = KNOWN.map(([op]) => encodeOp(op).slice());
  // clear of metadata the entry does not have, then a valid storeEntry.
  const { entries } = readEntries(image(store!, clear!, entry!));
  const mem = new IndexMemory({ entryBits: 8, identBits: 9 });
  const r = replay(mem, entries);
  assert.deepEqual(r, { applied: 1, diverged: true, fileIdFloor: 0 });
  assert.equal(mem.count, 1);
});

Deno.test("move, copy and share give an entry another's elements with their origins", async (t) => {
  const mem = new IndexMemory({ entryBits: 8, identBits: 9 });
  const shared: string[] = [];
  const dropped: string[] = [];
  const tab: Table = {
    mem,
    dropped: (i, kind, rec) => dropped.push(`${i}:${kind}:${rec.loc}`),
    placed() {},
    removed() {},
    shared: (i, kind, rec) => shared.push(`${i}:${kind}:${rec.loc}`),
  };
  const rec = { size: 100, loc: 7, crc: 0xcafe, inFile: false };
  assert.ok(apply(tab, {
    tag: OP.store,
    time: 1,
    index: 0,
    hashLo: LO,
    hashHi: HI,
    kind: DATA,
    rec,
    key,
  }));
  await t.step(
    "copy: one more reference, the origin is the source's key",
    () => {
      assert.ok(apply(tab, {
        tag: OP.copy,
        time: 2,
        from: 0,
        fromLo: LO,
        fromHi: HI,
        to: 1,
        toLo: 9,
        toHi: 10,
        fromKey: key,
        toKey: keyB,
      }));
      assert.deepEqual(shared, ["1:0:7"]);
      assert.deepEqual(mem.element(1, DATA), mem.element(0, DATA));
      const o = mem.origins(1)!;
      assert.deepEqual([o.key, o.of[DATA]?.key, o.of[DATA]?.hashLo], [
        keyB,
        key,
        LO,
      ]);
      assert.equal(mem.origins(0), undefined);
    },
  );
  await t.step("refused: a source that does not match, the same entry", () => {
    const bad = {
      tag: OP.move,
      time: 3,
      from: 0,
      fromLo: LO + 1,
      fromHi: HI,
      to: 2,
      toLo: 11,
      toHi: 12,
      fromKey: key,
      toKey: key,
    } as const;
    assert.equal(apply(tab, bad), false);
    assert.equal(
      apply(tab, { ...bad, fromLo: LO, to: 0, toLo: LO, toHi: HI }),
      false,
    );
    assert.equal(mem.count, 2);
  });
  await t.step(
    "move keeps the origin; moved back it is the key's own again",
    () => {
      const keyC = new TextEncoder().encode("https://c.example/");
      assert.ok(apply(tab, {
        tag: OP.move,
        time: 4,
        from: 1,
        fromLo: 9,
        fromHi: 10,
        to: 2,
        toLo: 11,
        toHi: 12,
        fromKey: keyB,
        toKey: keyC,
      }));
      // B's entry went (C, added last, took its index 1).
      assert.equal(mem.count, 2);
      assert.equal(mem.hashLo(1), 11);
      assert.deepEqual(mem.origins(1)?.of[DATA]?.key, key);
      assert.deepEqual(mem.origins(1)?.key, keyC);
      shared.length = 0;
      dropped.length = 0;
      assert.ok(apply(tab, {
        tag: OP.move,
        time: 5,
        from: 1,
        fromLo: 11,
        fromHi: 12,
        to: 0,
        toLo: LO,
        toHi: HI,
        fromKey: keyC,
        toKey: key,
      }));
      assert.equal(mem.count, 1);
      assert.equal(mem.origins(0), undefined);
      assert.deepEqual(mem.element(0, DATA), { ...rec });
      // A's old reference and C's went; A took one more: one reference left.
      assert.deepEqual(dropped.sort(), ["0:0:7", "1:0:7"]);
      assert.deepEqual(shared, ["0:0:7"]);
    },
  );
  await t.step("share: refused for other sizes or checksums", () => {
    assert.ok(apply(tab, {
      tag: OP.store,
      time: 6,
      index: 1,
      hashLo: 9,
      hashHi: 10,
      kind: DATA,
      rec: { size: 100, loc: 8, crc: 0xbeef, inFile: false },
      key: keyB,
    }));
    const op = {
      tag: OP.share,
      time: 7,
      index: 1,
      hashLo: 9,
      hashHi: 10,
      source: 0,
      sourceLo: LO,
      kind: DATA,
      ownKey: keyB,
      originKey: key,
      originLo: LO,
      originHi: HI,
    } as const;
    assert.equal(apply(tab, op), false);
    assert.equal(mem.element(1, DATA)?.loc, 8);
  });
});
