/**
 * Changes to the index of an open store: storing elements and entries,
 * removing entries, dropping damaged elements. Each builds an operation
 * (ops.ts), has it appended to the journal, then applies it with the one
 * `apply` that replay uses too; the table's callbacks free what the
 * change released and keep the byte counts.
 *
 * @module
 */
import { nowSeconds } from "./_clock.ts";
import { ATTR_LIMITS, attrCost } from "./_attrs.ts";
import { toStoreError } from "./errors.ts";
import {
  type ElementRecord,
  type IndexMemory,
  MAX_KEY_BYTES,
} from "./index_memory.ts";
import type { NormalKey } from "./key.ts";
import { DATA, type ElementKind, META, otherKinds } from "./kinds.ts";
import { incomingDisk, recordDisk } from "./_slot_fit.ts";
import type { Found, KeyLookup } from "./_lookup.ts";
import {
  apply,
  encodeOp,
  itemsPerEntry,
  OP,
  type Op,
  REMOVE_ITEM_BYTES,
  REMOVE_REASON,
  type ShareOp,
  type Table,
} from "./ops.ts";
import type { PinTable } from "./pins.ts";
import { type Body, bodySize, type Placement } from "./_placement.ts";
import { readPair } from "./_reads.ts";
import type { StoreState } from "./_state.ts";
import { Shares } from "./_shares.ts";

/** What changes ask of the rest of the store. */
export interface ChangeHooks {
  /**
   * Finds `nk`'s entry, evicting first when `incoming` disk bytes
   * (replacing `held(i)`; FORMAT.md §5.4) would pass the limit or fill
   * the table.
   */
  makeRoom(
    nk: NormalKey,
    incoming: number,
    held: (i: number) => number,
  ): { found: Found; i: number };
  /** Entry `i` was removed; entry `moved` (-1: none) took its index. */
  removed(i: number, moved: number): void;
}

/**
 * The write side of one store's index.
 *
 * @example Illustrative only (the parts are wired by `store.ts`):
 * ```ts ignore
 * const changes = new IndexChanges(state, pins, placement, lookup, hooks);
 * changes.store(normaliseKey(url), DATA, body);
 * changes.invalidate(normaliseKey(url)); // true
 * ```
 */
export class IndexChanges {
  /** Successful stores, invalidated entries, elements dropped as damaged. */
  readonly counters = { stores: 0, invalidations: 0, corruptions: 0 };
  #state: StoreState;
  #mem: IndexMemory;
  #pins: PinTable;
  #placement: Placement;
  #lookup: KeyLookup;
  #hooks: ChangeHooks;
  /** The table as the operations see it, with the storage they release. */
  #table: Table;
  #liveBytes = 0;
  #deferredBytes = 0;
  /** Reference counts of shared elements (copies, moves, dedup). */
  #shares = new Shares();
  /** The same elements' disk bytes, as the limit counts them (§5.4). */
  #liveDisk = 0;
  #deferredDisk = 0;
  /** The key being stored, copied out of the key region. */
  #key = new Uint8Array(MAX_KEY_BYTES);

  constructor(
    state: StoreState,
    pins: PinTable,
    placement: Placement,
    lookup: KeyLookup,
    hooks: ChangeHooks,
    totals = state.mem.totals(),
  ) {
    this.#state = state;
    this.#mem = state.mem;
    this.#pins = pins;
    this.#placement = placement;
    this.#lookup = lookup;
    this.#hooks = hooks;
    const mem = this.#mem;
    // Attribute bytes count against the limit too (FORMAT.md §4.1, §5.4):
    // they take as much room in the entries file and journal. A shared
    // element counts once (the sums counted it once a claimant).
    const attrBytes = mem.attrBytes();
    const counted = this.#shares.load(mem);
    this.#liveBytes = totals.elementBytes - counted.bytes + attrBytes;
    this.#liveDisk = totals.elementDisk - counted.disk + attrBytes;
    this.#table = {
      mem,
      dropped: (i, kind, rec) => {
        // A pin of this reference takes it over (the storage stays until
        // it ends); the bytes go from the live count with the last entry.
        const pinned = this.#pins.supersede(i, kind, rec);
        const left = this.#shares.drop(kind, rec, pinned);
        if (left === "kept") return;
        const disk = recordDisk(kind, rec);
        this.#liveBytes -= rec.size;
        this.#liveDisk -= disk;
        if (left === "deferred") {
          this.#deferredBytes += rec.size;
          this.#deferredDisk += disk;
        } else {
          this.#placement.free(kind, rec);
        }
      },
      shared: (_i, kind, rec) => this.#shares.share(kind, rec),
      placed: (_i, kind, rec) => {
        this.#liveBytes += rec.size;
        this.#liveDisk += recordDisk(kind, rec);
        if (!rec.inFile) this.#state.blocksChanged();
      },
      removed: (i, moved) => {
        if (moved >= 0) this.#pins.moved(moved, i);
        this.#hooks.removed(i, moved);
      },
      attrsChanged: (_i, delta) => {
        this.#liveBytes += delta;
        this.#liveDisk += delta;
      },
    };
  }

  /** Bytes of the elements entries refer to. */
  get liveBytes(): number {
    return this.#liveBytes;
  }

  /** Bytes held only by superseded pinned elements. */
  get deferredBytes(): number {
    return this.#deferredBytes;
  }

  /** Disk bytes of the elements entries refer to (FORMAT.md §5.4). */
  get liveDisk(): number {
    return this.#liveDisk;
  }

  /** Disk bytes held only by superseded pinned elements. */
  get deferredDisk(): number {
    return this.#deferredDisk;
  }

  /**
   * A pin of a superseded element ended: its storage goes with the last
   * reference (entries may still share it).
   */
  freeDeferred(kind: ElementKind, rec: ElementRecord): void {
    if (!this.#shares.unpin(kind, rec)) return;
    this.#deferredBytes -= rec.size;
    this.#deferredDisk -= recordDisk(kind, rec);
    this.#placement.free(kind, rec);
  }

  /** Shared elements and the bytes sharing saves (`stats()`). */
  shareTotals(): { sharedElements: number; bytesSaved: number } {
    return this.#shares.totals();
  }

  /** True when some element is shared or held by a pin (eviction asks). */
  get sharing(): boolean {
    return !this.#shares.empty;
  }

  /**
   * The disk bytes replacing entry `i`'s element of `kind` would free
   * (FORMAT.md §5.4): none while another entry shares it.
   */
  #ownDisk(i: number, kind: ElementKind): number {
    const rec = this.#mem.element(i, kind);
    if (rec === undefined) return 0;
    return this.#shares.isShared(kind, rec) ? 0 : recordDisk(kind, rec);
  }

  /**
   * Journals `op` (a removal may use the journal's reserve), then applies
   * it to the table: the one way the live store changes its index.
   */
  logApply(op: Op, removal = false): void {
    this.#state.append(encodeOp(op), removal);
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

  /**
   * Stores `bytes` (or a large file a stream wrote) as `nk`'s element of
   * `kind` (arguments checked).
   */
  store(nk: NormalKey, kind: ElementKind, bytes: Body): void {
    const mem = this.#mem;
    const incoming = incomingDisk(kind, nk.text.length, bodySize(bytes));
    const { found, i: existing } = this.#hooks.makeRoom(
      nk,
      incoming,
      (i) => this.#ownDisk(i, kind),
    );
    // After the eviction: what the directory will hold once this is stored.
    this.#state.files.weigh(mem, incoming);
    if (kind === DATA && existing >= 0 && mem.metaWithData(existing)) {
      // The metadata lives in the old data's slot: store the entry, its
      // metadata moving with the new data (dropped if it fails to verify).
      // Only the new data's size is checked, as for any data store.
      const meta = this.#keptMeta(existing, found);
      return this.storeEntry(nk, bytes, meta);
    }
    const now = nowSeconds();
    const index = existing < 0 ? mem.count : existing;
    const keyBytes = mem.keyInto(found.keyLen, this.#key);
    // 1. The element, in fresh storage.
    const rec = this.#placement.place(kind, found, keyBytes, bytes, now);
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
      this.#state.append(encodeOp(op));
    } catch (err) {
      this.#placement.unplace(kind, rec);
      throw toStoreError("store element", err);
    }
    // 3. The table.
    this.#apply(op);
    this.counters.stores++;
  }

  /** Stores `nk`'s entry as `data` and `meta` (arguments checked). */
  storeEntry(
    nk: NormalKey,
    data: Body,
    meta: Uint8Array | undefined,
  ): void {
    const mem = this.#mem;
    const placement = this.#placement;
    const incoming = incomingDisk(
      DATA,
      nk.text.length,
      bodySize(data),
      meta?.length,
    );
    const { found, i: existing } = this.#hooks.makeRoom(
      nk,
      incoming,
      (i) => this.#ownDisk(i, DATA) + this.#ownDisk(i, META),
    );
    // After the eviction: what the directory will hold once this is stored.
    this.#state.files.weigh(mem, incoming);
    const now = nowSeconds();
    const index = existing < 0 ? mem.count : existing;
    const keyBytes = mem.keyInto(found.keyLen, this.#key);
    // Both in one data slot (or run of slots) when they fit: one read later.
    const pair = meta !== undefined
      ? placement.placePair(found, keyBytes, data, meta, now)
      : undefined;
    const d = pair?.[0] ?? placement.place(DATA, found, keyBytes, data, now);
    let m = pair?.[1];
    let op: Op;
    try {
      if (meta !== undefined) {
        m ??= placement.place(META, found, keyBytes, meta, now);
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
      this.#state.append(encodeOp(op));
    } catch (err) {
      placement.unplace(DATA, d);
      if (m !== undefined) placement.unplace(META, m);
      throw toStoreError("store entry", err);
    }
    this.#apply(op);
    this.counters.stores++;
  }

  /**
   * Sets attribute `name` (its UTF-8 bytes `nameBytes`) of `nk`'s entry to
   * value record `rec`, creating the entry when it has none: one `setAttr`
   * operation. RangeError past the per-entry limits (ATTR_LIMITS).
   */
  setAttr(nk: NormalKey, name: string, nameBytes: Uint8Array, rec: Uint8Array) {
    const mem = this.#mem;
    const cost = attrCost(nameBytes, rec);
    const held = (i: number) => {
      const old = mem.attrs(i)?.records.get(name);
      return old === undefined ? 0 : attrCost(nameBytes, old);
    };
    const before = this.#lookup.find(nk).entry;
    if (before >= 0) {
      const set = mem.attrs(before);
      const n = set?.records.size ?? 0;
      if (set?.records.has(name) !== true && n >= ATTR_LIMITS.perEntry) {
        throw new RangeError(
          `Cannot set attribute: the entry has the maximum of ${ATTR_LIMITS.perEntry} attributes`,
        );
      }
      const total = (set?.bytes ?? 0) - held(before) + cost;
      if (total > ATTR_LIMITS.entryBytes) {
        throw new RangeError(
          `Cannot set attribute: the entry's attributes would take ${total} bytes, more than the maximum of ${ATTR_LIMITS.entryBytes}`,
        );
      }
    }
    const { found, i: existing } = this.#hooks.makeRoom(nk, cost, held);
    const keyBytes = mem.keyInto(found.keyLen, this.#key);
    try {
      this.logApply({
        tag: OP.setAttr,
        time: nowSeconds(),
        index: existing < 0 ? mem.count : existing,
        hashLo: found.lo,
        hashHi: found.hi,
        name: nameBytes,
        rec,
        key: keyBytes,
      });
    } catch (err) {
      throw toStoreError("set attribute", err);
    }
  }

  /**
   * Removes attribute `name` of `nk`'s entry (the entry too when nothing
   * is left of it); false when there is no such attribute.
   */
  unsetAttr(nk: NormalKey, name: string, nameBytes: Uint8Array): boolean {
    const { entry } = this.#lookup.find(nk);
    if (entry < 0 || this.#mem.attrs(entry)?.records.has(name) !== true) {
      return false;
    }
    try {
      this.logApply({
        tag: OP.unsetAttr,
        time: nowSeconds(),
        index: entry,
        hashLo: this.#mem.hashLo(entry),
        name: nameBytes,
      });
    } catch (err) {
      throw toStoreError("unset attribute", err);
    }
    return true;
  }

  /**
   * Gives `to`'s entry everything `from`'s has (`move` also removes
   * `from`'s): one `move` or `copy` operation, no element bytes written.
   * False when `from` has no entry; true, changing nothing, when the keys
   * are the same. May evict (never `to`'s entry, and `from`'s last) when
   * the table is full or the copied attributes pass the limit; should that
   * take `from`'s entry, this is false.
   */
  transfer(
    tag: typeof OP.move | typeof OP.copy,
    from: NormalKey,
    to: NormalKey,
  ) {
    const mem = this.#mem;
    const src = this.#lookup.find(from);
    if (src.entry < 0) return false;
    if (from.text === to.text) return true;
    const fromKey = mem.keyBytes(src.keyLen);
    // `to`'s old attributes go; `from`'s are copied (elements add nothing).
    const incoming = tag === OP.copy ? (mem.attrs(src.entry)?.bytes ?? 0) : 0;
    const held = (i: number) =>
      this.#ownDisk(i, DATA) + this.#ownDisk(i, META) +
      (mem.attrs(i)?.bytes ?? 0);
    // Eviction takes entries with live references last: mark the source
    // so while room is made (the flag moves with its record).
    const wasPinned = mem.pinned(src.entry);
    mem.setPinned(src.entry, true);
    let toKey: Uint8Array;
    try {
      // The key region holds `to`'s key until the next lookup.
      toKey = mem.keyBytes(
        this.#hooks.makeRoom(to, incoming, held).found.keyLen,
      );
    } finally {
      const now = this.#lookup.find(from).entry;
      if (now >= 0) mem.setPinned(now, wasPinned);
    }
    // Either lookup may drop a damaged entry (colliding hashes), moving
    // others: look both up until they agree.
    let s = this.#lookup.find(from);
    let t = this.#lookup.find(to);
    for (let n = 0; n < 3 && s.entry >= 0; n++) {
      const again = this.#lookup.find(from);
      if (again.entry === s.entry) break;
      s = again;
      t = this.#lookup.find(to);
    }
    if (s.entry < 0) return false;
    try {
      this.logApply({
        tag,
        time: nowSeconds(),
        from: s.entry,
        fromLo: s.lo,
        fromHi: s.hi,
        to: t.entry < 0 ? mem.count : t.entry,
        toLo: t.lo,
        toHi: t.hi,
        fromKey,
        toKey,
      });
    } catch (err) {
      throw toStoreError(tag === OP.move ? "move entry" : "copy entry", err);
    }
    return true;
  }

  /**
   * Journals and applies a dedup `share` (built by `_dedup.ts` from bytes
   * it compared); returns the live bytes it freed.
   */
  share(op: ShareOp): number {
    const before = this.#liveBytes;
    try {
      this.logApply(op);
    } catch (err) {
      throw toStoreError("deduplicate element", err);
    }
    return before - this.#liveBytes;
  }

  /** Freed slots give their disk blocks back (FORMAT.md §5.2). */
  trimTails(): void {
    this.#state.files.trimFreeTails(this.#mem);
  }

  /** Removes `nk`'s entry; false when it has none. */
  invalidate(nk: NormalKey): boolean {
    const { entry } = this.#lookup.find(nk);
    if (entry < 0) return false;
    this.removeEntries([entry], REMOVE_REASON.invalidate);
    this.counters.invalidations++;
    return true;
  }

  /**
   * Removes entries (indices in descending order, so each removal leaves
   * the lower ones in place) and their elements, after journaling it.
   * Returns the bytes they held. `trim` false leaves giving freed disk
   * blocks back to the next removal.
   */
  removeEntries(
    indices: readonly number[],
    reason: number,
    trim = true,
  ): number {
    const mem = this.#mem;
    // 8 bytes a victim: a large eviction is split into operations that
    // each fit an empty journal, each applied before the next is
    // journaled, so a rotation between them snapshots the removals done so
    // far. A crash between them leaves some victims evicted and the others
    // in place, a state eviction may always leave.
    const per = itemsPerEntry(this.#state.maxEntry, REMOVE_ITEM_BYTES);
    const before = this.#liveBytes;
    // An eviction comes at the limit: free slots the packing left unfilled
    // since the last one may have to give their disk back (§5.4). Once an
    // eviction (its last step): removals turn counted bytes into free
    // slots' blocks, leaving their sum as it was, and only stores (each
    // weighed) add to it; a look at every block file each step took up to
    // a few ms.
    if (reason === REMOVE_REASON.evict && trim) {
      this.#state.files.compactHoles(mem);
    }
    for (let at = 0; at < indices.length; at += per) {
      const piece = indices.slice(at, at + per);
      this.logApply({
        tag: OP.remove,
        time: nowSeconds(),
        reason,
        items: piece.map((i) => [i, mem.hashLo(i)] as const),
      }, true);
    }
    // Freed slots give their disk blocks back (FORMAT.md §5.2); a stepped
    // eviction's steps but the last leave it to the next call, which trims
    // every file with slots freed since.
    if (trim) {
      this.#state.files.trimFreeTails(mem, reason === REMOVE_REASON.evict);
    }
    return before - this.#liveBytes;
  }

  /**
   * Drops entry `i`'s element of `kind` after it failed verification, or
   * the whole entry when that was its only element or when `kind` is
   * undefined (no element of it is valid). Returns false if it could not
   * be journaled (then it stays, and reads of it keep missing: still never
   * wrong bytes).
   */
  dropCorrupt(i: number, kind?: ElementKind): boolean {
    const mem = this.#mem;
    this.counters.corruptions++;
    try {
      // Data cannot go alone from under metadata stored in its slot.
      // Attributes keep an entry whose one element is damaged.
      if (
        kind !== undefined &&
        (otherKinds(kind).some((k) => mem.has(i, k)) ||
          mem.attrs(i) !== undefined) &&
        !(kind === DATA && mem.metaWithData(i))
      ) {
        this.logApply({
          tag: OP.clear,
          time: nowSeconds(),
          reason: REMOVE_REASON.corrupt,
          index: i,
          hashLo: mem.hashLo(i),
          kind,
        }, true);
      } else {
        this.removeEntries([i], REMOVE_REASON.corrupt);
      }
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Entry `i`'s metadata, which is stored in its data's slot: the pinned
   * bytes, or read and verified; undefined when it fails (damage).
   */
  #keptMeta(i: number, found: Found): Uint8Array | undefined {
    const pin = this.#pins.get(i, META);
    if (pin?.bytes !== undefined) return pin.bytes;
    const key = this.#mem.keyInto(found.keyLen, this.#key);
    const r = readPair(this.#mem, this.#state.files, i, found, key)[1];
    if (r.ok) return r.bytes;
    this.counters.corruptions++;
    return undefined;
  }
}
