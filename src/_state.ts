/**
 * {@linkcode StoreState}: what an open store holds on disk besides its
 * elements: the control record, the table in WASM memory, the block and
 * large files, the journal and the snapshot it continues. It is the one
 * owner of these: every change to them goes through its methods (append
 * an encoded operation, rotate, hand out a large-file id, queue a freed
 * slot), so the snapshot, the journal and the use maps stay consistent.
 *
 * @module
 */
import { NoSpaceError } from "./errors.ts";
import type { ElementFiles } from "./elements.ts";
import {
  type Control,
  encodeBlocksHeader,
  ENTRY_SIZE,
  storedDataMap,
} from "./format.ts";
import type { IndexMemory } from "./index_memory.ts";
import { type FileIO, replaceFile } from "./io.ts";
import { Journal, journalName } from "./journal.ts";
import { DATA, type ElementKind, KINDS, META, perKind } from "./kinds.ts";
import { newTag, writeSnapshotTemp } from "./_persist.ts";

/**
 * When a journal is kept, not rotated, at close and at an open that
 * replayed it cleanly (FORMAT.md §10.3): when nothing was appended to it,
 * or when replaying it at the next open costs less than writing the whole
 * table now: at most an eighth of it used and at most a quarter of the
 * snapshot's size (so a small store, whose snapshot is cheap, still
 * rotates; a large one with a few changes keeps its journal).
 */
export function keepsJournal(j: Journal, mem: IndexMemory): boolean {
  if (j.used === 0) return true;
  return j.used <= j.size / 8 && j.used * 4 <= mem.count * ENTRY_SIZE;
}

/** What opening found, for the state to start from. */
export interface OpenedIndex {
  control: Control;
  mem: IndexMemory;
  files: ElementFiles;
  /** Size of each new journal. */
  journalBytes: number;
  nextFileId: number;
  /** True when `blocks` on disk disagrees with the use maps. */
  blocksDirty: boolean;
  /** Damage repaired while opening. */
  repairedOnOpen: number;
  /** Journal operations replayed at open. */
  replayed: number;
  /** Throws ReplacedError when the store path no longer names the store. */
  checkDir: (action: string) => void;
}

/**
 * The persistent index of an open store and the files that hold it.
 *
 * @example Illustrative only (the parts are wired by `store.ts`):
 * ```ts ignore
 * const state = new StoreState(io, dir, opened);
 * state.rotate(); // a new snapshot and an empty journal
 * state.append(encodeOp(op));
 * state.close();
 * ```
 */
export class StoreState {
  readonly control: Control;
  readonly mem: IndexMemory;
  readonly files: ElementFiles;
  /** Damage repaired while opening. */
  readonly repairedOnOpen: number;
  /** Journal operations replayed at open. */
  readonly replayed: number;
  /** Throws ReplacedError when the store path no longer names the store. */
  readonly checkDir: (action: string) => void;
  /** Called after every rotation: the snapshot holds the table as it is. */
  onRotate: () => void = () => {};

  #io: FileIO;
  #dir: string;
  #journalBytes: number;
  #journal: Journal | undefined;
  #nextFileId: number;
  #fileIdsWrapped = false;
  #blocksDirty: boolean;
  /**
   * fsync mode: block slots freed by changes whose journal entry is not yet
   * durable, by kind. Released (made reusable) only after that entry is
   * synced or a snapshot without them is committed, so a slot is never
   * overwritten while a durable index may still point at it.
   */
  #slotFrees = perKind<number[]>(() => []);

  constructor(io: FileIO, dir: string, opened: OpenedIndex) {
    this.#io = io;
    this.#dir = dir;
    this.control = opened.control;
    this.mem = opened.mem;
    this.files = opened.files;
    this.#journalBytes = opened.journalBytes;
    this.#nextFileId = opened.nextFileId;
    this.#blocksDirty = opened.blocksDirty;
    this.repairedOnOpen = opened.repairedOnOpen;
    this.replayed = opened.replayed;
    this.checkDir = opened.checkDir;
  }

  /** The journal being appended to (undefined until the first rotation). */
  get journal(): Journal | undefined {
    return this.#journal;
  }

  /** Appends to journal `tag` (the one open found) instead of rotating. */
  continueJournal(journal: Journal): void {
    this.#journal = journal;
  }

  /** True when close keeps the journal instead of rotating (above). */
  get journalKept(): boolean {
    const j = this.#journal;
    return j !== undefined && keepsJournal(j, this.mem);
  }

  /**
   * Appends an encoded operation to the journal, rotating first when it
   * is full. A `removal` (invalidate, evict, drop) that finds no room for
   * a rotation (a full disk) goes into the journal's reserve instead, so
   * removing, which is what frees space, keeps working.
   */
  append(entry: Uint8Array, removal = false): void {
    const journal = this.#journal!;
    if (!journal.fits(entry.length)) {
      entry = entry.slice(); // it may be in the encoder's shared buffer
      try {
        this.rotate();
      } catch (err) {
        if (
          !removal || !(err instanceof NoSpaceError) ||
          !this.#journal!.fits(entry.length, true)
        ) {
          throw err;
        }
      }
    }
    this.#journal!.append(entry);
  }

  /** The largest entry that fits an empty journal outside its reserve. */
  get maxEntry(): number {
    return this.#journal!.maxEntry;
  }

  /** A large-file id no entry refers to. */
  allocFileId(kind: ElementKind): number {
    for (;;) {
      const id = this.#nextFileId;
      this.#nextFileId = (id + 1) >>> 0;
      if (this.#nextFileId === 0) this.#fileIdsWrapped = true;
      if (!this.#fileIdsWrapped || !this.files.fileExists(kind, id)) return id;
    }
  }

  /** Notes that the use maps changed: `blocks` is rewritten at rotation. */
  blocksChanged(): void {
    this.#blocksDirty = true;
  }

  /**
   * fsync mode: queues slots freed by a change not yet durable; they are
   * made reusable by the next `sync` or rotation.
   */
  freeSlotsLater(kind: ElementKind, slot: number, n: number): void {
    for (let s = slot; s < slot + n; s++) this.#slotFrees[kind].push(s);
  }

  /**
   * Makes everything written so far durable: element files and their
   * directories, then the journal. Call `synced` once it returned.
   */
  sync(): void {
    this.files.syncPending();
    this.#journal!.sync();
  }

  /**
   * After a `sync`: the journal now records what superseded the files and
   * slots queued for removal, so they go (files) or are reusable (slots).
   */
  synced(): void {
    this.files.commitRemovals();
    this.#releaseSlotFrees();
  }

  /**
   * Makes the slots queued by `freeSlotsLater` reusable; called once the
   * journal entry (or snapshot) that stopped referring to them is durable.
   */
  #releaseSlotFrees(): void {
    if (this.#slotFrees.every((slots) => slots.length === 0)) return;
    for (const kind of KINDS) {
      for (const slot of this.#slotFrees[kind]) {
        this.mem.freeSlot(kind, slot);
        this.files.slotFreed(kind, slot);
      }
    }
    this.#slotFrees = perKind(() => []);
    this.#blocksDirty = true;
    this.files.trimFreeTails(this.mem);
  }

  /**
   * Writes a new snapshot of the table and switches to a new empty journal
   * (FORMAT.md §10.3): 1 element bytes synced, 2 snapshot to `entries.tmp`
   * with fsync, 3 new journal created (named from a new random tag) and
   * synced, 4 rename over `entries` and sync the directory (the commit
   * point), 5-6 old journal marked rotated through its open file and
   * synced, 7 old journal removed. A crash at any step leaves the old pair
   * or the new one; so does a failure (a failed directory sync after the
   * rename leaves the old journal whole).
   */
  rotate(): void {
    const io = this.#io;
    const dir = this.#dir;
    // Everything below goes by path: never into another directory.
    this.checkDir("write index");
    this.files.syncPending();
    const old = this.#journal;
    const tag = newTag(old?.tag);
    const tmp = writeSnapshotTemp(io, dir, this.mem, this.#nextFileId, tag);
    let journal: Journal;
    try {
      journal = Journal.create(io, dir, tag, this.#journalBytes);
    } catch (err) {
      try {
        io.unlink(tmp);
      } catch { /* the create failure is the one to report */ }
      throw err;
    }
    try {
      io.rename(tmp, `${dir}/entries`);
    } catch (err) {
      journal.close();
      io.unlink(`${dir}/${journalName(tag)}`);
      throw err;
    }
    // The rename happened: `entries` names the new journal now, so every
    // later change goes there, whatever fails next.
    this.#journal = journal;
    try {
      io.syncDir(dir);
    } catch (err) {
      // The rename may not be durable, and a power loss could bring back
      // the old pair: leave the old journal whole (not marked, not removed;
      // the next open removes it), and sync the directory again before
      // anything else is made durable.
      this.files.syncDirLater(dir);
      try {
        old?.close();
      } catch { /* the sync failure is the one to report */ }
      throw err;
    }
    // The new snapshot is durable: the files and slots it no longer refers
    // to can go.
    this.files.commitRemovals();
    this.#releaseSlotFrees();
    if (old !== undefined) {
      try {
        old.markRotated();
      } finally {
        old.close();
        io.unlink(`${dir}/${journalName(old.tag)}`);
      }
    }
    if (this.#blocksDirty) {
      // The map past its marked prefix is zeros: not copied or scanned.
      const data = storedDataMap(this.mem.usedMapPrefix(DATA).prefix);
      const meta = this.mem.useMap(META);
      replaceFile(io, dir, "blocks", [
        encodeBlocksHeader(this.files.slotCounts, data, meta),
        data,
        meta,
      ]);
      this.#blocksDirty = false;
    }
    this.onRotate();
  }

  /** Closes the journal and the block files (the first failure is thrown). */
  close(): void {
    let failure: unknown;
    try {
      this.#journal?.close();
    } catch (err) {
      failure = err;
    }
    try {
      this.files.close();
    } catch (err) {
      failure ??= err;
    }
    if (failure !== undefined) throw failure;
  }
}
