// The default journal size grows with the table (src/journal.ts
// defaultJournalBytes): 8 MiB up to 2^20 entries, doubling with each
// entryBits above, chosen from the store's own entryBits when reopened
// without it; an explicit journalBytes still wins.
import assert from "node:assert/strict";
import { BackingStore, checkStore } from "../mod.ts";
import { DEFAULT_JOURNAL_BYTES, defaultJournalBytes } from "../src/journal.ts";
import { resolveOptions } from "../src/options.ts";
import { bytesFor, read, tempDir } from "./_helpers.ts";

const MIB = 2 ** 20;

function journalSizes(dir: string): number[] {
  return [...Deno.readDirSync(dir)]
    .filter((e) => e.name.startsWith("journal-"))
    .map((e) => Deno.statSync(`${dir}/${e.name}`).size);
}

/** A stray byte in a pristine journal makes the next open rotate. */
function spoilJournal(dir: string): void {
  const name = [...Deno.readDirSync(dir)]
    .find((e) => e.name.startsWith("journal-"))!.name;
  const f = Deno.openSync(`${dir}/${name}`, { read: true, write: true });
  try {
    f.seekSync(MIB + 3, Deno.SeekMode.Start);
    f.writeSync(new Uint8Array([0x5a]));
  } finally {
    f.close();
  }
}

Deno.test("the default journal is 8 MiB up to entryBits 20, then doubles with the table", () => {
  assert.equal(DEFAULT_JOURNAL_BYTES, 8 * MIB);
  for (let bits = 8; bits <= 20; bits++) {
    assert.equal(defaultJournalBytes(bits), 8 * MIB, `entryBits ${bits}`);
  }
  assert.equal(defaultJournalBytes(21), 16 * MIB);
  assert.equal(defaultJournalBytes(22), 32 * MIB);
  assert.equal(defaultJournalBytes(23), 64 * MIB);
  assert.equal(defaultJournalBytes(24), 128 * MIB);
  assert.equal(resolveOptions({}).journalBytes, 8 * MIB);
  assert.equal(resolveOptions({ entryBits: 24 }).journalBytes, 128 * MIB);
  assert.equal(resolveOptions({ entryBits: 24 }).explicit.journalBytes, false);
  const given = resolveOptions({ entryBits: 24, journalBytes: 65536 });
  assert.equal(given.journalBytes, 65536);
  assert.equal(given.explicit.journalBytes, true);
});

Deno.test("a store's journal follows its own entryBits, unless journalBytes is given", async () => {
  await using d = await tempDir();
  {
    await using st = await BackingStore.open(d.path, { entryBits: 21 });
    await st.store("k", bytesFor("k", 500));
  }
  assert.deepEqual(journalSizes(d.path), [16 * MIB]);
  // Reopened without entryBits: the new journal is sized for the store's
  // table (2^21), not for the default entryBits (16).
  spoilJournal(d.path);
  {
    await using st = await BackingStore.open(d.path);
    assert.deepEqual(await read(st, "k"), bytesFor("k", 500));
  }
  assert.deepEqual(journalSizes(d.path), [16 * MIB]);
  spoilJournal(d.path);
  {
    await using st = await BackingStore.open(d.path, { journalBytes: 65536 });
    assert.deepEqual(await read(st, "k"), bytesFor("k", 500));
    await st.store("k2", bytesFor("k2", 700));
  }
  assert.deepEqual(journalSizes(d.path), [65536]);
});

Deno.test("a small store keeps the 8 MiB journal", async () => {
  await using d = await tempDir();
  {
    await using st = await BackingStore.open(d.path, { entryBits: 20 });
    await st.store("k", bytesFor("k", 500));
  }
  assert.deepEqual(journalSizes(d.path), [8 * MIB]);
});

Deno.test("check-store's repair sizes a new journal for the store's own table", async () => {
  await using d = await tempDir();
  {
    await using st = await BackingStore.open(d.path, { entryBits: 21 });
    await st.store("k", bytesFor("k", 500));
  }
  for (const e of Deno.readDirSync(d.path)) {
    if (e.name.startsWith("journal-")) Deno.removeSync(`${d.path}/${e.name}`);
  }
  const report = await checkStore(d.path, { repair: true });
  assert.ok(
    report.repaired.some((r) => r.action === "NEW_JOURNAL"),
    JSON.stringify(report.repaired),
  );
  assert.deepEqual(journalSizes(d.path), [16 * MIB]);
  await using st = await BackingStore.open(d.path);
  assert.deepEqual(await read(st, "k"), bytesFor("k", 500));
});
