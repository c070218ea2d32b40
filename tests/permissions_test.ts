// The file-system boundary seen from other processes: narrow permissions
// and the lock's authority, each in a child process with a timeout.
import assert from "node:assert/strict";
import { tempDir } from "./_helpers.ts";

const CHILD = new URL("./_fs_child.ts", import.meta.url).pathname;
const TIMEOUT_MS = 60_000;

/** Runs the child with `perms`; its stdout, trimmed (fails on a hang). */
async function run(
  perms: string[],
  mode: string,
  dir: string,
  cwd?: string,
): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...perms, "--allow-env", CHILD, mode, dir],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
  try {
    const out = await child.output();
    const text = new TextDecoder().decode(out.stdout).trim();
    if (Deno.env.get("FS_CHILD_DEBUG")) {
      console.error(new TextDecoder().decode(out.stderr));
    }
    assert.equal(
      out.signal,
      null,
      `child killed (hang?): ${new TextDecoder().decode(out.stderr)}`,
    );
    return text;
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("open works with read and write permission on the store directory only", async () => {
  await using t = await tempDir();
  const dir = `${t.path}/a/store`;
  await Deno.mkdir(`${t.path}/a`);
  const perms = [`--allow-read=${dir}`, `--allow-write=${dir}`];
  // Created by this open (its parent sync is not permitted, and skipped).
  assert.equal(await run(perms, "store", dir), "ok");
  // And reopened.
  assert.equal(await run(perms, "store", dir), "ok");
});

Deno.test("open works with narrow permissions on a relative directory", async () => {
  await using t = await tempDir();
  const perms = ["--allow-read=./rel", "--allow-write=./rel"];
  assert.equal(await run(perms, "store", "rel", t.path), "ok");
  assert.equal(await run(perms, "store", "rel", t.path), "ok");
  assert.equal((await Deno.stat(`${t.path}/rel/control`)).isFile, true);
});

Deno.test("check-store runs with permissions on the store directory only", async () => {
  await using t = await tempDir();
  const dir = `${t.path}/store`;
  const perms = [`--allow-read=${dir}`, `--allow-write=${dir}`];
  assert.equal(await run(perms, "store", dir), "ok");
  const script = new URL("../scripts/check_store.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...perms, script, dir, "--quiet"],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(TIMEOUT_MS),
  }).output();
  assert.equal(
    out.code,
    0,
    new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
  );
});

/** Starts a child that holds `dir` open until its stdin closes. */
async function holder(dir: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", CHILD, "hold", dir],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  assert.equal(new TextDecoder().decode(value).trim(), "open");
  return {
    async [Symbol.asyncDispose]() {
      await child.stdin.close();
      reader.releaseLock();
      await child.stdout.cancel();
      await child.stderr.cancel();
      await child.status;
      clearTimeout(timer);
    },
  };
}

Deno.test("lock refuses a second process even after the lock file is removed", async () => {
  await using t = await tempDir();
  const dir = `${t.path}/store`;
  const all = ["--allow-read", "--allow-write"];
  {
    await using _held = await holder(dir);
    assert.equal(await run(all, "lock", dir), "LOCKED");
    await Deno.remove(`${dir}/lock`);
    assert.equal(await run(all, "lock", dir), "LOCKED");
  }
  assert.equal(await run(all, "lock", dir), "ok");
});

Deno.test("lock file planted as a symlink is refused and its target never created", async () => {
  await using t = await tempDir();
  const dir = `${t.path}/store`;
  const all = ["--allow-read", "--allow-write"];
  assert.equal(await run(all, "lock", dir), "ok");
  await Deno.remove(`${dir}/lock`);
  await Deno.symlink(`${t.path}/target`, `${dir}/lock`);
  assert.equal(await run(all, "lock", dir), "NOT_A_STORE");
  await assert.rejects(Deno.lstat(`${t.path}/target`), Deno.errors.NotFound);
});
