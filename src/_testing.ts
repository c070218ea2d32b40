/**
 * The entry point tests open stores through when they replace what the
 * public options cannot: the file layer (tests/_fault_fs.ts) or the key
 * hash. Not exported from mod.ts.
 *
 * @module
 */
import type { OpenOptions, TestHooks } from "./options.ts";
import { type BackingStore, openStore } from "./store.ts";

export type { TestHooks };

/**
 * Opens (or creates) the store in `dir` with `hooks`.
 *
 * @param dir The store directory.
 * @param options As for `BackingStore.open`.
 * @param hooks The file layer and key hash to use instead of the real ones.
 * @returns the open store.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openForTest } from "./_testing.ts";
 *
 * const dir = await Deno.makeTempDir();
 * // Every key hashes alike: each lookup meets the collision path.
 * const store = await openForTest(dir, { entryBits: 8 }, {
 *   hashOverride: () => 7,
 * });
 * await store.store("a", new Uint8Array([1]));
 * await store.store("b", new Uint8Array([2]));
 * assert.equal(store.stats().entries, 2);
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function openForTest(
  dir: string | URL,
  options: OpenOptions = {},
  hooks: TestHooks = {},
): Promise<BackingStore> {
  return openStore(dir, options, hooks);
}
