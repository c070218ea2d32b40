/**
 * One process (and one handle) at a time: an exclusive advisory lock on
 * the store directory itself, held open for as long as the store is, and
 * on its `lock` file (which older versions lock), taken through the file
 * layer. Removing `lock` therefore admits no second writer, and the held
 * directory tells whether the path still names the store.
 *
 * @module
 */
import { LockedError, ReplacedError } from "./errors.ts";
import type { DirHold, FileIO } from "./io.ts";

/** A held store lock; `release` unlocks and closes it. */
export interface StoreLock {
  /** Unlocks and closes the lock file and the directory. */
  release(): void;
  /**
   * Throws {@linkcode ReplacedError} (and keeps throwing it) when the store
   * path no longer names the directory locked at open: call it before
   * every change made by path.
   */
  checkDir(action: string): void;
  /** The ReplacedError once checkDir found the directory replaced. */
  readonly replaced: ReplacedError | undefined;
}

/**
 * Takes the store lock in `dir` without waiting.
 * @throws {LockedError} when another handle holds it.
 */
export function acquireLock(
  io: FileIO,
  dir: string,
  beforeLockFile?: () => void,
): StoreLock {
  const locked = () =>
    new LockedError(
      `Cannot open store: ${dir} is in use by another handle or process`,
    );
  let hold: DirHold | undefined;
  if (io.holdDir !== undefined) {
    hold = io.holdDir(dir);
    if (hold === undefined) throw locked();
  }
  let release: (() => void) | undefined;
  try {
    beforeLockFile?.();
    release = io.tryLock(`${dir}/lock`);
  } finally {
    if (release === undefined) hold?.release();
  }
  if (release === undefined) throw locked();
  let replaced: ReplacedError | undefined;
  return {
    release() {
      try {
        release();
      } finally {
        hold?.release();
      }
    },
    checkDir(action: string) {
      if (replaced !== undefined) throw replaced;
      if (hold === undefined || io.dirId === undefined) return;
      if (io.dirId(dir) === hold.id) return;
      replaced = new ReplacedError(
        `Cannot ${action}: ${dir} was removed or replaced while the store was open`,
      );
      throw replaced;
    },
    get replaced() {
      return replaced;
    },
  };
}
