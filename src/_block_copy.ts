/**
 * One block file being copied without its free slots (FORMAT.md §5.2,
 * §5.4), in pieces: the copy `NAME.tmp` is written a few MiB at a time
 * (each piece its own macrotask, see BlockFiles), and every write to the
 * old file meanwhile is written to the copy too, so when the last piece
 * is done the copy holds every used slot's current bytes and replaces
 * the old file (fsync, rename, directory sync). A crash at any point
 * leaves the old file (the copy is garbage, §7) or, after the rename,
 * the copy (§8 invariant 3).
 *
 * @module
 */
import { BLOCK_FILE_HEADER, SLOT_SIZE } from "./format.ts";
import type { ElementKind } from "./kinds.ts";
import type { FileIO } from "./io.ts";

/** What the copy asks of the use maps (BlockFiles' SlotUse). */
export interface UsedSlots {
  slotUsed(kind: ElementKind, slot: number): boolean;
}

/**
 * Bytes of used slots one piece copies at most (a piece may end sooner:
 * COPY_SCAN_SLOTS): ~1–2 ms of reads, writes and its fsync.
 */
export const COPY_PIECE_BYTES = 2 << 20;
/** Slots one piece looks at most (2^16: ~0.3 ms of use map reads). */
const COPY_SCAN_SLOTS = 1 << 16;

/** A block file's copy under way. */
export class BlockCopy {
  readonly kind: ElementKind;
  readonly n: number;
  /** The old file (still the block file until finish). */
  readonly old: number;
  readonly path: string;
  #io: FileIO;
  #fd: number;
  /** First slot (of the store's slots of `kind`) of the file. */
  #first: number;
  /** Slots of the file that may be used (the used prefix at start). */
  #used: number;
  /** Next slot of the file to look at. */
  #next = 0;
  #buf = new Uint8Array(1 << 20);

  /**
   * Opens `path.tmp` (read-write, created if missing) via `open`, empties
   * it and writes the header and the full extent (sparse): throws when
   * any of it fails (the copy is then removed).
   */
  constructor(
    io: FileIO,
    open: (path: string) => number,
    where: { kind: ElementKind; n: number; path: string },
    old: number,
    slots: { first: number; used: number; extent: number },
  ) {
    this.#io = io;
    this.kind = where.kind;
    this.n = where.n;
    this.path = where.path;
    this.old = old;
    this.#first = slots.first;
    this.#used = slots.used;
    this.#fd = open(this.#tmp);
    try {
      io.ftruncate(this.#fd, 0);
      this.#copy(0, BLOCK_FILE_HEADER);
      // Full extent now: writes mirrored from the old file land anywhere.
      io.ftruncate(this.#fd, slots.extent);
    } catch (err) {
      this.abort();
      throw err;
    }
  }

  get #tmp(): string {
    return `${this.path}.tmp`;
  }

  /** True once every used slot is copied (finish() may run). */
  get copied(): boolean {
    return this.#next >= this.#used;
  }

  /**
   * Copies the next used slots, up to COPY_PIECE_BYTES of them, and
   * syncs them (so the copy's last fsync has little left). Throws when a
   * read, write or sync fails.
   */
  step(use: UsedSlots): void {
    const size = SLOT_SIZE[this.kind];
    const end = Math.min(this.#used, this.#next + COPY_SCAN_SLOTS);
    let bytes = 0;
    let s = this.#next;
    while (s < end && bytes < COPY_PIECE_BYTES) {
      if (!use.slotUsed(this.kind, this.#first + s)) {
        s++;
        continue;
      }
      let e = s + 1;
      const most = s + Math.max(1, Math.floor(COPY_PIECE_BYTES / size));
      while (e < end && e < most && use.slotUsed(this.kind, this.#first + e)) {
        e++;
      }
      this.#copy(BLOCK_FILE_HEADER + s * size, (e - s) * size);
      bytes += (e - s) * size;
      s = e;
    }
    this.#next = s;
    if (bytes > 0) this.#io.fsync(this.#fd);
  }

  #copy(pos: number, len: number): void {
    const buf = this.#buf;
    for (let at = 0; at < len; at += buf.length) {
      const part = buf.subarray(0, Math.min(buf.length, len - at));
      const got = this.#io.pread(this.old, part, pos + at);
      this.#io.pwrite(this.#fd, part.subarray(0, got), pos + at);
    }
  }

  /**
   * `bytes` were written to the old file at `pos`: so to the copy, but for
   * the part in slots the copy has yet to reach (copied then, if used). A
   * run written from a slot not yet reached may reach past the slots the
   * copy looks at (`used`): that part is written now.
   */
  mirror(bytes: Uint8Array, pos: number): void {
    const size = SLOT_SIZE[this.kind];
    const slot = Math.floor((pos - BLOCK_FILE_HEADER) / size);
    if (slot >= this.#next && slot < this.#used) {
      const past = BLOCK_FILE_HEADER + this.#used * size - pos;
      if (past < bytes.length) {
        this.#io.pwrite(this.#fd, bytes.subarray(past), pos + past);
      }
      return;
    }
    this.#io.pwrite(this.#fd, bytes, pos);
  }

  /** The old file was cut to `len` and extended to `full` again. */
  trimmed(len: number, full: number): void {
    this.#io.ftruncate(this.#fd, len);
    this.#io.ftruncate(this.#fd, full);
  }

  /**
   * Syncs the copy and renames it over the old file; returns its
   * descriptor, which now is the block file. Throws when either fails
   * (then abort()).
   */
  finish(): number {
    this.#io.fsync(this.#fd);
    this.#io.rename(this.#tmp, this.path);
    return this.#fd;
  }

  /** Closes and removes the copy; the old file stays. Never throws. */
  abort(): void {
    try {
      this.#io.close(this.#fd);
      this.#io.unlink(this.#tmp);
    } catch { /* a leftover copy holds nothing an entry needs */ }
  }
}
