/**
 * Where element bytes live: fixed slots in block files, or one large file
 * each (FORMAT.md §5, §6). Every element starts with a header that names
 * its key, length and CRC-32, so a read can prove it got the right bytes.
 *
 * {@linkcode ElementFiles} is the one owner callers use; it delegates to
 * `_block_files.ts` (slots and runs in block files), `_large_files.ts`
 * (large files), `_element_dirs.ts` (their directory tree and its syncs),
 * `_element_verify.ts` (verification), `_slot_fit.ts` (what fits a slot
 * or run) and `_read_pool.ts` (read buffers).
 *
 * @module
 */
import type { writeElementHeader } from "./format.ts";
import type { ElementKind, PerKind } from "./kinds.ts";
import type { FileIO } from "./io.ts";
import { BlockFiles, type HeaderFields, type SlotUse } from "./_block_files.ts";
import { ElementDirs } from "./_element_dirs.ts";
import type { Expected, ReadResult } from "./_element_verify.ts";
import { LargeFiles } from "./_large_files.ts";
import { ReadPool } from "./_read_pool.ts";

export type { SlotUse } from "./_block_files.ts";
export {
  type Expected,
  headerKeyMatches,
  type ReadResult,
  verifyElement,
} from "./_element_verify.ts";
export {
  fitsSlot,
  fitsSlotPair,
  pairRecordsFit,
  recordFitsSlots,
  runSlots,
} from "./_slot_fit.ts";

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
 * const n = runSlots(key.length, body.length); // 3 slots of 64 bytes
 * files.writeSlot(0, 7, header(body), key, body); // slots 7, 8, 9
 * assert.deepEqual(files.readSlot(0, 7, element(body), n), {
 *   ok: true,
 *   bytes: body,
 * });
 * const big = new Uint8Array(100_000).fill(9);
 * files.writeSlot(0, 10, header(big), key, big); // a run from slot 10
 * const slots = runSlots(key.length, big.length); // 1600
 * assert.equal(files.readSlot(0, 10, element(big), slots).ok, true);
 * files.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class ElementFiles {
  /** Block files of each kind: its slots / slots a file, rounded up. */
  readonly blockFileCounts: PerKind<number>;
  /** Slots of each kind: data (`2^dataSlotBits`), metadata (capacity). */
  readonly slotCounts: PerKind<number>;

  #dirs: ElementDirs;
  #blocks: BlockFiles;
  #large: LargeFiles;
  #pool: ReadPool;

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
    this.#dirs = new ElementDirs(io, root, durable, checkDir);
    // One pool serves slot and large-file reads alike.
    const pool = new ReadPool();
    this.#pool = pool;
    this.#blocks = new BlockFiles(io, this.#dirs, pool, slotCounts, durable);
    this.#large = new LargeFiles(io, this.#dirs, pool, durable);
    this.slotCounts = this.#blocks.slotCounts;
    this.blockFileCounts = this.#blocks.blockFileCounts;
  }

  /**
   * Takes back the read buffer `bytes` lies in, when it was the last one
   * read (see {@linkcode ReadPool.giveBack}): for bytes no one holds.
   */
  giveBack(bytes: Uint8Array): boolean {
    return this.#pool.giveBack(bytes);
  }

  /** Path of large file `id` of `kind` (creating its directories). */
  largeFilePath(kind: ElementKind, id: number): string {
    return this.#large.largeFilePath(kind, id);
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
    this.#blocks.writeSlot(kind, slot, header, key, data);
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
    this.#blocks.writeSlotPair(slot, dataHeader, metaHeader, key, data, meta);
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
    return this.#blocks.readSlot(kind, slot, want, slots);
  }

  /**
   * Reads data slot `slot` (or the run of `slots` slots from it) holding
   * an entry's data and, after it, its metadata (writeSlotPair), in one
   * read, and verifies both (see BlockFiles.readSlotPair).
   */
  readSlotPair(
    slot: number,
    wantData: Expected,
    wantMeta: Expected,
    slots = 1,
  ): [ReadResult, ReadResult] {
    return this.#blocks.readSlotPair(slot, wantData, wantMeta, slots);
  }

  /**
   * Reads and verifies only the metadata stored after an entry's data in
   * data slot `slot` (see BlockFiles.readSlotPairMeta).
   */
  readSlotPairMeta(
    slot: number,
    wantData: Expected,
    wantMeta: Expected,
    slots = 1,
  ): ReadResult {
    return this.#blocks.readSlotPairMeta(slot, wantData, wantMeta, slots);
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
    return this.#blocks.readSlotHeader(kind, slot, keyLen);
  }

  /** Writes a large file: header, key, element. */
  writeFile(
    kind: ElementKind,
    id: number,
    header: Parameters<typeof writeElementHeader>[1],
    key: Uint8Array,
    data: Uint8Array,
  ): void {
    this.#large.writeFile(kind, id, header, key, data);
  }

  /**
   * Creates large file `id` of `kind` for an element under a `keyLen`-byte
   * key written in pieces (a streamed store) and returns its descriptor;
   * its header is written last (finishFile, see LargeFiles.createFile).
   */
  createFile(kind: ElementKind, id: number, keyLen: number): number {
    return this.#large.createFile(kind, id, keyLen);
  }

  /** Writes `bytes` at `pos` of a file from createFile. */
  writeAt(fd: number, bytes: Uint8Array, pos: number): void {
    this.#large.writeAt(fd, bytes, pos);
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
    this.#large.finishFile(kind, id, fd, header, key);
  }

  /**
   * Opens large file `id` for reading piece by piece (an entry reader);
   * undefined when it is missing or not larder's.
   */
  openFile(kind: ElementKind, id: number): number | undefined {
    return this.#large.openFile(kind, id);
  }

  /** Reads into `buf` at `pos` of a descriptor from openFile. */
  readAt(fd: number, buf: Uint8Array, pos: number): number {
    return this.#large.readAt(fd, buf, pos);
  }

  /** The length of a file from openFile. */
  sizeOf(fd: number): number {
    return this.#large.sizeOf(fd);
  }

  /** Closes a descriptor from createFile or openFile. */
  closeFile(fd: number): void {
    this.#large.closeFile(fd);
  }

  /** Reads and verifies large file `id`. */
  readFile(kind: ElementKind, id: number, want: Expected): ReadResult {
    return this.#large.readFile(kind, id, want);
  }

  /** Reads the header and key of large file `id` (see readSlotHeader). */
  readFileHeader(
    kind: ElementKind,
    id: number,
    keyLen: number,
  ): Uint8Array | undefined {
    return this.#large.readFileHeader(kind, id, keyLen);
  }

  /** Removes large file `id`. */
  removeFile(kind: ElementKind, id: number): void {
    this.#large.removeFile(kind, id);
  }

  /**
   * Removes large file `id` once the change that dropped it is durable
   * (commitRemovals), in fsync mode; at once otherwise (see
   * LargeFiles.removeFileAfterCommit).
   */
  removeFileAfterCommit(kind: ElementKind, id: number): void {
    this.#large.removeFileAfterCommit(kind, id);
  }

  /**
   * Removes the large files queued by removeFileAfterCommit; call it once
   * the journal (or a new snapshot) recording their removal is durable.
   */
  commitRemovals(): void {
    this.#large.commitRemovals();
  }

  /** True when large file `id` exists (used only after ids wrap). */
  fileExists(kind: ElementKind, id: number): boolean {
    return this.#large.fileExists(kind, id);
  }

  /** Queues `dir` for a directory sync at the next syncPending(). */
  syncDirLater(dir: string): void {
    this.#dirs.syncLater(dir);
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
    this.#blocks.syncDirty();
    this.#dirs.syncPending();
  }

  /**
   * Notes that `slot` of `kind` was freed in the use map: its block file's
   * tail may now be free (see trimFreeTails).
   */
  slotFreed(kind: ElementKind, slot: number): void {
    this.#blocks.slotFreed(kind, slot);
  }

  /**
   * Gives the disk blocks of free tails back (see BlockFiles.trimFreeTails).
   */
  /**
   * Sets the store's limit, so the disk it may take (the limit and a
   * tenth), and what its elements are counted as (`counted`): past it,
   * block files with free slots below their last used one are copied
   * without them (BlockFiles.diskBound).
   */
  setDiskBound(limit: number, counted: () => number): void {
    this.#blocks.diskBound = { bytes: limit * 1.1, limit, counted };
  }

  /** See BlockFiles.weigh. */
  weigh(use: SlotUse, incoming: number): void {
    this.#blocks.weigh(use, incoming);
  }

  /** See BlockFiles.compactHoles. */
  compactHoles(use: SlotUse): void {
    this.#blocks.compactHoles(use);
  }

  trimFreeTails(use: SlotUse, evicted = false): void {
    this.#blocks.trimFreeTails(use, evicted);
  }

  /** Closes every block file. */
  close(): void {
    this.#blocks.close();
  }
}
