/**
 * Large files (FORMAT.md §6.2): one file per element too big for a run of
 * slots, written whole or in pieces (a streamed store), read back and
 * verified or piece by piece, and removed, in fsync mode only once the
 * change that dropped them is durable.
 *
 * @module
 */
import { ForeignFileError } from "./errors.ts";
import { ELEMENT_HEADER, writeElementHeader } from "./format.ts";
import type { ElementKind } from "./kinds.ts";
import type { FileIO } from "./io.ts";
import { largeFileParts } from "./paths.ts";
import type { ElementDirs } from "./_element_dirs.ts";
import {
  CORRUPT,
  type Expected,
  isAbsence,
  type ReadResult,
  storedKeyLen,
  verifySettled,
} from "./_element_verify.ts";
import type { ReadPool } from "./_read_pool.ts";

/** The large files of one store. */
export class LargeFiles {
  #io: FileIO;
  #dirs: ElementDirs;
  #pool: ReadPool;
  #durable: boolean;
  /** fsync mode: large files to remove once their removal is durable. */
  #removals: string[] = [];

  /**
   * @param io The file layer.
   * @param dirs The store's element directories.
   * @param pool Read buffers, shared with the block files.
   * @param durable fsync mode.
   */
  constructor(
    io: FileIO,
    dirs: ElementDirs,
    pool: ReadPool,
    durable: boolean,
  ) {
    this.#io = io;
    this.#dirs = dirs;
    this.#pool = pool;
    this.#durable = durable;
  }

  #largeFileName(kind: ElementKind, id: number): string {
    return `${this.#dirs.root}/${largeFileParts(kind, id).join("/")}`;
  }

  /** Path of large file `id` of `kind` (creating its directories). */
  largeFilePath(kind: ElementKind, id: number): string {
    return this.#dirs.ensure(largeFileParts(kind, id));
  }

  /** Removes large file `path` (when its directories are larder's). */
  #removeLarge(path: string): void {
    this.#dirs.check("remove element");
    if (!this.#dirs.ok(path, false)) return;
    this.#io.unlink(path);
    this.#dirs.prune(path);
  }

  /** Writes a large file: header, key, element. */
  writeFile(
    kind: ElementKind,
    id: number,
    header: Parameters<typeof writeElementHeader>[1],
    key: Uint8Array,
    data: Uint8Array,
  ): void {
    const path = this.largeFilePath(kind, id);
    const head = new Uint8Array(ELEMENT_HEADER + key.length);
    writeElementHeader(head, header, key);
    const fd = this.#dirs.openFile(path, true);
    try {
      this.#io.pwrite(fd, head, 0);
      this.#io.pwrite(fd, data, head.length);
      if (this.#durable) {
        this.#io.fsync(fd);
        this.#dirs.syncParentLater(path);
      }
    } finally {
      this.#io.close(fd);
    }
  }

  /**
   * Creates large file `id` of `kind` for an element under a `keyLen`-byte
   * key written in pieces (a streamed store) and returns its descriptor.
   * Its header is written last (finishFile); until then the file starts
   * with a provisional one (FORMAT.md §6.2) whose header CRC-32 is
   * inverted, so that it never parses: a crash mid-stream leaves nothing
   * a read or a rebuild would take, and check-store an orphan it removes.
   */
  createFile(kind: ElementKind, id: number, keyLen: number): number {
    const fd = this.#dirs.openFile(this.largeFilePath(kind, id), true);
    try {
      const head = new Uint8Array(ELEMENT_HEADER + keyLen);
      writeElementHeader(
        head,
        { kind, keyLen, length: 0, crc: 0, hashLo: 0, hashHi: 0, storedAt: 0 },
        head.subarray(ELEMENT_HEADER),
      );
      for (let i = 28; i < 32; i++) head[i] = ~head[i]! & 0xff;
      this.#io.pwrite(fd, head.subarray(0, ELEMENT_HEADER), 0);
    } catch (err) {
      this.#io.close(fd);
      try {
        this.removeFile(kind, id);
      } catch { /* an orphan: check-store reports it */ }
      throw err;
    }
    return fd;
  }

  /** Writes `bytes` at `pos` of a file from createFile. */
  writeAt(fd: number, bytes: Uint8Array, pos: number): void {
    this.#io.pwrite(fd, bytes, pos);
  }

  /**
   * Completes large file `id` from createFile: header and key at its
   * start, synced in fsync mode, then closes `fd`.
   */
  finishFile(
    kind: ElementKind,
    id: number,
    fd: number,
    header: Parameters<typeof writeElementHeader>[1],
    key: Uint8Array,
  ): void {
    const head = new Uint8Array(ELEMENT_HEADER + key.length);
    writeElementHeader(head, header, key);
    try {
      this.#io.pwrite(fd, head, 0);
      if (this.#durable) {
        this.#io.fsync(fd);
        const path = this.#largeFileName(kind, id);
        this.#dirs.syncParentLater(path);
      }
    } finally {
      this.#io.close(fd);
    }
  }

  /**
   * Opens large file `id` for reading piece by piece (an entry reader);
   * undefined when it is missing or not larder's.
   */
  openFile(kind: ElementKind, id: number): number | undefined {
    const path = this.#largeFileName(kind, id);
    if (!this.#dirs.ok(path, false)) return undefined;
    try {
      return this.#io.openR(path);
    } catch (err) {
      if (err instanceof ForeignFileError) this.#dirs.moveAside(path);
      if (isAbsence(err)) return undefined;
      throw err;
    }
  }

  /** Reads into `buf` at `pos` of a descriptor from openFile. */
  readAt(fd: number, buf: Uint8Array, pos: number): number {
    return this.#io.pread(fd, buf, pos);
  }

  /** The length of a file from openFile. */
  sizeOf(fd: number): number {
    return this.#io.size(fd);
  }

  /** Closes a descriptor from createFile or openFile. */
  closeFile(fd: number): void {
    this.#io.close(fd);
  }

  #readFileBytes(
    kind: ElementKind,
    id: number,
    len?: number,
  ): Uint8Array | undefined {
    // Reading never creates directories: a missing one is a missing file,
    // and so is one replaced by a symlink (never followed).
    const path = this.#largeFileName(kind, id);
    if (!this.#dirs.ok(path, false)) return undefined;
    let fd: number;
    try {
      fd = this.#io.openR(path);
    } catch (err) {
      // A symlink, directory or FIFO planted in the store: moved aside, so
      // that removing the file larder wrote there never deletes it; a miss.
      if (err instanceof ForeignFileError) this.#dirs.moveAside(path);
      // Missing, or foreign: a miss.
      if (isAbsence(err)) return undefined;
      throw err;
    }
    try {
      if (len !== undefined) {
        // The caller knows how much it wants: no fstat, one read; a short
        // file comes back short.
        const buf = this.#pool.take(len);
        return buf.subarray(0, this.#io.pread(fd, buf, 0));
      }
      const buf = new Uint8Array(this.#io.size(fd));
      return this.#io.pread(fd, buf, 0) === buf.length ? buf : undefined;
    } finally {
      this.#io.close(fd);
    }
  }

  /** Reads and verifies large file `id`. */
  readFile(kind: ElementKind, id: number, want: Expected): ReadResult {
    // One byte more than expected shows a longer file (a stale tail).
    const expected = ELEMENT_HEADER + want.key.length + want.size;
    const buf = this.#readFileBytes(kind, id, expected + 1);
    if (buf === undefined) return CORRUPT;
    const r = verifySettled(
      buf,
      want,
      (len) => this.readFileHeader(want.kind, id, len),
    );
    if (r.ok && buf.length !== expected) return CORRUPT;
    return r;
  }

  /** Reads the header and key of large file `id` (see readSlotHeader). */
  readFileHeader(
    kind: ElementKind,
    id: number,
    keyLen: number,
  ): Uint8Array | undefined {
    const buf = this.#readFileBytes(kind, id, ELEMENT_HEADER + keyLen);
    const stored = buf === undefined ? keyLen : storedKeyLen(buf);
    return stored === keyLen
      ? buf
      : this.#readFileBytes(kind, id, ELEMENT_HEADER + stored);
  }

  /** Removes large file `id`. */
  removeFile(kind: ElementKind, id: number): void {
    this.#removeLarge(this.#largeFileName(kind, id));
  }

  /**
   * Removes large file `id` once the change that dropped it is durable
   * (commitRemovals), in fsync mode; at once otherwise. Removing it first
   * could let a directory sync (made for a new file in the same directory)
   * persist the removal while the journal entry that supersedes it is
   * lost: the acknowledged value would be gone.
   */
  removeFileAfterCommit(kind: ElementKind, id: number): void {
    if (this.#durable) this.#removals.push(this.#largeFileName(kind, id));
    else this.removeFile(kind, id);
  }

  /**
   * Removes the large files queued by removeFileAfterCommit; call it once
   * the journal (or a new snapshot) recording their removal is durable.
   * A file that cannot be removed is left as an orphan (check-store
   * reports it); no entry refers to it.
   */
  commitRemovals(): void {
    const paths = this.#removals;
    this.#removals = [];
    for (const path of paths) {
      try {
        this.#removeLarge(path);
      } catch { /* an orphan, never read */ }
    }
  }

  /** True when large file `id` is queued for removal. */
  #queuedForRemoval(kind: ElementKind, id: number): boolean {
    return this.#removals.includes(this.#largeFileName(kind, id));
  }

  /** True when large file `id` exists (used only after ids wrap). */
  fileExists(kind: ElementKind, id: number): boolean {
    return this.#queuedForRemoval(kind, id) ||
      this.#io.kind(this.#largeFileName(kind, id)) !== "missing";
  }
}
