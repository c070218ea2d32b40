/**
 * The file-system interface a store does all its I/O through, and its
 * implementation on synchronous positional `node:fs` calls (measured here
 * at ~20x the throughput of the promise APIs for 4 KiB blocks).
 *
 * Keeping every call behind {@linkcode FileIO} lets tests substitute a
 * fault-injecting layer; nothing else in the store imports `node:fs`.
 *
 * Invariant: every open lstats the path first and uses O_NOFOLLOW and
 * O_NONBLOCK, so a symlink, FIFO, directory or device planted inside a
 * store is never followed, never blocks the process and is never read or
 * written: the open throws {@linkcode ForeignFileError} (a `CORRUPT`
 * error), which callers treat as a damaged file (a miss, a rebuild).
 *
 * @module
 */
import * as fs from "node:fs";
import {
  ForeignFileError,
  NotAStoreError,
  StoreError,
  toStoreError,
} from "./errors.ts";

/** File mode for everything larder creates. */
export const FILE_MODE = 0o600;
/** Directory mode for everything larder creates. */
export const DIR_MODE = 0o700;

/** Synchronous file operations, by path or descriptor. */
export interface FileIO {
  /**
   * Opens `path` read-write, creating it (0600) when `create`. Like every
   * open here, throws `ForeignFileError` for anything but a regular file.
   */
  openRW(path: string, create: boolean): number;
  /** Opens the regular file `path` read-only. */
  openR(path: string): number;
  /** Creates (or truncates) the regular file `path` for writing. */
  create(path: string): number;
  /** Closes a descriptor. */
  close(fd: number): void;
  /** Reads into `buf` at `pos`; returns bytes read (short at end of file). */
  pread(fd: number, buf: Uint8Array, pos: number): number;
  /** Writes all of `buf` at `pos`. */
  pwrite(fd: number, buf: Uint8Array, pos: number): void;
  /** Flushes a file's data and metadata to stable storage. */
  fsync(fd: number): void;
  /** Sets a file's length. */
  ftruncate(fd: number, len: number): void;
  /** A file's length. */
  size(fd: number): number;
  /**
   * Bytes of disk blocks the open file `fd` takes (fstat st_blocks × 512);
   * optional: a layer without it gives undefined.
   */
  allocated?(fd: number): number | undefined;
  /** Atomically renames `from` over `to`. */
  rename(from: string, to: string): void;
  /** Removes a file; a missing file is not an error. */
  unlink(path: string): void;
  /** Creates a directory (0700); an existing directory is not an error. */
  mkdir(path: string): void;
  /** fsyncs a directory so renames and creations in it are durable. */
  syncDir(path: string): void;
  /**
   * What `path` is, without following a final symlink; "missing" also when
   * a component on the way is not a directory.
   */
  kind(path: string): "file" | "dir" | "symlink" | "other" | "missing";
  /** Names in a directory. */
  list(path: string): string[];
  /**
   * Takes an exclusive advisory lock on `path` (created 0600) without
   * waiting. Returns its release function, or undefined when another
   * handle holds it.
   */
  tryLock(path: string): (() => void) | undefined;
  /**
   * Opens directory `path` (following symlinks) and takes an exclusive
   * advisory lock on it without waiting, for as long as a store is open.
   * Undefined when another handle holds it. Optional: a layer without it
   * (the fault-injection one) has only the `lock` file's lock.
   */
  holdDir?(path: string): DirHold | undefined;
  /**
   * The identity (`dev:ino`) of the directory `path` names, following
   * symlinks; undefined when nothing is there.
   */
  dirId?(path: string): string | undefined;
  /** Removes `path` if it is an empty directory; false when it is not. */
  rmdir?(path: string): boolean;
}

/** A directory held open and locked by {@linkcode FileIO.holdDir}. */
export interface DirHold {
  /** The held directory's identity (`dev:ino`), fixed while it is held. */
  readonly id: string;
  /** Unlocks and closes it. */
  release(): void;
}

/** True for a failure that means "not permitted" (Deno or the OS). */
export function isNotPermitted(err: unknown): boolean {
  const cause = err instanceof StoreError ? err.cause : err;
  if (
    cause instanceof Deno.errors.NotCapable ||
    cause instanceof Deno.errors.PermissionDenied
  ) return true;
  const code = (cause as { code?: unknown } | null)?.code;
  return code === "EACCES" || code === "EPERM";
}

function wrap<T>(action: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw toStoreError(action, err);
  }
}

const {
  O_RDWR,
  O_RDONLY,
  O_WRONLY,
  O_CREAT,
  O_TRUNC,
  O_NOFOLLOW,
  O_DIRECTORY,
  O_NONBLOCK,
} = fs.constants;

/** What an lstat result is, for messages. */
function describe(st: Deno.FileInfo): string {
  if (st.isSymlink) return "a symlink";
  if (st.isDirectory) return "a directory";
  if (st.isFifo) return "a FIFO";
  return st.isSocket ? "a socket" : "a device";
}

/** Open errors that mean a non-regular file is at the path. */
const FOREIGN_OPEN: Record<string, string> = {
  ELOOP: "a symlink", // O_NOFOLLOW met a final symlink
  EISDIR: "a directory", // opened for writing
  ENXIO: "a FIFO or socket", // O_WRONLY | O_NONBLOCK on a FIFO
};

/**
 * Opens `path` and returns the descriptor only when it is a regular file
 * (or a new one, with O_CREAT). An lstat first refuses anything else; it
 * is Deno's (1.8 us; node:fs's lstat and fstat build a Stats object, 12 us
 * each). O_NONBLOCK keeps a FIFO swapped in after the lstat from blocking
 * the open (on a regular file it has no effect): the first read or write
 * then fails (ESPIPE, EISDIR), an IO error, never a hang. The lstat is
 * also what refuses a symlink when Deno (2.9) drops O_NOFOLLOW from
 * node:fs opens, which it does unless every permission is granted (-A):
 * with --allow-read/--allow-write a final symlink is followed, and
 * O_CREAT | O_TRUNC would truncate its target.
 * @throws {ForeignFileError} when something else is at `path`.
 */
function openRegular(action: string, path: string, flags: number): number {
  let st: Deno.FileInfo | undefined;
  try {
    st = Deno.lstatSync(path);
  } catch (err) {
    const code = (err as { code?: string }).code;
    // Missing: the open reports it (or creates the file).
    if (code !== "ENOENT" && code !== "ENOTDIR") {
      throw toStoreError(action, err);
    }
  }
  if (st !== undefined && !st.isFile) {
    throw new ForeignFileError(
      `Cannot ${action}: ${describe(st)} is where larder keeps a file`,
    );
  }
  try {
    return fs.openSync(path, flags | O_NOFOLLOW | O_NONBLOCK, FILE_MODE);
  } catch (err) {
    const what = FOREIGN_OPEN[(err as { code?: string }).code ?? ""];
    if (what === undefined) throw toStoreError(action, err);
    throw new ForeignFileError(
      `Cannot ${action}: ${what} is where larder keeps a file`,
      { cause: err },
    );
  }
}

/** {@linkcode FileIO} on `node:fs` synchronous calls. */
export class NodeFileIO implements FileIO {
  openRW(path: string, create: boolean): number {
    return openRegular(`open ${path}`, path, O_RDWR | (create ? O_CREAT : 0));
  }
  openR(path: string): number {
    return openRegular(`open ${path}`, path, O_RDONLY);
  }
  create(path: string): number {
    // O_TRUNC has no effect on a FIFO, and a non-regular file is refused
    // before anything is written to it.
    return openRegular(`create ${path}`, path, O_WRONLY | O_CREAT | O_TRUNC);
  }
  close(fd: number): void {
    wrap("close file", () => fs.closeSync(fd));
  }
  pread(fd: number, buf: Uint8Array, pos: number): number {
    return wrap("read", () => {
      let done = 0;
      while (done < buf.length) {
        const n = fs.readSync(fd, buf, done, buf.length - done, pos + done);
        if (n === 0) break;
        done += n;
      }
      return done;
    });
  }
  pwrite(fd: number, buf: Uint8Array, pos: number): void {
    wrap("write", () => {
      let done = 0;
      while (done < buf.length) {
        done += fs.writeSync(fd, buf, done, buf.length - done, pos + done);
      }
    });
  }
  fsync(fd: number): void {
    wrap("fsync", () => fs.fsyncSync(fd));
  }
  ftruncate(fd: number, len: number): void {
    wrap("truncate", () => fs.ftruncateSync(fd, len));
  }
  size(fd: number): number {
    return wrap("stat", () => fs.fstatSync(fd).size);
  }
  allocated(fd: number): number | undefined {
    const blocks = wrap("stat", () => fs.fstatSync(fd).blocks);
    return typeof blocks === "number" ? blocks * 512 : undefined;
  }
  rename(from: string, to: string): void {
    wrap(`rename ${from}`, () => fs.renameSync(from, to));
  }
  unlink(path: string): void {
    wrap(`remove ${path}`, () => {
      try {
        fs.unlinkSync(path);
      } catch (err) {
        if ((err as { code?: string }).code !== "ENOENT") throw err;
      }
    });
  }
  mkdir(path: string): void {
    wrap(`create directory ${path}`, () => {
      try {
        fs.mkdirSync(path, { mode: DIR_MODE });
      } catch (err) {
        if ((err as { code?: string }).code !== "EEXIST") throw err;
        if (!fs.lstatSync(path).isDirectory()) throw err;
      }
    });
  }
  syncDir(path: string): void {
    wrap(`sync directory ${path}`, () => {
      const fd = fs.openSync(path, O_RDONLY | O_DIRECTORY);
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    });
  }
  kind(path: string): "file" | "dir" | "symlink" | "other" | "missing" {
    return wrap(`stat ${path}`, () => {
      // Deno's own lstat: node's builds a Stats object of every field on
      // top of it (a fifth of a first open's CPU time went to that code).
      let st: Deno.FileInfo;
      try {
        st = Deno.lstatSync(path);
      } catch (err) {
        // A non-directory on the way (say `dblk` a file): nothing is here.
        if (
          err instanceof Deno.errors.NotFound ||
          err instanceof Deno.errors.NotADirectory
        ) return "missing";
        throw err;
      }
      if (st.isSymlink) return "symlink";
      if (st.isFile) return "file";
      return st.isDirectory ? "dir" : "other";
    });
  }
  list(path: string): string[] {
    return wrap(`list ${path}`, () => fs.readdirSync(path));
  }
  tryLock(path: string): (() => void) | undefined {
    // flock needs a Deno.FsFile, and Deno.openSync follows symlinks: the
    // file is created (or found) by openRegular first (lstat, then an
    // O_NOFOLLOW open), so a planted symlink is refused and its target
    // never created; the Deno open that follows does not create, and must
    // reach the same inode.
    let fd: number;
    try {
      fd = openRegular(`open ${path}`, path, O_RDWR | O_CREAT);
    } catch (err) {
      if (!(err instanceof ForeignFileError)) throw err;
      throw new NotAStoreError(
        `Cannot open store: ${err.message.replace(/^Cannot [^:]*: /, "")}`,
        { cause: err },
      );
    }
    let file: Deno.FsFile | undefined;
    try {
      const st = wrap(`stat ${path}`, () => fs.fstatSync(fd));
      file = wrap(
        `open ${path}`,
        () => Deno.openSync(path, { read: true, write: true }),
      );
      const again = wrap(`stat ${path}`, () => file!.statSync());
      if (again.ino !== st.ino || again.dev !== st.dev) {
        throw new NotAStoreError(
          `Cannot open ${path}: it was replaced while being opened`,
        );
      }
    } catch (err) {
      file?.close();
      throw err;
    } finally {
      fs.closeSync(fd);
    }
    // flock is per open file description: a second open of the same store
    // fails even inside this process.
    let locked = false;
    try {
      locked = wrap(`lock ${path}`, () => file.tryLockSync(true));
    } finally {
      if (!locked) file.close();
    }
    if (!locked) return undefined;
    return () => {
      try {
        file.unlockSync();
      } finally {
        file.close();
      }
    };
  }
  holdDir(path: string): DirHold | undefined {
    const file = wrap(
      `open ${path}`,
      () => Deno.openSync(path, { read: true }),
    );
    let held = false;
    try {
      const st = wrap(`stat ${path}`, () => file.statSync());
      if (!st.isDirectory) {
        throw new NotAStoreError(
          `Cannot open store: ${path} is not a directory`,
        );
      }
      if (!wrap(`lock ${path}`, () => file.tryLockSync(true))) return undefined;
      held = true;
      return {
        id: `${st.dev}:${st.ino}`,
        release: () => {
          try {
            file.unlockSync();
          } finally {
            file.close();
          }
        },
      };
    } finally {
      if (!held) file.close();
    }
  }
  dirId(path: string): string | undefined {
    // Deno.statSync: ~2 µs here, against ~10 µs for node:fs's.
    try {
      const st = Deno.statSync(path);
      return st.isDirectory ? `${st.dev}:${st.ino}` : undefined;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return undefined;
      if (err instanceof Deno.errors.NotADirectory) return undefined;
      throw toStoreError(`stat ${path}`, err);
    }
  }
  rmdir(path: string): boolean {
    try {
      fs.rmdirSync(path);
      return true;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === "ENOTEMPTY" || code === "EEXIST" || code === "ENOENT") {
        return false;
      }
      throw toStoreError(`remove directory ${path}`, err);
    }
  }
}

/**
 * Reads a whole file by path; undefined when it does not exist.
 * @throws {ForeignFileError} when something other than a regular file is
 *   there.
 */
export function readWhole(io: FileIO, path: string): Uint8Array | undefined {
  if (io.kind(path) === "missing") return undefined;
  const fd = io.openR(path);
  try {
    const buf = new Uint8Array(io.size(fd));
    const n = io.pread(fd, buf, 0);
    return buf.subarray(0, n);
  } finally {
    io.close(fd);
  }
}

/**
 * Up to the first `n` bytes of the regular file at `path` (fewer when it is
 * shorter; none when it is missing, not a regular file or unreadable).
 */
export function readPrefix(io: FileIO, path: string, n: number): Uint8Array {
  try {
    if (io.kind(path) !== "file") return new Uint8Array(0);
    const fd = io.openR(path);
    try {
      const b = new Uint8Array(n);
      return b.subarray(0, io.pread(fd, b, 0));
    } finally {
      io.close(fd);
    }
  } catch (err) {
    if (err instanceof StoreError) return new Uint8Array(0);
    throw err;
  }
}

/**
 * Replaces `path` atomically: write `path.tmp`, fsync it, rename it over
 * `path`, fsync the directory. A crash leaves the old or the new file.
 */
export function replaceFile(
  io: FileIO,
  dir: string,
  name: string,
  parts: Uint8Array[],
): void {
  const tmp = `${dir}/${name}.tmp`;
  const fd = io.create(tmp);
  try {
    let pos = 0;
    for (const p of parts) {
      io.pwrite(fd, p, pos);
      pos += p.length;
    }
    io.fsync(fd);
  } finally {
    io.close(fd);
  }
  io.rename(tmp, `${dir}/${name}`);
  io.syncDir(dir);
}
