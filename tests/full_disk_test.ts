// A real full disk: a small tmpfs that .ci/run mounts (as root) and names
// in LARDER_ENOSPC_DIR. The store is filled until the disk is, then every
// way out must work: invalidate, close, reopen, check-store (and repair),
// refill after removals; nothing wedged, every failure a typed NO_SPACE.
// Without the mount the suite says so loudly and is skipped; the
// fault-injection ENOSPC sweeps (io_fault_test.ts) still run.
import assert from "node:assert/strict";
import {
  BackingStore,
  checkStore,
  type OpenOptions,
  StoreError,
} from "../mod.ts";
import { bytesFor, read } from "./_helpers.ts";

function enospcDir(): string | undefined {
  let dir: string | undefined;
  try {
    dir = Deno.env.get("LARDER_ENOSPC_DIR");
  } catch {
    return undefined;
  }
  if (dir === undefined || dir === "") return undefined;
  try {
    const probe = `${dir}/.probe-${crypto.randomUUID()}`;
    Deno.writeFileSync(probe, new Uint8Array(1));
    Deno.removeSync(probe);
    return dir;
  } catch {
    return undefined;
  }
}

const ROOT = enospcDir();
if (ROOT === undefined) {
  console.warn(
    "WARNING: full_disk_test.ts SKIPPED: LARDER_ENOSPC_DIR is not set or not " +
      "writable (.ci/run mounts a small tmpfs there when run as root); only " +
      "the fault-injection ENOSPC tests cover a full disk in this run",
  );
}

// Big enough limit that the store never evicts before the disk is full;
// small enough that the use maps stay small.
const OPT = {
  entryBits: 10,
  limit: 64 * 2 ** 20,
  journalBytes: 2 ** 20,
} as const;

function isNoSpace(err: unknown): boolean {
  return err instanceof StoreError && err.code === "NO_SPACE";
}

/** Bytes of disk the files below `dir` hold (st_blocks). */
function diskBytes(dir: string): number {
  let total = 0;
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) total += diskBytes(p);
    else total += (Deno.statSync(p).blocks ?? 0) * 512;
  }
  return total;
}

/** A fresh directory on the small disk, removed afterwards. */
async function onSmallDisk(): Promise<{ path: string } & AsyncDisposable> {
  const path = `${ROOT}/s-${crypto.randomUUID()}`;
  await Deno.mkdir(path);
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true });
    },
  };
}

/** Fills a disk-filling file until the disk has at most `leave` bytes left. */
function fillDisk(path: string, leave: number): void {
  const f = Deno.openSync(path, { write: true, create: true });
  try {
    let chunk = 1 << 20;
    const zeros = new Uint8Array(chunk);
    while (chunk > leave && chunk >= 4096) {
      try {
        f.writeSync(zeros.subarray(0, chunk));
      } catch {
        chunk >>= 1;
      }
    }
  } finally {
    f.close();
  }
}

/** Stores keys until the disk is full; returns what was acknowledged. */
async function fill(st: BackingStore, prefix: string, sizes: number[]) {
  const stored = new Map<string, number>();
  for (let i = 0; i < 100_000; i++) {
    const key = `${prefix}${i}`;
    const size = sizes[i % sizes.length]!;
    try {
      await st.store(key, bytesFor(key, size));
      stored.set(key, size);
    } catch (err) {
      assert.ok(isNoSpace(err), `store ${i}: ${err}`);
      return stored;
    }
  }
  throw new Error("the disk never filled");
}

Deno.test({
  name:
    "a store on a full disk still invalidates, closes, reopens, checks, repairs and refills",
  ignore: ROOT === undefined,
  async fn() {
    await using d = await onSmallDisk();
    let st = await BackingStore.open(d.path, OPT);
    let stored: Map<string, number>;
    try {
      // Slot elements and large files.
      stored = await fill(st, "k", [3000, 60_000, 7000, 200_000]);
      assert.ok(stored.size > 10, `only ${stored.size} stored`);
      // Removal works on the full disk.
      const gone = [...stored.keys()].slice(0, 5);
      for (const k of gone) {
        assert.equal(await st.invalidate(k), true);
        stored.delete(k);
      }
      for (const [k, size] of stored) {
        assert.deepEqual(await read(st, k), bytesFor(k, size), k);
      }
    } finally {
      // Close works on the full disk (the journal keeps what it holds).
      await st.close();
    }
    // Reopen works, everything acknowledged is there.
    st = await BackingStore.open(d.path, OPT);
    try {
      for (const [k, size] of stored) {
        assert.deepEqual(await read(st, k), bytesFor(k, size), k);
      }
    } finally {
      await st.close();
    }
    // check-store finds nothing wrong (no torn journal tail), and a
    // repair runs.
    const report = await checkStore(d.path);
    assert.deepEqual(
      report.problems.filter((p) => p.severity === "error"),
      [],
    );
    const repaired = await checkStore(d.path, { repair: true });
    assert.ok(repaired.ok, JSON.stringify(repaired.problems));
    // Removing frees space: the store fills again.
    st = await BackingStore.open(d.path, OPT);
    try {
      const keys = [...stored.keys()];
      for (const k of keys.slice(0, Math.ceil(keys.length / 2))) {
        await st.invalidate(k);
        stored.delete(k);
      }
      const again = await fill(st, "r", [3000, 60_000, 7000, 200_000]);
      assert.ok(again.size > 5, `only ${again.size} stored after removals`);
      for (const [k, size] of [...stored, ...again]) {
        assert.deepEqual(await read(st, k), bytesFor(k, size), k);
      }
    } finally {
      await st.close();
    }
  },
});

Deno.test({
  name: "removing slot elements on a full disk gives block-file space back",
  ignore: ROOT === undefined,
  async fn() {
    await using d = await onSmallDisk();
    // More entries than 8 KiB slots fit on the disk.
    const st = await BackingStore.open(d.path, { ...OPT, entryBits: 12 });
    try {
      const stored = await fill(st, "s", [6000]);
      assert.ok(stored.size > 100);
      const before = diskBytes(d.path);
      // The newest half sits at the end of the block files.
      const keys = [...stored.keys()];
      for (const k of keys.slice(keys.length / 2)) {
        assert.equal(await st.invalidate(k), true);
        stored.delete(k);
      }
      const after = diskBytes(d.path);
      assert.ok(
        before - after > (keys.length / 4) * 8192,
        `freed only ${before - after} bytes of ${before}`,
      );
      // That space takes new elements, and the old ones are intact.
      const again = await fill(st, "t", [6000]);
      assert.ok(again.size > keys.length / 4, `${again.size} refilled`);
      for (const [k, size] of stored) {
        assert.deepEqual(await read(st, k), bytesFor(k, size), k);
      }
    } finally {
      await st.close();
    }
  },
});

Deno.test({
  name:
    "opening a store on a full disk fails with NO_SPACE and keeps no lock or descriptor",
  ignore: ROOT === undefined,
  async fn() {
    await using d = await onSmallDisk();
    const filler = `${ROOT}/filler-${crypto.randomUUID()}`;
    try {
      fillDisk(filler, 64 * 1024);
      await assert.rejects(
        () => BackingStore.open(`${d.path}/new`, OPT),
        (err) => isNoSpace(err),
      );
    } finally {
      Deno.removeSync(filler);
    }
    // Nothing kept the lock: with space back, it opens.
    const st = await BackingStore.open(`${d.path}/new`, OPT);
    await st.store("x", new Uint8Array([1]));
    await st.close();
  },
});

Deno.test({
  name:
    "a store whose journal fills on a full disk removes into its reserve, closes and reopens",
  ignore: ROOT === undefined,
  async fn() {
    await using d = await onSmallDisk();
    // 4,096 entries, metadata elements (1 KiB slots), a 64 KiB journal:
    // about 1,900 invalidations fill it up to its reserve.
    const small = { ...OPT, entryBits: 12, journalBytes: 65536 };
    const n = 2200;
    const filler = `${ROOT}/filler-${crypto.randomUUID()}`;
    try {
      await journalFillsOnFullDisk(d.path, filler, small, n);
    } finally {
      try {
        Deno.removeSync(filler);
      } catch { /* removed by the test */ }
    }
  },
});

async function journalFillsOnFullDisk(
  dir: string,
  filler: string,
  small: OpenOptions,
  n: number,
): Promise<void> {
  {
    let st = await BackingStore.open(dir, small);
    const stored = new Set<string>();
    try {
      for (let i = 0; i < n; i++) {
        await st.store(`k${i}`, bytesFor(`k${i}`, 100), { meta: true });
        stored.add(`k${i}`);
      }
      await st.flush(); // an empty journal
      fillDisk(filler, 0);
      // Oldest first (the lowest slots: no block-file tail is freed, so the
      // disk stays full); past the journal's normal room, rotations fail
      // and the reserve takes the removals.
      for (let i = 0; i < 2000; i++) {
        assert.equal(await st.invalidate(`k${i}`), true, `invalidate ${i}`);
        stored.delete(`k${i}`);
      }
      // A store needs a rotation: NO_SPACE, typed.
      await assert.rejects(
        () => st.store("new", bytesFor("new", 100), { meta: true }),
        (err) => isNoSpace(err),
      );
    } finally {
      await st.close();
    }
    try {
      // Reopening cannot rotate: it appends to the journal it replayed.
      st = await BackingStore.open(dir, small);
      try {
        for (const k of stored) {
          assert.deepEqual(
            await read(st, k, { meta: true }),
            bytesFor(k, 100),
            k,
          );
        }
        assert.equal(await read(st, "k5", { meta: true }), undefined);
        assert.equal(await st.invalidate("k2100"), true);
        stored.delete("k2100");
      } finally {
        await st.close();
      }
    } finally {
      Deno.removeSync(filler);
    }
    st = await BackingStore.open(dir, small);
    try {
      assert.equal(await read(st, "k2100", { meta: true }), undefined);
      assert.equal(stored.size, n - 2001);
      for (const k of stored) {
        assert.deepEqual(
          await read(st, k, { meta: true }),
          bytesFor(k, 100),
          k,
        );
      }
      await st.store("new", bytesFor("new", 100), { meta: true });
    } finally {
      await st.close();
    }
    const report = await checkStore(dir);
    assert.ok(report.ok, JSON.stringify(report.problems));
  }
}

Deno.test({
  name:
    "check-store --repair on a full disk deletes leftovers first and rewrites the index",
  ignore: ROOT === undefined,
  async fn() {
    await using d = await onSmallDisk();
    const stored = new Map<string, number>();
    {
      const st = await BackingStore.open(d.path, OPT);
      try {
        for (let i = 0; i < 40; i++) {
          const size = i % 2 === 0 ? 3000 : 50_000;
          await st.store(`k${i}`, bytesFor(`k${i}`, size));
          stored.set(`k${i}`, size);
        }
      } finally {
        await st.close();
      }
    }
    // A stale journal an interrupted rotation left (2 MiB), and a torn
    // entry after the current journal's last one: a repair writes a new
    // snapshot and journal, on a disk with no room left.
    const stale = new Uint8Array(2 ** 21);
    stale.set(new TextEncoder().encode("LARDERJL"), 0);
    stale.fill(1, 8);
    Deno.writeFileSync(`${d.path}/journal-0BADF00D`, stale);
    const snap = Deno.readFileSync(`${d.path}/entries`);
    const tag = new DataView(snap.buffer).getUint32(24, true);
    const journal = `${d.path}/journal-${
      tag.toString(16).padStart(8, "0").toUpperCase()
    }`;
    const f = Deno.openSync(journal, { write: true });
    try {
      f.seekSync(4096, Deno.SeekMode.Start);
      f.writeSync(new Uint8Array(64).fill(0xee));
    } finally {
      f.close();
    }
    const filler = `${ROOT}/filler-${crypto.randomUUID()}`;
    try {
      fillDisk(filler, 0);
      const before = await checkStore(d.path);
      const codes = before.problems.map((p) => p.code).sort();
      assert.ok(codes.includes("JOURNAL_STALE"), codes.join());
      assert.ok(codes.includes("JOURNAL_TORN_TAIL"), codes.join());
      const r = await checkStore(d.path, { repair: true });
      assert.ok(r.ok, JSON.stringify(r.remaining));
      const st = await BackingStore.open(d.path, OPT);
      try {
        for (const [k, size] of stored) {
          assert.deepEqual(await read(st, k), bytesFor(k, size), k);
        }
      } finally {
        await st.close();
      }
    } finally {
      Deno.removeSync(filler);
    }
  },
});
