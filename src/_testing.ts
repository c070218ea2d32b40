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
 * import { openForTest } from "../src/_testing.ts";
 * const store = await openForTest("/s", { entryBits: 8 }, { io: faultFs });
 * await store.close();
 * ```
 */
export function openForTest(
  dir: string | URL,
  options: OpenOptions = {},
  hooks: TestHooks = {},
): Promise<BackingStore> {
  return openStore(dir, options, hooks);
}
