/**
 * Block files (FORMAT.md §5): fixed-size slots of each element kind,
 * written one slot, a run of data slots, or an entry's data and metadata
 * together, read back and verified; and the disk blocks of free tails
 * given back.
 *
 * @module
 */
import { VersionMismatchError } from "./errors.ts";
import {
  BLOCK_FILE_HEADER,
  blockFileCount,
  blockFileHeaderMatches,
  blockFileVersion,
  ELEMENT_HEADER,
  encodeBlockFileHeader,
  runWithin,
  SLOT_SIZE,
  SLOTS_PER_FILE,
  VERSION,
  writeElementHeader,
} from "./format.ts";
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
import { blockFileParts } from "./paths.ts";
import type { ElementDirs } from "./_element_dirs.ts";
import {
  CORRUPT,
  type Expected,
  headerKeyMatches,
  isAbsence,
  OTHER_KEY,
  type ReadResult,
  settleKeyLength,
  storedKeyLen,
  verifyElement,
  verifyElementAt,
} from "./_element_verify.ts";
import type { ReadPool } from "./_read_pool.ts";
import { BlockCopy } from "./_block_copy.ts";

/** What the use maps say about slots (IndexMemory has these). */
export interface SlotUse {
  /**
   * How many of the `n` slots of `kind` from `first` lie up to the last
   * used one.
   */
  usedPrefix(kind: ElementKind, first: number, n: number): number;
  /** How many of the `n` slots of `kind` from `first` are used. */
  usedIn(kind: ElementKind, first: number, n: number): number;
  /** True when slot `slot` of `kind` is used. */
  slotUsed(kind: ElementKind, slot: number): boolean;
  /** Slots of `kind` past which every slot is free (a bound). */
  markedEnd(kind: ElementKind): number;
}

/**
 * Free slots below a block file's last used one, in bytes, from which the
 * file may be copied without them (see trimFreeTails).
 */
const COMPACT_MIN_BYTES = 1 << 20;

/** Elements up to this many bytes are staged and written in one write. */
const STAGE_BYTES = 16384;

/** Header fields for writeSlot and writeSlotPair. */
export type HeaderFields = Parameters<typeof writeElementHeader>[1];

/** The block files of one store, opened as slots in them are first used. */
export class BlockFiles {
  /** Block files of each kind: its slots / 4096 rounded up. */
  readonly blockFileCounts: PerKind<number>;
  /** Slots of each kind: data (`2^dataSlotBits`), metadata (capacity). */
  readonly slotCounts: PerKind<number>;
  /**
   * The disk the store may take (the limit and a tenth) and the disk its
   * elements are counted as (FORMAT.md §5.4), set by the store: when the
   * block files' used extents (each file up to its last used slot) with
   * the elements outside slots pass it, files with free slots are copied
   * without them (see trimFreeTails).
   */
  diskBound:
    | { bytes: number; limit: number; counted: () => number }
    | undefined;

  #io: FileIO;
  #dirs: ElementDirs;
  #pool: ReadPool;
  #durable: boolean;
  /** Open block files of each kind, by file number. */
  #fds: PerKind<(number | undefined)[]> = perKind(() => []);
  /** Bytes stored since the disk was last weighed (weigh). */
  #sinceWeighed = 0;
  /** Block files written since the last syncDirty(). */
  #dirtyFds = new Set<number>();
  /** The block file being copied without its free slots (#compact). */
  #copy: BlockCopy | undefined;
  /** Block files to copy after it, each with its used prefix then. */
  #toCopy: [ElementKind, number][] = [];
  /** The next piece of the copies, a macrotask of its own. */
  #copyTimer: ReturnType<typeof setTimeout> | undefined;
  /** The use maps the copies read (close finishes the copies with them). */
  #copyUse: SlotUse | undefined;
  /** Block files with slots freed, by kind and file: the highest freed slot. */
  #freedTop: PerKind<Map<number, number>> = perKind(() => new Map());
  /**
   * Staging buffers: an element (or pair) up to this size is laid out and
   * written with one write.
   */
  #scratch: PerKind<Uint8Array> = perKind((k) =>
    new Uint8Array(Math.max(STAGE_BYTES, SLOT_SIZE[k]))
  );

  /**
   * @param io The file layer.
   * @param dirs The store's element directories.
   * @param pool Read buffers, shared with the large files.
   * @param slotCounts Data slots (`2^dataSlotBits`) and metadata slots
   * (the entry capacity, `2^entryBits`).
   * @param durable fsync mode.
   */
  constructor(
    io: FileIO,
    dirs: ElementDirs,
    pool: ReadPool,
    slotCounts: PerKind<number>,
    durable: boolean,
  ) {
    this.#io = io;
    this.#dirs = dirs;
    this.#pool = pool;
    this.#durable = durable;
    // Every entry can hold one metadata slot, and data slots are sized for
    // the limit's bytes as well (control's dataSlotBits).
    this.slotCounts = slotCounts;
    this.blockFileCounts = perKind((k) => blockFileCount(k, slotCounts[k]));
  }

  #blockFd(kind: ElementKind, n: number): number {
    const cached = this.#fds[kind][n];
    if (cached !== undefined) return cached;
    const parts = blockFileParts(kind, n, this.blockFileCounts[kind]);
    const path = this.#dirs.ensure(parts, true);
    this.#dirs.check("open block file");
    const fd = this.#dirs.openFile(path, false);
    try {
      const full = this.#extent(kind, n);
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
    this.#dirs.syncParentLater(path);
    this.#fds[kind][n] = fd;
    return fd;
  }

  /**
   * Full length of block file `n` of `kind`: its header and its slots, the
   * kind's slots a file or those left below the slot count (FORMAT.md §5.2).
   */
  #extent(kind: ElementKind, n: number): number {
    const per = SLOTS_PER_FILE[kind];
    const slots = Math.min(per, this.slotCounts[kind] - n * per);
    return BLOCK_FILE_HEADER + slots * SLOT_SIZE[kind];
  }

  #slotPos(kind: ElementKind, slot: number): [number, number] {
    const per = SLOTS_PER_FILE[kind];
    const n = Math.floor(slot / per);
    const pos = BLOCK_FILE_HEADER + (slot % per) * SLOT_SIZE[kind];
    return [this.#blockFd(kind, n), pos];
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
    if (ELEMENT_HEADER + key.length + data.length <= buf.length) {
      const end = this.#stage(buf, 0, header, key, data);
      this.#write(fd, buf.subarray(0, end), pos);
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
    if (
      2 * (ELEMENT_HEADER + key.length) + data.length + meta.length <=
        buf.length
    ) {
      const mid = this.#stage(buf, 0, dataHeader, key, data);
      const end = this.#stage(buf, mid, metaHeader, key, meta);
      this.#write(fd, buf.subarray(0, end), pos);
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
    const head = headLen <= this.#scratch[META].length
      ? this.#scratch[META].subarray(0, headLen)
      : new Uint8Array(headLen);
    writeElementHeader(head, header, key);
    this.#write(fd, head, pos);
    this.#write(fd, data, pos + headLen);
    return pos + headLen + data.length;
  }

  // Writes `bytes` at `pos` of block file `fd`, and to its copy when one
  // is under way (a failure there only ends the copy).
  #write(fd: number, bytes: Uint8Array, pos: number): void {
    this.#io.pwrite(fd, bytes, pos);
    const copy = this.#copy;
    if (copy === undefined || copy.old !== fd) return;
    try {
      copy.mirror(bytes, pos);
    } catch {
      this.#endCopy();
    }
  }

  // Lays out header, key and element at `at` of a slot-sized buffer.
  #stage(
    buf: Uint8Array,
    at: number,
    header: HeaderFields,
    key: Uint8Array,
    data: Uint8Array,
  ): number {
    // Invariant: placement sized the slot or run for the element (runSlots,
    // fitsSlot), and this bound keeps the write inside the staging buffer;
    // nothing spills into the neighbouring slot (the seed's defect 4).
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
    if (!runWithin(kind, this.slotCounts[kind], slot, slots)) return CORRUPT;
    if (len > slots * SLOT_SIZE[kind]) return this.#notWanted(kind, slot, want);
    let fd: number, pos: number;
    try {
      [fd, pos] = this.#slotPos(kind, slot);
    } catch (err) {
      if (isAbsence(err)) return CORRUPT;
      throw err;
    }
    const buf = this.#pool.take(len);
    if (this.#io.pread(fd, buf, pos) < ELEMENT_HEADER) return CORRUPT;
    const raw = verifyElement(buf, want);
    return raw.ok ? raw : settleKeyLength(
      raw,
      buf,
      want,
      (len) => this.readSlotHeader(want.kind, slot, len),
    );
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
    if (!runWithin(DATA, this.slotCounts[DATA], slot, slots)) {
      return [CORRUPT, CORRUPT];
    }
    if (end > slots * SLOT_SIZE[DATA]) {
      const r = this.#notWanted(DATA, slot, wantData);
      return [r, r];
    }
    let fd: number, pos: number;
    try {
      [fd, pos] = this.#slotPos(0, slot);
    } catch (err) {
      if (isAbsence(err)) return [CORRUPT, CORRUPT];
      throw err;
    }
    const buf = this.#pool.take(end);
    if (this.#io.pread(fd, buf, pos) < ELEMENT_HEADER) {
      return [CORRUPT, CORRUPT];
    }
    // Both checked in place in the one buffer (no views but the bytes).
    const raw = verifyElementAt(buf, 0, mid, wantData);
    const data = raw.ok ? raw : settleKeyLength(
      raw,
      buf,
      wantData,
      (len) => this.readSlotHeader(DATA, slot, len),
    );
    if (!data.ok) return [data, data];
    const meta = verifyElementAt(buf, mid, end, wantMeta);
    return [data, meta.ok ? meta : CORRUPT];
  }

  /**
   * Reads and verifies only the metadata that writeSlotPair stored after
   * an entry's data in data slot `slot` (the run of `slots` from it),
   * without reading the data. Any failure is CORRUPT here: only the
   * data's header (readSlotPair) tells a collision from damage.
   */
  readSlotPairMeta(
    slot: number,
    wantData: Expected,
    wantMeta: Expected,
    slots = 1,
  ): ReadResult {
    const mid = ELEMENT_HEADER + wantData.key.length + wantData.size;
    const len = ELEMENT_HEADER + wantMeta.key.length + wantMeta.size;
    if (
      !runWithin(DATA, this.slotCounts[DATA], slot, slots) ||
      mid + len > slots * SLOT_SIZE[DATA]
    ) {
      return CORRUPT;
    }
    let fd: number, pos: number;
    try {
      [fd, pos] = this.#slotPos(DATA, slot);
    } catch (err) {
      if (isAbsence(err)) return CORRUPT;
      throw err;
    }
    const buf = this.#pool.take(len);
    if (this.#io.pread(fd, buf, pos + mid) !== len) return CORRUPT;
    const meta = verifyElement(buf, wantMeta);
    return meta.ok ? meta : CORRUPT;
  }
  /**
   * What a slot or run too short for the wanted element holds: another
   * key's element (a collision, as a probe meets them: a short element
   * under another key) when its header says so, else damage. Never bytes.
   */
  #notWanted(kind: ElementKind, slot: number, want: Expected): ReadResult {
    const head = this.readSlotHeader(kind, slot, want.key.length);
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

  /**
   * Notes that `slot` of `kind` was freed in the use map: its block file's
   * tail may now be free (see trimFreeTails).
   */
  slotFreed(kind: ElementKind, slot: number): void {
    const n = Math.floor(slot / SLOTS_PER_FILE[kind]);
    const top = this.#freedTop[kind].get(n);
    if (top === undefined || slot > top) this.#freedTop[kind].set(n, slot);
  }

  /**
   * Gives the disk blocks of free slots back, for each block file with
   * slots freed since the last call: when its highest used slot (by `use`)
   * is now below a freed slot, truncates the file after that slot and
   * extends it again to its full extent (a hole, read as zeros). When the
   * block files' used extents together pass `diskBound` after an eviction
   * (`evicted`: a store
   * that shrank: a lower limit at reopen, or a use that left many free
   * slots below used ones), each such file with 1 MiB or more of free
   * slots below its last used one is copied without them (see #compact).
   * Best effort: a truncation or copy that fails only keeps the blocks.
   */
  trimFreeTails(use: SlotUse, evicted = false): void {
    // The extents are summed over every block file: after evictions only,
    // not after each invalidation.
    const over = evicted && this.#overBound(use);
    for (const kind of KINDS) this.#trimFreeTails(kind, use, over);
  }

  /**
   * Copies the block files that hold 1 MiB or more of disk blocks beyond
   * their used slots without them, when such blocks (free slots written
   * before and not refilled since: what the packing left) with what the
   * elements are counted as pass the disk bound (FORMAT.md §5.4). Called
   * before each eviction, and by weigh() each time a 32nd of the limit
   * was stored. Needs the file layer's allocated(); without it nothing is
   * done.
   *
   * @param incoming Disk bytes of the element about to be stored (after
   *   eviction made room for it): weighed as if stored, with the 32nd of
   *   the limit that may follow before the next weighing, so the bound
   *   holds between weighings too.
   */
  weigh(use: SlotUse, incoming: number): void {
    const bound = this.diskBound;
    if (bound === undefined) return;
    this.#sinceWeighed += incoming;
    if (this.#sinceWeighed < bound.limit / 32) return;
    this.#sinceWeighed = 0;
    this.compactHoles(use, incoming + bound.limit / 32);
  }

  /**
   * Copies the block files holding 1 MiB or more of free slots' blocks
   * without them when those blocks, what the elements are counted as and
   * `ahead` bytes still to come pass the disk bound (see weigh). The
   * copies go in pieces between turns of the event loop, started a 32nd
   * of the limit before the bound would be passed; when it would be and
   * they are not done, they are finished now.
   */
  compactHoles(use: SlotUse, ahead = 0): void {
    const bound = this.diskBound;
    if (bound === undefined || this.#io.allocated === undefined) return;
    const excess: [ElementKind, number, number][] = [];
    let total = 0;
    let failed = false;
    for (const kind of KINDS) {
      const per = SLOTS_PER_FILE[kind];
      const size = SLOT_SIZE[kind];
      this.#fds[kind].forEach((fd, n) => {
        if (fd === undefined || failed) return;
        let got: number | undefined;
        try {
          got = this.#io.allocated!(fd);
        } catch {
          // Best effort, as the copies: a store never fails for it.
          failed = true;
          return;
        }
        if (got === undefined) return;
        const first = n * per;
        const slots = Math.min(per, this.slotCounts[kind] - first);
        const used = use.usedPrefix(kind, first, slots);
        const extra = got - BLOCK_FILE_HEADER -
          use.usedIn(kind, first, used) * size;
        if (extra > 0) total += extra;
        if (extra >= COMPACT_MIN_BYTES) excess.push([kind, n, extra]);
      });
    }
    // What the directory holds beyond the elements' count: near the bound?
    if (failed) return;
    const room = bound.bytes - bound.counted() - total;
    if (room >= ahead + bound.limit / 32) return;
    // Most free blocks first: the first copies give back the most.
    excess.sort((a, b) => b[2] - a[2]);
    for (const [kind, n] of excess) this.#compact(kind, n);
    if (room < ahead) this.#copyAll(use);
    else this.#scheduleCopy(use);
  }

  // True when the block files' used extents (from the maps), with what
  // elements outside slots are counted as, pass the disk bound. The maps
  // are read up to what may be marked only: a table of 2^24 entries has
  // maps of tens of MiB, mostly free, and a scan to their ends took
  // 60–130 ms at each eviction's last step.
  #overBound(use: SlotUse): boolean {
    const bound = this.diskBound;
    if (bound === undefined) return false;
    let extent = 0;
    let inSlots = 0;
    for (const kind of KINDS) {
      const per = SLOTS_PER_FILE[kind];
      const size = SLOT_SIZE[kind];
      const end = use.markedEnd(kind);
      for (let first = 0; first < end; first += per) {
        extent += use.usedPrefix(kind, first, Math.min(per, end - first)) *
          size;
      }
      inSlots += use.usedIn(kind, 0, end) * size;
    }
    return extent + Math.max(0, bound.counted() - inSlots) > bound.bytes;
  }

  #trimFreeTails(kind: ElementKind, use: SlotUse, over: boolean): void {
    const freed = this.#freedTop[kind];
    const size = SLOT_SIZE[kind];
    for (const [n, top] of freed) {
      // Freed before any use since open (an eviction at open): opened now.
      let fd: number;
      try {
        fd = this.#blockFd(kind, n);
      } catch {
        continue; // no such file: no blocks to give back
      }
      const per = SLOTS_PER_FILE[kind];
      const first = n * per;
      const used = this.#usedPrefixOf(kind, n, use);
      const full = this.#extent(kind, n);
      if (first + used <= top) {
        try {
          this.#io.ftruncate(fd, BLOCK_FILE_HEADER + used * size);
          this.#io.ftruncate(fd, full);
        } catch { /* the blocks stay in use; nothing is lost */ }
      }
      const copy = this.#copy;
      if (copy?.kind === kind && copy.n === n && first + used <= top) {
        try {
          copy.trimmed(BLOCK_FILE_HEADER + used * size, full);
        } catch {
          this.#endCopy();
        }
      }
      if (!over) continue;
      const holes = (used - use.usedIn(kind, first, used)) * size;
      if (holes >= COMPACT_MIN_BYTES) this.#compact(kind, n);
    }
    freed.clear();
    // Without the file layer's allocated(), nothing else would finish the
    // copies before the bound is passed (compactHoles).
    if (this.#io.allocated === undefined) this.#copyAll(use);
    else this.#scheduleCopy(use);
  }

  // Block file `n` of `kind` is to be copied without its free slots
  // (#copyPiece), after the copies already due.
  #compact(kind: ElementKind, n: number): void {
    const copy = this.#copy;
    if (copy?.kind === kind && copy.n === n) return;
    if (this.#toCopy.some(([k, m]) => k === kind && m === n)) return;
    this.#toCopy.push([kind, n]);
  }

  #scheduleCopy(use: SlotUse): void {
    this.#copyUse = use;
    if (this.#copyTimer !== undefined) return;
    if (this.#copy === undefined && this.#toCopy.length === 0) return;
    // A macrotask (a microtask would hold timers and I/O until the end).
    this.#copyTimer = setTimeout(() => {
      this.#copyTimer = undefined;
      this.#copyPiece(use);
      this.#scheduleCopy(use);
    }, 0);
  }

  /** Finishes every copy due now (the bound would be passed without). */
  #copyAll(use: SlotUse): void {
    while (this.#copy !== undefined || this.#toCopy.length > 0) {
      this.#copyPiece(use);
    }
  }

  /**
   * One piece of the copies: starts the next one due, or copies the next
   * used slots of the one under way, or (its slots all copied) puts it in
   * place of its block file: synced, renamed over it and the directory
   * synced, so a crash leaves the old file or the copy, whose used slots
   * are the same bytes (a slot an entry, a pin or an undurable free still
   * holds stays marked used, FORMAT.md §8 invariant 3; a slot written
   * meanwhile was written to both). Best effort: on any failure the old
   * file stays, and the copy is removed.
   */
  #copyPiece(use: SlotUse): void {
    const copy = this.#copy;
    if (copy === undefined) {
      const next = this.#toCopy.shift();
      if (next !== undefined) this.#startCopy(next[0], next[1], use);
      return;
    }
    try {
      if (!copy.copied) {
        copy.step(use);
        return;
      }
      // Not into a directory that replaced the store's.
      this.#dirs.check("compact block file");
      const fd = copy.finish();
      this.#copy = undefined;
      this.#fds[copy.kind][copy.n] = fd;
      if (this.#dirtyFds.delete(copy.old)) this.#dirtyFds.add(fd);
    } catch {
      this.#endCopy();
      return;
    }
    try {
      this.#io.close(copy.old);
      this.#io.syncDir(copy.path.slice(0, copy.path.lastIndexOf("/")));
    } catch { /* the copy is in place; its name is synced with the next */ }
    this.#dirs.syncParentLater(copy.path);
  }

  /** Slots of block file `n` of `kind` up to and with its last used one. */
  #usedPrefixOf(kind: ElementKind, n: number, use: SlotUse): number {
    const per = SLOTS_PER_FILE[kind];
    const first = n * per;
    return use.usedPrefix(
      kind,
      first,
      Math.min(per, this.slotCounts[kind] - first),
    );
  }

  #startCopy(kind: ElementKind, n: number, use: SlotUse): void {
    const old = this.#fds[kind][n];
    if (old === undefined) return;
    const first = n * SLOTS_PER_FILE[kind];
    const used = this.#usedPrefixOf(kind, n, use);
    try {
      const parts = blockFileParts(kind, n, this.blockFileCounts[kind]);
      const path = this.#dirs.ensure(parts, true);
      // Bytes written to the old file and not yet synced go into the copy.
      if (this.#durable && this.#dirtyFds.has(old)) this.#io.fsync(old);
      this.#copy = new BlockCopy(
        this.#io,
        (tmp) => this.#dirs.openFile(tmp, false), // read-write, created
        { kind, n, path },
        old,
        { first, used, extent: this.#extent(kind, n) },
      );
    } catch { /* the old file stays */ }
  }

  // Ends the copy under way without it (a failure: the old file stays).
  #endCopy(): void {
    this.#copy?.abort();
    this.#copy = undefined;
  }

  /**
   * In fsync mode, syncs the bytes of the block files written since the
   * last call (see ElementFiles.syncPending).
   */
  syncDirty(): void {
    if (this.#durable) {
      for (const fd of this.#dirtyFds) this.#io.fsync(fd);
    }
    this.#dirtyFds.clear();
  }

  /**
   * Closes every block file, after the copies due (best effort: a copy
   * that fails is dropped), so a closed store is within its disk bound.
   */
  close(): void {
    if (this.#copyTimer !== undefined) clearTimeout(this.#copyTimer);
    this.#copyTimer = undefined;
    if (this.#copyUse !== undefined) this.#copyAll(this.#copyUse);
    this.#copyUse = undefined;
    this.#toCopy = [];
    this.#endCopy();
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
