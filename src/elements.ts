/**
 * Where element bytes live: fixed slots in block files, or one large file
 * each (FORMAT.md §5, §6). Every element starts with a header that names
 * its key, length and CRC-32, so a read can prove it got the right bytes.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { crc32 } from "node:zlib";
import {
  ForeignFileError,
  StoreError,
  VersionMismatchError,
} from "./errors.ts";
import { moveAside } from "./_foreign.ts";
import {
  BLOCK_FILE_HEADER,
  blockFileCount,
  blockFileHeaderMatches,
  blockFileVersion,
  ELEMENT_HEADER,
  encodeBlockFileHeader,
  MAGIC,
  MAX_RUN_SLOTS,
  readElementHeader,
  runWithin,
  SLOT_SIZE,
  SLOTS_PER_FILE,
  VERSION,
  writeElementHeader,
} from "./format.ts";
import { type ElementRecord, recordSlots } from "./index_memory.ts";
import {
  DATA,
  type ElementKind,
  KIND_TABLE,
  KINDS,
  META,
  type PerKind,
  perKind,
} from "./kinds.ts";
import type { FileIO } from "./io.ts";
import { blockFileParts, largeFileParts } from "./paths.ts";

/**
 * How many of the `n` slots of `kind` from `first` lie up to the last used
 * one (IndexMemory.usedPrefix).
 */
export type UsedPrefix = (
  kind: ElementKind,
  first: number,
  n: number,
) => number;

/** Reads up to this size come from the pool. */
const POOLED_READ_MAX = 16 * 1024;
/** Size of each read pool. */
const POOL_BYTES = 128 * 1024;

/** What a read expects to find; anything else is a mismatch. */
export interface Expected {
  /** 0 data, 1 metadata. */
  kind: ElementKind;
  /** The key's UTF-8 bytes. */
  key: Uint8Array;
  /** Key hash, low and high words. */
  hashLo: number;
  /** Key hash, high word. */
  hashHi: number;
  /** Length recorded in the index. */
  size: number;
  /** CRC-32 recorded in the index. */
  crc: number;
}

/**
 * Result of reading an element: its bytes, a valid element of another key
 * (a hash collision: look further), or damage (drop the entry).
 */
export type ReadResult =
  | { ok: true; bytes: Uint8Array }
  | { ok: false; reason: "other-key" | "corrupt" };

type RawResult = ReadResult | typeof KEY_LENGTH_DIFFERS;

const OTHER_KEY = { ok: false, reason: "other-key" } as const;
// Internal: the stored key has another length, so the caller must read the
// header again at that length to tell a collision from damage.
const KEY_LENGTH_DIFFERS = { ok: false, reason: "key-length" } as const;

/** The key length field of a header prefix (no validation). */
function storedKeyLen(buf: Uint8Array): number {
  return buf.length < ELEMENT_HEADER ? -1 : buf[6]! | (buf[7]! << 8);
}
const CORRUPT = { ok: false, reason: "corrupt" } as const;

/**
 * True when a failure means the element is not there (a missing file or
 * directory, a symlink refused by O_NOFOLLOW, a block file of another
 * version): a miss. Anything else (EIO, a full disk, no permission) is an
 * error the caller must see, never a reason to drop the entry.
 */
function isAbsence(err: unknown): boolean {
  if (!(err instanceof StoreError)) return false;
  if (err.code === "VERSION_MISMATCH" || err.code === "CORRUPT") return true;
  const code = (err.cause as { code?: unknown } | undefined)?.code;
  return code === "ENOENT" || code === "ELOOP" || code === "ENOTDIR" ||
    code === "EISDIR";
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Checks `buf` (header, key, element) against `want`.
 * @returns the element bytes (a view into `buf`) or why not.
 */
export function verifyElement(buf: Uint8Array, want: Expected): RawResult {
  if (buf.length < ELEMENT_HEADER) return CORRUPT;
  if (storedKeyLen(buf) !== want.key.length) return KEY_LENGTH_DIFFERS;
  // Hot path: every header field is compared with the index and the key and
  // content checksum are checked, so the header's own CRC adds nothing here
  // (rebuild and check-store, which have no index to compare with, check it).
  for (let i = 0; i < 4; i++) if (buf[i] !== MAGIC.element[i]) return CORRUPT;
  if (buf[4] !== VERSION.element) return CORRUPT;
  // The element must belong to the entry: same kind and the entry's hash.
  // A different key under the same hash is a collision (look further); a
  // different hash means the slot was reused after the index was written.
  if (
    buf[5] !== want.kind || u32(buf, 16) !== want.hashLo ||
    u32(buf, 20) !== want.hashHi
  ) return CORRUPT;
  const keyLen = want.key.length;
  const key = buf.subarray(ELEMENT_HEADER, ELEMENT_HEADER + keyLen);
  if (!sameBytes(key, want.key)) return OTHER_KEY;
  if (u32(buf, 8) !== want.size || u32(buf, 12) !== want.crc) return CORRUPT;
  const start = ELEMENT_HEADER + keyLen;
  if (buf.length < start + want.size) return CORRUPT;
  const bytes = buf.subarray(start, start + want.size);
  if (crc32(bytes) !== want.crc) return CORRUPT;
  return { ok: true, bytes };
}

/** Little-endian u32 at `at` (no DataView allocation on the hot path). */
function u32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) |
    (b[at + 3]! << 24)) >>> 0;
}

/**
 * Whether a header-and-key prefix read from storage is a valid element of
 * `kind` under `key`: true, false (another key's), or "corrupt".
 */
export function headerKeyMatches(
  head: Uint8Array | undefined,
  want: Pick<Expected, "kind" | "key" | "hashLo" | "hashHi">,
): boolean | "corrupt" {
  if (head === undefined) return "corrupt";
  const h = readElementHeader(head);
  if (
    h === undefined || h.kind !== want.kind || h.hashLo !== want.hashLo ||
    h.hashHi !== want.hashHi
  ) {
    return "corrupt";
  }
  const key = want.key;
  return sameBytes(
    head.subarray(ELEMENT_HEADER, ELEMENT_HEADER + h.keyLen),
    key,
  );
}

/**
 * Data slots an entry's data element needs (with its metadata element
 * after it when `metaLen` is given, FORMAT.md §6.1): 1 when it fits one
 * slot, up to {@linkcode MAX_RUN_SLOTS} for a run (§5.3), 0 when it needs
 * a large file.
 */
export function runSlots(
  keyLen: number,
  dataLen: number,
  metaLen?: number,
): number {
  let bytes = ELEMENT_HEADER + keyLen + dataLen;
  if (metaLen !== undefined) bytes += ELEMENT_HEADER + keyLen + metaLen;
  const slots = Math.ceil(bytes / SLOT_SIZE[DATA]);
  return slots <= MAX_RUN_SLOTS ? slots : 0;
}

/** True when an element of `size` bytes under a `keyLen`-byte key fits a slot. */
export function fitsSlot(
  kind: ElementKind,
  keyLen: number,
  size: number,
): boolean {
  return ELEMENT_HEADER + keyLen + size <= SLOT_SIZE[kind];
}

/**
 * True when an entry's data and metadata (`dataLen`, `metaLen` bytes under
 * a `keyLen`-byte key) fit one data slot together, each with its own
 * header and key (FORMAT.md §6.1).
 */
export function fitsSlotPair(
  keyLen: number,
  dataLen: number,
  metaLen: number,
): boolean {
  return 2 * (ELEMENT_HEADER + keyLen) + dataLen + metaLen <= SLOT_SIZE[DATA];
}

/**
 * True when record `rec` of `kind` (in slots) fits the slots it claims:
 * its header and element (and, for data, `meta`'s stored after it) within
 * its slot or run. Key lengths are not recorded, so they count as 0.
 */
export function recordFitsSlots(
  kind: ElementKind,
  rec: ElementRecord,
  meta?: ElementRecord,
): boolean {
  const need = ELEMENT_HEADER + rec.size +
    (meta === undefined ? 0 : ELEMENT_HEADER + meta.size);
  return need <= recordSlots(rec) * SLOT_SIZE[kind];
}

/**
 * True when metadata record `meta`, marked as stored in its data's slot,
 * can be: the entry's data record `data` is in that slot (or run) and
 * both fit it.
 */
export function pairRecordsFit(
  data: ElementRecord | undefined,
  meta: ElementRecord,
): boolean {
  return data !== undefined && !data.inFile && data.loc === meta.loc &&
    recordFitsSlots(0, data, meta);
}

/** Header fields for writeSlot and writeSlotPair. */
type HeaderFields = Parameters<typeof writeElementHeader>[1];

/**
 * Block files and large files of one store.
 *
 * @example
 * ```ts
 * import { crc32 } from "node:zlib";
 * import assert from "node:assert/strict";
 * import { ElementFiles, runSlots } from "./elements.ts";
 * import { NodeFileIO } from "./io.ts";
 *
 * const dir = await Deno.makeTempDir();
 * // 2^18 data slots, 2^16 metadata slots (control's dataSlotBits, entryBits)
 * const files = new ElementFiles(new NodeFileIO(), dir, [262144, 65536]);
 * const key = new TextEncoder().encode("https://example.com/");
 * const element = (bytes: Uint8Array) => ({
 *   kind: 0 as const,
 *   key,
 *   hashLo: 1,
 *   hashHi: 2,
 *   size: bytes.length,
 *   crc: crc32(bytes),
 * });
 * const header = (bytes: Uint8Array) => ({
 *   ...element(bytes),
 *   keyLen: key.length,
 *   length: bytes.length,
 *   storedAt: 0,
 * });
 * const body = new Uint8Array(100).fill(7);
 * files.writeSlot(0, 7, header(body), key, body); // one slot
 * assert.deepEqual(files.readSlot(0, 7, element(body)), { ok: true, bytes: body });
 * const big = new Uint8Array(100_000).fill(9);
 * files.writeSlot(0, 8, header(big), key, big); // a run from slot 8
 * const slots = runSlots(key.length, big.length); // 13
 * assert.equal(files.readSlot(0, 8, element(big), slots).ok, true);
 * files.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class ElementFiles {
  /** Block files of each kind: its slots / 4096 rounded up. */
  readonly blockFileCounts: PerKind<number>;
  /** Slots of each kind: data (`2^dataSlotBits`), metadata (capacity). */
  readonly slotCounts: PerKind<number>;

  #io: FileIO;
  #root: string;
  /** Open block files of each kind, by file number. */
  #fds: PerKind<(number | undefined)[]> = perKind(() => []);
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
  /** fsync mode: large files to remove once their removal is durable. */
  #removals: string[] = [];
  /** Block files written since the last syncPending(). */
  #dirtyFds = new Set<number>();
  /** Block files with slots freed, by kind and file: the highest freed slot. */
  #freedTop: PerKind<Map<number, number>> = perKind(() => new Map());
  #scratch: PerKind<Uint8Array> = perKind((k) => new Uint8Array(SLOT_SIZE[k]));

  /**
   * @param io The file layer.
   * @param root The store directory.
   * @param slotCounts Data slots (`2^dataSlotBits`) and metadata slots
   * (the entry capacity, `2^entryBits`).
   */
  constructor(
    io: FileIO,
    root: string,
    slotCounts: PerKind<number>,
    durable = false,
    checkDir: (action: string) => void = () => {},
  ) {
    this.#checkDir = checkDir;
    this.#durable = durable;
    this.#io = io;
    this.#root = root;
    // Defect 3: the seed capped slots with a log2 used as a count; here
    // every entry can hold one metadata slot, and data slots are sized for
    // the limit's bytes as well (control's dataSlotBits).
    this.slotCounts = slotCounts;
    this.blockFileCounts = perKind((k) => blockFileCount(slotCounts[k]));
  }

  #ensureDirs(parts: string[], durable = this.#durable): string {
    const name = `${this.#root}/${parts.join("/")}`;
    this.#checkDir("write element");
    this.#dirsOk(name, true, durable);
    return name;
  }

  /**
   * True when every directory on the way to file `path` (inside the store)
   * is a real directory: never a symlink followed as a path component.
   * With `create`, missing ones are made (a removed `d/` comes back);
   * without, a missing one is false. A symlink or other foreign object is
   * moved aside when creating, false otherwise (a miss).
   */
  #dirsOk(path: string, create: boolean, durable = this.#durable): boolean {
    const leaf = path.slice(0, path.lastIndexOf("/"));
    const known = this.#dirs.get(leaf);
    const io = this.#io;
    if (
      known !== undefined &&
      (io.dirId === undefined || io.dirId(leaf) === known)
    ) {
      return true;
    }
    const parts = leaf.slice(this.#root.length + 1).split("/");
    let at = this.#root;
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
  #pruneDirs(path: string): void {
    const io = this.#io;
    if (io.rmdir === undefined) return;
    let dir = path.slice(0, path.lastIndexOf("/"));
    while (dir.length > this.#root.length + 2) {
      if (!io.rmdir(dir)) return;
      this.#dirs.delete(dir);
      dir = dir.slice(0, dir.lastIndexOf("/"));
    }
  }

  /** Removes large file `path` (when its directories are larder's). */
  #removeLarge(path: string): void {
    this.#checkDir("remove element");
    if (!this.#dirsOk(path, false)) return;
    this.#io.unlink(path);
    this.#pruneDirs(path);
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
      this.#moveAside(path);
      this.#io.mkdir(path);
    }
  }

  /** Moves the foreign object at `path` aside (see `_foreign.ts`). */
  #moveAside(path: string): void {
    const cut = path.lastIndexOf("/");
    moveAside(this.#io, path.slice(0, cut), path.slice(cut + 1));
  }

  /**
   * Opens (`create`: creates) the regular file `path`; a foreign object at
   * its name (a symlink, directory, FIFO) is moved aside first.
   */
  #openFile(path: string, create: boolean): number {
    try {
      return create ? this.#io.create(path) : this.#io.openRW(path, true);
    } catch (err) {
      if (!(err instanceof ForeignFileError)) throw err;
      this.#moveAside(path);
      return create ? this.#io.create(path) : this.#io.openRW(path, true);
    }
  }

  #largeFileName(kind: ElementKind, id: number): string {
    return `${this.#root}/${largeFileParts(kind, id).join("/")}`;
  }

  /** Path of large file `id` of `kind` (creating its directories). */
  largeFilePath(kind: ElementKind, id: number): string {
    return this.#ensureDirs(largeFileParts(kind, id));
  }

  #blockFd(kind: ElementKind, n: number): number {
    const cached = this.#fds[kind][n];
    if (cached !== undefined) return cached;
    const parts = blockFileParts(kind, n, this.blockFileCounts[kind]);
    const path = this.#ensureDirs(parts, true);
    this.#checkDir("open block file");
    const fd = this.#openFile(path, false);
    try {
      const full = BLOCK_FILE_HEADER + SLOTS_PER_FILE * SLOT_SIZE[kind];
      const size = this.#io.size(fd);
      const head = new Uint8Array(32);
      if (
        size === 0 || this.#io.pread(fd, head, 0) < 32 ||
        !blockFileHeaderMatches(head, kind, n)
      ) {
        // A newer format is refused; a header that is missing (a crash
        // while the file was created) or damaged is written again: every
        // slot is verified on its own, so none is trusted because of it.
        if (blockFileVersion(head) > VERSION.blockFile) {
          throw new VersionMismatchError(
            `Cannot use block file ${path}: format version ${
              blockFileVersion(head)
            }, this larder reads version ${VERSION.blockFile}`,
          );
        }
        this.#io.pwrite(fd, encodeBlockFileHeader(kind, n), 0);
      }
      // Preset to full extent (sparse) so slot writes never extend it.
      if (size < full) this.#io.ftruncate(fd, full);
    } catch (err) {
      this.#io.close(fd);
      throw err;
    }
    // Its name may be new, or left unsynced by a process that died: the
    // next syncPending() makes it durable with the slots written to it.
    this.#pendingDirs.add(path.slice(0, path.lastIndexOf("/")));
    this.#fds[kind][n] = fd;
    return fd;
  }

  #slotPos(kind: ElementKind, slot: number): [number, number] {
    const n = Math.floor(slot / SLOTS_PER_FILE);
    const pos = BLOCK_FILE_HEADER + (slot % SLOTS_PER_FILE) * SLOT_SIZE[kind];
    return [this.#blockFd(kind, n), pos];
  }

  // Small reads are carved from a shared pool: a fresh ArrayBuffer costs
  // about 1 µs and adds GC pressure, more than the read itself (as Node's
  // Buffer pool does; a returned element may thus be a view into a larger
  // buffer). Large reads get their own buffer.
  #pool = new Uint8Array(0);
  #poolAt = 0;
  #take(n: number): Uint8Array {
    if (n > POOLED_READ_MAX) {
      // Large reads skip zero-filling (35-45% of the allocation at 64 KiB
      // - 1 MiB): the read overwrites it, and callers only ever get the
      // bytes read. A plain Uint8Array view, never a Buffer.
      const b = Buffer.allocUnsafeSlow(n);
      return new Uint8Array(b.buffer, b.byteOffset, n);
    }
    if (this.#poolAt + n > this.#pool.length) {
      this.#pool = new Uint8Array(POOL_BYTES);
      this.#poolAt = 0;
    }
    const b = this.#pool.subarray(this.#poolAt, this.#poolAt + n);
    this.#poolAt = (this.#poolAt + n + 7) & ~7;
    return b;
  }

  /**
   * Writes header, key and element into `slot` (they must fit it) or, for
   * data, into the run of slots from `slot` (runSlots says how many).
   */
  writeSlot(
    kind: ElementKind,
    slot: number,
    header: HeaderFields,
    key: Uint8Array,
    data: Uint8Array,
  ): void {
    const [fd, pos] = this.#slotPos(kind, slot);
    const buf = this.#scratch[kind];
    if (fitsSlot(kind, key.length, data.length)) {
      const end = this.#stage(buf, 0, header, key, data);
      this.#io.pwrite(fd, buf.subarray(0, end), pos);
    } else {
      this.#writeElement(fd, pos, header, key, data);
    }
    this.#dirtyFds.add(fd);
  }

  /**
   * Writes an entry's data element and, right after it, its metadata
   * element into data slot `slot`, in one write when they fit one slot,
   * else into the run of slots from `slot` (runSlots says how many).
   */
  writeSlotPair(
    slot: number,
    dataHeader: HeaderFields,
    metaHeader: HeaderFields,
    key: Uint8Array,
    data: Uint8Array,
    meta: Uint8Array,
  ): void {
    const [fd, pos] = this.#slotPos(0, slot);
    const buf = this.#scratch[DATA];
    if (fitsSlotPair(key.length, data.length, meta.length)) {
      const mid = this.#stage(buf, 0, dataHeader, key, data);
      const end = this.#stage(buf, mid, metaHeader, key, meta);
      this.#io.pwrite(fd, buf.subarray(0, end), pos);
    } else {
      // A run: the bodies are written where they lie, not copied into a
      // staging buffer (up to 2 MiB); the elements prove themselves, so
      // the order of the writes does not matter.
      const at = this.#writeElement(fd, pos, dataHeader, key, data);
      this.#writeElement(fd, at, metaHeader, key, meta);
    }
    this.#dirtyFds.add(fd);
  }

  // Writes header and key, then the element after them, at `pos`; returns
  // the position after the element.
  #writeElement(
    fd: number,
    pos: number,
    header: HeaderFields,
    key: Uint8Array,
    data: Uint8Array,
  ): number {
    const headLen = ELEMENT_HEADER + key.length;
    const head = headLen <= SLOT_SIZE[META]
      ? this.#scratch[META].subarray(0, headLen)
      : new Uint8Array(headLen);
    writeElementHeader(head, header, key);
    this.#io.pwrite(fd, head, pos);
    this.#io.pwrite(fd, data, pos + headLen);
    return pos + headLen + data.length;
  }

  // Lays out header, key and element at `at` of a slot-sized buffer.
  #stage(
    buf: Uint8Array,
    at: number,
    header: HeaderFields,
    key: Uint8Array,
    data: Uint8Array,
  ): number {
    // Invariant: the caller checked fitsSlot (or fitsSlotPair), so nothing
    // spills into the neighbouring slot (the seed's defect 4).
    if (at + ELEMENT_HEADER + key.length + data.length > buf.length) {
      throw new RangeError("Cannot write slot: element does not fit");
    }
    const start = at + writeElementHeader(buf, header, key, at);
    buf.set(data, start);
    return start + data.length;
  }

  /**
   * Reads and verifies the element in `slot` (for data, in the run of
   * `slots` slots from it).
   */
  readSlot(
    kind: ElementKind,
    slot: number,
    want: Expected,
    slots = 1,
  ): ReadResult {
    const len = ELEMENT_HEADER + want.key.length + want.size;
    if (
      !runWithin(this.slotCounts[kind], slot, slots) ||
      len > slots * SLOT_SIZE[kind]
    ) {
      return CORRUPT;
    }
    let fd: number, pos: number;
    try {
      [fd, pos] = this.#slotPos(kind, slot);
    } catch (err) {
      if (isAbsence(err)) return CORRUPT;
      throw err;
    }
    const buf = this.#take(len);
    if (this.#io.pread(fd, buf, pos) < ELEMENT_HEADER) return CORRUPT;
    return this.#settle(verifyElement(buf, want), slot, false, buf, want);
  }

  /**
   * Reads data slot `slot` (or the run of `slots` slots from it) holding
   * an entry's data and, after it, its metadata (writeSlotPair), in one
   * read, and verifies both. The data's header says whose entry it is:
   * when the data is not `wantData`'s (another key's, or damaged), the
   * metadata result says the same, as nothing after the data can be
   * located without it; metadata that fails after good data is damage.
   */
  readSlotPair(
    slot: number,
    wantData: Expected,
    wantMeta: Expected,
    slots = 1,
  ): [ReadResult, ReadResult] {
    const mid = ELEMENT_HEADER + wantData.key.length + wantData.size;
    const end = mid + ELEMENT_HEADER + wantMeta.key.length + wantMeta.size;
    if (
      !runWithin(this.slotCounts[DATA], slot, slots) ||
      end > slots * SLOT_SIZE[DATA]
    ) {
      return [CORRUPT, CORRUPT];
    }
    let fd: number, pos: number;
    try {
      [fd, pos] = this.#slotPos(0, slot);
    } catch (err) {
      if (isAbsence(err)) return [CORRUPT, CORRUPT];
      throw err;
    }
    const buf = this.#take(end);
    if (this.#io.pread(fd, buf, pos) < ELEMENT_HEADER) {
      return [CORRUPT, CORRUPT];
    }
    const data = this.#settle(
      verifyElement(buf.subarray(0, mid), wantData),
      slot,
      false,
      buf,
      wantData,
    );
    if (!data.ok) return [data, data];
    const meta = verifyElement(buf.subarray(mid), wantMeta);
    return [data, meta.ok ? meta : CORRUPT];
  }

  // Resolves a key-length difference by reading the header at its own
  // length: a valid header of another key is a collision, not damage.
  #settle(
    r: RawResult,
    loc: number,
    inFile: boolean,
    buf: Uint8Array,
    want: Expected,
  ): ReadResult {
    if (r.ok || r.reason !== "key-length") return r;
    const len = storedKeyLen(buf);
    if (len < 0) return CORRUPT;
    const head = inFile
      ? this.readFileHeader(want.kind, loc, len)
      : this.readSlotHeader(want.kind, loc, len);
    return headerKeyMatches(head, want) === false ? OTHER_KEY : CORRUPT;
  }

  /**
   * Reads the header and key in `slot`, guessing the key is `keyLen` bytes
   * and reading again at the stored length when it is not.
   */
  readSlotHeader(
    kind: ElementKind,
    slot: number,
    keyLen: number,
  ): Uint8Array | undefined {
    if (slot >= this.slotCounts[kind]) return undefined;
    try {
      const [fd, pos] = this.#slotPos(kind, slot);
      let buf = new Uint8Array(ELEMENT_HEADER + keyLen);
      if (this.#io.pread(fd, buf, pos) !== buf.length) return undefined;
      const stored = storedKeyLen(buf);
      if (
        stored !== keyLen &&
        ELEMENT_HEADER + stored <=
          SLOT_SIZE[kind] * KIND_TABLE[kind].maxRunSlots
      ) {
        buf = new Uint8Array(ELEMENT_HEADER + stored);
        if (this.#io.pread(fd, buf, pos) !== buf.length) return undefined;
      }
      return buf;
    } catch (err) {
      if (isAbsence(err)) return undefined;
      throw err;
    }
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
    const fd = this.#openFile(path, true);
    try {
      this.#io.pwrite(fd, head, 0);
      this.#io.pwrite(fd, data, head.length);
      if (this.#durable) {
        this.#io.fsync(fd);
        this.#pendingDirs.add(path.slice(0, path.lastIndexOf("/")));
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
    const fd = this.#openFile(this.largeFilePath(kind, id), true);
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
        this.#pendingDirs.add(path.slice(0, path.lastIndexOf("/")));
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
    if (!this.#dirsOk(path, false)) return undefined;
    try {
      return this.#io.openR(path);
    } catch (err) {
      if (err instanceof ForeignFileError) this.#moveAside(path);
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
    if (!this.#dirsOk(path, false)) return undefined;
    let fd: number;
    try {
      fd = this.#io.openR(path);
    } catch (err) {
      // A symlink, directory or FIFO planted in the store: moved aside, so
      // that removing the file larder wrote there never deletes it; a miss.
      if (err instanceof ForeignFileError) this.#moveAside(path);
      // Missing, or foreign: a miss.
      if (isAbsence(err)) return undefined;
      throw err;
    }
    try {
      if (len !== undefined) {
        // The caller knows how much it wants: no fstat, one read; a short
        // file comes back short.
        const buf = this.#take(len);
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
    const r = this.#settle(verifyElement(buf, want), id, true, buf, want);
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

  /** Queues `dir` for a directory sync at the next syncPending(). */
  syncDirLater(dir: string): void {
    this.#pendingDirs.add(dir);
  }

  /**
   * Makes the element files' names durable (directories that gained names)
   * and, in fsync mode, the bytes of block files written since the last
   * call. In process mode block bytes are left to the page cache: they need
   * to survive the process, not a power loss, and after a power loss every
   * element still proves itself or is a miss (§6), so fsyncing hundreds of
   * MiB of dirty slots at every rotation would buy nothing.
   */
  syncPending(): void {
    if (this.#durable) {
      for (const fd of this.#dirtyFds) this.#io.fsync(fd);
    }
    this.#dirtyFds.clear();
    // Deepest first is not needed: each directory's own entry is synced
    // through its parent, which is in the set when it was created here.
    for (const dir of this.#pendingDirs) {
      try {
        this.#io.syncDir(dir);
      } catch (err) {
        // A large-file directory removed since (emptied): nothing to sync.
        if (dir === this.#root || !isAbsence(err)) throw err;
      }
    }
    this.#pendingDirs.clear();
  }

  /**
   * Notes that `slot` of `kind` was freed in the use map: its block file's
   * tail may now be free (see trimFreeTails).
   */
  slotFreed(kind: ElementKind, slot: number): void {
    const n = Math.floor(slot / SLOTS_PER_FILE);
    const top = this.#freedTop[kind].get(n);
    if (top === undefined || slot > top) this.#freedTop[kind].set(n, slot);
  }

  /**
   * Gives the disk blocks of free tails back: for each block file whose
   * highest used slot (by `useMap`) is now below a slot freed since the
   * last call, truncates the file after that slot and extends it again to
   * its full extent (a hole, read as zeros). A freed slot below a used one
   * keeps its blocks (no hole punching without FFI). Best effort: a
   * truncation that fails only keeps the blocks.
   */
  trimFreeTails(usedPrefix: UsedPrefix): void {
    for (const kind of KINDS) this.#trimFreeTails(kind, usedPrefix);
  }

  #trimFreeTails(kind: ElementKind, usedPrefix: UsedPrefix): void {
    const freed = this.#freedTop[kind];
    for (const [n, top] of freed) {
      const fd = this.#fds[kind][n];
      if (fd === undefined) continue;
      const first = n * SLOTS_PER_FILE;
      const used = usedPrefix(
        kind,
        first,
        Math.min(SLOTS_PER_FILE, this.slotCounts[kind] - first),
      );
      if (first + used > top) continue; // the freed slots are not the tail
      const full = BLOCK_FILE_HEADER + SLOTS_PER_FILE * SLOT_SIZE[kind];
      try {
        this.#io.ftruncate(fd, BLOCK_FILE_HEADER + used * SLOT_SIZE[kind]);
        this.#io.ftruncate(fd, full);
      } catch { /* the blocks stay in use; nothing is lost */ }
    }
    freed.clear();
  }

  /** Closes every block file. */
  close(): void {
    const fds = KINDS.flatMap((k) => this.#fds[k]);
    this.#fds = perKind(() => []);
    this.#dirtyFds.clear();
    let first: unknown;
    for (const fd of fds) {
      if (fd === undefined) continue;
      try {
        this.#io.close(fd);
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }
}
