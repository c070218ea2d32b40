// Per-entry attributes (issue 15 part 1): values, limits, partial access,
// attribute-only entries, persistence through journal and snapshot, the
// record version byte, and check-store.
import assert from "node:assert/strict";
import { ATTR_LIMITS, BackingStore, checkStore } from "../mod.ts";
import { decodeEntries } from "../src/format.ts";
import { decodeAttrSection } from "../src/_attrs.ts";
import { bytesFor, read, runChild, tempDir, tempStore } from "./_helpers.ts";
import { MOD_URL } from "./_helpers.ts";

const KEY = "https://example.com/a";

Deno.test("string, list and binary values round-trip; absent names and keys are undefined", async () => {
  await using t = await tempStore();
  const st = t.store;
  await st.store(KEY, new Uint8Array([1, 2, 3]));
  await st.setAttr(KEY, "mime", "text/plain; charset=utf-8");
  await st.setAttr(KEY, "tags", ["a", "", "é☃"]);
  await st.setAttr(KEY, "info", new Uint8Array([0, 255, 7]));
  await st.setAttr(KEY, "empty", "");
  await st.setAttr(KEY, "nolist", []);
  assert.equal(await st.getAttr(KEY, "mime"), "text/plain; charset=utf-8");
  assert.deepEqual(await st.getAttr(KEY, "tags"), ["a", "", "é☃"]);
  assert.deepEqual(await st.getAttr(KEY, "info"), new Uint8Array([0, 255, 7]));
  assert.equal(await st.getAttr(KEY, "empty"), "");
  assert.deepEqual(await st.getAttr(KEY, "nolist"), []);
  assert.equal(await st.getAttr(KEY, "nope"), undefined);
  assert.equal(
    await st.getAttr("https://example.com/missing", "mime"),
    undefined,
  );
  assert.deepEqual([...(await st.attrs(KEY))!.keys()], [
    "mime",
    "tags",
    "info",
    "empty",
    "nolist",
  ]);
  assert.equal(await st.attrs("https://example.com/missing"), undefined);
  // Replacing keeps one attribute; the value returned is a copy.
  await st.setAttr(KEY, "mime", "text/html");
  assert.equal((await st.attrs(KEY))!.size, 5);
  const got = (await st.getAttr(KEY, "info")) as Uint8Array;
  got[0] = 99;
  assert.deepEqual(await st.getAttr(KEY, "info"), new Uint8Array([0, 255, 7]));
  assert.deepEqual(await read(st, KEY), new Uint8Array([1, 2, 3]));
  // unset
  assert.equal(await st.unsetAttr(KEY, "mime"), true);
  assert.equal(await st.unsetAttr(KEY, "mime"), false);
  assert.equal(await st.unsetAttr("https://example.com/missing", "x"), false);
  assert.equal(await st.getAttr(KEY, "mime"), undefined);
});

Deno.test("names, values and counts at and past their limits", async () => {
  await using t = await tempStore();
  const st = t.store;
  const max = "n".repeat(ATTR_LIMITS.nameBytes);
  await st.setAttr(KEY, max, "ok");
  assert.equal(await st.getAttr(KEY, max), "ok");
  await assert.rejects(st.setAttr(KEY, max + "n", "x"), RangeError);
  // 255 bytes in UTF-8 counts bytes, not characters: 85 × 3 bytes.
  await st.setAttr(KEY, "☃".repeat(85), "ok");
  await assert.rejects(st.setAttr(KEY, "☃".repeat(86), "x"), RangeError);
  await assert.rejects(st.setAttr(KEY, "", "x"), RangeError);
  await assert.rejects(st.setAttr(KEY, "a\0b", "x"), RangeError);
  await assert.rejects(st.setAttr(KEY, "\ud800", "x"), RangeError);
  // deno-lint-ignore no-explicit-any
  await assert.rejects(st.setAttr(KEY, 5 as any, "x"), TypeError);
  // deno-lint-ignore no-explicit-any
  await assert.rejects(st.setAttr(KEY, "v", 5 as any), TypeError);
  // deno-lint-ignore no-explicit-any
  await assert.rejects(st.setAttr(KEY, "v", [1] as any), TypeError);
  // Values: exactly the limit, and one byte past it.
  await st.setAttr(KEY, "big", new Uint8Array(ATTR_LIMITS.valueBytes));
  assert.equal(await st.attrSize(KEY, "big"), ATTR_LIMITS.valueBytes);
  await assert.rejects(
    st.setAttr(KEY, "big2", new Uint8Array(ATTR_LIMITS.valueBytes + 1)),
    RangeError,
  );
  await assert.rejects(
    st.setAttr(KEY, "big2", "x".repeat(ATTR_LIMITS.valueBytes + 1)),
    RangeError,
  );
  // A list's encoding: 4 bytes, then 4 + length per string.
  await st.setAttr(KEY, "list", ["x".repeat(ATTR_LIMITS.valueBytes - 8)]);
  await assert.rejects(
    st.setAttr(KEY, "list2", ["x".repeat(ATTR_LIMITS.valueBytes - 7)]),
    RangeError,
  );
  // The failed calls changed nothing.
  assert.equal(await st.getAttr(KEY, "big2"), undefined);
  assert.equal(await st.getAttr(KEY, "list2"), undefined);
});

Deno.test("count and total bytes per entry are bounded", async () => {
  await using t = await tempStore();
  const st = t.store;
  for (let i = 0; i < ATTR_LIMITS.perEntry; i++) {
    await st.setAttr(KEY, `a${i}`, "v");
  }
  await assert.rejects(st.setAttr(KEY, "one-more", "v"), RangeError);
  // Replacing an existing one is allowed at the count limit.
  await st.setAttr(KEY, "a0", "w");
  assert.equal(await st.getAttr(KEY, "a0"), "w");
  // Total bytes: four values of 16 KiB are past 64 KiB with their names.
  const k2 = "https://example.com/b";
  const v = new Uint8Array(ATTR_LIMITS.valueBytes);
  for (let i = 0; i < 3; i++) await st.setAttr(k2, `v${i}`, v);
  await assert.rejects(st.setAttr(k2, "v3", v), RangeError);
  await st.setAttr(k2, "v3", new Uint8Array(1000));
  assert.equal((await st.attrs(k2))!.size, 4);
});

Deno.test("attrSize, readAttr and writeAttr give partial access", async () => {
  await using t = await tempStore();
  const st = t.store;
  assert.equal(await st.attrSize(KEY, "info"), undefined);
  assert.equal(await st.readAttr(KEY, "info", 0, 4), undefined);
  // Writing an absent attribute past its start fills with zeros.
  await st.writeAttr(KEY, "info", new Uint8Array([7, 8]), 3);
  assert.deepEqual(
    await st.getAttr(KEY, "info"),
    new Uint8Array([0, 0, 0, 7, 8]),
  );
  await st.writeAttr(KEY, "info", new Uint8Array([1]), 0);
  await st.writeAttr(KEY, "info", new Uint8Array([5, 6, 7]), 4);
  assert.deepEqual(
    await st.getAttr(KEY, "info"),
    new Uint8Array([1, 0, 0, 7, 5, 6, 7]),
  );
  assert.equal(await st.attrSize(KEY, "info"), 7);
  assert.deepEqual(
    await st.readAttr(KEY, "info", 3, 2),
    new Uint8Array([7, 5]),
  );
  assert.deepEqual(
    await st.readAttr(KEY, "info", 5, 100),
    new Uint8Array([6, 7]),
  );
  assert.deepEqual(await st.readAttr(KEY, "info", 100, 1), new Uint8Array(0));
  await assert.rejects(st.readAttr(KEY, "info", -1, 1), RangeError);
  await assert.rejects(st.readAttr(KEY, "info", 0.5, 1), RangeError);
  await assert.rejects(
    st.writeAttr(KEY, "info", new Uint8Array(1), -1),
    RangeError,
  );
  await assert.rejects(
    st.writeAttr(KEY, "info", new Uint8Array(1), ATTR_LIMITS.valueBytes),
    RangeError,
  );
  await st.writeAttr(
    KEY,
    "info",
    new Uint8Array(1),
    ATTR_LIMITS.valueBytes - 1,
  );
  assert.equal(await st.attrSize(KEY, "info"), ATTR_LIMITS.valueBytes);
  // deno-lint-ignore no-explicit-any
  await assert.rejects(st.writeAttr(KEY, "info", [1] as any, 0), TypeError);
  // A string reads as its UTF-8 bytes and becomes binary when written.
  await st.setAttr(KEY, "s", "hé");
  assert.equal(await st.attrSize(KEY, "s"), 3);
  assert.deepEqual(
    await st.readAttr(KEY, "s", 1, 2),
    new Uint8Array([0xc3, 0xa9]),
  );
  await st.writeAttr(KEY, "s", new Uint8Array([0x21]), 3);
  assert.deepEqual(await st.getAttr(KEY, "s"), new TextEncoder().encode("hé!"));
  // A list has no byte access.
  await st.setAttr(KEY, "l", ["a"]);
  await assert.rejects(st.attrSize(KEY, "l"), TypeError);
  await assert.rejects(st.readAttr(KEY, "l", 0, 1), TypeError);
  await assert.rejects(st.writeAttr(KEY, "l", new Uint8Array(1), 0), TypeError);
});

Deno.test("an entry with attributes only is an entry: counted, kept, invalidated, evicted", async () => {
  await using d = await tempDir();
  const limit = 1 << 20;
  {
    const st = await BackingStore.open(d.path, { limit });
    await st.setAttr("only", "a", "x".repeat(1000));
    assert.equal(st.stats().entries, 1);
    assert.ok(st.stats().bytes >= 1000, "attribute bytes count");
    assert.equal(await read(st, "only"), undefined, "no data");
    assert.deepEqual(
      await st.attrs("only"),
      new Map([["a", "x".repeat(1000)]]),
    );
    // store keeps attributes; invalidate removes them.
    await st.store("kept", new Uint8Array([1]));
    await st.setAttr("kept", "a", "1");
    await st.store("kept", new Uint8Array([2]));
    await st.storeEntry("kept", new Uint8Array([3]), new Uint8Array([4]));
    assert.equal(await st.getAttr("kept", "a"), "1");
    assert.equal(await st.invalidate("kept"), true);
    assert.equal(await st.attrs("kept"), undefined);
    await st.setAttr("kept", "b", "2");
    assert.deepEqual(await st.attrs("kept"), new Map([["b", "2"]]));
    // Unsetting the last attribute of an entry with nothing else removes it.
    assert.equal(await st.unsetAttr("kept", "b"), true);
    assert.equal(await st.attrs("kept"), undefined);
    assert.equal(st.stats().entries, 1);
    await st.close();
  }
  {
    // Eviction weighs attribute-only entries like the rest: fill past the
    // limit with attributes and the oldest go, the store staying under it.
    const st = await BackingStore.open(d.path, { limit });
    const v = new Uint8Array(ATTR_LIMITS.valueBytes);
    for (let i = 0; i < 100; i++) {
      await st.setAttr(`e${i}`, "v", v);
      assert.ok(st.stats().bytes < limit, `under the limit after ${i}`);
    }
    assert.ok(st.stats().evictions > 0);
    assert.equal(await st.attrs("e0"), undefined, "the oldest was evicted");
    assert.deepEqual(await st.getAttr("e99", "v"), v);
    await st.close();
  }
});

Deno.test("attributes survive close and reopen (snapshot) and a process exit (journal)", async () => {
  await using d = await tempDir();
  const big = bytesFor("attr", 5000);
  {
    const st = await BackingStore.open(d.path);
    await st.store(KEY, new Uint8Array([1]));
    await st.setAttr(KEY, "s", "v");
    await st.setAttr(KEY, "b", big);
    await st.setAttr("only", "l", ["x", "y"]);
    await st.close();
  }
  {
    const st = await BackingStore.open(d.path);
    assert.equal(st.stats().repairedOnOpen, 0);
    assert.equal(await st.getAttr(KEY, "s"), "v");
    assert.deepEqual(await st.getAttr(KEY, "b"), big);
    assert.deepEqual(await st.getAttr("only", "l"), ["x", "y"]);
    await st.close();
  }
  // A child sets and unsets without closing: the journal holds it.
  for (const durability of ["fsync", "process"]) {
    const r = await runChild(
      `import { BackingStore } from "${MOD_URL}";
       const st = await BackingStore.open(Deno.args[0], { durability: "${durability}" });
       await st.setAttr("child", "a", "1");
       await st.writeAttr("child", "w", new Uint8Array([1, 2]), 1);
       await st.setAttr("${KEY}", "s", "changed");
       await st.unsetAttr("only", "l");
       Deno.exit(0);`,
      [d.path],
    );
    assert.equal(r.code, 0, r.err);
    const st = await BackingStore.open(d.path);
    assert.equal(await st.getAttr("child", "a"), "1", durability);
    assert.deepEqual(await st.getAttr("child", "w"), new Uint8Array([0, 1, 2]));
    assert.equal(await st.getAttr(KEY, "s"), "changed");
    assert.equal(await st.attrs("only"), undefined);
    assert.deepEqual(await read(st, KEY), new Uint8Array([1]));
    await st.setAttr("only", "l", ["x", "y"]);
    await st.close();
  }
  const report = await checkStore(d.path);
  assert.equal(report.ok, true, JSON.stringify(report.problems));
});

Deno.test("attribute-only entries resolve their own key when hashes collide", async () => {
  await using t = await tempStore({}, { hashOverride: () => 7 });
  const st = t.store;
  await st.setAttr("a", "n", "1");
  await st.setAttr("b", "n", "2");
  await st.store("c", new Uint8Array([3]));
  assert.equal(await st.getAttr("a", "n"), "1");
  assert.equal(await st.getAttr("b", "n"), "2");
  assert.deepEqual(await st.attrs("c"), new Map());
  assert.equal(st.stats().entries, 3);
  assert.equal(st.stats().corruptions, 0);
});

/** Rewrites the first value record's version byte in `entries`. */
async function bumpRecordVersion(dir: string, to: number): Promise<void> {
  const path = `${dir}/entries`;
  const b = await Deno.readFile(path);
  const { attrs } = decodeEntries(b);
  const items = decodeAttrSection(attrs)!;
  // The first record follows the first item's 16-byte head, its key and
  // its first name's 5-byte head and name.
  const first = items[0]!;
  const name = new TextEncoder().encode([...first.set.records.keys()][0]!);
  const at = b.length - attrs.length + 16 + first.set.key.length + 5 +
    name.length;
  b[at] = to;
  // Fix the section checksum (bytes 36..39) and the header's (60..63).
  const { crc32 } = await import("node:zlib");
  const v = new DataView(b.buffer);
  v.setUint32(36, crc32(b.subarray(b.length - attrs.length)), true);
  v.setUint32(60, crc32(b.subarray(0, 60)), true);
  await Deno.writeFile(path, b);
}

Deno.test("a record of a newer version reads as absent, is kept, and check-store reports it", async () => {
  await using d = await tempDir();
  {
    const st = await BackingStore.open(d.path);
    await st.store(KEY, new Uint8Array([1]));
    await st.setAttr(KEY, "future", "v");
    await st.setAttr(KEY, "now", "w");
    await st.close();
  }
  await bumpRecordVersion(d.path, 2);
  const report = await checkStore(d.path, { repair: true });
  assert.deepEqual(report.problems.map((p) => p.code), ["ATTR_VERSION_NEWER"]);
  assert.equal(report.ok, true, "a warning");
  {
    const st = await BackingStore.open(d.path);
    assert.equal(await st.getAttr(KEY, "future"), undefined);
    assert.equal(await st.attrSize(KEY, "future"), undefined);
    assert.deepEqual(await st.attrs(KEY), new Map([["now", "w"]]));
    await st.close(); // rewrites the snapshot: the record must stay
  }
  const again = await checkStore(d.path);
  assert.deepEqual(again.problems.map((p) => p.code), ["ATTR_VERSION_NEWER"]);
  // Setting it replaces it with a record this larder reads.
  {
    const st = await BackingStore.open(d.path);
    await st.setAttr(KEY, "future", "x");
    assert.equal(await st.getAttr(KEY, "future"), "x");
    await st.close();
  }
  assert.deepEqual((await checkStore(d.path)).problems, []);
});

Deno.test("check-store drops a malformed attribute record in a repair", async () => {
  await using d = await tempDir();
  {
    const st = await BackingStore.open(d.path);
    await st.setAttr("only", "bad", "v");
    await st.store(KEY, new Uint8Array([1]));
    await st.setAttr(KEY, "bad", "v");
    await st.setAttr(KEY, "good", "w");
    await st.close();
  }
  // Version 0 is no version larder ever wrote: malformed.
  await bumpRecordVersion(d.path, 0);
  const report = await checkStore(d.path);
  assert.equal(report.ok, false);
  assert.deepEqual(report.problems.map((p) => p.code), ["ATTR_CORRUPT"]);
  const fixed = await checkStore(d.path, { repair: true });
  assert.ok(fixed.repaired.some((r) => r.action === "DROP_ATTR"));
  assert.deepEqual((await checkStore(d.path)).problems, []);
  const st = await BackingStore.open(d.path);
  assert.equal(await st.attrs("only"), undefined, "nothing left: dropped");
  assert.deepEqual(await st.attrs(KEY), new Map([["bad", "v"], ["good", "w"]]));
  await st.close();
});
