/**
 * One process (and one handle) at a time: an exclusive advisory lock on
 * the store's `lock` file, taken through the file layer.
 *
 * @module
 */
import { LockedError } from "./errors.ts";
import type { FileIO } from "./io.ts";

/** A held store lock; `release` unlocks and closes it. */
export interface StoreLock {
  /** Unlocks and closes the lock file. */
  release(): void;
}

/**
 * Takes the store lock in `dir` without waiting.
 * @throws {LockedError} when another handle holds it.
 */
export function acquireLock(io: FileIO, dir: string): StoreLock {
  const release = io.tryLock(`${dir}/lock`);
  if (release === undefined) {
    throw new LockedError(
      `Cannot open store: ${dir} is in use by another handle or process`,
    );
  }
  return { release };
}
