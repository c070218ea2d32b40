// Shared test helpers: temp directories, deterministic bytes, file walks.
import { BackingStore, type OpenOptions } from "../mod.ts";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { MAX_RUN_SLOTS, roundRun, SLOT_SIZE } from "../src/format.ts";
import { openForTest, type TestHooks } from "../src/_testing.ts";

/**
 * A data length that never fits a run of data slots (FORMAT.md §5.3), so
 * the element gets a large file of its own.
 */
export const FILE_SIZED = MAX_RUN_SLOTS * SLOT_SIZE[0];

/**
 * Data slots a data element of `len` bytes under `key` takes: the run a
 * run code stands for (FORMAT.md §4, §5.3).
 */
export function slotsFor(key: string, len: number): number {
  return roundRun(Math.ceil(
    (32 + new TextEncoder().encode(key).length + len) / SLOT_SIZE[0],
  ));
}

/**
 * Bytes allocated on disk under `path`, as `du` counts them: st_blocks ×
 * 512 of every file and directory, without following symlinks.
 */
export function allocatedBytes(path: string): number {
  const st = Deno.lstatSync(path);
  let total = (st.blocks ?? 0) * 512;
  if (st.isDirectory) {
    for (const e of Deno.readDirSync(path)) {
      total += allocatedBytes(`${path}/${e.name}`);
    }
  }
  return total;
}

/** Byte equality (a native compare: values run to megabytes). */
export function sameBytes(
  a: Uint8Array | undefined,
  b: Uint8Array | undefined,
): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}

/**
 * Asserts that `actual` holds exactly `expected`'s bytes, failing with a
 * short message (assert.deepEqual's diff of a large array can take
 * minutes).
 */
export function assertBytes(
  actual: Uint8Array | undefined,
  expected: Uint8Array,
  what = "bytes",
): void {
  if (actual === undefined) {
    throw new assert.AssertionError({ message: `${what}: a miss` });
  }
  if (sameBytes(actual, expected)) return;
  let at = 0;
  while (at < actual.length && actual[at] === expected[at]) at++;
  throw new assert.AssertionError({
    message:
      `${what}: ${actual.length} bytes, expected ${expected.length}; first difference at ${at}`,
  });
}

/** A fresh temp dir, removed when the returned disposable is disposed. */
export async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "larder-test-" });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true });
    },
  };
}

/** Opens a store in a fresh temp dir; disposing closes it and removes the dir. */
export async function tempStore(
  options: OpenOptions = {},
  hooks?: TestHooks,
): Promise<{ store: BackingStore; dir: string } & AsyncDisposable> {
  const dir = await tempDir();
  const store = hooks === undefined
    ? await BackingStore.open(dir.path, options)
    : await openForTest(dir.path, options, hooks);
  return {
    store,
    dir: dir.path,
    async [Symbol.asyncDispose]() {
      await store.close();
      await dir[Symbol.asyncDispose]();
    },
  };
}

/** Deterministic bytes derived from `seed` (mulberry32). */
export function bytesFor(seed: string, size: number): Uint8Array {
  let s = 0x4e455453;
  for (let i = 0; i < seed.length; i++) {
    s = Math.imul(s ^ seed.charCodeAt(i), 0x01000193) >>> 0;
  }
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    out[i] = (z ^ (z >>> 14)) & 0xff;
  }
  return out;
}

/** Every regular file below `dir`, as paths relative to it. */
export function walkFiles(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(`${dir}/${prefix}`)) {
    const rel = prefix === "" ? e.name : `${prefix}/${e.name}`;
    if (e.isDirectory) out.push(...walkFiles(dir, rel));
    else out.push(rel);
  }
  return out.sort();
}

/** Large element files of a store (under d/ and m/). */
export function largeFiles(dir: string): string[] {
  return walkFiles(dir).filter((p) => p.startsWith("d/") || p.startsWith("m/"));
}

/**
 * Runs a Deno script in a child process; returns exit code and output. A
 * child still running after `timeoutMs` is killed and fails the test (a
 * hang fails rather than stalls).
 */
export async function runChild(
  code: string,
  args: string[] = [],
  timeoutMs = 120_000,
): Promise<{ code: number; out: string; err: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", "-", ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(code));
  await w.close();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, timeoutMs);
  const r = await child.output();
  clearTimeout(timer);
  assert.ok(!timedOut, `child timed out after ${timeoutMs} ms`);
  return {
    code: r.code,
    out: new TextDecoder().decode(r.stdout),
    err: new TextDecoder().decode(r.stderr),
  };
}

/**
 * SIGKILLs `child` (which may have exited already), waits for it and for
 * `reading` (the task collecting its stdout), and fails unless the kill is
 * what ended it (a child that ended by itself shows its stderr).
 */
export async function killConfirmed(
  child: Deno.ChildProcess,
  reading: Promise<unknown>,
  stderr: Promise<string>,
  label: string,
): Promise<void> {
  try {
    child.kill("SIGKILL");
  } catch { /* it exited already: its output says why */ }
  const status = await child.status;
  await reading;
  const err = await stderr;
  assert.ok(
    status.signal === "SIGKILL",
    `${label}: the child ended by itself (code ${status.code}): ${err}`,
  );
}

/** Absolute URL of mod.ts, for child scripts. */
export const MOD_URL = new URL("../mod.ts", import.meta.url).href;

/** Fetches an element's bytes and releases the reference at once. */
export async function read(
  store: BackingStore,
  key: string | URL,
  options?: { meta?: boolean },
): Promise<Uint8Array | undefined> {
  using hit = await store.fetch(key, options);
  return hit?.data;
}

/**
 * Waits until `store` has made `evictions` evictions: a long eviction
 * removes its victims in steps between event-loop turns, after the put
 * that started it has returned. Fails if they do not come.
 */
export async function evictionsReach(
  store: { stats(): { evictions: number } },
  evictions: number,
): Promise<void> {
  for (let n = 0; store.stats().evictions < evictions; n++) {
    if (n >= 10_000) {
      throw new Error(`stuck at ${store.stats().evictions} evictions`);
    }
    await new Promise((r) => setTimeout(r, 1));
  }
}
