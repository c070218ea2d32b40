/**
 * {@linkcode BackingStore}: NetSurf's file backing store as a Deno module.
 *
 * All I/O inside an operation is synchronous (positional `node:fs` calls,
 * measured far faster than the promise APIs for small blocks), so each
 * operation runs to completion without interleaving: concurrent calls
 * through `Promise.all` see a consistent store, and concurrent stores to
 * one key end with one of the written values, whole.
 *
 * @module
 */
import { posix } from "node:path";
import { crc32 as zlibCrc32 } from "node:zlib";
import {
  ClosedError,
  NoSpaceError,
  StoreError,
  toStoreError,
} from "./errors.ts";
import {
  type ElementFiles,
  type Expected,
  fitsSlot,
  headerKeyMatches,
  type ReadResult,
  runSlots,
} from "./elements.ts";
import { SLOTS_PER_FILE } from "./format.ts";
import {
  DATA,
  type ElementKind,
  type ElementRecord,
  type IndexMemory,
  MAX_KEY_BYTES,
  META,
  recordSlots,
} from "./index_memory.ts";
import {
  type Key,
  normaliseKey,
  type NormalKey,
  nsurlComponents,
} from "./key.ts";
import type { StoreLock } from "./lock.ts";
import { KINDS, otherKinds } from "./kinds.ts";
import {
  type OpenOptions,
  type ResolvedOptions,
  resolveOptions,
} from "./options.ts";
import { type Pin, PinTable } from "./pins.ts";
import { openState, type StoreState } from "./_open.ts";
import { releaseSlotFrees, rotate } from "./_persist.ts";
import {
  apply,
  encodeOp,
  itemsPerEntry,
  OP,
  type Op,
  REMOVE_ITEM_BYTES,
  REMOVE_REASON,
  type Table,
  type Touch,
  TOUCH_ITEM_BYTES,
} from "./ops.ts";
import type { FileIO } from "./io.ts";

/** Largest element accepted (bytes); also never more than the limit. */
export const MAX_ELEMENT_BYTES = 2 ** 31 - 1;

/** Selects the element of an entry: data (default) or metadata. */
export interface ElementOptions {
  /** True for the metadata element. */
  meta?: boolean;
}

/**
 * A fetched element. Its bytes stay valid after release; releasing ends
 * the reference that keeps the entry pinned. Treat `data` as read-only:
 * concurrent fetches of one element share it.
 */
export interface Hit extends Disposable {
  /** The element's bytes. */
  readonly data: Uint8Array;
  /** The canonical key. */
  readonly key: string;
  /** True for a metadata element. */
  readonly meta: boolean;
  /** Ends this reference (idempotent). */
  release(): void;
}

/**
 * Both elements of an entry from {@linkcode BackingStore.fetchEntry}. The
 * bytes stay valid after release; releasing ends the references that keep
 * the entry pinned. Treat the bytes as read-only: concurrent fetches share
 * them.
 */
export interface EntryHit extends Disposable {
  /** The data element, or undefined when the entry has none. */
  readonly data: Uint8Array | undefined;
  /** The metadata element, or undefined when the entry has none. */
  readonly meta: Uint8Array | undefined;
  /** The canonical key. */
  readonly key: string;
  /** Ends this reference (idempotent). */
  release(): void;
}

/** Counters and totals from {@linkcode BackingStore.stats}. */
export interface StoreStats {
  /** Fetches that returned an element. */
  hits: number;
  /** Fetches that found nothing (including damaged elements). */
  misses: number;
  /** Bytes served by hits. */
  hitBytes: number;
  /** Live entries. */
  entries: number;
  /** Bytes of element data held (live, plus superseded-but-pinned). */
  bytes: number;
  /** The byte limit. */
  limit: number;
  /** Bytes freed beyond the limit per eviction. */
  hysteresis: number;
  /** Entry capacity (2^entryBits). */
  capacity: number;
  /** Successful stores. */
  stores: number;
  /** Entries removed by `invalidate`. */
  invalidations: number;
  /** Entries removed by eviction. */
  evictions: number;
  /** Element bytes removed by eviction. */
  evictedBytes: number;
  /** Elements dropped because they failed verification. */
  corruptions: number;
  /** Elements with live references. */
  pinned: number;
  /** Bytes held only by superseded pinned elements. */
  deferredBytes: number;
  /** Damage repaired while opening (unreadable index, bad records). */
  repairedOnOpen: number;
  /** Block slots in use for data elements (of `capacity`). */
  dataSlotsUsed: number;
  /** Block slots in use for metadata elements (of `capacity`). */
  metaSlotsUsed: number;
}

/** What a hit's finalizer releases if the hit is dropped unreleased. */
interface HitToken {
  pins: Pin[];
  released: boolean;
}

interface Lookup {
  entry: number;
  lo: number;
  hi: number;
  keyLen: number;
}

/** Entries per journaled `touch` batch (16 bytes each: 64 KiB a batch). */
const TOUCH_BATCH = 4096;

// The clock for the times entries record (FORMAT.md §1: u32 seconds). It
// never goes back: within a process a wall-clock step back is bridged by
// monotonic time until the wall clock catches up, and an opened store
// raises it past the latest use it recorded (clockAtLeast), so eviction
// order survives a clock set back, live or between runs. Shared by the
// stores of a process (as the wall clock is); it only ever runs ahead.
let clockLast = 0; // last time returned, ms
let clockBase = -1; // while bridging: the time at clockMono, ms; else -1
let clockMono = 0; // performance.now() at clockBase

function nowMs(): number {
  const wall = Date.now();
  if (clockBase < 0) {
    if (wall >= clockLast) return clockLast = wall; // the usual path
    clockBase = clockLast; // stepped back: bridge from the last time
    clockMono = performance.now();
  }
  const bridged = clockBase + (performance.now() - clockMono);
  if (wall >= bridged) {
    clockBase = -1; // caught up (or stepped forward): the wall clock again
    return clockLast = wall;
  }
  return clockLast = Math.max(clockLast, bridged);
}

function nowSeconds(): number {
  return Math.min(Math.floor(nowMs() / 1000), 0xffffffff);
}

/** Moves the clock to the second after `seconds` if it is not past it. */
function clockAtLeast(seconds: number): void {
  const now = nowMs();
  if (Math.floor(now / 1000) >= seconds) return;
  clockBase = (seconds + 1) * 1000;
  clockMono = performance.now();
  clockLast = clockBase;
}

/** Runs `f` now; what it throws becomes the returned promise's rejection. */
function promised<T>(f: () => T | Promise<T>): Promise<T> {
  try {
    return Promise.resolve(f());
  } catch (err) {
    return Promise.reject(err);
  }
}

/** What a read of entry element `rec` of the key hashed as `h` expects. */
function expected(
  kind: ElementKind,
  key: Uint8Array,
  h: Lookup,
  rec: ElementRecord,
): Expected {
  return {
    kind,
    key,
    hashLo: h.lo,
    hashHi: h.hi,
    size: rec.size,
    crc: rec.crc,
  };
}

/**
 * Filled by #fetchPin when it read the metadata stored after the data in
 * one read: entry `i`'s metadata result.
 */
interface Paired {
  i: number;
  r?: ReadResult;
}

const NO_BYTES = new Uint8Array(0);

function checkElement(bytes: unknown, name: string): void {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`Cannot store element: ${name} must be a Uint8Array`);
  }
  // A view of a detached (transferred) or shrunk buffer reads as empty but
  // cannot be copied: refuse it before anything is written. Copying it into
  // an empty array throws exactly then.
  if (bytes.length === 0) {
    try {
      NO_BYTES.set(bytes);
    } catch {
      throw new TypeError(
        `Cannot store element: ${name} is a view of a detached or out-of-bounds ArrayBuffer`,
      );
    }
  }
}

function kindOf(options: ElementOptions | undefined): ElementKind {
  if (options === undefined) return DATA;
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot use options: expected an object");
  }
  return options.meta === true ? META : DATA;
}

/**
 * A persistent, size-bounded object cache in one directory.
 *
 * @example Store, fetch, invalidate
 * ```ts
 * import { BackingStore } from "./mod.ts";
 * await using store = await BackingStore.open("./cache", { limit: 64 * 2 ** 20 });
 * await store.store("https://example.com/logo.png", new Uint8Array([1, 2, 3]));
 * using hit = await store.fetch("https://example.com/logo.png");
 * console.log(hit?.data); // Uint8Array(3) [ 1, 2, 3 ]
 * await store.invalidate("https://example.com/logo.png"); // true
 * ```
 */
export class BackingStore implements AsyncDisposable {
  #dir: string;
  #opt: ResolvedOptions;
  #io: FileIO;
  #lock: StoreLock | undefined;
  #mem: IndexMemory;
  #files: ElementFiles;
  #state: StoreState;
  #pins: PinTable;
  /** The table as the operations see it, with the storage they release. */
  #table: Table;
  #finalizer: FinalizationRegistry<HitToken>;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Entries whose usage changed since it was last journaled. */
  #touched = new Set<number>();
  /** True when equal 64-bit keyed hashes identify a key (see #find). */
  #trustHash: boolean;
  #syncing: Promise<void> | undefined;
  #liveBytes = 0;
  #deferredBytes = 0;
  #closed = false;
  /** Calls since open, for the periodic directory check. */
  #calls = 0;
  #counters = {
    hits: 0,
    misses: 0,
    hitBytes: 0,
    stores: 0,
    invalidations: 0,
    evictions: 0,
    evictedBytes: 0,
    corruptions: 0,
  };

  private constructor(
    dir: string,
    opt: ResolvedOptions,
    io: FileIO,
    lock: StoreLock,
    state: StoreState,
  ) {
    this.#dir = dir;
    this.#opt = opt;
    this.#io = io;
    this.#lock = lock;
    this.#state = state;
    this.#mem = state.mem;
    this.#files = state.files;
    this.#liveBytes = state.liveBytes;
    this.#trustHash = opt.hashOverride === undefined &&
      state.control.hash === "siphash13";
    this.#pins = new PinTable({
      unpinned: (entry) => this.#mem.setPinned(entry, false),
      freeDeferred: (kind, rec) => {
        this.#deferredBytes -= rec.size;
        this.#freeStorage(kind, rec);
      },
    }, opt.pinTimeoutMs);
    this.#table = {
      mem: this.#mem,
      dropped: (i, kind, rec) => {
        this.#liveBytes -= rec.size;
        if (this.#pins.supersede(i, kind, rec)) {
          this.#deferredBytes += rec.size;
        } else {
          this.#freeStorage(kind, rec);
        }
      },
      placed: (_i, _kind, rec) => {
        this.#liveBytes += rec.size;
        if (!rec.inFile) this.#state.blocksDirty = true;
      },
      removed: (i, moved) => {
        this.#touched.delete(i);
        if (moved >= 0) {
          this.#pins.moved(moved, i);
          if (this.#touched.delete(moved)) this.#touched.add(i);
        }
      },
    };
    this.#finalizer = new FinalizationRegistry((token) => {
      if (token.released || this.#closed) return;
      for (const pin of token.pins) this.#pins.release(pin);
    });
    let latest = 0; // the latest use recorded: times here never go back
    for (let i = 0; i < this.#mem.count; i++) {
      latest = Math.max(latest, this.#mem.lastUsed(i));
    }
    clockAtLeast(latest);
    if (this.#mem.count >= this.#mem.capacity || this.#liveBytes >= opt.limit) {
      try {
        this.#evict(0, -1);
      } catch (err) {
        // A store that cannot evict now (a full disk) still opens; the
        // next store evicts again before it adds anything.
        if (!(err instanceof StoreError)) throw err;
      }
    }
  }

  /**
   * Opens (or creates) the store in `dir`.
   *
   * @param dir The store directory; created (0700) if missing.
   * @param options Limits and table sizes; see {@linkcode OpenOptions}.
   * @returns the open store; close it with `close()` or `await using`.
   * @throws {RangeError|TypeError} for bad options, before touching disk.
   * @throws {StoreError} `LOCKED`, `NOT_A_STORE`, `VERSION_MISMATCH`,
   *   `CORRUPT` (control file), `OPTION_MISMATCH`, `IO`, `NO_SPACE`.
   *
   * @example
   * ```ts
   * import { BackingStore } from "./mod.ts";
   * const store = await BackingStore.open("./cache", { entryBits: 17 });
   * await store.close();
   * ```
   */
  static open(
    dir: string | URL,
    options?: OpenOptions & { io?: FileIO },
  ): Promise<BackingStore> {
    return promised(() => {
      const opt = resolveOptions(options);
      const path = storePath(dir);
      const { state, lock, io } = openState(path, opt, options?.io);
      try {
        return new BackingStore(path, opt, io, lock, state);
      } catch (err) {
        // Never keep the lock or a descriptor of a store that did not open.
        try {
          state.journal?.close();
          state.files.close();
        } catch {
          /* the open failure is the one to report */
        } finally {
          lock.release();
        }
        throw err;
      }
    });
  }

  /** The store directory. */
  get dir(): string {
    return this.#dir;
  }

  #checkOpen(action: string): void {
    if (this.#closed) {
      throw new ClosedError(`Cannot ${action}: the store is closed`);
    }
    // Every path-based change checks that the store path still names the
    // store's directory; writes into already open files do not, so every
    // 64th call checks too (one stat, ~2 µs), and a handle whose directory
    // was removed or replaced stops acknowledging within 64 calls.
    if ((++this.#calls & 63) === 0) this.#lock!.checkDir(action);
    else if (this.#lock!.replaced !== undefined) throw this.#lock!.replaced;
  }

  // ---- keys ---------------------------------------------------------------

  #hash(nk: NormalKey): Lookup {
    const mem = this.#mem;
    const override = this.#opt.hashOverride;
    const nsurl = override === undefined &&
      this.#state.control.hash === "nsurl";
    let lo = 0;
    let hi = 0;
    // The nsurl hash stages its components in the key region, so the key
    // itself is encoded after it.
    if (override !== undefined) lo = override(nk.text) >>> 0;
    else if (nsurl) lo = mem.hashNsurl(nsurlComponents(nk));
    const keyLen = mem.encodeKey(nk.text);
    if (keyLen < 0) {
      throw new RangeError(
        `Cannot use key: longer than ${MAX_KEY_BYTES} UTF-8 bytes`,
      );
    }
    if (override === undefined && !nsurl) [lo, hi] = mem.hashSip(keyLen);
    return { entry: -1, lo, hi, keyLen };
  }

  /** True when entry `i` belongs to `text` (whose bytes are `key`). */
  #isKeyOf(i: number, text: string, key: Uint8Array): boolean | "corrupt" {
    const want = {
      key,
      hashLo: this.#mem.hashLo(i),
      hashHi: this.#mem.hashHi(i),
    };
    for (const kind of KINDS) {
      const pin = this.#pins.get(i, kind);
      if (pin !== undefined) return pin.text === text;
    }
    // The entry is damaged only when every element it has is: one damaged
    // element (say, of a replacement a crash interrupted) does not decide
    // for the other, which fetch verifies on its own.
    for (const kind of KINDS) {
      const rec = this.#mem.element(i, kind);
      // Metadata in the data's slot has no header of its own to go by.
      if (rec === undefined || rec.withData === true) continue;
      const head = rec.inFile
        ? this.#files.readFileHeader(kind, rec.loc, key.length)
        : this.#files.readSlotHeader(kind, rec.loc, key.length);
      const mine = headerKeyMatches(head, { ...want, kind });
      if (mine !== "corrupt") return mine;
    }
    return "corrupt";
  }

  /** Finds the entry for `nk`; `entry` is -1 when absent. */
  #find(nk: NormalKey): Lookup {
    const h = this.#hash(nk);
    let pos = this.#mem.lookupFirst(h.lo, h.hi);
    // With the store's secret-keyed 64-bit SipHash, equal hashes are taken
    // as the same key here (a collision, about 2^-64 a pair and not
    // craftable without the key, could at worst replace or drop an entry:
    // fetch still compares full keys, so it can never serve wrong bytes).
    // The 32-bit nsurl hash and test overrides collide for real: their
    // stored keys are read back and compared.
    if (pos >= 0 && this.#trustHash) {
      return { ...h, entry: this.#mem.entryAt(pos) };
    }
    if (pos < 0) return h;
    const key = this.#mem.keyBytes(h.keyLen).slice();
    while (pos >= 0) {
      const i = this.#mem.entryAt(pos);
      const mine = this.#isKeyOf(i, nk.text, key);
      if (mine === true) return { ...h, entry: i };
      if (mine === "corrupt") {
        pos = this.#dropCorrupt(i)
          ? this.#mem.lookupFirst(h.lo, h.hi) // the map changed: rescan
          : this.#mem.lookupNext(h.lo, h.hi, pos);
        continue;
      }
      pos = this.#mem.lookupNext(h.lo, h.hi, pos);
    }
    return h;
  }

  // ---- storage ------------------------------------------------------------

  #freeStorage(kind: ElementKind, rec: ElementRecord): void {
    // Metadata in its data's slot goes with that slot.
    if (rec.withData === true) return;
    if (rec.inFile) {
      try {
        this.#files.removeFileAfterCommit(kind, rec.loc);
      } catch {
        // A file that cannot be removed is an orphan for check-store; the
        // index no longer refers to it, so no wrong bytes can come of it.
      }
    } else if (this.#opt.durability === "fsync") {
      // Reusing the slot before the change that freed it is durable could
      // overwrite a value the durable index still points at (a crash right
      // after the block file's sync and before the journal's).
      const end = rec.loc + recordSlots(rec);
      for (let s = rec.loc; s < end; s++) {
        this.#state.slotFrees[kind].push(s);
      }
    } else {
      this.#mem.freeRun(kind, rec.loc, recordSlots(rec));
      this.#files.slotFreed(kind, rec.loc + recordSlots(rec) - 1);
      this.#state.blocksDirty = true;
    }
  }

  /**
   * Removes entries (indices in descending order, so each removal leaves
   * the lower ones in place) and their elements, after journaling it.
   * Returns the bytes they held.
   */
  #removeEntries(indices: readonly number[], reason: number): number {
    const mem = this.#mem;
    // 8 bytes a victim: a large eviction is split into entries that each
    // fit an empty journal, each applied before the next is journaled, so
    // a rotation between them snapshots the removals done so far. A crash
    // between them leaves some victims evicted and the others in place,
    // a state eviction may always leave.
    const per = itemsPerEntry(this.#state.journal!.maxEntry, REMOVE_ITEM_BYTES);
    const before = this.#liveBytes;
    for (let at = 0; at < indices.length; at += per) {
      const piece = indices.slice(at, at + per);
      this.#logApply({
        tag: OP.remove,
        time: nowSeconds(),
        reason,
        items: piece.map((i) => [i, mem.hashLo(i)] as const),
      }, true);
    }
    // Freed slots at the end of a block file give their disk blocks back.
    this.#files.trimFreeTails((kind) => mem.useMap(kind));
    return before - this.#liveBytes;
  }

  /**
   * Drops entry `i`'s element of `kind` after it failed verification, or
   * the whole entry when that was its only element or when `kind` is
   * undefined (no element of it is valid). Returns false if it could not
   * be journaled (then it stays, and reads of it keep missing: still never
   * wrong bytes).
   */
  #dropCorrupt(i: number, kind?: ElementKind): boolean {
    this.#counters.corruptions++;
    try {
      // Data cannot go alone from under metadata stored in its slot.
      if (
        kind !== undefined &&
        otherKinds(kind).some((k) => this.#mem.has(i, k)) &&
        !(kind === DATA && this.#mem.metaWithData(i))
      ) {
        this.#logApply({
          tag: OP.clear,
          time: nowSeconds(),
          reason: REMOVE_REASON.corrupt,
          index: i,
          hashLo: this.#mem.hashLo(i),
          kind,
        }, true);
      } else {
        this.#removeEntries([i], REMOVE_REASON.corrupt);
      }
      return true;
    } catch {
      return false;
    }
  }

  // ---- the journal --------------------------------------------------------

  /**
   * Appends an index change to the journal, rotating first when full. A
   * `removal` (invalidate, evict, drop) that finds no room for a rotation
   * (a full disk) goes into the journal's reserve instead, so removing,
   * which is what frees space, keeps working.
   */
  #log(entry: Uint8Array, removal = false): void {
    const s = this.#state;
    if (!s.journal!.fits(entry.length)) {
      entry = entry.slice(); // it may be in the encoders' shared buffer
      try {
        this.#rotate();
      } catch (err) {
        if (
          !removal || !(err instanceof NoSpaceError) ||
          !s.journal!.fits(entry.length, true)
        ) {
          throw err;
        }
      }
    }
    s.journal!.append(entry);
  }

  /**
   * Journals `op` (a removal as for #log), then applies it to the table:
   * the one way the live store changes its index.
   */
  #logApply(op: Op, removal = false): void {
    this.#log(encodeOp(op), removal);
    this.#apply(op);
  }

  /** Applies a journaled `op` to the table. */
  #apply(op: Op): void {
    // Invariant: the live store builds only operations that match its
    // table; one that does not is a defect, never a state on disk.
    if (!apply(this.#table, op)) {
      throw new Error(
        `Cannot apply operation ${op.tag}: it does not match the table`,
      );
    }
  }

  /** New snapshot, empty journal (FORMAT.md §10.3). */
  #rotate(): void {
    rotate(this.#io, this.#dir, this.#state);
    this.#touched.clear(); // the snapshot holds the current usage
  }

  /** Journals the use counts bumped since the last call, in batches. */
  #logTouches(): void {
    if (this.#touched.size === 0) return;
    const mem = this.#mem;
    const items: Touch[] = [];
    for (const i of this.#touched) {
      items.push({
        index: i,
        hashLo: mem.hashLo(i),
        lastUsed: mem.lastUsed(i),
        useCount: mem.useCount(i),
      });
    }
    // Batches that each fit an empty journal (a small one holds fewer).
    const per = Math.min(
      TOUCH_BATCH,
      itemsPerEntry(this.#state.journal!.maxEntry, TOUCH_ITEM_BYTES),
    );
    for (let at = 0; at < items.length; at += per) {
      this.#logApply({
        tag: OP.touch,
        time: nowSeconds(),
        items: items.slice(at, at + per),
      });
    }
    this.#touched.clear();
  }

  /**
   * In fsync mode, resolves once everything written so far is on stable
   * storage. Calls made in one tick share one fsync (group commit).
   */
  #commit(): Promise<void> {
    if (this.#opt.durability !== "fsync") return Promise.resolve();
    this.#syncing ??= Promise.resolve().then(() => {
      this.#syncing = undefined;
      if (this.#closed) return; // close synced everything
      try {
        this.#files.syncPending();
        this.#state.journal!.sync();
      } catch (err) {
        throw toStoreError("sync store", err);
      }
      // The journal now records what superseded these files.
      this.#files.commitRemovals();
      releaseSlotFrees(this.#state);
    });
    return this.#syncing;
  }

  #allocFileId(kind: ElementKind): number {
    const s = this.#state;
    for (;;) {
      const id = s.nextFileId;
      s.nextFileId = (id + 1) >>> 0;
      if (s.nextFileId === 0) s.fileIdsWrapped = true;
      if (!s.fileIdsWrapped || !this.#files.fileExists(kind, id)) return id;
    }
  }

  // ---- eviction -----------------------------------------------------------

  /**
   * Evicts entries, never `keep`, until `incoming` more bytes fit under
   * the limit with more than the hysteresis freed, and (when the table is
   * full) until the same fraction of entries is free.
   *
   * Only live bytes count: superseded elements a reference still pins
   * (`deferredBytes`) are freed when it ends, or after `pinTimeoutMs`, and
   * no eviction can free them sooner. Counting them would make every store
   * evict every unpinned entry while they outweigh the limit's room.
   */
  #evict(incoming: number, keep: number): void {
    const mem = this.#mem;
    const opt = this.#opt;
    this.#pins.expire(performance.now());
    const total = this.#liveBytes;
    const overBytes = total + incoming >= opt.limit;
    const full = mem.count >= mem.capacity;
    if (!overBytes && !full) return;
    // Down to limit - hysteresis with the incoming bytes counted: more than
    // the hysteresis freed, however far over the store was (a reopen with a
    // smaller limit).
    const byteTarget = overBytes
      ? total + incoming - (opt.limit - opt.hysteresis) + 1
      : 0;
    // Defect 7: a full table of small entries frees a share of entries,
    // not hysteresis bytes (which would empty it).
    const entryTarget = full
      ? Math.max(1, Math.ceil(mem.capacity * opt.hysteresis / opt.limit))
      : 0;
    const victims = Array.from(
      mem.selectVictims(byteTarget, entryTarget, keep),
    );
    // Swap-remove keeps lower indices valid, so remove highest first.
    victims.sort((a, b) => b - a);
    this.#counters.evictedBytes += this.#removeEntries(
      victims,
      REMOVE_REASON.evict,
    );
    this.#counters.evictions += victims.length;
  }

  // ---- maintenance --------------------------------------------------------

  /** Schedules the deferred work: journaling use counts (as the seed's 10 s timer). */
  #scheduleMaintenance(): void {
    if (this.#timer !== undefined || this.#closed) return;
    const timer = setTimeout(() => {
      this.#timer = undefined;
      try {
        this.#maintain();
      } catch {
        // Deferred work retries at the next fetch, flush or close; a failure
        // here must not crash the host process.
      }
    }, this.#opt.maintenanceDelayMs);
    // Pending index writes must not keep a server process alive.
    Deno.unrefTimer(timer as unknown as number);
    this.#timer = timer;
  }

  #maintain(): void {
    this.#lock?.checkDir("maintain store");
    this.#pins.expire(performance.now());
    this.#logTouches();
  }

  // ---- public API ---------------------------------------------------------

  /**
   * Stores `bytes` as the data (or, with `{ meta: true }`, metadata)
   * element of `key`, replacing any previous one.
   *
   * @param key A URL (normalised) or a string (verbatim).
   * @param bytes The element; larder keeps its own copy.
   * @param options `meta: true` for the metadata element.
   * @throws {TypeError} for a bad key or non-Uint8Array bytes.
   * @throws {RangeError} for a key over 16 KiB or bytes over the limit.
   * @throws {StoreError} `CLOSED`, `IO`, `NO_SPACE`, `CORRUPT`.
   *
   * @example
   * ```ts
   * await store.store("https://example.com/", body);
   * await store.store("https://example.com/", headers, { meta: true });
   * ```
   */
  store(key: Key, bytes: Uint8Array, options?: ElementOptions): Promise<void> {
    return promised(() => {
      this.#store(key, bytes, options);
      return this.#commit();
    });
  }

  /**
   * Stores an entry's data and metadata together: afterwards the entry
   * holds exactly these elements (no `meta` drops a previous one). One
   * journal operation records both, so after a crash the entry has the
   * old pair or the new one, never a mix; and it costs one key lookup.
   *
   * @param key A URL (normalised) or a string (verbatim).
   * @param data The data element; larder keeps its own copy.
   * @param meta The metadata element (say, serialised response headers).
   * @throws {TypeError} for a bad key or non-Uint8Array elements.
   * @throws {RangeError} for a key over 16 KiB or elements over the limit
   *   together.
   * @throws {StoreError} `CLOSED`, `IO`, `NO_SPACE`, `CORRUPT`.
   *
   * @example
   * ```ts
   * await store.storeEntry("https://example.com/", body, headers);
   * ```
   */
  storeEntry(key: Key, data: Uint8Array, meta?: Uint8Array): Promise<void> {
    return promised(() => {
      this.#storeEntry(key, data, meta);
      return this.#commit();
    });
  }

  #store(key: Key, bytes: Uint8Array, options?: ElementOptions): void {
    const nk = normaliseKey(key);
    checkElement(bytes, "bytes");
    const kind = kindOf(options);
    this.#checkOpen("store element");
    this.#checkSize(bytes.length);
    const mem = this.#mem;
    const { found, i: existing } = this.#makeRoom(
      nk,
      bytes.length,
      (i) => mem.elementSize(i, kind),
    );
    if (kind === DATA && existing >= 0 && this.#mem.metaWithData(existing)) {
      // The metadata lives in the old data's slot: store the entry, its
      // metadata moving with the new data (dropped if it fails to verify).
      // Only the new data's size is checked, as for any data store.
      const meta = this.#keptMeta(existing, found);
      return this.#storeEntry(key, bytes, meta, false);
    }
    const now = nowSeconds();
    const index = existing < 0 ? mem.count : existing;
    const keyBytes = mem.keyBytes(found.keyLen);
    const rec = this.#place(kind, found, keyBytes, bytes, now);
    const op: Op = {
      tag: OP.store,
      time: now,
      index,
      hashLo: found.lo,
      hashHi: found.hi,
      kind,
      rec,
      key: keyBytes,
    };
    // 2. The journal records it before the table changes.
    try {
      this.#log(encodeOp(op));
    } catch (err) {
      this.#unplace(kind, rec);
      throw toStoreError("store element", err);
    }
    // 3. The table.
    this.#apply(op);
    this.#counters.stores++;
  }

  #storeEntry(
    key: Key,
    data: Uint8Array,
    meta: Uint8Array | undefined,
    checkSize = true,
  ): void {
    const nk = normaliseKey(key);
    checkElement(data, "data");
    if (meta !== undefined) checkElement(meta, "meta");
    this.#checkOpen("store entry");
    const size = data.length + (meta?.length ?? 0);
    if (checkSize) this.#checkSize(size);
    const mem = this.#mem;
    const { found, i: existing } = this.#makeRoom(
      nk,
      size,
      (i) => mem.elementSize(i, DATA) + mem.elementSize(i, META),
    );
    const now = nowSeconds();
    const index = existing < 0 ? mem.count : existing;
    const keyBytes = mem.keyBytes(found.keyLen);
    // Both in one data slot (or run of slots) when they fit: one read later.
    const pair = meta !== undefined
      ? this.#placePair(found, keyBytes, data, meta, now)
      : undefined;
    const d = pair?.[0] ?? this.#place(DATA, found, keyBytes, data, now);
    let m = pair?.[1];
    let op: Op;
    try {
      if (meta !== undefined) {
        m ??= this.#place(META, found, keyBytes, meta, now);
      }
      op = {
        tag: OP.storeEntry,
        time: now,
        index,
        hashLo: found.lo,
        hashHi: found.hi,
        data: d,
        meta: m,
        key: keyBytes,
      };
      // One journal operation for both: a crash keeps the old pair or the
      // new one, never the new data with the old metadata.
      this.#log(encodeOp(op));
    } catch (err) {
      this.#unplace(DATA, d);
      if (m !== undefined) this.#unplace(META, m);
      throw toStoreError("store entry", err);
    }
    this.#apply(op);
    this.#counters.stores++;
  }

  #checkSize(size: number): void {
    const max = Math.min(MAX_ELEMENT_BYTES, this.#opt.limit);
    if (size > max) {
      throw new RangeError(
        `Cannot store element: ${size} bytes exceeds the maximum of ${max}`,
      );
    }
  }

  /**
   * Finds `nk`'s entry and, when `incoming` bytes (replacing the entry's
   * `held(i)` bytes) would pass the limit or a new entry would overfill
   * the table, evicts first, so the new element is not its own victim.
   * The key stays encoded in the key region for the caller.
   */
  #makeRoom(
    nk: NormalKey,
    incoming: number,
    held: (i: number) => number,
  ): { found: Lookup; i: number } {
    const mem = this.#mem;
    const found = this.#find(nk);
    let i = found.entry;
    const old = i >= 0 ? held(i) : 0;
    const full = i < 0 && mem.count >= mem.capacity;
    const over = this.#liveBytes - old + incoming + this.#deferredBytes;
    if (this.#deferredBytes > 0 && over >= this.#opt.limit) {
      // What pins hold past the limit goes once they time out.
      this.#pins.expire(performance.now());
    }
    if (
      full ||
      this.#liveBytes - old + incoming >= this.#opt.limit // see #evict
    ) {
      if (full) this.#evict(incoming, -1);
      else this.#evict(incoming - old, i);
      i = this.#find(nk).entry; // eviction may have moved it
    }
    return { found, i };
  }

  /**
   * Entry `i`'s metadata, which is stored in its data's slot: the pinned
   * bytes, or read and verified; undefined when it fails (damage).
   */
  #keptMeta(i: number, found: Lookup): Uint8Array | undefined {
    const pin = this.#pins.get(i, META);
    if (pin !== undefined) return pin.bytes;
    const r = this.#readPair(i, found)[1];
    if (r.ok) return r.bytes;
    this.#counters.corruptions++;
    return undefined;
  }

  /** The header of an element about to be written. */
  #header(
    kind: ElementKind,
    found: Lookup,
    length: number,
    crc: number,
    now: number,
  ) {
    return {
      kind,
      keyLen: found.keyLen,
      length,
      crc,
      hashLo: found.lo,
      hashHi: found.hi,
      storedAt: now,
    };
  }

  /**
   * 1. Writes an element to a fresh slot or file (never over the old one)
   * and returns its record.
   */
  #place(
    kind: ElementKind,
    found: Lookup,
    keyBytes: Uint8Array,
    bytes: Uint8Array,
    now: number,
  ): ElementRecord {
    const crc = crc32Of(bytes);
    const header = this.#header(kind, found, bytes.length, crc, now);
    const n = kind === DATA
      ? this.#runFor(found.keyLen, bytes.length)
      : fitsSlot(kind, found.keyLen, bytes.length)
      ? 1
      : 0;
    const slot = n > 0 ? this.#claimRun(kind, n) : -1;
    const rec: ElementRecord = slot >= 0
      ? { size: bytes.length, loc: slot, crc, inFile: false }
      : { size: bytes.length, loc: this.#allocFileId(kind), crc, inFile: true };
    if (slot >= 0 && n > 1) rec.slots = n;
    try {
      if (rec.inFile) {
        this.#files.writeFile(kind, rec.loc, header, keyBytes, bytes);
      } else this.#files.writeSlot(kind, rec.loc, header, keyBytes, bytes);
    } catch (err) {
      this.#unplace(kind, rec);
      throw toStoreError("store element", err);
    }
    return rec;
  }

  /**
   * 1. Writes data and metadata together to a fresh data slot or run of
   * slots (FORMAT.md §6.1, §5.3) and returns their records; undefined when
   * they do not fit a run or no run is free.
   */
  #placePair(
    found: Lookup,
    keyBytes: Uint8Array,
    data: Uint8Array,
    meta: Uint8Array,
    now: number,
  ): [ElementRecord, ElementRecord] | undefined {
    const n = this.#runFor(found.keyLen, data.length, meta.length);
    if (n === 0) return undefined;
    const slot = this.#claimRun(DATA, n);
    if (slot < 0) return undefined;
    const dcrc = crc32Of(data);
    const mcrc = crc32Of(meta);
    try {
      this.#files.writeSlotPair(
        slot,
        this.#header(DATA, found, data.length, dcrc, now),
        this.#header(META, found, meta.length, mcrc, now),
        keyBytes,
        data,
        meta,
      );
    } catch (err) {
      this.#mem.freeRun(DATA, slot, n);
      throw toStoreError("store entry", err);
    }
    const d: ElementRecord = {
      size: data.length,
      loc: slot,
      crc: dcrc,
      inFile: false,
    };
    if (n > 1) d.slots = n;
    return [
      d,
      {
        size: meta.length,
        loc: slot,
        crc: mcrc,
        inFile: false,
        withData: true,
      },
    ];
  }

  /**
   * Data slots for a data element (and metadata after it, when `metaLen`
   * is given): 1, a run of up to MAX_RUN_SLOTS, or 0 for a large file.
   * nsurl stores keep to single slots: their key hash is public, so a
   * body that carries a forged element at a slot boundary inside a run
   * could otherwise be adopted under a chosen key by a rebuild after the
   * run's first slot was reused (FORMAT.md §5.3).
   */
  #runFor(keyLen: number, dataLen: number, metaLen?: number): number {
    const n = runSlots(keyLen, dataLen, metaLen);
    return n > 1 && this.#state.control.hash === "nsurl" ? 0 : n;
  }

  /** Claims `n` free slots of `kind` in one block file; -1 if none. */
  #claimRun(kind: ElementKind, n: number): number {
    return this.#mem.claimRun(
      kind,
      this.#files.slotCounts[kind],
      n,
      SLOTS_PER_FILE,
    );
  }

  /** Undoes #place or #placePair after a later step failed. */
  #unplace(kind: ElementKind, rec: ElementRecord): void {
    if (rec.withData === true) return; // the data's slot is undone with it
    try {
      if (rec.inFile) this.#files.removeFile(kind, rec.loc);
      else this.#mem.freeRun(kind, rec.loc, recordSlots(rec));
    } catch { /* the original error is the one to report */ }
  }

  /**
   * Fetches the data (or metadata) element of `key`.
   *
   * @param key A URL (normalised) or a string (verbatim).
   * @param options `meta: true` for the metadata element.
   * @returns a {@linkcode Hit}, or undefined on a miss (including an
   *   element that failed verification, which is dropped).
   * @throws {TypeError} for a bad key.
   * @throws {StoreError} `CLOSED`, `IO`.
   *
   * @example
   * ```ts
   * using hit = await store.fetch("https://example.com/");
   * if (hit) respond(hit.data);
   * ```
   */
  fetch(key: Key, options?: ElementOptions): Promise<Hit | undefined> {
    return promised(() => this.#fetch(key, options));
  }

  /**
   * Fetches both elements of `key` with one lookup.
   *
   * @param key A URL (normalised) or a string (verbatim).
   * @returns an {@linkcode EntryHit} with whichever elements the entry
   *   has, or undefined when it has neither (including elements that
   *   failed verification, which are dropped).
   * @throws {TypeError} for a bad key.
   * @throws {StoreError} `CLOSED`, `IO`.
   *
   * @example
   * ```ts
   * using hit = await store.fetchEntry("https://example.com/");
   * if (hit?.data && hit.meta) respond(hit.meta, hit.data);
   * ```
   */
  fetchEntry(key: Key): Promise<EntryHit | undefined> {
    return promised(() => this.#fetchEntry(key));
  }

  #fetch(key: Key, options?: ElementOptions): Hit | undefined {
    const nk = normaliseKey(key);
    const kind = kindOf(options);
    this.#checkOpen("fetch element");
    const h = this.#hash(nk);
    const pin = this.#fetchPin(nk, h, kind);
    if (pin === undefined) return undefined;
    return this.#holding([pin], (release) => ({
      data: pin.bytes,
      key: pin.text,
      meta: kind === META,
      release,
      [Symbol.dispose]: release,
    }));
  }

  #fetchEntry(key: Key): EntryHit | undefined {
    const nk = normaliseKey(key);
    this.#checkOpen("fetch entry");
    const h = this.#hash(nk);
    const paired: Paired = { i: -1 };
    const data = this.#fetchPin(nk, h, DATA, paired);
    // Metadata read with the data (one read for both) is pinned from that.
    const meta = paired.r !== undefined && paired.i === data?.entry
      ? this.#pinPaired(nk, paired.i, paired.r)
      : this.#fetchPin(nk, h, META);
    if (data === undefined && meta === undefined) return undefined;
    const pins = [data, meta].filter((p) => p !== undefined);
    return this.#holding(pins, (release) => ({
      data: data?.bytes,
      meta: meta?.bytes,
      key: nk.text,
      release,
      [Symbol.dispose]: release,
    }));
  }

  /**
   * Entry `i`'s metadata as read together with its data (`Paired`):
   * pinned, or dropped as damage (a miss).
   */
  #pinPaired(nk: NormalKey, i: number, r: ReadResult): Pin | undefined {
    if (r.ok) return this.#pinRead(i, META, nk, r.bytes);
    this.#dropCorrupt(i, META);
    this.#counters.misses++;
    return undefined;
  }

  /**
   * Reads entry `i`'s data and the metadata stored after it in its slot,
   * in one read, as the key hashed as `h` (encoded in the key region).
   */
  #readPair(i: number, h: Lookup): [ReadResult, ReadResult] {
    const mem = this.#mem;
    const key = mem.keyBytes(h.keyLen);
    const d = mem.element(i, DATA)!; // open and replay ensure it is a slot
    const m = mem.element(i, META)!;
    return this.#files.readSlotPair(
      d.loc,
      expected(DATA, key, h, d),
      expected(META, key, h, m),
      recordSlots(d),
    );
  }

  /**
   * Finds and pins the element of `kind` of the key hashed as `h` (whose
   * encoded bytes are still in the key region), or counts a miss. Given
   * `paired`, data read with metadata stored after it leaves the
   * metadata's result there for the caller.
   */
  #fetchPin(
    nk: NormalKey,
    h: Lookup,
    kind: ElementKind,
    paired?: Paired,
  ): Pin | undefined {
    const mem = this.#mem;
    const keyBytes = mem.keyBytes(h.keyLen); // a view: nothing below re-encodes
    let pos = mem.lookupFirst(h.lo, h.hi);
    while (pos >= 0) {
      const i = mem.entryAt(pos);
      const pin = this.#pins.get(i, kind);
      if (pin !== undefined) {
        if (pin.text === nk.text) {
          pin.refs++;
          return this.#use(i, pin);
        }
        pos = mem.lookupNext(h.lo, h.hi, pos);
        continue;
      }
      const rec = mem.element(i, kind);
      let r: ReadResult | "absent";
      if (rec === undefined) {
        const mine = this.#isKeyOf(i, nk.text, keyBytes);
        r = mine === true
          ? "absent"
          : { ok: false, reason: mine === false ? "other-key" : "corrupt" };
      } else {
        const want = expected(kind, keyBytes, h, rec);
        if (rec.inFile) r = this.#files.readFile(kind, rec.loc, want);
        else if (rec.withData === true) r = this.#readPair(i, h)[1];
        else if (
          paired !== undefined && this.#mem.metaWithData(i) &&
          !this.#pins.get(i, META)
        ) {
          const [d, m] = this.#readPair(i, h);
          if (d.ok) {
            paired.i = i;
            paired.r = m;
          }
          r = d;
        } else {
          r = this.#files.readSlot(kind, rec.loc, want, recordSlots(rec));
        }
      }
      if (r === "absent") break;
      if (r.ok) return this.#pinRead(i, kind, nk, r.bytes);
      if (r.reason === "corrupt") {
        // Never return damaged or foreign bytes: drop the element (or the
        // entry, when nothing else of it is valid), report a miss.
        pos = this.#dropCorrupt(i, rec === undefined ? undefined : kind)
          ? mem.lookupFirst(h.lo, h.hi)
          : mem.lookupNext(h.lo, h.hi, pos);
        continue;
      }
      pos = mem.lookupNext(h.lo, h.hi, pos);
    }
    this.#counters.misses++;
    return undefined;
  }

  /** Pins bytes just read and verified as entry `i`'s element of `kind`. */
  #pinRead(
    i: number,
    kind: ElementKind,
    nk: NormalKey,
    bytes: Uint8Array,
  ): Pin {
    return this.#use(
      i,
      this.#pins.create(i, kind, nk.text, bytes, performance.now()),
    );
  }

  /** Counts a hit on entry `i` and bumps its usage. */
  #use(i: number, pin: Pin): Pin {
    this.#mem.touch(i, nowSeconds());
    this.#mem.setPinned(i, true);
    this.#counters.hits++;
    this.#counters.hitBytes += pin.bytes.length;
    this.#touched.add(i);
    this.#scheduleMaintenance();
    return pin;
  }

  /**
   * Makes the hit holding `pins`, given its idempotent release; a hit
   * garbage-collected unreleased releases them too.
   */
  #holding<T extends object>(pins: Pin[], make: (release: () => void) => T): T {
    const token: HitToken = { pins, released: false };
    const table = this.#pins;
    const finalizer = this.#finalizer;
    const hit = make(() => {
      if (token.released) return;
      token.released = true;
      finalizer.unregister(token);
      for (const pin of token.pins) table.release(pin);
    });
    finalizer.register(hit, token, token);
    return hit;
  }

  /**
   * Removes `key`'s entry (both elements). Live references keep their
   * bytes; the storage is freed when the last one ends.
   *
   * @param key A URL (normalised) or a string (verbatim).
   * @returns true if the entry existed.
   * @throws {TypeError} for a bad key.
   * @throws {StoreError} `CLOSED`, `IO`.
   *
   * @example
   * ```ts
   * await store.invalidate("https://example.com/"); // true
   * ```
   */
  invalidate(key: Key): Promise<boolean> {
    return promised(() => {
      const nk = normaliseKey(key);
      this.#checkOpen("invalidate entry");
      const { entry } = this.#find(nk);
      if (entry < 0) return false;
      this.#removeEntries([entry], REMOVE_REASON.invalidate);
      this.#counters.invalidations++;
      return this.#commit().then(() => true);
    });
  }

  /**
   * Counters and totals.
   *
   * @example
   * ```ts
   * const { hits, misses, bytes, limit } = store.stats();
   * ```
   */
  stats(): StoreStats {
    return {
      ...this.#counters,
      entries: this.#mem.count,
      bytes: this.#liveBytes + this.#deferredBytes,
      limit: this.#opt.limit,
      hysteresis: this.#opt.hysteresis,
      capacity: this.#mem.capacity,
      pinned: this.#pins.size,
      deferredBytes: this.#deferredBytes,
      repairedOnOpen: this.#state.repairedOnOpen,
      dataSlotsUsed: this.#mem.usedSlots(DATA, this.#files.slotCounts[DATA]),
      metaSlotsUsed: this.#mem.usedSlots(META, this.#files.slotCounts[META]),
    };
  }

  /**
   * Runs the deferred index maintenance now: writes `entries` and
   * `blocks` if they changed.
   *
   * @example
   * ```ts
   * await store.flush();
   * ```
   */
  flush(): Promise<void> {
    try {
      this.#checkOpen("flush");
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#maintain();
      this.#rotate();
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(toStoreError("flush", err));
    }
  }

  /**
   * Writes the index, closes every file and releases the lock. Live
   * references keep their bytes. Calling it again does nothing.
   *
   * @example
   * ```ts
   * await store.close();
   * ```
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    let failure: unknown;
    const attempt = (f: () => void) => {
      try {
        f();
      } catch (err) {
        failure ??= err;
      }
    };
    attempt(() => this.#pins.endAll());
    // A fresh snapshot and an empty journal make the next open quick; not
    // into a directory that replaced the store's (#maintain checks).
    attempt(() => {
      try {
        this.#maintain();
        this.#rotate();
      } catch (err) {
        if (!(err instanceof NoSpaceError)) throw err;
        // A full disk has no room for a snapshot: the journal holds every
        // change (but use counts it had no room for); make it durable and
        // close with it, for the next open to replay.
        this.#files.syncPending();
        this.#state.journal!.sync();
        this.#files.commitRemovals();
      }
    });
    attempt(() => this.#state.journal?.close());
    attempt(() => this.#files.close());
    attempt(() => this.#lock?.release());
    this.#lock = undefined;
    return failure === undefined
      ? Promise.resolve()
      : Promise.reject(toStoreError("close store", failure));
  }

  /** Same as {@linkcode close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * The local path `dir` names: a string as given (made absolute, so a later
 * chdir cannot move the store), or a `file:` URL.
 * @throws {TypeError} for anything else, or a file URL that is no path.
 */
export function storePath(dir: unknown): string {
  let path: string;
  if (typeof dir === "string") {
    path = dir;
  } else if (dir instanceof URL) {
    if (dir.protocol !== "file:") {
      throw new TypeError(
        `Cannot open store: ${dir.protocol} URLs are not local paths, only file: URLs are`,
      );
    }
    if (dir.hostname !== "" && dir.hostname !== "localhost") {
      throw new TypeError(
        `Cannot open store: file URL names host ${dir.hostname}`,
      );
    }
    if (/%2f/i.test(dir.pathname)) {
      throw new TypeError("Cannot open store: file URL path encodes a /");
    }
    try {
      path = decodeURIComponent(dir.pathname);
    } catch {
      throw new TypeError(
        `Cannot open store: file URL path is not valid percent-encoding: ${dir.pathname}`,
      );
    }
  } else {
    throw new TypeError("Cannot open store: dir must be a path or file URL");
  }
  if (path === "" || path.includes("\0")) {
    throw new TypeError("Cannot open store: dir must be a non-empty path");
  }
  if (!path.startsWith("/")) {
    try {
      path = `${Deno.cwd()}/${path}`;
    } catch { /* no permission to know the cwd: keep it relative */ }
  }
  return posix.normalize(path).replace(/(.)\/+$/, "$1");
}

/** CRC-32 of an element; node:zlib's native crc32 (see README: Performance). */
function crc32Of(bytes: Uint8Array): number {
  return zlibCrc32(bytes);
}
