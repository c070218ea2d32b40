// The store directory as an attacker or a careless operator leaves it: the
// whole directory removed and recreated under an open handle, directories
// inside it replaced by symlinks or removed, and paths given as URLs.
import assert from "node:assert/strict";
import { BackingStore, StoreError } from "../mod.ts";
import {
  bytesFor,
  FILE_SIZED,
  largeFiles,
  MOD_URL,
  read,
  runChild,
  sameBytes,
  tempDir,
} from "./_helpers.ts";

/** Every directory under `dir/sub`, relative to `dir`. */
function dirsUnder(dir: string, sub: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of Deno.readDirSync(`${dir}/${rel}`)) {
      if (!e.isDirectory) continue;
      out.push(`${rel}/${e.name}`);
      walk(`${rel}/${e.name}`);
    }
  };
  walk(sub);
  return out;
}

/** Rejects with a StoreError of `code`. */
async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err) => {
    assert.ok(err instanceof StoreError, `${err}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

Deno.test("a handle whose directory was replaced fails with REPLACED and never writes into the new store", async () => {
  await using t = await tempDir();
  const dir = `${t.path}/store`;
  const old = await BackingStore.open(dir);
  await old.store("https://old.example/small", bytesFor("old", 3000));
  await old.store(
    "https://old.example/large",
    bytesFor("oldL", FILE_SIZED + 1),
  );

  // Another process removes the directory and makes a new store there.
  await Deno.remove(dir, { recursive: true });
  const made = await runChild(
    `
    import { BackingStore } from "${MOD_URL}";
    const s = await BackingStore.open(Deno.args[0]);
    for (let i = 0; i < 20; i++) {
      await s.store("https://new.example/" + i, new Uint8Array(5000).fill(i));
    }
    await s.close();
  `,
    [dir],
  );
  assert.equal(made.code, 0, made.err);

  // A path-based change fails at once; a small store, written into files
  // the old handle already has open, fails within 64 calls.
  await rejectsWith(
    old.store("https://old.example/large2", bytesFor("x", FILE_SIZED + 1)),
    "REPLACED",
  );
  let failed = false;
  for (let i = 0; i < 64 && !failed; i++) {
    try {
      await old.store(`https://old.example/s${i}`, bytesFor(`s${i}`, 2000));
    } catch (err) {
      assert.ok(err instanceof StoreError && err.code === "REPLACED", `${err}`);
      failed = true;
    }
  }
  assert.ok(failed, "the replaced handle kept acknowledging stores");
  await rejectsWith(old.close(), "REPLACED");

  // The new store has every element it acknowledged, and nothing of old's.
  const now = await BackingStore.open(dir);
  try {
    for (let i = 0; i < 20; i++) {
      const got = await read(now, `https://new.example/${i}`);
      assert.ok(sameBytes(got, new Uint8Array(5000).fill(i)), `element ${i}`);
    }
    assert.equal(await read(now, "https://old.example/small"), undefined);
    assert.equal(await read(now, "https://old.example/large"), undefined);
  } finally {
    await now.close();
  }
});

Deno.test("a handle whose directory was removed fails with REPLACED at close and releases the directory", async () => {
  await using t = await tempDir();
  const dir = `${t.path}/store`;
  const old = await BackingStore.open(dir);
  await old.store("k", bytesFor("k", 100));
  await Deno.remove(dir, { recursive: true });
  await rejectsWith(old.close(), "REPLACED");
  // Nothing was recreated at the path by the old handle's close.
  await assert.rejects(Deno.lstat(dir), Deno.errors.NotFound);
  const again = await BackingStore.open(dir);
  await again.close();
});

Deno.test("a directory inside the store replaced by a symlink is never followed", async () => {
  await using t = await tempDir();
  const dir = `${t.path}/store`;
  const outside = `${t.path}/outside`;
  const value = bytesFor("large", FILE_SIZED + 10);
  {
    const s = await BackingStore.open(dir);
    await s.store("https://a.example/large", value);
    await s.close();
  }
  // Move the large file's whole tree out and point `d` at it.
  await Deno.rename(`${dir}/d`, outside);
  await Deno.symlink(outside, `${dir}/d`);

  const s = await BackingStore.open(dir);
  try {
    // Reading through the symlink would find the file: it is a miss.
    assert.equal(await read(s, "https://a.example/large"), undefined);
    // Writing moves the symlink aside and makes a real directory.
    const next = bytesFor("next", FILE_SIZED + 20);
    await s.store("https://a.example/next", next);
    assert.ok(sameBytes(await read(s, "https://a.example/next"), next));
    assert.equal((await Deno.lstat(`${dir}/d`)).isDirectory, true);
  } finally {
    await s.close();
  }
  // Nothing was written into, or removed from, the symlink's target.
  const targetFiles: string[] = [];
  for (const p of dirsUnder(t.path, "outside")) {
    for (const e of Deno.readDirSync(`${t.path}/${p}`)) {
      if (e.isFile) targetFiles.push(`${p}/${e.name}`);
    }
  }
  assert.equal(targetFiles.length, 1, targetFiles.join(", "));
});

Deno.test("large stores work again after d/ is removed under an open store", async () => {
  await using t = await tempDir();
  const s = await BackingStore.open(t.path);
  try {
    await s.store("https://a.example/1", bytesFor("1", FILE_SIZED + 1));
    await Deno.remove(`${t.path}/d`, { recursive: true });
    for (let i = 2; i < 5; i++) {
      const v = bytesFor(`${i}`, FILE_SIZED + i);
      await s.store(`https://a.example/${i}`, v);
      assert.ok(sameBytes(await read(s, `https://a.example/${i}`), v));
    }
    // The element whose file went with d/ is a miss, not an error.
    assert.equal(await read(s, "https://a.example/1"), undefined);
  } finally {
    await s.close();
  }
});

Deno.test("directories emptied by removing large files are removed", async () => {
  await using t = await tempDir();
  const s = await BackingStore.open(t.path);
  try {
    // 200 stores over 4 keys: file ids run through four 64-file leaf
    // directories, of which only the last holds live files.
    for (let i = 0; i < 200; i++) {
      await s.store(
        `https://a.example/${i % 4}`,
        bytesFor(`${i}`, FILE_SIZED + i),
      );
    }
    await s.flush();
  } finally {
    await s.close();
  }
  assert.equal(largeFiles(t.path).length, 4);
  // d/ then five levels of one directory each, plus at most one more leaf
  // (the four live files may straddle two leaf directories).
  const dirs = dirsUnder(t.path, "d");
  assert.ok(dirs.length <= 6, dirs.join(", "));
});

Deno.test("open takes local paths and file: URLs only", async () => {
  await using t = await tempDir();
  for (
    const bad of [
      new URL("https://example.com/store"),
      new URL("data:text/plain,store"),
      new URL("file://elsewhere.example/store"),
      new URL("file:///x%zz"),
      new URL("file:///a%2Fb"),
    ]
  ) {
    await assert.rejects(BackingStore.open(bad), TypeError, bad.href);
  }
  for (const bad of ["", "a\0b", 42, null]) {
    await assert.rejects(
      BackingStore.open(bad as unknown as string),
      TypeError,
      String(bad),
    );
  }
  // A file: URL, percent-encoding decoded, names the same store as its path.
  const dir = `${t.path}/a b`;
  const s = await BackingStore.open(
    new URL(`file://${dir.replace(" ", "%20")}`),
  );
  await s.store("k", bytesFor("k", 10));
  await s.close();
  const again = await BackingStore.open(dir);
  try {
    assert.ok(sameBytes(await read(again, "k"), bytesFor("k", 10)));
  } finally {
    await again.close();
  }
});

Deno.test("a relative store path keeps naming the same store after chdir", async () => {
  await using t = await tempDir();
  const cwd = Deno.cwd();
  Deno.chdir(t.path);
  let s: BackingStore;
  try {
    s = await BackingStore.open("rel");
  } finally {
    Deno.chdir(cwd);
  }
  try {
    await s.store("https://a.example/large", bytesFor("l", FILE_SIZED + 5));
    await s.flush();
  } finally {
    await s.close();
  }
  assert.equal(largeFiles(`${t.path}/rel`).length, 1);
  await assert.rejects(Deno.lstat(`${cwd}/rel`), Deno.errors.NotFound);
});
