import { deepStrictEqual, equal, ok } from "node:assert/strict";
import { crc32 } from "node:zlib";
import { BackingStore } from "../mod.ts";
import {
  decodeControl,
  decodeEntries,
  readElementHeader,
  writeElementHeader,
} from "../src/format.ts";
import {
  DATA,
  type ElementRecord,
  IndexMemory,
  META,
  recordSlots,
} from "../src/index_memory.ts";
import { NodeFileIO } from "../src/io.ts";
import { largeFileParts } from "../src/paths.ts";
import { rebuildIndex } from "../src/rebuild.ts";
import { buildStore, findInFile, flipBit, largeFileOf } from "./_damage.ts";
import {
  bytesFor,
  FILE_SIZED,
  largeFiles,
  tempDir,
  walkFiles,
} from "./_helpers.ts";

interface Row {
  hash: string;
  data: ElementRecord | undefined;
  meta: ElementRecord | undefined;
}

/** The table's entries, keyed by hash, for comparison. */
function rows(mem: IndexMemory): Map<string, Row> {
  const out = new Map<string, Row>();
  for (let i = 0; i < mem.count; i++) {
    const hash = `${mem.hashHi(i)}:${mem.hashLo(i)}`;
    out.set(hash, {
      hash,
      data: mem.element(i, DATA),
      meta: mem.element(i, META),
    });
  }
  return out;
}

function rebuild(dir: string) {
  const control = decodeControl(Deno.readFileSync(`${dir}/control`));
  const mem = new IndexMemory(control);
  const result = rebuildIndex(new NodeFileIO(), dir, mem);
  return { mem, result, control };
}

Deno.test("rebuildIndex recovers every entry from the elements alone", async () => {
  await using b = await buildStore();
  const { header, records } = decodeEntries(
    Deno.readFileSync(`${b.dir}/entries`),
  );
  const control = decodeControl(Deno.readFileSync(`${b.dir}/control`));
  const original = new IndexMemory(control);
  original.loadRecords(records, header.count);

  const before = walkFiles(b.dir);
  const { mem, result } = rebuild(b.dir);
  deepStrictEqual(walkFiles(b.dir), before, "nothing written or deleted");
  equal(result.count, 24, "data and metadata merge into one entry");
  equal(result.dropped, 0);
  equal(result.corrupt, 0);
  deepStrictEqual(rows(mem), rows(original));
  equal(result.nextFileId, b.large.length, "one past the highest file id");
  for (let i = 0; i < mem.count; i++) equal(mem.useCount(i), 1);
  // The use maps mark exactly the slots adopted.
  for (const kind of [DATA, META] as const) {
    const slots = [...rows(mem).values()]
      .map((r) => kind === DATA ? r.data : r.meta)
      .filter((e) => e !== undefined && !e.inFile);
    const taken = slots.reduce((n, e) => n + recordSlots(e!), 0);
    ok(kind === META || taken > slots.length, "data runs adopted whole");
    equal(mem.usedSlots(kind, mem.slotCounts[kind]), taken);
    for (const e of slots) ok(mem.runUsed(kind, e!.loc, recordSlots(e!)));
  }
});

Deno.test("rebuildIndex keeps the newest copy of a key", async (t) => {
  await t.step("a slot reused after a replacement", async () => {
    await using tmp = await tempDir();
    const store = await BackingStore.open(tmp.path, { entryBits: 8 });
    await store.store("k", bytesFor("old", 500));
    await store.store("k", bytesFor("new", 600));
    await store.close();
    // The old slot was freed but still holds a valid element of "k".
    const { mem, result } = rebuild(tmp.path);
    equal(result.count, 1);
    equal(result.dropped, 1);
    equal(mem.element(0, DATA)?.size, 600);
  });

  await t.step("large files: later storedAt, then the higher id", async () => {
    await using tmp = await tempDir();
    const store = await BackingStore.open(tmp.path, { entryBits: 8 });
    await store.store("big", bytesFor("v1", FILE_SIZED + 20_000));
    const v1 = `${tmp.path}/${largeFiles(tmp.path)[0]!}`;
    const saved = Deno.readFileSync(v1);
    await store.store("big", bytesFor("v2", FILE_SIZED + 30_000));
    await store.close();
    // As after a crash before the old file was removed: both exist.
    Deno.writeFileSync(v1, saved);
    let { mem } = rebuild(tmp.path);
    equal(
      mem.element(0, DATA)?.size,
      FILE_SIZED + 30_000,
      "same second: higher id wins",
    );

    // Give the old copy a later store time (header checksum recomputed).
    const h = readElementHeader(saved)!;
    const key = saved.subarray(32, 32 + h.keyLen);
    writeElementHeader(saved, { ...h, storedAt: h.storedAt + 10 }, key);
    Deno.writeFileSync(v1, saved);
    ({ mem } = rebuild(tmp.path));
    equal(
      mem.element(0, DATA)?.size,
      FILE_SIZED + 20_000,
      "later storedAt wins",
    );
    equal(mem.lastUsed(0), h.storedAt + 10);
  });
});

Deno.test("rebuildIndex adopts nothing larder did not write or that fails", async () => {
  await using b = await buildStore();
  // Someone else's file at a larder name, and a damaged element.
  const parts = largeFileParts(0, 500);
  Deno.mkdirSync(`${b.dir}/${parts.slice(0, -1).join("/")}`, {
    recursive: true,
  });
  Deno.writeTextFileSync(`${b.dir}/${parts.join("/")}`, "not larder's");
  const bad = `${b.dir}/${largeFileOf(b.dir, b.large[1]!)}`;
  flipBit(bad, Deno.statSync(bad).size - 1);
  const key = b.small[3]!;
  const at = findInFile(`${b.dir}/dblk/A`, key);
  flipBit(`${b.dir}/dblk/A`, at + key.length + 5);
  Deno.writeFileSync(`${b.dir}/dblk/B`, bytesFor("foreign", 9000));

  const before = walkFiles(b.dir);
  const { mem, result } = rebuild(b.dir);
  deepStrictEqual(walkFiles(b.dir), before, "nothing written or deleted");
  equal(result.corrupt, 2);
  equal(result.count, 24, "the two keys keep their metadata elements");
  const damaged = [...rows(mem).values()].filter((r) => r.data === undefined);
  equal(damaged.length, 2);
  ok(result.nextFileId > 500, "ids of files at larder names are not reused");
});

Deno.test("rebuildIndex reads slots behind a damaged block file header", async () => {
  await using b = await buildStore();
  const file = Deno.openSync(`${b.dir}/dblk/A`, { write: true });
  file.writeSync(new Uint8Array(32)); // as a crash before the header write
  file.close();
  const { result } = rebuild(b.dir);
  equal(result.blockFilesSkipped, 0);
  equal(result.count, 24);
  equal(result.corrupt, 0);
});

Deno.test("rebuildIndex adopts pairs in runs whole, and a run's later slots are not read as elements", async () => {
  await using tmp = await tempDir();
  const store = await BackingStore.open(tmp.path, { entryBits: 8 });
  for (let i = 0; i < 12; i++) {
    const key = `https://pairs.example/${i}`;
    const data = bytesFor(`d${i}`, 9000 + i * 5000);
    if (i % 3 === 0) await store.store(key, data); // a run alone
    else await store.storeEntry(key, data, bytesFor(`m${i}`, 300 + i * 97));
  }
  // A body that carries a valid element of another key at a slot boundary
  // inside its run: a rebuild must not adopt it while the run's first slot
  // holds the run.
  const carrier = "https://pairs.example/carrier";
  const inner = new Uint8Array(3 * 8192);
  const forged = bytesFor("forged", 100);
  // The body starts after the run's element header and key.
  const at = 8192 - (32 + carrier.length);
  inner.set(forged, at + 32 + 5);
  writeElementHeader(inner.subarray(at), {
    kind: 0,
    keyLen: 5,
    length: forged.length,
    crc: crc32(forged),
    hashLo: 1,
    hashHi: 2,
    storedAt: 1,
  }, new TextEncoder().encode("other"));
  await store.store(carrier, inner);
  await store.close();
  const { header, records } = decodeEntries(
    Deno.readFileSync(`${tmp.path}/entries`),
  );
  const control = decodeControl(Deno.readFileSync(`${tmp.path}/control`));
  const original = new IndexMemory(control);
  original.loadRecords(records, header.count);
  const { mem, result } = rebuild(tmp.path);
  equal(result.corrupt, 0);
  equal(result.dropped, 0);
  equal(result.count, 13, "nothing adopted from inside a run");
  deepStrictEqual(rows(mem), rows(original));
  ok([...rows(mem).values()].some((r) => (r.data?.slots ?? 1) > 1));
  ok([...rows(mem).values()].some((r) => r.meta?.withData === true));
});
