import { deepStrictEqual, equal, ok, rejects } from "node:assert/strict";
import { crc32 } from "node:zlib";
import { BackingStore, StoreError } from "../mod.ts";
import {
  type CheckReport,
  checkStore,
  type ProblemCode,
} from "../src/check.ts";
import {
  readElementHeader,
  VERSION,
  writeElementHeader,
} from "../src/format.ts";
import { journalName, readEntries } from "../src/journal.ts";
import { largeFileParts } from "../src/paths.ts";
import {
  assertSurvivors,
  buildStore,
  type Built,
  dataSlotOf,
  editDataUseMap,
  editEntries,
  findInFile,
  firstSetBit,
  flipBit,
  keyOf,
  largeFileOf,
  REC,
  RECORD,
  recordWithDataLoc,
} from "./_damage.ts";
import {
  bytesFor,
  FILE_SIZED,
  largeFiles,
  MOD_URL,
  runChild,
  slotsFor,
  tempDir,
  walkFiles,
} from "./_helpers.ts";

function codes(r: CheckReport): ProblemCode[] {
  return [...new Set(r.problems.map((p) => p.code))].sort();
}

function journalOf(dir: string): string {
  const tag = new DataView(Deno.readFileSync(`${dir}/entries`).buffer)
    .getUint32(24, true);
  return `${dir}/${journalName(tag)}`;
}

/**
 * Damages a fresh store, checks that `want` is reported, repairs, and
 * proves a second check is clean and every entry but `lost` (whose bytes
 * may be gone) returns its original bytes.
 */
async function damageCase(
  t: Deno.TestContext,
  name: string,
  want: ProblemCode[],
  damage: (b: Built) => void | Promise<void>,
  lost: (b: Built) => string[] = () => [],
): Promise<void> {
  await t.step(name, async () => {
    await using b = await buildStore();
    await damage(b);
    const found = await checkStore(b.dir);
    for (const code of want) {
      ok(codes(found).includes(code), `${code} in ${codes(found)}`);
    }
    const errors = found.problems.some((p) => p.severity === "error");
    equal(found.ok, !errors);
    const fixed = await checkStore(b.dir, { repair: true });
    ok(fixed.repaired.length > 0, "repair changed something");
    deepStrictEqual(fixed.remaining, [], "repair left nothing");
    ok(fixed.ok);
    const again = await checkStore(b.dir);
    deepStrictEqual(again.problems, [], "a second check is clean");
    const gone = new Set(lost(b));
    await assertSurvivors(
      b.dir,
      b.values,
      [...b.values.keys()].filter((k) => !gone.has(k)),
    );
    // A damaged data element costs only itself: the metadata stays.
    const store = await BackingStore.open(b.dir);
    try {
      for (const key of gone) {
        using meta = await store.fetch(key, { meta: true });
        deepStrictEqual(meta?.data, b.values.get(key)!.meta, key);
      }
    } finally {
      await store.close();
    }
  });
}

Deno.test("checkStore passes a clean store with an empty problem list", async () => {
  await using b = await buildStore();
  const r = await checkStore(b.dir);
  deepStrictEqual(r.problems, []);
  ok(r.ok && r.complete && r.locked);
  equal(r.stats?.entries, 24);
  equal(r.stats?.elements.data, 24);
  equal(r.stats?.largeFiles.count, b.large.length);
  const runSlots = b.runs.reduce(
    (n, k) => n + slotsFor(k, b.values.get(k)!.data.length),
    0,
  );
  ok(runSlots >= 2 * b.runs.length, "runs span several slots");
  // Small elements take the few 64-byte slots their bytes need.
  const smallSlots = b.small.reduce(
    (n, k) => n + slotsFor(k, b.values.get(k)!.data.length),
    0,
  );
  equal(r.stats?.slots.data.used, smallSlots + runSlots);
  equal(r.stats?.bytes, r.stats?.bytesVerified);
  equal(r.store?.index, "snapshot");
  ok(r.bytesRead > 0);
  // Repairing a clean store changes nothing.
  const before = walkFiles(b.dir);
  const again = await checkStore(b.dir, { repair: true });
  deepStrictEqual(again.repaired, []);
  equal(again.remaining, null);
  deepStrictEqual(walkFiles(b.dir), before);
  await assertSurvivors(b.dir, b.values);
});

Deno.test("checkStore reports and repairs each kind of damage", async (t) => {
  await damageCase(t, "flipped bit in a block slot", ["ELEMENT_CRC"], (b) => {
    const key = b.small[2]!;
    const at = findInFile(`${b.dir}/dblk/A`, key);
    flipBit(`${b.dir}/dblk/A`, at + key.length + 10, 3);
  }, (b) => [b.small[2]!]);

  await damageCase(t, "truncated large file", ["LARGE_FILE_TRUNCATED"], (b) => {
    const path = `${b.dir}/${largeFileOf(b.dir, b.large[1]!)}`;
    Deno.truncateSync(path, Deno.statSync(path).size >> 1);
  }, (b) => [b.large[1]!]);

  await damageCase(t, "deleted large file", ["ELEMENT_MISSING"], (b) => {
    Deno.removeSync(`${b.dir}/${largeFileOf(b.dir, b.large[2]!)}`);
  }, (b) => [b.large[2]!]);

  await damageCase(t, "bitmap bit cleared for a live slot", [
    "SLOT_UNMARKED",
  ], (b) => {
    editDataUseMap(b.dir, (map) => {
      const s = firstSetBit(map);
      map[s >> 3]! &= ~(1 << (s & 7));
    });
  });

  await damageCase(t, "bitmap bit set for a free slot", [
    "SLOT_MARKED_FREE",
  ], (b) => {
    // A slot far above every used one (the store uses its first few).
    editDataUseMap(b.dir, (map) => {
      map[20000 >> 3]! |= 1 << (20000 & 7);
    });
  });

  await damageCase(t, "two entries pointing at one slot", [
    "SLOT_SHARED",
    "ELEMENT_KEY",
  ], (b) => {
    const a = dataSlotOf(b.dir, b.small[0]!);
    const victim = dataSlotOf(b.dir, b.small[1]!);
    editEntries(b.dir, (recs, v) => {
      const i = recordWithDataLoc(recs, victim);
      v.setUint32(i * RECORD + REC.dataLoc, a, true);
    });
  }, (b) => [b.small[1]!]);

  await damageCase(t, "duplicated entry", ["DUPLICATE_KEY"], (b) => {
    editEntries(b.dir, (recs) => {
      const out = new Uint8Array(recs.length + RECORD);
      out.set(recs);
      out.set(recs.subarray(RECORD, 2 * RECORD), recs.length);
      return out;
    });
  });

  await damageCase(t, "orphan file", ["ORPHAN_FILE"], (b) => {
    const from = `${b.dir}/${largeFileOf(b.dir, b.large[0]!)}`;
    const parts = largeFileParts(0, 200);
    Deno.mkdirSync(`${b.dir}/${parts.slice(0, -1).join("/")}`, {
      recursive: true,
    });
    Deno.copyFileSync(from, `${b.dir}/${parts.join("/")}`);
  });

  await damageCase(t, "leftover temp files", ["TEMP_LEFTOVER"], (b) => {
    Deno.writeTextFileSync(`${b.dir}/entries.tmp`, "half an index");
    Deno.writeTextFileSync(`${b.dir}/blocks.tmp`, "");
  });

  await damageCase(t, "corrupt entries file", ["ENTRIES_CORRUPT"], (b) => {
    flipBit(`${b.dir}/entries`, 64 + 7 * RECORD + REC.dataSize, 1);
  });

  await damageCase(t, "missing entries file", ["ENTRIES_MISSING"], (b) => {
    Deno.removeSync(`${b.dir}/entries`);
  });

  await damageCase(t, "newer format version", ["VERSION_NEWER"], (b) => {
    const bytes = Deno.readFileSync(`${b.dir}/entries`);
    const v = new DataView(bytes.buffer);
    v.setUint32(8, VERSION.entries + 1, true);
    v.setUint32(60, crc32(bytes.subarray(0, 60)), true);
    Deno.writeFileSync(`${b.dir}/entries`, bytes);
  });

  await damageCase(t, "corrupt journal tail", ["JOURNAL_CORRUPT_TAIL"], (b) => {
    const file = Deno.openSync(journalOf(b.dir), { write: true });
    file.seekSync(32, Deno.SeekMode.Start);
    file.writeSync(new Uint8Array(24).fill(0xab));
    file.close();
  });

  await damageCase(t, "damaged block file header", [
    "BLOCK_FILE_CORRUPT",
  ], (b) => {
    flipBit(`${b.dir}/dblk/A`, 24, 0); // the file's index
  });
});

/** Every file of `dir` and its bytes, to put back with {@linkcode restore}. */
function save(dir: string): Map<string, Uint8Array> {
  return new Map(
    walkFiles(dir).map((rel) => [rel, Deno.readFileSync(`${dir}/${rel}`)]),
  );
}

function restore(dir: string, files: Map<string, Uint8Array>): void {
  for (const e of Deno.readDirSync(dir)) {
    Deno.removeSync(`${dir}/${e.name}`, { recursive: true });
  }
  for (const [rel, bytes] of files) {
    const parent = rel.split("/").slice(0, -1).join("/");
    if (parent !== "") Deno.mkdirSync(`${dir}/${parent}`, { recursive: true });
    Deno.writeFileSync(`${dir}/${rel}`, bytes);
  }
}

/** Rewrites the journal of `dir` through `edit`, given its last entry. */
function editJournal(
  dir: string,
  edit: (j: Uint8Array, last: { at: number; size: number }) => void,
): void {
  const path = journalOf(dir);
  const j = Deno.readFileSync(path);
  const { entries, end } = readEntries(j);
  const at = entries.at(-1)!.offset;
  edit(j, { at, size: end - at });
  Deno.writeFileSync(path, j);
}

const CHECK_CLI = new URL("../scripts/check_store.ts", import.meta.url);

async function cli(...args: string[]): Promise<{ code: number; out: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", CHECK_CLI.pathname, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, out: new TextDecoder().decode(out.stdout) };
}

Deno.test("checkStore calls a torn final journal entry a warning, and damage past it an error", async (t) => {
  await using b = await buildStore();
  // A process that stores three more entries and dies without closing:
  // its changes live only in the journal.
  const child = await runChild(`
    import { BackingStore } from "${MOD_URL}";
    const s = await BackingStore.open(${JSON.stringify(b.dir)});
    for (const i of [100, 101, 102]) {
      await s.store("https://example.com/item/" + i, new Uint8Array(300).fill(i));
    }
    Deno.exit(0);
  `);
  equal(child.code, 0, child.err);
  const clean = await checkStore(b.dir);
  deepStrictEqual(clean.problems, []);
  equal(clean.stats?.entries, 27);
  const ops = clean.store!.journal!.operations;
  ok(ops >= 3);
  const crashed = save(b.dir);

  // The store of item 102 was the one being written: cut its entry.
  const tear = (keep: (size: number) => [number, number]) =>
    editJournal(b.dir, (j, last) => {
      ok(findInFile(journalOf(b.dir), keyOf(102)) > last.at, "102 is last");
      const [from, to] = keep(last.size);
      const frame = j.slice(last.at, last.at + last.size);
      j.fill(0, last.at, last.at + last.size);
      j.set(frame.subarray(from, to), last.at + from);
    });
  const expectTorn = async () => {
    const r = await checkStore(b.dir);
    deepStrictEqual(codes(r), ["JOURNAL_TORN_TAIL"]);
    const p = r.problems[0]!;
    equal(p.severity, "warning");
    ok(p.detail.includes("discarded"), p.detail);
    ok(r.ok, "a warning does not fail the check");
    equal(r.stats?.entries, 26);
    equal(r.store!.journal!.operations, ops - 1);
  };
  const expectCorrupt = async () => {
    const r = await checkStore(b.dir);
    deepStrictEqual(codes(r), ["JOURNAL_CORRUPT_TAIL"]);
    equal(r.problems[0]!.severity, "error");
    ok(!r.ok);
  };

  await t.step(
    "an entry cut part-way, the rest zero: warning, exit 0",
    async () => {
      tear((size) => [0, size >>> 1]);
      await expectTorn();
      const run = await cli(b.dir, "--json");
      equal(run.code, 0);
      const report = JSON.parse(run.out) as CheckReport;
      deepStrictEqual(
        report.problems.map((p) => [p.code, p.severity]),
        [["JOURNAL_TORN_TAIL", "warning"]],
      );
      restore(b.dir, crashed);
    },
  );

  await t.step(
    "an entry's first bytes only, or all but its first sector: warning",
    async () => {
      tear(() => [0, 8]);
      await expectTorn();
      restore(b.dir, crashed);
      tear((size) => [16, size]); // its head never reached the disk
      await expectTorn();
      restore(b.dir, crashed);
    },
  );

  await t.step(
    "a torn entry opens as the entries before it, and repair cleans it",
    async () => {
      tear((size) => [0, size - 4]);
      const fixed = await checkStore(b.dir, { repair: true });
      ok(fixed.ok);
      deepStrictEqual(codes(fixed), ["JOURNAL_TORN_TAIL"]);
      deepStrictEqual(fixed.remaining, []);
      deepStrictEqual((await checkStore(b.dir)).problems, []);
      restore(b.dir, crashed);
      // And open, without a repair, serves every acknowledged element.
      tear((size) => [0, size - 4]);
      const store = await BackingStore.open(b.dir);
      try {
        equal(store.stats().entries, 26);
        equal(store.stats().repairedOnOpen, 0);
        for (const [key, v] of b.values) {
          using hit = await store.fetch(key);
          deepStrictEqual(hit?.data, v.data, key);
          using meta = await store.fetch(key, { meta: true });
          deepStrictEqual(meta?.data, v.meta, key);
        }
        for (const i of [100, 101]) {
          using hit = await store.fetch(keyOf(i));
          deepStrictEqual(hit?.data, new Uint8Array(300).fill(i));
        }
        equal(await store.fetch(keyOf(102)), undefined);
      } finally {
        await store.close();
      }
      deepStrictEqual((await checkStore(b.dir)).problems, []);
      restore(b.dir, crashed);
    },
  );

  await t.step(
    "garbage past the torn entry's extent: error, exit 1",
    async () => {
      tear((size) => [0, size >>> 1]);
      editJournal(
        b.dir,
        (j, last) => j.fill(0x5a, last.at + 8192, last.at + 8200),
      );
      await expectCorrupt();
      equal((await cli(b.dir, "--quiet")).code, 1);
      restore(b.dir, crashed);
    },
  );

  await t.step(
    "garbage beyond the largest append after a zero head: error",
    async () => {
      editJournal(b.dir, (j, last) => {
        j.fill(0, last.at, last.at + last.size);
        j.fill(0x5a, j.length - 8); // the journal's last bytes, in its reserve
      });
      await expectCorrupt();
      restore(b.dir, crashed);
    },
  );

  await t.step(
    "a size no entry has, or a damaged entry before valid ones: error",
    async () => {
      editJournal(b.dir, (j, last) => j.fill(0xab, last.at, last.at + 24));
      await expectCorrupt();
      restore(b.dir, crashed);
      // Item 101's entry is damaged; 102's, valid, lies past its extent.
      flipBit(
        journalOf(b.dir),
        findInFile(journalOf(b.dir), keyOf(101)) + 2,
        0,
      );
      await expectCorrupt();
      restore(b.dir, crashed);
    },
  );
});

Deno.test("checkStore never touches files larder did not write", async () => {
  await using b = await buildStore();
  const foreign: Record<string, string> = {
    "notes.txt": "mine",
    "d/README": "mine too",
    "d/A/x.bin": "also mine",
    [largeFileParts(0, 300).join("/")]: "a larder name, not larder's bytes",
    "dblk/extra": "not a block file",
    "journal-DEADBEEF": "not a journal",
  };
  for (const [rel, text] of Object.entries(foreign)) {
    const dir = rel.split("/").slice(0, -1).join("/");
    if (dir !== "") Deno.mkdirSync(`${b.dir}/${dir}`, { recursive: true });
    Deno.writeTextFileSync(`${b.dir}/${rel}`, text);
  }
  Deno.mkdirSync(`${b.dir}/m/Z/not-a-component`, { recursive: true });
  // Also something repair must act on, so it runs.
  Deno.writeTextFileSync(`${b.dir}/entries.tmp`, "leftover");
  Deno.removeSync(`${b.dir}/${largeFileOf(b.dir, b.large[0]!)}`);

  const found = await checkStore(b.dir);
  const flagged = found.problems.filter((p) => p.code === "FOREIGN_FILE")
    .map((p) => p.path).sort();
  ok(flagged.length >= 6, flagged.join());
  ok(found.problems.every((p) => p.code !== "ORPHAN_FILE"));
  const fixed = await checkStore(b.dir, { repair: true });
  ok(fixed.ok);
  ok(fixed.remaining!.every((p) => p.code === "FOREIGN_FILE"));
  for (const [rel, text] of Object.entries(foreign)) {
    equal(Deno.readTextFileSync(`${b.dir}/${rel}`), text, rel);
  }
  ok(Deno.statSync(`${b.dir}/m/Z/not-a-component`).isDirectory);
  await assertSurvivors(
    b.dir,
    b.values,
    [...b.values.keys()].filter((k) => k !== b.large[0]),
  );
});

Deno.test("checkStore calls an empty file at a large-file name an orphan, and repair removes it", async () => {
  // What a store killed between creating a large file and writing its
  // header leaves behind.
  await using b = await buildStore();
  const rel = largeFileParts(0, 301).join("/");
  Deno.mkdirSync(`${b.dir}/${rel.split("/").slice(0, -1).join("/")}`, {
    recursive: true,
  });
  Deno.writeFileSync(`${b.dir}/${rel}`, new Uint8Array(0));
  const found = await checkStore(b.dir);
  deepStrictEqual(
    found.problems.filter((p) => p.path === rel).map((p) => p.code),
    ["ORPHAN_FILE"],
  );
  const fixed = await checkStore(b.dir, { repair: true });
  ok(fixed.ok);
  await rejects(Deno.lstat(`${b.dir}/${rel}`), Deno.errors.NotFound);
  await assertSurvivors(b.dir, b.values, [...b.values.keys()]);
});

Deno.test("checkStore refuses a store that is open unless forceReadonly", async () => {
  await using b = await buildStore();
  const store = await BackingStore.open(b.dir);
  try {
    await rejects(
      checkStore(b.dir),
      (e) => e instanceof StoreError && e.code === "LOCKED",
    );
    const r = await checkStore(b.dir, { forceReadonly: true });
    equal(r.locked, false);
    deepStrictEqual(r.problems, []);
    await rejects(
      checkStore(b.dir, { forceReadonly: true, repair: true }),
      TypeError,
    );
  } finally {
    await store.close();
  }
});

Deno.test("checkStore refuses what is not a store and writes nothing", async () => {
  await using tmp = await tempDir();
  Deno.writeTextFileSync(`${tmp.path}/control`, "not larder's");
  Deno.writeTextFileSync(`${tmp.path}/data.txt`, "hello");
  for (const dir of [tmp.path, `${tmp.path}/missing`]) {
    await rejects(
      checkStore(dir, { repair: true }),
      (e) => e instanceof StoreError && e.code === "NOT_A_STORE",
    );
  }
  deepStrictEqual(walkFiles(tmp.path), ["control", "data.txt"]);
});

Deno.test("checkStore stops at a control file of a newer version", async () => {
  await using b = await buildStore();
  const bytes = Deno.readFileSync(`${b.dir}/control`);
  const v = new DataView(bytes.buffer);
  v.setUint32(8, VERSION.control + 1, true);
  v.setUint32(40, crc32(bytes.subarray(0, 40)), true);
  Deno.writeFileSync(`${b.dir}/control`, bytes);
  const before = walkFiles(b.dir);
  const r = await checkStore(b.dir, { repair: true });
  deepStrictEqual(codes(r), ["VERSION_NEWER"]);
  ok(!r.complete && !r.ok);
  deepStrictEqual(r.repaired, []);
  deepStrictEqual(walkFiles(b.dir), before);
});

Deno.test("checkStore stops at a control file of an earlier format (8 KiB data slots)", async () => {
  await using b = await buildStore();
  for (const name of ["control", "control.bak"]) {
    const bytes = Deno.readFileSync(`${b.dir}/${name}`);
    const v = new DataView(bytes.buffer);
    v.setUint32(8, VERSION.control - 1, true);
    v.setUint32(40, crc32(bytes.subarray(0, 40)), true);
    Deno.writeFileSync(`${b.dir}/${name}`, bytes);
  }
  const before = walkFiles(b.dir);
  const r = await checkStore(b.dir, { repair: true });
  deepStrictEqual(codes(r), ["VERSION_OLD"]);
  ok(!r.complete && !r.ok);
  deepStrictEqual(r.repaired, []);
  deepStrictEqual(walkFiles(b.dir), before);
});

Deno.test("checkStore times each named step, in order", async () => {
  // The step names CHECK_STORE.md gives for `stepMs`.
  const steps = [
    "rootFiles",
    "control",
    "index",
    "journals",
    "records",
    "attrs",
    "useMaps",
    "blockFiles",
    "largeFiles",
    "keys",
    "shared",
    "settleDrops",
    "fillKeys",
    "stats",
  ];
  const timed = (ms: Record<string, number> | null | undefined) => {
    ok(ms);
    for (const v of Object.values(ms)) ok(Number.isFinite(v) && v >= 0);
    return Object.keys(ms);
  };
  await using b = await buildStore();
  const clean = await checkStore(b.dir);
  deepStrictEqual(timed(clean.stepMs), steps);
  equal(clean.recheckStepMs, null);
  // A repair re-checks with every step again.
  Deno.writeFileSync(`${b.dir}/control.tmp`, new Uint8Array(8));
  const fixed = await checkStore(b.dir, { repair: true });
  deepStrictEqual(codes(fixed), ["TEMP_LEFTOVER"]);
  deepStrictEqual(timed(fixed.stepMs), steps);
  deepStrictEqual(timed(fixed.recheckStepMs), steps);
  deepStrictEqual(fixed.remaining, []);
  // A check that cannot choose a control record stops after that step.
  const bytes = Deno.readFileSync(`${b.dir}/control`);
  const v = new DataView(bytes.buffer);
  v.setUint32(8, VERSION.control + 1, true);
  v.setUint32(40, crc32(bytes.subarray(0, 40)), true);
  Deno.writeFileSync(`${b.dir}/control`, bytes);
  const stopped = await checkStore(b.dir);
  deepStrictEqual(timed(stopped.stepMs), ["rootFiles", "control"]);
});

Deno.test("check-store CLI exit codes and --json", async () => {
  await using b = await buildStore();
  const script = new URL("../scripts/check_store.ts", import.meta.url);
  const run = async (...args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-write", script.pathname, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, out: new TextDecoder().decode(out.stdout) };
  };
  const clean = await run(b.dir, "--json");
  equal(clean.code, 0);
  const report = JSON.parse(clean.out) as CheckReport;
  equal(report.schema, 1);
  deepStrictEqual(report.problems, []);

  Deno.removeSync(`${b.dir}/${largeFileOf(b.dir, b.large[0]!)}`);
  const damaged = await run(b.dir);
  equal(damaged.code, 1);
  ok(damaged.out.includes("ELEMENT_MISSING"), damaged.out);
  equal((await run(b.dir, "--repair", "--quiet")).code, 0);
  equal((await run(b.dir)).code, 0);

  const store = await BackingStore.open(b.dir);
  try {
    const locked = await run(b.dir, "--json");
    equal(locked.code, 2);
    equal(JSON.parse(locked.out).error.code, "LOCKED");
  } finally {
    await store.close();
  }
  equal((await run(`${b.dir}/nowhere`)).code, 2);
  equal((await run()).code, 2);
});

Deno.test("checkStore recomputes key hashes (nsurl and SipHash stores)", async (t) => {
  for (const hash of ["nsurl", "siphash13"] as const) {
    await t.step(hash, async () => {
      await using tmp = await tempDir();
      const store = await BackingStore.open(tmp.path, { entryBits: 8, hash });
      const keys = [
        "https://example.com/a/b?c=d",
        "HTTP://Example.COM:80/x/./y/../z",
        "http://user:pw@host.example:8080/p%7e",
        "not a url",
      ];
      for (const k of keys) await store.store(k, bytesFor(k, FILE_SIZED));
      await store.close();
      deepStrictEqual((await checkStore(tmp.path)).problems, []);

      // An element and its entry that agree on a hash the key does not
      // have: only recomputing the hash can tell.
      const rel = largeFiles(tmp.path)[0]!;
      const file = Deno.readFileSync(`${tmp.path}/${rel}`);
      const h = readElementHeader(file)!;
      writeElementHeader(
        file,
        { ...h, hashLo: h.hashLo ^ 1 },
        file.subarray(32, 32 + h.keyLen),
      );
      Deno.writeFileSync(`${tmp.path}/${rel}`, file);
      editEntries(tmp.path, (recs, v) => {
        for (let i = 0; i * RECORD < recs.length; i++) {
          if (v.getUint32(i * RECORD, true) === h.hashLo) {
            v.setUint32(i * RECORD, h.hashLo ^ 1, true);
          }
        }
      });
      const r = await checkStore(tmp.path, { repair: true });
      deepStrictEqual(codes(r), ["KEY_HASH"]);
      ok(r.ok);
      equal(r.stats?.entries, 3);
    });
  }
});
