/**
 * The directory tree under a store that element files live in (FORMAT.md
 * §5, §6): making and checking directories on the way to a file (never
 * following a symlink as a path component), moving foreign objects aside,
 * pruning emptied large-file directories, and the directory syncs that
 * make new names durable.
 *
 * @module
 */
import { ForeignFileError, StoreError } from "./errors.ts";
import { moveAside } from "./_foreign.ts";
import type { FileIO } from "./io.ts";
import { isAbsence } from "./_element_verify.ts";

/** The directory part of `path`. */
function parentOf(path: string): string {
  return path.slice(0, path.lastIndexOf("/"));
}

/** The directories of one store's element files. */
export class ElementDirs {
  /** The store directory. */
  readonly root: string;
  #io: FileIO;
  /**
   * Directories known to be real directories of this store, with their
   * identity when the file layer gives one: a path whose directory no
   * longer has it (removed, or a component replaced by a symlink) is
   * walked and checked again before anything goes through it.
   */
  #dirs = new Map<string, string>();
  #checkDir: (action: string) => void;
  // Directories that gained names wait here for the next syncPending():
  // block files' always (a rotation syncs them), large files' in fsync
  // mode (where large files are also synced as written).
  #durable: boolean;
  #pendingDirs = new Set<string>();

  /**
   * @param io The file layer.
   * @param root The store directory.
   * @param durable fsync mode.
   * @param checkDir Throws when the store directory is gone (`action`
   * names what was refused).
   */
  constructor(
    io: FileIO,
    root: string,
    durable: boolean,
    checkDir: (action: string) => void,
  ) {
    this.#io = io;
    this.root = root;
    this.#durable = durable;
    this.#checkDir = checkDir;
  }

  /** Checks that the store directory is still there before `action`. */
  check(action: string): void {
    this.#checkDir(action);
  }

  /**
   * Path of the file at `parts` under the root, making its directories
   * (see ok); with `durable`, their names are synced at syncPending().
   */
  ensure(parts: string[], durable = this.#durable): string {
    const name = `${this.root}/${parts.join("/")}`;
    this.#checkDir("write element");
    this.ok(name, true, durable);
    return name;
  }

  /**
   * True when every directory on the way to file `path` (inside the store)
   * is a real directory: never a symlink followed as a path component.
   * With `create`, missing ones are made (a removed `d/` comes back);
   * without, a missing one is false. A symlink or other foreign object is
   * moved aside when creating, false otherwise (a miss).
   */
  ok(path: string, create: boolean, durable = this.#durable): boolean {
    const leaf = path.slice(0, path.lastIndexOf("/"));
    const known = this.#dirs.get(leaf);
    const io = this.#io;
    if (
      known !== undefined &&
      (io.dirId === undefined || io.dirId(leaf) === known)
    ) {
      return true;
    }
    const parts = leaf.slice(this.root.length + 1).split("/");
    let at = this.root;
    for (const p of parts) {
      at += `/${p}`;
      const k = io.kind(at);
      if (k !== "dir") {
        if (!create) return false;
        // Something else at the name (a file, a FIFO, a symlink) is moved
        // aside (`_foreign.ts`) and the directory made: a removed `d/`
        // comes back, and a planted symlink is never followed.
        this.#mkdir(at);
      }
      // A directory found here may have been made by a call that failed
      // before its parent was synced: its name is made durable too, once
      // for each leaf this handle writes into.
      if (create && durable) {
        this.#pendingDirs.add(at.slice(0, at.lastIndexOf("/")));
      }
    }
    // Only a write's walk is remembered: it is the one that queued syncs.
    if (create) this.#dirs.set(leaf, io.dirId?.(leaf) ?? "");
    return true;
  }

  /**
   * Removes the now perhaps empty directories above large file `path`,
   * deepest first, up to (not including) the kind's top directory, so
   * directories do not pile up as file ids advance.
   */
  prune(path: string): void {
    const io = this.#io;
    if (io.rmdir === undefined) return;
    let dir = path.slice(0, path.lastIndexOf("/"));
    while (dir.length > this.root.length + 2) {
      if (!io.rmdir(dir)) return;
      this.#dirs.delete(dir);
      dir = dir.slice(0, dir.lastIndexOf("/"));
    }
  }

  /**
   * Creates directory `path`; something else at its name (a file, a FIFO,
   * a symlink) is moved aside (`_foreign.ts`) and the directory made.
   */
  #mkdir(path: string): void {
    try {
      this.#io.mkdir(path);
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
      const k = this.#io.kind(path);
      if (k === "dir" || k === "missing") throw err;
      this.moveAside(path);
      this.#io.mkdir(path);
    }
  }

  /** Moves the foreign object at `path` aside (see `_foreign.ts`). */
  moveAside(path: string): void {
    const cut = path.lastIndexOf("/");
    moveAside(this.#io, path.slice(0, cut), path.slice(cut + 1));
  }

  /**
   * Opens (`create`: creates) the regular file `path`; a foreign object at
   * its name (a symlink, directory, FIFO) is moved aside first.
   */
  openFile(path: string, create: boolean): number {
    try {
      return create ? this.#io.create(path) : this.#io.openRW(path, true);
    } catch (err) {
      if (!(err instanceof ForeignFileError)) throw err;
      this.moveAside(path);
      return create ? this.#io.create(path) : this.#io.openRW(path, true);
    }
  }

  /** Queues `dir` for a directory sync at the next syncPending(). */
  syncLater(dir: string): void {
    this.#pendingDirs.add(dir);
  }

  /** Queues the directory holding `path` for the next syncPending(). */
  syncParentLater(path: string): void {
    this.#pendingDirs.add(parentOf(path));
  }

  /** Syncs the directories queued since the last call. */
  syncPending(): void {
    // Deepest first is not needed: each directory's own entry is synced
    // through its parent, which is in the set when it was created here.
    for (const dir of this.#pendingDirs) {
      try {
        this.#io.syncDir(dir);
      } catch (err) {
        // A large-file directory removed since (emptied): nothing to sync.
        if (dir === this.root || !isAbsence(err)) throw err;
      }
    }
    this.#pendingDirs.clear();
  }
}
