// A fault-injecting, in-memory file system implementing the store's FileIO.
//
// It models what survives a crash. Every file (inode) has its current bytes
// and the operations (writes, truncations) made since its last fsync; its
// durable bytes are what fsync last saw. Directory entries (create, rename,
// unlink, mkdir) are volatile until `syncDir` of their directory. Every
// mutating call is counted; `crashAt(n)` makes the n-th one throw a
// `CrashError` and freezes the file system (every later call throws too),
// and `image(mode)` then builds the file system a restart would find:
//
// - "drop":    only what was fsynced (files) and syncDir'ed (names);
// - "subset":  that plus a random subset of the unsynced operations (seeded;
//              a file's surviving writes applied in random order, each write
//              and each directory change all-or-nothing);
// - "process": everything written, synced or not: the death of the process,
//              when the kernel keeps every completed write(2);
// - "torn":    as "process", plus a prefix of the write that was in progress
//              when the crash hit, cut at 512-byte and 4 KiB boundaries.
//
// `allocated(fd)` counts the 4 KiB blocks a file holds (writes allocate
// them, truncations free them, a file extended by truncation has a hole),
// as st_blocks does, so the disk bound's copies and tail trims (FORMAT.md
// §5.4) run here too; it is a call like any other, and faults hit it.
//
// It can also fail the n-th call with an EIO- or ENOSPC-coded error (as
// node:fs throws them), once or until cleared. Injected errors are wrapped
// exactly as NodeFileIO wraps node's errors, so the store sees what it would
// see on a real disk; a crash is a plain Error the store does not expect.
import type { FileIO } from "../src/io.ts";
import { ForeignFileError, toStoreError } from "../src/errors.ts";

/** How a crash treats what was not yet synced (see the module comment). */
export type CrashMode = "drop" | "subset" | "process" | "torn";

/** Thrown by every call at and after the crash point. */
export class CrashError extends Error {
  constructor(call: string) {
    super(`simulated crash at ${call}`);
    this.name = "CrashError";
  }
}

/** Thrown when a case makes more calls than its budget (an I/O loop). */
export class BudgetError extends Error {
  constructor(n: number) {
    super(`more than ${n} file-system calls: the store is looping`);
    this.name = "BudgetError";
  }
}

/** mulberry32: a small seeded generator for reproducible choices. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 2 ** 32;
  };
}

// File contents: `len` bytes, of which `data` holds a prefix (the rest are
// zeros), so a sparse 32 MiB block file costs only what was written.
// `shared` marks data also referenced by another image: copy before writing.
// `blocks` are the 4 KiB blocks the file has on disk (as st_blocks counts
// them): a write allocates the blocks it touches, a truncation frees those
// past the new length, and extending a file by truncation leaves a hole;
// `blocksShared` marks a set another image refers to (copied on change).
interface Content {
  len: number;
  data: Uint8Array;
  shared: boolean;
  blocks: Set<number>;
  blocksShared: boolean;
}

/** The allocation unit `allocated` counts in (a common file system block). */
export const FS_BLOCK = 4096;

/** The blocks holding bytes 0 … `end`−1. */
function blocksUpTo(end: number): Set<number> {
  const blocks = new Set<number>();
  for (let b = 0; b * FS_BLOCK < end; b++) blocks.add(b);
  return blocks;
}

type FileOp =
  | { op: "write"; pos: number; bytes: Uint8Array }
  | { op: "truncate"; len: number };

function emptyContent(): Content {
  return {
    len: 0,
    data: new Uint8Array(0),
    shared: false,
    blocks: new Set(),
    blocksShared: false,
  };
}

function shareContent(c: Content): Content {
  c.shared = true;
  c.blocksShared = true;
  return {
    len: c.len,
    data: c.data,
    shared: true,
    blocks: c.blocks,
    blocksShared: true,
  };
}

function cloneContent(c: Content): Content {
  return {
    len: c.len,
    data: c.data.slice(0, c.len),
    shared: false,
    blocks: new Set(c.blocks),
    blocksShared: false,
  };
}

function ownBlocks(c: Content): Set<number> {
  if (c.blocksShared) {
    c.blocks = new Set(c.blocks);
    c.blocksShared = false;
  }
  return c.blocks;
}

function ownData(c: Content, capacity: number): void {
  if (!c.shared && c.data.length >= capacity) return;
  const grown = c.shared ? Math.max(capacity, c.data.length) : Math.max(
    capacity,
    Math.min(c.data.length * 2, capacity + (1 << 20)),
  );
  const next = new Uint8Array(grown);
  next.set(c.data.subarray(0, Math.min(c.data.length, c.len)));
  c.data = next;
  c.shared = false;
}

function applyOp(c: Content, op: FileOp): void {
  if (op.op === "write") {
    const end = op.pos + op.bytes.length;
    ownData(c, end);
    c.data.set(op.bytes, op.pos);
    if (end > c.len) c.len = end;
    if (op.bytes.length > 0) {
      const blocks = ownBlocks(c);
      const last = Math.floor((end - 1) / FS_BLOCK);
      for (let b = Math.floor(op.pos / FS_BLOCK); b <= last; b++) blocks.add(b);
    }
  } else {
    if (op.len < c.len && op.len < c.data.length) {
      ownData(c, 0);
      c.data.fill(0, op.len);
    }
    if (op.len < c.len) {
      const keep = Math.ceil(op.len / FS_BLOCK);
      const blocks = ownBlocks(c);
      for (const b of blocks) if (b >= keep) blocks.delete(b);
    }
    c.len = op.len;
  }
}

class Inode {
  cur: Content;
  durable: Content;
  pending: FileOp[] = [];
  constructor(cur: Content, durable: Content) {
    this.cur = cur;
    this.durable = durable;
  }
}

/** An inode whose bytes are all durable (its two copies share `c`). */
function settledInode(c: Content): Inode {
  return new Inode(shareContent(c), shareContent(c));
}

type Node = { type: "dir" } | { type: "file"; inode: Inode };
/** One directory change, applied whole or not at all: path -> node or gone. */
type DirOp = [string, Node | undefined][];

interface Fd {
  inode: Inode;
  path: string;
  read: boolean;
  write: boolean;
}

/** Which calls a fault counts: all of them, or only the mutating ones. */
export type FaultScope = "any" | "mutating";

interface Fault {
  at: number;
  code: "EIO" | "ENOSPC";
  persistent: boolean;
  scope: FaultScope;
}

function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

function normalise(path: string): string {
  let p = path.replace(/\/+/g, "/");
  if (p.length > 1 && p.endsWith("/")) p = p.slice(0, -1);
  if (!p.startsWith("/")) {
    throw new Error(`FaultFS: paths must be absolute, got ${path}`);
  }
  return p;
}

function osError(code: string, syscall: string, path?: string): Error {
  const messages: Record<string, string> = {
    ENOENT: "no such file or directory",
    EEXIST: "file already exists",
    EISDIR: "illegal operation on a directory",
    ENOTDIR: "not a directory",
    EBADF: "bad file descriptor",
    EIO: "i/o error",
    ENOSPC: "no space left on device",
  };
  const err = new Error(
    `${code}: ${messages[code] ?? code}, ${syscall}${
      path === undefined ? "" : ` '${path}'`
    }`,
  ) as Error & { code: string; syscall: string; path?: string };
  err.code = code;
  err.syscall = syscall;
  if (path !== undefined) err.path = path;
  return err;
}

/** Counts of calls made, for reports. */
export interface CallCounts {
  /** Every call (reads included). */
  any: number;
  /** Mutating calls: write, fsync, truncate, create, rename, unlink, mkdir, syncDir. */
  mutating: number;
}

/**
 * The in-memory fault-injecting file system. Paths must be absolute.
 */
export class FaultFS implements FileIO {
  #cur = new Map<string, Node>();
  #durable = new Map<string, Node>();
  #pendingDirs = new Map<string, DirOp[]>();
  #fds = new Map<number, Fd>();
  #nextFd = 3;
  #locked = new Set<string>();
  #counts: CallCounts = { any: 0, mutating: 0 };
  #crashAt = 0;
  #crashed = false;
  #crashCall: {
    name: string;
    write?: { fd: Fd; pos: number; bytes: Uint8Array };
  } | undefined;
  #fault: Fault | undefined;
  #budget = Infinity;
  /**
   * When false, unsynced state is not recorded (faster; only "process"
   * images are then meaningful). For tests that never simulate power loss.
   */
  tracksDurability = true;
  /** Calls the injected fault has failed so far. */
  faultHits = 0;
  /** Names of the mutating calls in order (only when `trace` is on). */
  trace: string[] | undefined;

  constructor() {
    this.#cur.set("/", { type: "dir" });
    this.#durable.set("/", { type: "dir" });
  }

  /** Calls made so far. */
  get counts(): Readonly<CallCounts> {
    return this.#counts;
  }

  /** Descriptors open now (a closed store must leave none). */
  get openFds(): string[] {
    return [...this.#fds.values()].map((f) => f.path);
  }

  /** True once the crash point was reached. */
  get crashed(): boolean {
    return this.#crashed;
  }

  /** The call the crash hit (e.g. "pwrite /s/journal-…"). */
  get crashCall(): string | undefined {
    return this.#crashCall?.name;
  }

  /** Crash at the n-th mutating call (1-based; 0 never). */
  crashAt(n: number): void {
    this.#crashAt = n;
  }

  /** Fails the n-th call of `scope` (1-based, counted from now on). */
  failAt(
    n: number,
    code: "EIO" | "ENOSPC",
    options: { persistent?: boolean; scope?: FaultScope } = {},
  ): void {
    const scope = options.scope ?? "any";
    this.#fault = {
      at: this.#counts[scope] + n,
      code,
      persistent: options.persistent ?? false,
      scope,
    };
  }

  /** Removes the injected fault. */
  clearFault(): void {
    this.#fault = undefined;
  }

  /** Throws a BudgetError once more than `n` further calls are made. */
  setBudget(n: number): void {
    this.#budget = this.#counts.any + n;
  }

  // ---- call accounting ----------------------------------------------------

  #enter(
    name: string,
    mutating: boolean,
    write?: { fd: Fd; pos: number; bytes: Uint8Array },
  ): void {
    if (this.#crashed) throw new CrashError(`${name} (after the crash)`);
    const c = this.#counts;
    c.any++;
    if (c.any > this.#budget) throw new BudgetError(c.any);
    if (mutating) {
      c.mutating++;
      this.trace?.push(name);
      if (c.mutating === this.#crashAt) {
        this.#crashed = true;
        this.#crashCall = {
          name,
          write: write && { ...write, bytes: write.bytes.slice() },
        };
        throw new CrashError(name);
      }
    }
    const f = this.#fault;
    if (f !== undefined && (f.scope === "any" || mutating)) {
      const n = c[f.scope];
      if (n === f.at || (f.persistent && n > f.at)) {
        this.faultHits++;
        throw toStoreError(name, osError(f.code, name.split(" ")[0]!));
      }
    }
  }

  #fd(fd: number, name: string): Fd {
    const f = this.#fds.get(fd);
    if (f === undefined) throw toStoreError(name, osError("EBADF", name));
    return f;
  }

  #lookup(path: string): Node | undefined {
    return this.#cur.get(path);
  }

  #needParentDir(path: string, syscall: string): void {
    const parent = this.#lookup(parentOf(path));
    if (parent === undefined) {
      throw toStoreError(
        `${syscall} ${path}`,
        osError("ENOENT", syscall, path),
      );
    }
    if (parent.type !== "dir") {
      throw toStoreError(
        `${syscall} ${path}`,
        osError("ENOTDIR", syscall, path),
      );
    }
  }

  #dirChange(dir: string, op: DirOp): void {
    for (const [path, node] of op) {
      if (node === undefined) this.#cur.delete(path);
      else this.#cur.set(path, node);
    }
    if (!this.tracksDurability) return;
    let list = this.#pendingDirs.get(dir);
    if (list === undefined) this.#pendingDirs.set(dir, list = []);
    list.push(op);
  }

  #newFile(path: string): Inode {
    const inode = new Inode(emptyContent(), emptyContent());
    this.#dirChange(parentOf(path), [[path, { type: "file", inode }]]);
    return inode;
  }

  #open(inode: Inode, path: string, read: boolean, write: boolean): number {
    const fd = this.#nextFd++;
    this.#fds.set(fd, { inode, path, read, write });
    return fd;
  }

  #mutate(inode: Inode, op: FileOp): void {
    applyOp(inode.cur, op);
    if (!this.tracksDurability) return;
    inode.pending.push(
      op.op === "write" ? { ...op, bytes: op.bytes.slice() } : op,
    );
  }

  // ---- FileIO -------------------------------------------------------------

  openRW(path: string, create: boolean): number {
    path = normalise(path);
    this.#enter(`${create ? "create" : "open"} ${path}`, create);
    const node = this.#lookup(path);
    if (node === undefined) {
      if (!create) {
        throw toStoreError(`open ${path}`, osError("ENOENT", "open", path));
      }
      this.#needParentDir(path, "open");
      return this.#open(this.#newFile(path), path, true, true);
    }
    if (node.type !== "file") {
      // As NodeFileIO: anything but a regular file is refused, typed.
      throw new ForeignFileError(
        `Cannot open ${path}: a directory is where larder keeps a file`,
        { cause: osError("EISDIR", "open", path) },
      );
    }
    return this.#open(node.inode, path, true, true);
  }

  openR(path: string): number {
    path = normalise(path);
    this.#enter(`open ${path}`, false);
    const node = this.#lookup(path);
    if (node === undefined) {
      throw toStoreError(`open ${path}`, osError("ENOENT", "open", path));
    }
    if (node.type !== "file") {
      // As NodeFileIO: anything but a regular file is refused, typed.
      throw new ForeignFileError(
        `Cannot open ${path}: a directory is where larder keeps a file`,
        { cause: osError("EISDIR", "open", path) },
      );
    }
    return this.#open(node.inode, path, true, false);
  }

  create(path: string): number {
    path = normalise(path);
    this.#enter(`create ${path}`, true);
    const node = this.#lookup(path);
    if (node === undefined) {
      this.#needParentDir(path, "open");
      return this.#open(this.#newFile(path), path, false, true);
    }
    if (node.type !== "file") {
      // As NodeFileIO: anything but a regular file is refused, typed.
      throw new ForeignFileError(
        `Cannot create ${path}: a directory is where larder keeps a file`,
        { cause: osError("EISDIR", "open", path) },
      );
    }
    this.#mutate(node.inode, { op: "truncate", len: 0 });
    return this.#open(node.inode, path, false, true);
  }

  close(fd: number): void {
    // As close(2): the descriptor is released even when the call fails.
    const known = this.#fds.delete(fd);
    this.#enter("close", false);
    if (!known) throw toStoreError("close file", osError("EBADF", "close"));
  }

  pread(fd: number, buf: Uint8Array, pos: number): number {
    this.#enter("pread", false);
    const f = this.#fd(fd, "read");
    if (!f.read) throw toStoreError("read", osError("EBADF", "read"));
    const c = f.inode.cur;
    const n = Math.max(0, Math.min(buf.length, c.len - pos));
    if (n === 0) return 0;
    const have = Math.max(0, Math.min(pos + n, c.data.length) - pos);
    if (have > 0) buf.set(c.data.subarray(pos, pos + have));
    if (have < n) buf.fill(0, have, n);
    return n;
  }

  pwrite(fd: number, buf: Uint8Array, pos: number): void {
    const f = this.#fds.get(fd);
    this.#enter(
      `pwrite ${f?.path ?? "?"}@${pos}+${buf.length}`,
      true,
      f === undefined ? undefined : { fd: f, pos, bytes: buf },
    );
    const file = this.#fd(fd, "write");
    if (!file.write) throw toStoreError("write", osError("EBADF", "write"));
    this.#mutate(file.inode, { op: "write", pos, bytes: buf });
  }

  fsync(fd: number): void {
    const f = this.#fds.get(fd);
    this.#enter(`fsync ${f?.path ?? "?"}`, true);
    const inode = this.#fd(fd, "fsync").inode;
    if (!this.tracksDurability) return;
    for (const op of inode.pending) applyOp(inode.durable, op);
    inode.pending = [];
  }

  ftruncate(fd: number, len: number): void {
    const f = this.#fds.get(fd);
    this.#enter(`ftruncate ${f?.path ?? "?"} ${len}`, true);
    const file = this.#fd(fd, "truncate");
    if (!file.write) {
      throw toStoreError("truncate", osError("EBADF", "ftruncate"));
    }
    this.#mutate(file.inode, { op: "truncate", len });
  }

  size(fd: number): number {
    this.#enter("fstat", false);
    return this.#fd(fd, "stat").inode.cur.len;
  }

  allocated(fd: number): number {
    this.#enter("fstat blocks", false);
    return this.#fd(fd, "stat").inode.cur.blocks.size * FS_BLOCK;
  }

  rename(from: string, to: string): void {
    from = normalise(from);
    to = normalise(to);
    this.#enter(`rename ${from} ${to}`, true);
    const node = this.#lookup(from);
    if (node === undefined) {
      throw toStoreError(`rename ${from}`, osError("ENOENT", "rename", from));
    }
    if (parentOf(from) !== parentOf(to) || node.type !== "file") {
      throw new Error("FaultFS: only renames of files within a directory");
    }
    if (this.#lookup(to)?.type === "dir") {
      throw toStoreError(`rename ${from}`, osError("EISDIR", "rename", to));
    }
    this.#dirChange(parentOf(from), [[to, node], [from, undefined]]);
    // Descriptors open on the file now name it by its new path (traces).
    for (const f of this.#fds.values()) {
      if (f.inode === node.inode && f.path === from) f.path = to;
    }
  }

  unlink(path: string): void {
    path = normalise(path);
    this.#enter(`unlink ${path}`, true);
    const node = this.#lookup(path);
    if (node === undefined) return;
    if (node.type === "dir") {
      throw toStoreError(`remove ${path}`, osError("EISDIR", "unlink", path));
    }
    this.#dirChange(parentOf(path), [[path, undefined]]);
  }

  mkdir(path: string): void {
    path = normalise(path);
    this.#enter(`mkdir ${path}`, true);
    const node = this.#lookup(path);
    if (node !== undefined) {
      if (node.type === "dir") return;
      throw toStoreError(
        `create directory ${path}`,
        osError("EEXIST", "mkdir", path),
      );
    }
    this.#needParentDir(path, "mkdir");
    this.#dirChange(parentOf(path), [[path, { type: "dir" }]]);
  }

  rmdir(path: string): boolean {
    path = normalise(path);
    this.#enter(`rmdir ${path}`, true);
    const node = this.#lookup(path);
    if (node === undefined) return false;
    if (node.type !== "dir") {
      throw toStoreError(
        `remove directory ${path}`,
        osError("ENOTDIR", "rmdir", path),
      );
    }
    const prefix = `${path}/`;
    for (const p of this.#cur.keys()) if (p.startsWith(prefix)) return false;
    this.#dirChange(parentOf(path), [[path, undefined]]);
    return true;
  }

  syncDir(path: string): void {
    path = normalise(path);
    this.#enter(`syncDir ${path}`, true);
    const node = this.#lookup(path);
    if (node?.type !== "dir") {
      throw toStoreError(
        `sync directory ${path}`,
        osError(node === undefined ? "ENOENT" : "ENOTDIR", "open", path),
      );
    }
    for (const op of this.#pendingDirs.get(path) ?? []) {
      for (const [p, n] of op) {
        if (n === undefined) this.#durable.delete(p);
        else this.#durable.set(p, n);
      }
    }
    this.#pendingDirs.delete(path);
  }

  kind(path: string): "file" | "dir" | "symlink" | "other" | "missing" {
    path = normalise(path);
    this.#enter(`lstat ${path}`, false);
    const node = this.#lookup(path);
    return node === undefined ? "missing" : node.type;
  }

  list(path: string): string[] {
    path = normalise(path);
    this.#enter(`readdir ${path}`, false);
    const node = this.#lookup(path);
    if (node?.type !== "dir") {
      throw toStoreError(
        `list ${path}`,
        osError(node === undefined ? "ENOENT" : "ENOTDIR", "scandir", path),
      );
    }
    const out: string[] = [];
    const prefix = path === "/" ? "/" : `${path}/`;
    for (const p of this.#cur.keys()) {
      if (p !== "/" && parentOf(p) === path) out.push(p.slice(prefix.length));
    }
    return out.sort();
  }

  tryLock(path: string): (() => void) | undefined {
    path = normalise(path);
    // Taking the lock opens (and may create) the lock file: a call that can
    // fail, though not a crash point.
    this.#enter(`lock ${path}`, false);
    if (this.#locked.has(path)) return undefined;
    if (this.#lookup(path) === undefined) {
      // The lock file itself: created durable, outside the counted calls.
      const inode = new Inode(emptyContent(), emptyContent());
      this.#cur.set(path, { type: "file", inode });
      this.#durable.set(path, { type: "file", inode });
    }
    this.#locked.add(path);
    let held = true;
    return () => {
      if (held) this.#locked.delete(path);
      held = false;
    };
  }

  // ---- images -------------------------------------------------------------

  /**
   * The file system a restart finds after a crash now (or at the crash
   * point), in `mode`. "torn" returns one image per cut (none when the
   * crash did not hit a write that crosses a 512-byte boundary).
   */
  images(mode: CrashMode, seed = 1): FaultFS[] {
    if (mode !== "torn") return [this.image(mode, seed)];
    const w = this.#crashCall?.write;
    if (w === undefined) return [];
    const start = w.pos;
    const end = w.pos + w.bytes.length;
    const cuts = new Set<number>();
    const first512 = (Math.floor(start / 512) + 1) * 512;
    const first4k = (Math.floor(start / 4096) + 1) * 4096;
    const last512 = Math.ceil(end / 512) * 512 - 512;
    for (const c of [first512, first4k, last512]) {
      if (c > start && c < end) cuts.add(c);
    }
    return [...cuts].sort((a, b) => a - b).map((cut) => {
      const img = this.image("process");
      // The same inode in the image: find it by identity through the path
      // map of the process image (the inode may have been renamed since
      // the write began, or unlinked: then the tear is unobservable).
      const target = img.#inodeMap.get(w.fd.inode);
      if (target !== undefined) {
        applyOp(target.cur, {
          op: "write",
          pos: w.pos,
          bytes: w.bytes.subarray(0, cut - start),
        });
        target.durable = shareContent(target.cur);
      }
      return img;
    });
  }

  // Maps inodes of the image's source to the image's own inodes (set by image()).
  #inodeMap = new Map<Inode, Inode>();

  /** One post-crash image in a non-torn mode (see {@linkcode images}). */
  image(mode: Exclude<CrashMode, "torn">, seed = 1): FaultFS {
    const random = rng(seed);
    let names: Map<string, Node>;
    if (mode === "process") {
      names = new Map(this.#cur);
    } else {
      names = new Map(this.#durable);
      if (mode === "subset") {
        for (const ops of this.#pendingDirs.values()) {
          for (const op of ops) {
            if (random() < 0.5) continue;
            for (const [p, n] of op) {
              if (n === undefined) names.delete(p);
              else names.set(p, n);
            }
          }
        }
      }
    }
    // Names below a directory whose own entry did not survive are lost.
    const paths = [...names.keys()].sort((a, b) =>
      a.split("/").length - b.split("/").length
    );
    for (const p of paths) {
      if (p === "/") continue;
      const parent = names.get(parentOf(p));
      if (parent === undefined || parent.type !== "dir") names.delete(p);
    }
    const img = new FaultFS();
    const map = new Map<Inode, Inode>();
    for (const [p, n] of names) {
      if (p === "/") continue;
      if (n.type === "dir") {
        img.#cur.set(p, n);
        img.#durable.set(p, n);
        continue;
      }
      let copy = map.get(n.inode);
      if (copy === undefined) {
        let content: Content;
        if (mode === "process") content = shareContent(n.inode.cur);
        else if (mode === "drop" || n.inode.pending.length === 0) {
          content = shareContent(n.inode.durable);
        } else {
          content = cloneContent(n.inode.durable);
          const kept = n.inode.pending.filter(() => random() < 0.5);
          for (let i = kept.length - 1; i > 0; i--) {
            const j = Math.floor(random() * (i + 1));
            [kept[i], kept[j]] = [kept[j]!, kept[i]!];
          }
          for (const op of kept) applyOp(content, op);
        }
        copy = settledInode(content);
        map.set(n.inode, copy);
      }
      const node: Node = { type: "file", inode: copy };
      img.#cur.set(p, node);
      img.#durable.set(p, node);
    }
    img.#inodeMap = map;
    return img;
  }

  // ---- whole-tree helpers for tests ----------------------------------------

  /** Paths of every file, sorted. */
  files(): string[] {
    return [...this.#cur].filter(([, n]) => n.type === "file").map(([p]) => p)
      .sort();
  }

  /** A file's current bytes (a copy). */
  readFile(path: string): Uint8Array {
    const n = this.#cur.get(normalise(path));
    if (n?.type !== "file") throw new Error(`FaultFS: no file ${path}`);
    const c = n.inode.cur;
    const out = new Uint8Array(c.len);
    out.set(c.data.subarray(0, Math.min(c.len, c.data.length)));
    return out;
  }

  /**
   * A file's length and a copy of its bytes up to the last one written
   * (the rest are zeros): cheap for a sparse 32 MiB block file.
   */
  contentOf(path: string): { length: number; data: Uint8Array } {
    const n = this.#cur.get(normalise(path));
    if (n?.type !== "file") throw new Error(`FaultFS: no file ${path}`);
    const c = n.inode.cur;
    let end = Math.min(c.len, c.data.length);
    while (end > 0 && c.data[end - 1] === 0) end--;
    return { length: c.len, data: c.data.slice(0, end) };
  }

  /** A file's length. */
  fileLength(path: string): number {
    const n = this.#cur.get(normalise(path));
    if (n?.type !== "file") throw new Error(`FaultFS: no file ${path}`);
    return n.inode.cur.len;
  }

  /**
   * Replaces a file's bytes, durably and without counting a call (for
   * corruption tests). `length` defaults to the bytes' length.
   */
  setFile(path: string, bytes: Uint8Array, length = bytes.length): void {
    path = normalise(path);
    let n = this.#cur.get(path);
    if (n === undefined) {
      n = { type: "file", inode: new Inode(emptyContent(), emptyContent()) };
      this.#cur.set(path, n);
      this.#durable.set(path, n);
    }
    if (n.type !== "file") throw new Error(`FaultFS: ${path} is a directory`);
    const data = bytes.slice(0, Math.min(length, bytes.length));
    const c: Content = {
      len: length,
      data,
      shared: false,
      blocks: blocksUpTo(data.length),
      blocksShared: false,
    };
    n.inode.cur = shareContent(c);
    n.inode.durable = shareContent(c);
    n.inode.pending = [];
  }

  /** Removes a file durably, without counting a call. */
  removeFile(path: string): void {
    path = normalise(path);
    this.#cur.delete(path);
    this.#durable.delete(path);
  }

  /** A copy sharing unchanged contents (cheap; copy-on-write). */
  clone(): FaultFS {
    return this.image("process");
  }

  /**
   * Loads a directory of the real file system (recursively) as `root`.
   * Trailing zero pages are left implicit, so sparse files stay cheap.
   */
  static load(dir: string, root: string): FaultFS {
    const fs = new FaultFS();
    const walk = (real: string, at: string) => {
      fs.#cur.set(at, { type: "dir" });
      fs.#durable.set(at, { type: "dir" });
      for (const e of Deno.readDirSync(real)) {
        const child = `${at}/${e.name}`;
        if (e.isDirectory) walk(`${real}/${e.name}`, child);
        else if (e.isFile) {
          const bytes = Deno.readFileSync(`${real}/${e.name}`);
          let end = bytes.length;
          while (end > 0 && bytes[end - 1] === 0) end--;
          const c: Content = {
            len: bytes.length,
            data: bytes.slice(0, end),
            shared: false,
            blocks: blocksUpTo(end),
            blocksShared: false,
          };
          const node: Node = { type: "file", inode: settledInode(c) };
          fs.#cur.set(child, node);
          fs.#durable.set(child, node);
        }
      }
    };
    const parts = normalise(root).split("/").filter((p) => p !== "");
    let at = "";
    for (const p of parts.slice(0, -1)) {
      at += `/${p}`;
      fs.#cur.set(at, { type: "dir" });
      fs.#durable.set(at, { type: "dir" });
    }
    walk(dir, normalise(root));
    return fs;
  }

  /** Writes the tree under `root` to the real directory `dir` (sparse). */
  writeTo(root: string, dir: string): void {
    root = normalise(root);
    const prefix = `${root}/`;
    const entries = [...this.#cur].filter(([p]) => p.startsWith(prefix))
      .sort(([a], [b]) => a.split("/").length - b.split("/").length);
    for (const [p, n] of entries) {
      const real = `${dir}/${p.slice(prefix.length)}`;
      if (n.type === "dir") {
        Deno.mkdirSync(real, { recursive: true, mode: 0o700 });
        continue;
      }
      const c = n.inode.cur;
      const f = Deno.openSync(real, {
        write: true,
        create: true,
        truncate: true,
        mode: 0o600,
      });
      try {
        const data = c.data.subarray(0, Math.min(c.len, c.data.length));
        let done = 0;
        while (done < data.length) done += f.writeSync(data.subarray(done));
        f.truncateSync(c.len);
      } finally {
        f.close();
      }
    }
  }
}
