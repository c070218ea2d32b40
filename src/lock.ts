/**
 * One process (and one handle) at a time: an advisory exclusive flock on
 * the store's `lock` file. flock is per open file description, so a second
 * open in the same process fails too.
 *
 * @module
 */
import { LockedError, toStoreError } from "./errors.ts";

/** A held store lock; `release` unlocks and closes it. */
export interface StoreLock {
  /** Unlocks and closes the lock file. */
  release(): void;
}

/**
 * Takes the store lock in `dir` without waiting.
 * @throws {LockedError} when another handle holds it.
 */
export function acquireLock(dir: string): StoreLock {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(`${dir}/lock`, {
      read: true,
      write: true,
      create: true,
      mode: 0o600,
    });
  } catch (err) {
    throw toStoreError(`open lock file in ${dir}`, err);
  }
  let locked = false;
  try {
    locked = file.tryLockSync(true);
  } catch (err) {
    file.close();
    throw toStoreError(`lock ${dir}`, err);
  }
  if (!locked) {
    file.close();
    throw new LockedError(
      `Cannot open store: ${dir} is in use by another handle or process`,
    );
  }
  return {
    release() {
      try {
        file.unlockSync();
      } finally {
        file.close();
      }
    },
  };
}
