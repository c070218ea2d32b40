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
import { crc32 } from "node:zlib";
import { clockAtLeast } from "./_clock.ts";
import {
  ClosedError,
  NoSpaceError,
  StoreError,
  toStoreError,
} from "./errors.ts";
import { type Key, normaliseKey, type NormalKey } from "./key.ts";
import { DATA, type ElementKind, META } from "./kinds.ts";
import type { StoreLock } from "./lock.ts";
import {
  type OpenOptions,
  type ResolvedOptions,
  resolveOptions,
  type TestHooks,
} from "./options.ts";
import { PinTable } from "./pins.ts";
import { IndexChanges } from "./_changes.ts";
import { Eviction, type HeldBytes } from "./_eviction.ts";
import { type EntryHit, type Hit, Hits } from "./_hits.ts";
import { KeyLookup } from "./_lookup.ts";
import { Maintenance } from "./_maintenance.ts";
import { openState } from "./_open.ts";
import { Placement } from "./_placement.ts";
import { ReadPath } from "./_reads.ts";
import { storePath } from "./_store_path.ts";
import { OP } from "./ops.ts";
import { Dedup, type DedupOptions, type DedupResult } from "./_dedup.ts";
import { type EntryReader, EntryReaders } from "./_entry_reader.ts";
import { AttrCalls } from "./_attr_calls.ts";
import type { AttrValue } from "./_attrs.ts";
import { abandon, drainStream } from "./_streamed.ts";
import { StreamsInFlight } from "./_streams_in_flight.ts";
import type { Body } from "./_placement.ts";
import type { StoreState } from "./_state.ts";

export type { AttrValue, EntryHit, EntryReader, Hit };

/** Largest element accepted (bytes); also never more than the limit. */
export const MAX_ELEMENT_BYTES = 2 ** 31 - 1;

/** Selects the element of an entry: data (default) or metadata. */
export interface ElementOptions {
  /** True for the metadata element. */
  meta?: boolean;
}

/** How {@linkcode BackingStore.openEntry} opens an entry. */
export interface OpenEntryOptions {
  /**
   * Pin a data element held in slots (at most 2 MiB) without reading it:
   * it is read and verified whole at the reader's first `read` or
   * `stream`, so an element damaged on disk is then a `CORRUPT` read
   * (and dropped) instead of `openEntry` returning undefined. A large
   * file is always opened unread. The pin keeps the slots allocated
   * however the entry changes; one ending with the reader still live
   * (pinTimeoutMs, close) reads the element first, so the reader keeps
   * its bytes.
   */
  defer?: boolean;
}

/**
 * An entry as {@linkcode BackingStore.readEntry} gives it: the bytes of
 * data held in slots, or a reader over a large file.
 */
export type EntryRead =
  | {
    /** The data's verified bytes (shared: never modify them). */
    readonly data: Uint8Array;
    /** The metadata's (shared), when the entry has one. */
    readonly meta: Uint8Array | undefined;
    readonly reader?: undefined;
  }
  | {
    readonly data?: undefined;
    /** The metadata (shared), when the entry has one. */
    readonly meta: Uint8Array | undefined;
    /** A reader over the data; release it when done. */
    readonly reader: EntryReader;
  };

/** Counters and totals from {@linkcode BackingStore.stats}. */
export interface StoreStats {
  /** Fetches that returned an element. */
  hits: number;
  /** Fetches that found nothing (including damaged elements). */
  misses: number;
  /** Bytes served by hits. */
  hitBytes: number;
  /**
   * Data element bytes read from disk: by fetches, and by entry readers
   * as they read (a deferred reader's slot element at its first read, a
   * large file's whole first pass and then each chunk delivered).
   */
  dataBytesRead: number;
  /** Live entries. */
  entries: number;
  /**
   * Bytes of element data held (live, plus superseded-but-pinned), with
   * attribute names and value records.
   */
  bytes: number;
  /**
   * Disk bytes those elements take, as the limit counts them: their slots
   * (64 B data, 1 KiB metadata) and large files rounded up to 4 KiB plus
   * 4 KiB each, with attribute bytes (README: Disk use).
   */
  diskBytes: number;
  /** The byte limit, on `diskBytes`. */
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
  /** Stored elements more than one entry refers to (`copy`, `dedup`). */
  sharedElements: number;
  /**
   * Bytes sharing saves: each shared element's size once for every entry
   * past the first that refers to it.
   */
  bytesSaved: number;
}

/** Runs `f` now; what it throws becomes the returned promise's rejection. */
function promised<T>(f: () => T | Promise<T>): Promise<T> {
  try {
    return Promise.resolve(f());
  } catch (err) {
    return Promise.reject(err);
  }
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

function deferOf(options: OpenEntryOptions | undefined): boolean {
  if (options === undefined) return false;
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot use options: expected an object");
  }
  return options.defer === true;
}

function kindOf(options: ElementOptions | undefined): ElementKind {
  if (options === undefined) return DATA;
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot use options: expected an object");
  }
  return options.meta === true ? META : DATA;
}

/** The private constructor, for openStore (set in a static block). */
let construct: (
  dir: string,
  opt: ResolvedOptions,
  lock: StoreLock,
  state: StoreState,
) => BackingStore;

/**
 * A persistent, size-bounded object cache in one directory.
 *
 * @example Store, fetch, invalidate
 * ```ts
 * import { BackingStore } from "@larder/larder";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const store = await BackingStore.open(dir, { limit: 64 * 2 ** 20 });
 * await store.store("https://example.com/logo.png", new Uint8Array([1, 2, 3]));
 * using hit = await store.fetch("https://example.com/logo.png");
 * assert.deepEqual(hit?.data, new Uint8Array([1, 2, 3]));
 * assert.equal(await store.invalidate("https://example.com/logo.png"), true);
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class BackingStore implements AsyncDisposable {
  #dir: string;
  #opt: ResolvedOptions;
  #lock: StoreLock | undefined;
  #state: StoreState;
  #pins: PinTable;
  /** Hashes a streamed store's key (only its length is kept). */
  #lookup: KeyLookup;
  #changes: IndexChanges;
  #eviction: Eviction;
  #streams: StreamsInFlight;
  #reads: ReadPath;
  #hits: Hits;
  #readers: EntryReaders;
  #upkeep: Maintenance;
  #attrs: AttrCalls;
  #dedup: Dedup;
  #closed = false;
  /** Calls since open, for the periodic directory check. */
  #calls = 0;

  private constructor(
    dir: string,
    opt: ResolvedOptions,
    lock: StoreLock,
    state: StoreState,
  ) {
    this.#dir = dir;
    this.#opt = opt;
    this.#lock = lock;
    this.#state = state;
    const mem = state.mem;
    const totals = mem.totals();
    const fsync = opt.durability === "fsync";
    // The concerns call one another through these closures, so that no
    // module imports another that imports it back.
    const pins = new PinTable({
      unpinned: (entry) => mem.setPinned(entry, false),
      freeDeferred: (kind, rec) => changes.freeDeferred(kind, rec),
    }, opt.pinTimeoutMs);
    const dropCorrupt = (i: number, kind?: ElementKind) =>
      changes.dropCorrupt(i, kind);
    const lookup = new KeyLookup(mem, state.files, pins, {
      hash: state.control.hash,
      hashOverride: opt.hashOverride,
      dropCorrupt,
    });
    const upkeep = new Maintenance(state, pins, {
      delayMs: opt.maintenanceDelayMs,
      fsync,
      logApply: (op) => changes.logApply(op),
      closed: () => this.#closed,
    });
    const changes: IndexChanges = new IndexChanges(
      state,
      pins,
      new Placement(state, { fsync }),
      lookup,
      {
        makeRoom: (nk, incoming, held) => eviction.makeRoom(nk, incoming, held),
        removed: (i, moved) => upkeep.removed(i, moved),
      },
      totals,
    );
    // Streamed bodies being written count as held (FORMAT.md §5.4).
    const streams = new StreamsInFlight({
      limit: opt.limit,
      liveDisk: () => changes.liveDisk,
      makeRoom: (keep) => {
        if (this.#closed) return;
        eviction.evict(0, keep);
        upkeep.commit().catch(() => {});
      },
    });
    const held: HeldBytes = {
      get liveDisk() {
        return changes.liveDisk + streams.disk;
      },
      get deferredDisk() {
        return changes.deferredDisk;
      },
      get sharing() {
        return changes.sharing;
      },
    };
    const eviction = new Eviction(mem, pins, lookup, held, {
      limit: opt.limit,
      hysteresis: opt.hysteresis,
      remove: (indices, reason, trim) =>
        changes.removeEntries(indices, reason, trim),
      commit: () => upkeep.commit(),
    });
    this.#pins = pins;
    this.#lookup = lookup;
    this.#upkeep = upkeep;
    this.#changes = changes;
    this.#eviction = eviction;
    this.#streams = streams;
    this.#attrs = new AttrCalls(mem, lookup, changes);
    this.#dedup = new Dedup(mem, state.files, {
      share: (op) => changes.share(op),
      commit: async () => {
        if (this.#closed) return;
        await upkeep.commit();
        changes.trimTails();
      },
      closed: () => this.#closed,
    });
    this.#reads = new ReadPath(mem, state.files, pins, lookup, {
      dropCorrupt,
      used: (i) => upkeep.used(i),
    });
    this.#hits = new Hits(pins, () => this.#closed);
    this.#readers = new EntryReaders(state.files, pins, {
      damaged: (pin) => {
        // Only while the pin is the entry's current element: a superseded
        // one is no entry's any more.
        if (pin.entry >= 0 && !this.#closed) dropCorrupt(pin.entry, DATA);
      },
      fileBytesRead: (n) => {
        this.#reads.counters.dataBytesRead += n;
      },
    });
    state.onRotate = () => upkeep.rotated();
    // The latest use recorded: times here never go back.
    clockAtLeast(totals.latestUse);
    // Block files whose used slots spread the store past the limit and a
    // tenth are copied without their free ones (FORMAT.md §5.2).
    state.files.setDiskBound(
      opt.limit,
      () => changes.liveDisk + changes.deferredDisk,
    );
    if (mem.count >= mem.capacity || changes.liveDisk >= opt.limit) {
      try {
        // Whole, before open returns: an open store is under its limit.
        eviction.evict(0, -1, true);
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
   * import { BackingStore } from "@larder/larder";
   *
   * const dir = await Deno.makeTempDir();
   * const store = await BackingStore.open(dir, { entryBits: 17 });
   * console.log(store.stats().capacity); // 131072
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  static open(
    dir: string | URL,
    options?: OpenOptions,
  ): Promise<BackingStore> {
    return openStore(dir, options, {});
  }

  static {
    construct = (dir, opt, lock, state) =>
      new BackingStore(dir, opt, lock, state);
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

  #checkSize(size: number): void {
    const max = Math.min(MAX_ELEMENT_BYTES, this.#opt.limit);
    if (size > max) {
      throw new RangeError(
        `Cannot store element: ${size} bytes exceeds the maximum of ${max}`,
      );
    }
  }

  /**
   * Stores `data` as the data (or, with `{ meta: true }`, metadata)
   * element of `key`, replacing any previous one. `data` may be a
   * `ReadableStream` of unknown length: it is read with bounded memory
   * (a large body goes to its file as it arrives), and the new value
   * replaces the old one, and is journaled, only when the stream ends; a
   * stream that errors, is cancelled, passes the limit or yields a chunk
   * that is no Uint8Array leaves the old value and frees what it wrote.
   *
   * @param key A URL (normalised) or a string (verbatim).
   * @param data The element, or a stream of its bytes; larder keeps its
   *   own copy.
   * @param options `meta: true` for the metadata element.
   * @throws {TypeError} for a bad key, or data (or a stream chunk) that is
   *   no Uint8Array.
   * @throws {RangeError} for a key over 16 KiB or data over the limit.
   * @throws {StoreError} `CLOSED`, `IO`, `NO_SPACE`, `CORRUPT`, or the
   *   stream's own error.
   *
   * @example Whole elements, and a body from a stream
   * ```ts
   * import { BackingStore } from "@larder/larder";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * const store = await BackingStore.open(dir);
   * const headers = new TextEncoder().encode('{"content-type":"text/plain"}');
   * await store.store("https://example.com/", headers, { meta: true });
   * // A stream of unknown length (say, a fetch Response's body).
   * const body = new Response("hello, ".repeat(100_000)).body!;
   * await store.store("https://example.com/", body); // visible once it ends
   * using hit = await store.fetch("https://example.com/");
   * assert.equal(hit?.data.length, 700_000);
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  store(
    key: Key,
    data: Uint8Array | ReadableStream<Uint8Array>,
    options?: ElementOptions,
  ): Promise<void> {
    return promised(() => {
      const nk = normaliseKey(key);
      const kind = kindOf(options);
      if (data instanceof ReadableStream) {
        this.#checkOpen("store element");
        return this.#streamed(nk, kind, data, 0, (body) => {
          this.#changes.store(nk, kind, body);
        });
      }
      checkElement(data, "bytes");
      this.#checkOpen("store element");
      this.#checkSize(data.length);
      this.#changes.store(nk, kind, data);
      return this.#upkeep.commit();
    });
  }

  /**
   * Reads stream `data` for `nk`'s element of `kind` (`reserved` bytes of
   * the limit taken by metadata stored with it), then, synchronously,
   * `change` places, journals and applies it.
   */
  async #streamed(
    nk: NormalKey,
    kind: ElementKind,
    data: ReadableStream<Uint8Array>,
    reserved: number,
    change: (body: Body) => void,
  ): Promise<void> {
    // Only the key's length is taken before the stream: no view of the
    // index memory, nor any of its state, is held across an await.
    const keyLen = this.#lookup.hash(nk).keyLen;
    const files = this.#state.files;
    const tally = this.#streams.open(() => this.#lookup.find(nk).entry);
    let body: Body;
    try {
      body = await drainStream(data, {
        files,
        allocFileId: (k) => this.#state.allocFileId(k),
        kind,
        keyLen,
        max: Math.min(MAX_ELEMENT_BYTES, this.#opt.limit) - reserved,
        grew: (size) => tally.grew(size),
      });
    } finally {
      // Placing it counts its bytes as an entry's from here.
      tally.close();
    }
    try {
      this.#checkOpen("store element");
      change(body);
    } catch (err) {
      abandon(files, body);
      throw err;
    }
    await this.#upkeep.commit();
  }

  /**
   * Stores an entry's data and metadata together: afterwards the entry
   * holds exactly these elements (no `meta` drops a previous one). One
   * journal operation records both, so after a crash the entry has the
   * old pair or the new one, never a mix; and it costs one key lookup.
   * `data` may be a `ReadableStream` (see {@linkcode store}): the entry
   * changes when it ends.
   *
   * @param key A URL (normalised) or a string (verbatim).
   * @param data The data element, or a stream of its bytes; larder keeps
   *   its own copy.
   * @param meta The metadata element (say, serialised response headers).
   * @throws {TypeError} for a bad key or non-Uint8Array elements (or
   *   stream chunks).
   * @throws {RangeError} for a key over 16 KiB or elements over the limit
   *   together.
   * @throws {StoreError} `CLOSED`, `IO`, `NO_SPACE`, `CORRUPT`, or the
   *   stream's own error.
   *
   * @example
   * ```ts
   * import { BackingStore } from "@larder/larder";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * const store = await BackingStore.open(dir);
   * const body = new TextEncoder().encode("<svg/>");
   * const headers = new TextEncoder().encode('{"content-type":"image/svg+xml"}');
   * await store.storeEntry("https://example.com/", body, headers);
   * using hit = await store.fetchEntry("https://example.com/");
   * assert.deepEqual(hit?.data, body);
   * assert.deepEqual(hit?.meta, headers);
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  storeEntry(
    key: Key,
    data: Uint8Array | ReadableStream<Uint8Array>,
    meta?: Uint8Array,
  ): Promise<void> {
    return promised(() => {
      const nk = normaliseKey(key);
      if (meta !== undefined) checkElement(meta, "meta");
      if (data instanceof ReadableStream) {
        this.#checkOpen("store entry");
        this.#checkSize(meta?.length ?? 0);
        const copy = meta?.slice(); // the caller may change it meanwhile
        return this.#streamed(nk, DATA, data, meta?.length ?? 0, (body) => {
          this.#changes.storeEntry(nk, body, copy);
        });
      }
      checkElement(data, "data");
      this.#checkOpen("store entry");
      this.#checkSize(data.length + (meta?.length ?? 0));
      this.#changes.storeEntry(nk, data, meta);
      return this.#upkeep.commit();
    });
  }

  /**
   * Replaces the metadata element of `key`'s entry with `meta`, keeping
   * its data, only while the entry holds data and its metadata is still
   * `expected`: compared by length and CRC-32 with the entry's index
   * record in the same synchronous step that applies the write, so no
   * other call can change the entry between the check and the write. A
   * conditional update: say, a revalidated head replacing the head it was
   * revalidated from, never one stored since with another body.
   *
   * @param key A URL (normalised) or a string (verbatim).
   * @param meta The new metadata.
   * @param expected The metadata the entry must hold now.
   * @returns true when `meta` was stored; false (nothing written) when
   *   the entry is missing, has no data or holds other metadata.
   * @throws {TypeError} for a bad key or a non-Uint8Array.
   * @throws {RangeError} for metadata over the element limit.
   * @throws {StoreError} `CLOSED`, `IO`, `NO_SPACE`.
   *
   * @example
   * ```ts
   * import { BackingStore } from "@larder/larder";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * const store = await BackingStore.open(dir);
   * const [v1, v2] = [new Uint8Array([1]), new Uint8Array([2])];
   * await store.storeEntry("https://example.com/", new Uint8Array(9), v1);
   * assert.equal(await store.replaceMeta("https://example.com/", v2, v1), true);
   * assert.equal(await store.replaceMeta("https://example.com/", v1, v1), false);
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  replaceMeta(
    key: Key,
    meta: Uint8Array,
    expected: Uint8Array,
  ): Promise<boolean> {
    return promised(() => {
      const nk = normaliseKey(key);
      checkElement(meta, "meta");
      checkElement(expected, "expected");
      this.#checkOpen("replace metadata");
      this.#checkSize(meta.length);
      const i = this.#lookup.find(nk).entry;
      const mem = this.#state.mem;
      const old = i < 0 ? undefined : mem.element(i, META);
      if (
        old === undefined || mem.element(i, DATA) === undefined ||
        old.size !== expected.length || old.crc !== crc32(expected)
      ) {
        return false;
      }
      // Invariant: nothing awaited since the check above.
      this.#changes.store(nk, META, meta);
      return this.#upkeep.commit().then(() => true);
    });
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
   * import { BackingStore } from "@larder/larder";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * const store = await BackingStore.open(dir);
   * await store.store("https://example.com/", new Uint8Array([1, 2, 3]));
   * using hit = await store.fetch("https://example.com/");
   * assert.deepEqual(hit?.data, new Uint8Array([1, 2, 3]));
   * assert.equal(await store.fetch("https://example.com/other"), undefined);
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  fetch(key: Key, options?: ElementOptions): Promise<Hit | undefined> {
    return promised(() => {
      const nk = normaliseKey(key);
      const kind = kindOf(options);
      this.#checkOpen("fetch element");
      const pin = this.#reads.element(nk, kind);
      return pin && this.#hits.element(pin, kind === META);
    });
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
   * import { BackingStore } from "@larder/larder";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * const store = await BackingStore.open(dir);
   * await store.storeEntry("https://example.com/", new Uint8Array([1]), new Uint8Array([2]));
   * using hit = await store.fetchEntry("https://example.com/");
   * assert.deepEqual(hit?.meta, new Uint8Array([2]));
   * assert.deepEqual(hit?.data, new Uint8Array([1]));
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  fetchEntry(key: Key): Promise<EntryHit | undefined> {
    return promised(() => {
      const nk = normaliseKey(key);
      this.#checkOpen("fetch entry");
      const [data, meta] = this.#reads.entry(nk);
      if (data === undefined && meta === undefined) return undefined;
      return this.#hits.entry(nk.text, data, meta);
    });
  }

  /**
   * Opens `key`'s entry for reading its data in ranges or as a stream,
   * with bounded memory however large it is. The reader pins the entry
   * like a {@linkcode Hit}; release it when done.
   *
   * @param key A URL (normalised) or a string (verbatim).
   * @param options `defer`: pin a slot-held element unread until the
   *   first read (see {@linkcode OpenEntryOptions}).
   * @returns an {@linkcode EntryReader}, or undefined when the entry is
   *   missing or has no (valid) data element.
   * @throws {TypeError} for a bad key or options.
   * @throws {StoreError} `CLOSED`, `IO`.
   *
   * @example Ranges and a stream of a large body
   * ```ts
   * import { BackingStore } from "@larder/larder";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * const store = await BackingStore.open(dir);
   * const body = new Uint8Array(5_000_000).map((_, i) => i % 251);
   * const headers = new TextEncoder().encode('{"content-type":"video/mp4"}');
   * await store.storeEntry("https://example.com/video.mp4", body, headers);
   * {
   *   using reader = await store.openEntry("https://example.com/video.mp4");
   *   assert.equal(reader?.size, 5_000_000);
   *   assert.deepEqual(reader?.meta, headers);
   *   assert.deepEqual(await reader!.read(1000, 3), body.slice(1000, 1003));
   *   let streamed = 0;
   *   for await (const chunk of reader!.stream(4_000_000)) {
   *     streamed += chunk.length; // 64 KiB chunks, each verified first
   *   }
   *   assert.equal(streamed, 1_000_000);
   * }
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  openEntry(
    key: Key,
    options?: OpenEntryOptions,
  ): Promise<EntryReader | undefined> {
    return promised(() => {
      const nk = normaliseKey(key);
      const defer = deferOf(options);
      this.#checkOpen("open entry");
      const found = this.#reads.openEntry(nk, defer);
      if (found === undefined) return undefined;
      return this.#readers.open(nk.text, found.data, found.meta);
    });
  }

  /**
   * Reads `key`'s entry to send it on at once, with one lookup: a data
   * element held in slots (at most 2 MiB) comes back as its verified
   * bytes with the metadata's, and no reference is kept (nothing to
   * release: the bytes are read, and a later change of the entry writes
   * elsewhere); one in a large file as an open {@linkcode EntryReader}
   * (with `meta`), to stream in chunks and release. What `openEntry`
   * gives, without a reader's objects, its copy of the bytes and its
   * finalizer for a body read whole and let go at once.
   *
   * @param key A URL (normalised) or a string (verbatim).
   * @returns `{ data, meta }` (shared bytes: never modify them) or
   *   `{ reader, meta }`; undefined when the entry is missing or has no
   *   (valid) data element.
   * @throws {TypeError} for a bad key.
   * @throws {StoreError} `CLOSED`, `IO`.
   *
   * @example
   * ```ts
   * import { BackingStore } from "@larder/larder";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * const store = await BackingStore.open(dir);
   * await store.storeEntry("https://example.com/", new Uint8Array(9), new Uint8Array([1]));
   * const got = await store.readEntry("https://example.com/");
   * assert.equal(got?.data?.length, 9);
   * assert.deepEqual(got?.meta, new Uint8Array([1]));
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  readEntry(key: Key): Promise<EntryRead | undefined> {
    return promised(() => this.#readEntryNow(key)?.got);
  }

  /**
   * `key`'s entry as readEntry gives it, and whether its bytes were read
   * for this call alone (pins with one reference, this call's: a pin
   * found, with its bytes or to fill, gets one more), so no one else
   * holds them once the caller is done.
   */
  #readEntryNow(key: Key): { got: EntryRead; own: boolean } | undefined {
    const nk = normaliseKey(key);
    this.#checkOpen("read entry");
    const found = this.#reads.openEntry(nk, false);
    if (found === undefined) return undefined;
    const { data, meta } = found;
    const bytes = data.pin.bytes;
    if (data.file === undefined && bytes !== undefined) {
      // Invariant: a pin filled by a read holds the verified bytes.
      const own = data.pin.refs === 1 &&
        (meta === undefined || meta.refs === 1);
      this.#pins.release(data.pin);
      if (meta !== undefined) this.#pins.release(meta);
      return { got: { data: bytes, meta: meta?.bytes }, own };
    }
    const reader = this.#readers.open(nk.text, data, meta);
    return { got: { reader, meta: reader.meta }, own: false };
  }

  /**
   * {@linkcode readEntry} with the entry handed to `use` at once, in the
   * same turn: `use` gets `{ data, meta }` or `{ reader, meta }` as
   * `readEntry` resolves with, and its result is returned. The bytes of
   * `data` and `meta` are valid only while `use` runs: bytes read for
   * this call alone go back to the store's read buffers when it returns,
   * for the next read to overwrite, so a small entry answered at once
   * (its bytes copied into a response) costs no buffer of its own. `use`
   * must copy what it keeps; a `reader` is the caller's to release, as
   * with `readEntry`. No other store call may come between.
   *
   * @param key A URL (normalised) or a string (verbatim).
   * @param use Called once with the entry, when there is one.
   * @returns `use`'s result; undefined when the entry is missing or has no
   *   (valid) data element (`use` is then not called).
   * @throws {TypeError} for a bad key.
   * @throws {StoreError} `CLOSED`, `IO`; what `use` throws.
   *
   * @example
   * ```ts
   * import { BackingStore } from "@larder/larder";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * const store = await BackingStore.open(dir);
   * await store.storeEntry("https://example.com/", new Uint8Array(9), new Uint8Array([1]));
   * const copy = store.useEntry("https://example.com/", (got) => got.data?.slice());
   * assert.equal(copy?.length, 9);
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  useEntry<T>(key: Key, use: (got: EntryRead) => T): T | undefined {
    const read = this.#readEntryNow(key);
    if (read === undefined) return undefined;
    const { got, own } = read;
    if (got.reader !== undefined) {
      try {
        return use(got);
      } catch (err) {
        got.reader.release();
        throw err;
      }
    }
    try {
      return use(got);
    } finally {
      if (own) {
        // Data and metadata read together lie in one buffer; the one
        // read last is the one that can go back.
        const files = this.#state.files;
        if (got.meta === undefined || !files.giveBack(got.meta)) {
          files.giveBack(got.data);
        }
      }
    }
  }

  /**
   * Sets attribute `name` of `key`'s entry to `value`: a string (gvfs
   * `set`), a list of strings (gvfs `set_list`) or bytes (RISC OS tagged
   * information). A key without an entry gets one holding only
   * attributes, counted against the limit and evicted like any other.
   * Storing the data or metadata keeps the attributes; `invalidate`
   * removes them with the entry. One journaled operation, as durable as
   * `store`.
   *
   * @param key A URL (normalised) or a string (verbatim).
   * @param name 1 to 255 UTF-8 bytes, no NUL.
   * @param value At most 16 KiB (a list's encoding counts 4 bytes a string
   * and 4 more); at most 64 attributes and 64 KiB of names and values an
   * entry (`ATTR_LIMITS`).
   * @throws {TypeError} for a bad key, name or value type.
   * @throws {RangeError} past a limit.
   * @throws {StoreError} `CLOSED`, `IO`, `NO_SPACE`.
   *
   * @example
   * ```ts
   * import { BackingStore } from "@larder/larder";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * const store = await BackingStore.open(dir);
   * await store.setAttr("https://example.com/", "mime", "text/plain");
   * await store.setAttr("https://example.com/", "tags", ["a", "b"]);
   * assert.equal(await store.getAttr("https://example.com/", "mime"), "text/plain");
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  setAttr(key: Key, name: string, value: AttrValue): Promise<void> {
    return promised(() => {
      const nk = normaliseKey(key);
      this.#checkOpen("set attribute");
      this.#attrs.set(nk, name, value);
      return this.#upkeep.commit();
    });
  }

  /**
   * Removes attribute `name` of `key`'s entry; an entry left with no
   * element and no attribute goes. One journaled operation.
   *
   * @returns true when the attribute existed.
   * @throws {TypeError} for a bad key or name.
   * @throws {RangeError} for a name past the limits.
   * @throws {StoreError} `CLOSED`, `IO`.
   *
   * @example
   * ```ts
   * import { BackingStore } from "@larder/larder";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * const store = await BackingStore.open(dir);
   * await store.setAttr("https://example.com/", "mime", "text/plain");
   * assert.equal(await store.unsetAttr("https://example.com/", "mime"), true);
   * assert.equal(await store.unsetAttr("https://example.com/", "mime"), false);
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  unsetAttr(key: Key, name: string): Promise<boolean> {
    return promised(() => {
      const nk = normaliseKey(key);
      this.#checkOpen("unset attribute");
      if (!this.#attrs.unset(nk, name)) return false;
      return this.#upkeep.commit().then(() => true);
    });
  }

  /**
   * The value of attribute `name` of `key`'s entry: a string, a string[]
   * or a Uint8Array (a copy), as set; undefined when absent (or written by
   * a newer larder in a record version this one does not read).
   *
   * @throws {TypeError} for a bad key or name.
   * @throws {RangeError} for a name past the limits.
   * @throws {StoreError} `CLOSED`.
   *
   * @example
   * ```ts
   * import { BackingStore } from "@larder/larder";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * const store = await BackingStore.open(dir);
   * await store.setAttr("k", "info", new Uint8Array([1, 2]));
   * assert.deepEqual(await store.getAttr("k", "info"), new Uint8Array([1, 2]));
   * assert.equal(await store.getAttr("k", "other"), undefined);
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  getAttr(key: Key, name: string): Promise<AttrValue | undefined> {
    return promised(() => {
      const nk = normaliseKey(key);
      this.#checkOpen("get attribute");
      return this.#attrs.get(nk, name);
    });
  }

  /**
   * Every attribute of `key`'s entry, by name in the order first set;
   * an empty map for an entry without any, undefined for a key with no
   * entry.
   *
   * @throws {TypeError} for a bad key.
   * @throws {StoreError} `CLOSED`.
   *
   * @example
   * ```ts
   * import { BackingStore } from "@larder/larder";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * const store = await BackingStore.open(dir);
   * await store.store("k", new Uint8Array([1]));
   * assert.equal((await store.attrs("k"))?.size, 0);
   * await store.setAttr("k", "a", "1");
   * assert.deepEqual(await store.attrs("k"), new Map([["a", "1"]]));
   * assert.equal(await store.attrs("missing"), undefined);
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  attrs(key: Key): Promise<Map<string, AttrValue> | undefined> {
    return promised(() => {
      const nk = normaliseKey(key);
      this.#checkOpen("list attributes");
      return this.#attrs.all(nk);
    });
  }

  /**
   * Byte length of attribute `name` (RISC OS `ReadInfoSize`): a binary
   * value's length, or a string's in UTF-8; undefined when absent.
   *
   * @throws {TypeError} for a bad key or name, or a string-list value.
   * @throws {StoreError} `CLOSED`.
   *
   * @example
   * ```ts
   * import { BackingStore } from "@larder/larder";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * const store = await BackingStore.open(dir);
   * await store.setAttr("k", "info", new Uint8Array(10));
   * assert.equal(await store.attrSize("k", "info"), 10);
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  attrSize(key: Key, name: string): Promise<number | undefined> {
    return promised(() => {
      const nk = normaliseKey(key);
      this.#checkOpen("read attribute");
      return this.#attrs.size(nk, name);
    });
  }

  /**
   * Up to `length` bytes of attribute `name` from byte `start` (RISC OS
   * `ReadInfoPart`), fewer at its end, none from past it; a string value
   * reads as its UTF-8 bytes. Undefined when absent.
   *
   * @throws {TypeError} for a bad key or name, or a string-list value.
   * @throws {RangeError} for a negative or fractional `start`/`length`.
   * @throws {StoreError} `CLOSED`.
   *
   * @example
   * ```ts
   * import { BackingStore } from "@larder/larder";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * const store = await BackingStore.open(dir);
   * await store.setAttr("k", "info", new Uint8Array([1, 2, 3, 4]));
   * assert.deepEqual(await store.readAttr("k", "info", 1, 2), new Uint8Array([2, 3]));
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  readAttr(
    key: Key,
    name: string,
    start: number,
    length: number,
  ): Promise<Uint8Array | undefined> {
    return promised(() => {
      const nk = normaliseKey(key);
      this.#checkOpen("read attribute");
      return this.#attrs.read(nk, name, start, length);
    });
  }

  /**
   * Writes `bytes` into attribute `name` at byte `start` (RISC OS
   * `WriteInfoPart`): writing past the end extends the value, with zeros
   * between its end and `start`; an absent attribute starts empty. A
   * string value is taken as its UTF-8 bytes and becomes a binary value;
   * a string list cannot be written in part (TypeError). One journaled
   * operation (the whole new value), as durable as `store`.
   *
   * @throws {TypeError} for a bad key, name or bytes, or a list value.
   * @throws {RangeError} past the value limit or for a bad `start`.
   * @throws {StoreError} `CLOSED`, `IO`, `NO_SPACE`.
   *
   * @example
   * ```ts
   * import { BackingStore } from "@larder/larder";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * const store = await BackingStore.open(dir);
   * await store.writeAttr("k", "info", new Uint8Array([9]), 2);
   * assert.deepEqual(await store.getAttr("k", "info"), new Uint8Array([0, 0, 9]));
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  writeAttr(
    key: Key,
    name: string,
    bytes: Uint8Array,
    start: number,
  ): Promise<void> {
    return promised(() => {
      const nk = normaliseKey(key);
      this.#checkOpen("write attribute");
      this.#attrs.write(nk, name, bytes, start);
      return this.#upkeep.commit();
    });
  }

  /**
   * Moves `from`'s entry to `to`: `to` gets everything `from` had (data,
   * metadata, attributes, usage), replacing whatever it had, and `from`
   * no longer exists. No element bytes are copied or written: one
   * journaled operation, as durable as `store`. References to `to`'s old
   * elements keep their bytes. Moving a key onto itself changes nothing.
   *
   * @param from The key whose entry moves.
   * @param to The key it moves to.
   * @returns false when `from` has no entry (nothing changes); true
   * otherwise.
   * @throws {TypeError} for a bad key.
   * @throws {StoreError} `CLOSED`, `IO`, `NO_SPACE`.
   *
   * @example
   * ```ts
   * import { BackingStore } from "@larder/larder";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * const store = await BackingStore.open(dir);
   * await store.store("https://example.com/a", new Uint8Array([1, 2]));
   * assert.equal(await store.move("https://example.com/a", "https://example.com/b"), true);
   * assert.equal(await store.fetch("https://example.com/a"), undefined);
   * using hit = await store.fetch("https://example.com/b");
   * assert.deepEqual(hit?.data, new Uint8Array([1, 2]));
   * assert.equal(await store.move("https://example.com/missing", "https://example.com/c"), false);
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  move(from: Key, to: Key): Promise<boolean> {
    return promised(() => {
      const a = normaliseKey(from);
      const b = normaliseKey(to);
      this.#checkOpen("move entry");
      if (!this.#changes.transfer(OP.move, a, b)) return false;
      return this.#upkeep.commit().then(() => true);
    });
  }

  /**
   * Copies `from`'s entry to `to`, copy-on-write: `to` shares `from`'s
   * stored elements (a reference count per element; no element bytes are
   * written) and gets a copy of its attributes, replacing whatever `to`
   * had. A later `store` to either key writes new storage for that key
   * only, and attribute changes on one never show through the other. A
   * shared element counts once against the limit and its storage is freed
   * with its last reference. One journaled operation, as durable as
   * `store`. Copying a key onto itself changes nothing.
   *
   * @param from The key whose entry is copied.
   * @param to The key that gets the copy.
   * @returns false when `from` has no entry (nothing changes); true
   * otherwise.
   * @throws {TypeError} for a bad key.
   * @throws {StoreError} `CLOSED`, `IO`, `NO_SPACE`.
   *
   * @example
   * ```ts
   * import { BackingStore } from "@larder/larder";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * const store = await BackingStore.open(dir);
   * await store.store("https://example.com/a", new Uint8Array(1000));
   * assert.equal(await store.copy("https://example.com/a", "https://example.com/b"), true);
   * assert.equal(store.stats().bytes, 1000); // one stored copy
   * assert.equal(store.stats().sharedElements, 1);
   * await store.store("https://example.com/b", new Uint8Array([7])); // b's own now
   * using hit = await store.fetch("https://example.com/a");
   * assert.equal(hit?.data.length, 1000);
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  copy(from: Key, to: Key): Promise<boolean> {
    return promised(() => {
      const a = normaliseKey(from);
      const b = normaliseKey(to);
      this.#checkOpen("copy entry");
      if (!this.#changes.transfer(OP.copy, a, b)) return false;
      return this.#upkeep.commit().then(() => true);
    });
  }

  /**
   * Deduplicates data elements out of band: finds data elements with the
   * same bytes (candidates by size and checksum, then the bytes read,
   * verified and compared, so different bytes are never merged), makes
   * the duplicates share one stored copy through the same reference counts
   * as `copy`, and frees the rest. It runs in the background in slices of
   * at most `sliceBytes` read, letting other calls run between them; each
   * merge is one journaled operation, so a run stopped by a crash, a
   * restart, `close` or `signal` keeps what it merged, and the next run
   * skips entries that already share. A call while a run is under way
   * joins it. `stats()` shows `sharedElements` and `bytesSaved`.
   *
   * @param options Slice size, element size bounds, an abort signal.
   * @returns data elements scanned, merged, and the bytes freed.
   * @throws {TypeError} for options that are not an object, sizes that
   *   are not numbers, or a `signal` that is not an AbortSignal.
   * @throws {RangeError} for `sliceBytes`/`maxBytes` under 1, `minBytes`
   *   under 0, a size that is not an integer, or `minBytes` > `maxBytes`.
   * @throws {StoreError} `CLOSED`, `IO`.
   *
   * @example
   * ```ts
   * import { BackingStore } from "@larder/larder";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * const store = await BackingStore.open(dir);
   * const body = new Uint8Array(10_000).fill(7);
   * await store.store("https://example.com/a", body);
   * await store.store("https://example.com/b", body.slice());
   * await store.store("https://example.com/c", new Uint8Array(10_000));
   * const r = await store.dedup();
   * assert.deepEqual(r, { scanned: 2, merged: 1, bytesFreed: 10_000 });
   * assert.equal(store.stats().bytesSaved, 10_000);
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  dedup(options?: DedupOptions): Promise<DedupResult> {
    return promised(() => {
      this.#checkOpen("deduplicate");
      return this.#dedup.run(options);
    });
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
   * import { BackingStore } from "@larder/larder";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * const store = await BackingStore.open(dir);
   * await store.store("https://example.com/", new Uint8Array([1]));
   * assert.equal(await store.invalidate("https://example.com/"), true);
   * assert.equal(await store.invalidate("https://example.com/"), false);
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  invalidate(key: Key): Promise<boolean> {
    return promised(() => {
      const nk = normaliseKey(key);
      this.#checkOpen("invalidate entry");
      if (!this.#changes.invalidate(nk)) return false;
      return this.#upkeep.commit().then(() => true);
    });
  }

  /**
   * Counters and totals.
   *
   * @example
   * ```ts
   * import { BackingStore } from "@larder/larder";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * const store = await BackingStore.open(dir);
   * await store.store("https://example.com/", new Uint8Array(10));
   * (await store.fetch("https://example.com/"))?.release();
   * const { hits, misses, entries, bytes, limit } = store.stats();
   * assert.deepEqual([hits, misses, entries, bytes], [1, 0, 1, 10]);
   * assert.equal(limit, 2 ** 30);
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  stats(): StoreStats {
    const mem = this.#state.mem;
    const slots = this.#state.files.slotCounts;
    const changes = this.#changes;
    return {
      ...this.#reads.counters,
      ...changes.counters,
      ...this.#eviction.counters,
      entries: mem.count,
      bytes: changes.liveBytes + changes.deferredBytes,
      diskBytes: changes.liveDisk + changes.deferredDisk,
      limit: this.#opt.limit,
      hysteresis: this.#opt.hysteresis,
      capacity: mem.capacity,
      pinned: this.#pins.size,
      deferredBytes: changes.deferredBytes,
      repairedOnOpen: this.#state.repairedOnOpen,
      dataSlotsUsed: mem.usedSlots(DATA, slots[DATA]),
      metaSlotsUsed: mem.usedSlots(META, slots[META]),
      ...changes.shareTotals(),
    };
  }

  /**
   * Runs the deferred index maintenance now: writes `entries` and
   * `blocks` if they changed.
   *
   * @example
   * ```ts
   * import { BackingStore } from "@larder/larder";
   *
   * const dir = await Deno.makeTempDir();
   * const store = await BackingStore.open(dir);
   * await store.store("https://example.com/", new Uint8Array([1]));
   * await store.flush(); // the index is written now, not in 10 s
   * await store.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  flush(): Promise<void> {
    try {
      this.#checkOpen("flush");
      this.#upkeep.stop();
      this.#upkeep.run();
      this.#state.rotate();
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
   * import { BackingStore } from "@larder/larder";
   *
   * const dir = await Deno.makeTempDir();
   * const store = await BackingStore.open(dir);
   * await store.close();
   * await store.close(); // does nothing
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#upkeep.stop();
    let failure: unknown;
    const attempt = (f: () => void) => {
      try {
        f();
      } catch (err) {
        failure ??= err;
      }
    };
    // A stepped eviction under way ends now, journaled as every step is.
    attempt(() => this.#eviction.finish());
    attempt(() => this.#pins.endAll());
    // A journal that is still small is made durable and kept, for the next
    // open to replay (quicker than a snapshot of the whole table now); a
    // larger one is rotated: a fresh snapshot and an empty journal make the
    // next open quick. Not into a directory that replaced the store's
    // (maintenance checks).
    attempt(() => {
      let rotated = false;
      try {
        this.#upkeep.run();
        if (this.#state.journalKept) this.#state.checkDir("close store");
        else {
          this.#state.rotate();
          rotated = true;
        }
      } catch (err) {
        if (!(err instanceof NoSpaceError)) throw err;
        // A full disk has no room for a snapshot: the journal holds every
        // change (but use counts it had no room for); it is kept too.
      }
      // A kept journal is made durable, for the next open to replay.
      if (!rotated) {
        this.#state.sync();
        this.#state.synced();
      }
    });
    attempt(() => this.#state.close());
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
 * Opens the store in `dir` with test `hooks` (BackingStore.open has none);
 * for tests, through src/_testing.ts.
 */
export function openStore(
  dir: string | URL,
  options: OpenOptions | undefined,
  hooks: TestHooks,
): Promise<BackingStore> {
  return promised(() => {
    const opt = resolveOptions(options, hooks);
    const path = storePath(dir);
    const { state, lock } = openState(path, opt, hooks.io);
    try {
      return construct(path, opt, lock, state);
    } catch (err) {
      // Never keep the lock or a descriptor of a store that did not open.
      try {
        state.close();
      } catch {
        /* the open failure is the one to report */
      } finally {
        lock.release();
      }
      throw err;
    }
  });
}
