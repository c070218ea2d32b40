/**
 * Opening a store directory (creating, locking, loading and checking the
 * index) and writing the index back. Private to store.ts.
 *
 * @module
 */
import {
  CorruptError,
  NoSpaceError,
  NotAStoreError,
  OptionMismatchError,
} from "./errors.ts";
import {
  chooseControl,
  CONTROL_NAMES,
  type ControlCopy,
  copiesToWrite,
  larderEvidence,
  readControlCopies,
  rebuildControl,
  writeControlCopies,
} from "./_control.ts";
import { ElementFiles, pairRecordsFit, recordFitsSlots } from "./elements.ts";
import {
  CACHEDIR_TAG,
  type Control,
  dataSlotBitsFor,
  encodeControl,
  readBlocks,
  runWithin,
  useMapBytes,
} from "./format.ts";
import {
  claimsSlot,
  DATA,
  type ElementKind,
  type ElementRecord,
  IndexMemory,
  META,
  recordSlots,
  scratchRecords,
} from "./index_memory.ts";
import {
  type FileIO,
  isNotPermitted,
  NodeFileIO,
  readPrefix,
  replaceFile,
} from "./io.ts";
import { Journal, JOURNAL_MAGIC, journalName } from "./journal.ts";
import { replay } from "./ops.ts";
import { KINDS, type PerKind } from "./kinds.ts";
import { scanShares, SlotClaims } from "./_shares.ts";
import {
  allZero,
  loadAttrSection,
  loadOriginSection,
  nonZeroEnd,
  readIndexImage,
} from "./_persist.ts";
import { keepsJournal, StoreState } from "./_state.ts";
import { rebuildIndex } from "./rebuild.ts";
import { moveAside, readRootFile } from "./_foreign.ts";
import { acquireLock, type StoreLock } from "./lock.ts";
import { journalBytesFor, type ResolvedOptions } from "./options.ts";
import { sameBytes } from "./_bytes.ts";

/** Names larder may leave in a directory before its control file exists. */
const CREATION_LEFTOVERS = new Set([
  "lock",
  "CACHEDIR.TAG",
  "CACHEDIR.TAG.tmp",
  "control.tmp",
  "control.bak.tmp",
]);

/** The index as opening loads it, before the store's state is made. */
interface Loading {
  mem: IndexMemory;
  files: ElementFiles;
  nextFileId: number;
  /** True when the journal found at open was empty and all zeros. */
  journalPristine: boolean;
  /** Journal operations replayed at open. */
  replayed: number;
  blocksDirty: boolean;
  repairedOnOpen: number;
  /** A new store: its directory held nothing but creation leftovers. */
  creating: boolean;
  /** An nsurl store: data at 8 KiB boundaries only (FORMAT.md §5.3). */
  nsurl: boolean;
}

function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

/**
 * Makes `path` a directory, creating only what is missing from the deepest
 * existing directory up: nothing above the first one found is looked at,
 * so permissions on the store directory (or the deepest directory to
 * create) suffice. Returns true when it made `path` (and synced its
 * parent, so the name is durable).
 */
function mkdirs(io: FileIO, path: string): boolean {
  const k = io.kind(path);
  if (k === "dir" || k === "symlink") return false; // a symlink is checked by holdDir
  if (k !== "missing") {
    throw new NotAStoreError(`Cannot open store: ${path} is not a directory`);
  }
  const parent = parentOf(path);
  try {
    io.mkdir(path);
  } catch (err) {
    const code = (err as { cause?: { code?: unknown } }).cause?.code;
    if (code !== "ENOENT" || parent === path) throw err;
    mkdirs(io, parent);
    io.mkdir(path);
  }
  // A new directory's name is durable only once its parent is synced.
  syncParent(io, parent);
  return true;
}

/**
 * Syncs `dir`'s parent directory when permitted. Without read access to
 * the parent (narrow permissions), a store directory created by this open
 * may vanish in a power loss until the system writes the parent back.
 */
function syncParent(io: FileIO, parent: string): void {
  try {
    io.syncDir(parent);
  } catch (err) {
    if (!isNotPermitted(err)) throw err;
  }
}

/** The control record an open uses, and what it must write once it can. */
interface ControlPlan {
  control: Control;
  /** A new store: CACHEDIR.TAG and both copies are written. */
  creating: boolean;
  /** The record to write, and to which copies. */
  bytes: Uint8Array;
  write: ControlCopy["name"][];
  /** A copy was damaged, or both were and the record was rebuilt. */
  repaired: boolean;
  /** Rebuilt for a SipHash store: the elements' hashes are unrecoverable. */
  keyLost: boolean;
}

/**
 * Reads `control` and `control.bak` (FORMAT.md §3, §9) and decides what
 * the store is, without writing anything: the writes wait until the index
 * memory exists, so a store that cannot open leaves no control behind.
 */
function planControl(
  io: FileIO,
  dir: string,
  opt: ResolvedOptions,
): ControlPlan {
  const copies = readControlCopies(io, dir);
  const chosen = chooseControl(copies);
  let plan: ControlPlan;
  if (chosen !== undefined) {
    const control = chosen.control!;
    // A copy that is missing is an old store (or a crash before the copy
    // was written), not damage.
    const repaired = copies.some((c) => c.state === "damaged") ||
      copies[0].state === "missing";
    plan = {
      control,
      creating: false,
      bytes: chosen.bytes!,
      write: copiesToWrite(copies, chosen.bytes!),
      repaired,
      keyLost: false,
    };
  } else if (
    copies.every((c) => c.state === "missing") && onlyLeftovers(io, dir)
  ) {
    const control: Control = {
      entryBits: opt.entryBits,
      identBits: opt.identBits,
      dataSlotBits: dataSlotBitsFor(opt.entryBits, opt.limit),
      hash: opt.hash,
      sipKey: crypto.getRandomValues(new Uint8Array(16)),
      createdAt: Math.floor(Date.now() / 1000),
    };
    const bytes = encodeControl(control);
    plan = {
      control,
      creating: true,
      bytes,
      write: [...CONTROL_NAMES],
      repaired: false,
      keyLost: false,
    };
  } else {
    // Defect 6: never adopt (or later delete) a directory of someone
    // else's files. Without a sound control copy, only files that larder
    // alone writes prove the directory is a store whose control is lost.
    if (larderEvidence(io, dir) === undefined) {
      throw new NotAStoreError(
        copies[0].state === "missing"
          ? `Cannot open store: ${dir} has no larder control file but holds other files (${
            foreignNames(io, dir)
          })`
          : "Cannot open store: control file is not a larder control file",
      );
    }
    const r = rebuildControl(io, dir, {
      entryBits: opt.entryBits,
      identBits: opt.identBits,
      limit: opt.limit,
      hash: opt.hash,
      explicitHash: opt.explicit.hash,
    });
    plan = {
      control: r.control,
      creating: false,
      bytes: encodeControl(r.control),
      write: [...CONTROL_NAMES],
      repaired: true,
      // With a hash override the SipHash key is never used.
      keyLost: r.keyLost && opt.hashOverride === undefined,
    };
  }
  const control = plan.control;
  if (opt.explicit.entryBits && opt.entryBits !== control.entryBits) {
    throw new OptionMismatchError(
      `Cannot open store: it was created with entryBits ${control.entryBits}, not ${opt.entryBits}`,
    );
  }
  if (opt.explicit.hash && opt.hash !== control.hash) {
    throw new OptionMismatchError(
      `Cannot open store: it was created with hash ${control.hash}, not ${opt.hash}`,
    );
  }
  if (opt.explicit.identBits && opt.identBits !== control.identBits) {
    // The address map is rebuilt at every open, so it can simply change.
    control.identBits = opt.identBits;
    plan.bytes = encodeControl(control);
    plan.write = [...CONTROL_NAMES];
  }
  return plan;
}

/**
 * Throws NotAStoreError for a directory with no `lock`, files other than
 * creation leftovers, and none of larder's files (FORMAT.md §2).
 */
function refuseForeign(io: FileIO, dir: string): void {
  if (io.kind(`${dir}/lock`) !== "missing" || onlyLeftovers(io, dir)) return;
  if (larderEvidence(io, dir) !== undefined) return;
  throw new NotAStoreError(
    `Cannot open store: ${dir} has no larder control file but holds other files (${
      foreignNames(io, dir)
    })`,
  );
}

function onlyLeftovers(io: FileIO, dir: string): boolean {
  return io.list(dir).every((n) => CREATION_LEFTOVERS.has(n));
}

function foreignNames(io: FileIO, dir: string): string {
  const foreign = io.list(dir).filter((n) => !CREATION_LEFTOVERS.has(n));
  return `${foreign.slice(0, 3).join(", ")}${
    foreign.length > 3 ? ", ..." : ""
  }`;
}

/**
 * Performs the writes of `plan`, once the store is known to open.
 * `madeDir`: this open made `dir` and has synced its parent since.
 */
function commitControl(
  io: FileIO,
  dir: string,
  plan: ControlPlan,
  madeDir: boolean,
): void {
  if (plan.creating) {
    replaceFile(io, dir, "CACHEDIR.TAG", [CACHEDIR_TAG]);
    // The directory may have been made by an earlier open that crashed
    // before syncing its parent: make its name durable before the store
    // inside it counts as created. (When this open made it, mkdirs
    // synced the parent already.)
    if (!madeDir) syncParent(io, parentOf(dir));
  }
  // The control file goes last: its presence means creation completed.
  writeControlCopies(io, dir, plan.bytes, plan.write);
}

/**
 * Drops records that cannot be right (bad flags, slots out of range or
 * claimed twice, sizes that cannot fit a slot) and rebuilds the use maps
 * from what remains. Returns how many were dropped.
 *
 * When every record is sound on its own and no slot is claimed twice (a
 * store's usual state), nothing is dropped and the use maps are exactly
 * the slots claimed: one kernel pass over the table checks each record
 * and marks its claims (asm/bitmap.ts `use_mark_sound`) instead of a mark
 * a slot. Otherwise the records are checked and marked
 * one by one, in descending order, so that of two claimants of a slot the
 * lower entry is dropped.
 */
function checkRecords(s: Loading): number {
  // Shared elements (FORMAT.md §4.3) are claimed by several records alike:
  // each claim past the first of a slot is one the kernel cannot mark.
  const shares = scanShares(s.mem);
  if (!shares.alike) {
    recordsSound(s);
  } else {
    // One kernel pass: each record checked on its own, then its claims marked.
    const { sound, maxFileId, bad } = s.mem.loadUseMapsIfSound(
      s.files.slotCounts,
    );
    if (sound) {
      if (maxFileId >= s.nextFileId) s.nextFileId = (maxFileId + 1) >>> 0;
      if (KINDS.every((k) => bad[k] === shares.clashes[k])) return 0;
    }
  }
  const { mem, files } = s;
  mem.clearUseMaps();
  let dropped = 0;
  let maxId = -1;
  const scratch = scratchRecords();
  const recs: (ElementRecord | undefined)[] = [undefined, undefined];
  const claims = new SlotClaims();
  // Descending: swap-remove moves an already-checked record into the hole.
  for (let i = mem.count - 1; i >= 0; i--) {
    recs[DATA] = mem.elementInto(i, DATA, scratch[DATA]);
    recs[META] = mem.elementInto(i, META, scratch[META]);
    // An entry with attributes only is an entry (FORMAT.md §4.1).
    let ok = recs[DATA] !== undefined || recs[META] !== undefined ||
      mem.attrs(i) !== undefined;
    for (const kind of KINDS) {
      const rec = recs[kind];
      if (!ok || rec === undefined) continue;
      if (rec.withData === true) {
        // In the data's slot, after the data: both must fit there.
        ok = pairRecordsFit(recs[DATA], rec);
      } else if (rec.inFile) {
        maxId = Math.max(maxId, rec.loc);
      } else if (
        !runWithin(kind, files.slotCounts[kind], rec.loc, recordSlots(rec)) ||
        !recordFitsSlots(kind, rec)
      ) {
        ok = false;
      } else if (mem.runUsed(kind, rec.loc, recordSlots(rec))) {
        // Several entries may share one element (move, copy, dedup) when
        // they claim it alike: the same run, size, checksum and header.
        ok = claims.sameAs(mem, i, kind, rec);
      }
    }
    if (!ok) {
      dropped++;
      mem.remove(i);
      continue;
    }
    for (const kind of KINDS) {
      const rec = recs[kind];
      if (claimsSlot(rec)) {
        if (claims.note(mem, i, kind, rec)) {
          mem.markRun(kind, rec.loc, recordSlots(rec));
        }
      }
    }
  }
  if (maxId >= s.nextFileId) s.nextFileId = (maxId + 1) >>> 0;
  return dropped;
}

/**
 * True when every record passes the checks of {@linkcode checkRecords}
 * that do not depend on other records (each element where it may lie, in
 * range of its block file, fitting its slots); then raises `s.nextFileId`
 * past the large-file ids they use. Claims of one slot by two records are
 * left to the use maps' kernel pass. One kernel pass over the table
 * (asm/load.ts `table_sound`); {@linkcode recordsSoundJs} is its
 * reference. Used when the use maps are not loaded in the same pass.
 */
function recordsSound(s: Loading): boolean {
  const { sound, maxFileId } = s.mem.recordsSound(s.files.slotCounts);
  if (sound && maxFileId >= s.nextFileId) s.nextFileId = (maxFileId + 1) >>> 0;
  return sound;
}

/**
 * The reference for {@linkcode IndexMemory.recordsSound} (a record at a
 * time, in JavaScript): true when every record of `mem` holds an element,
 * each lying and fitting where it may in block files of `slotCounts`
 * slots; `maxFileId` is then the greatest large-file id used (-1 none).
 */
export function recordsSoundJs(
  mem: IndexMemory,
  slotCounts: PerKind<number>,
): { sound: boolean; maxFileId: number } {
  const scratch = scratchRecords();
  const sound = (kind: ElementKind, rec: ElementRecord): boolean =>
    runWithin(kind, slotCounts[kind], rec.loc, recordSlots(rec)) &&
    recordFitsSlots(kind, rec);
  const unsound = { sound: false, maxFileId: -1 };
  let maxId = -1;
  for (let i = 0; i < mem.count; i++) {
    const data = mem.elementInto(i, DATA, scratch[DATA]);
    const meta = mem.elementInto(i, META, scratch[META]);
    if (data === undefined && meta === undefined) return unsound;
    if (data !== undefined) {
      if (data.inFile) maxId = Math.max(maxId, data.loc);
      else if (!sound(DATA, data)) return unsound;
    }
    if (meta !== undefined) {
      // In the data's slot, after the data: both must fit there.
      if (meta.withData) {
        if (!pairRecordsFit(data, meta)) return unsound;
      } else if (meta.inFile) maxId = Math.max(maxId, meta.loc);
      else if (!sound(META, meta)) return unsound;
    }
  }
  return { sound: true, maxFileId: maxId };
}

/**
 * The journal open goes on appending to instead of rotating: a pristine
 * one, or one replayed whole onto the snapshot with nothing torn after its
 * last entry and small beside the table (`keepsJournal`; a close keeps
 * such a journal too). Its replayed entries are synced first, so
 * the slots and files they freed, reusable from now on, are never
 * referred to by a durable index again. Undefined: rotate.
 */
function keptJournal(
  io: FileIO,
  dir: string,
  tag: number,
  mem: IndexMemory,
  pristine: boolean,
  append: AppendPoint | undefined,
): Journal | undefined {
  if (pristine) return Journal.open(io, dir, tag);
  if (append === undefined || !allZero(append.tail)) return undefined;
  const journal = Journal.open(io, dir, tag, append.end);
  try {
    if (keepsJournal(journal, mem)) {
      journal.sync();
      return journal;
    }
  } catch (err) {
    journal.close();
    throw err;
  }
  journal.close();
  return undefined;
}

/** Where a store that cannot rotate may go on appending to its journal. */
interface AppendPoint {
  end: number;
  /** The bytes after `end`: zeros, or a torn entry to zero first. */
  tail: Uint8Array;
}

/**
 * Loads the index into `s`; returns the journal tag its snapshot names,
 * and where that journal could be appended to (when it was replayed whole
 * onto the snapshot, nothing repaired).
 */
function loadIndex(
  io: FileIO,
  dir: string,
  s: Loading,
): { tag: number | undefined; append: AppendPoint | undefined } {
  let append: AppendPoint | undefined;
  const image = readIndexImage(io, dir, s.mem);
  if (image.snapshot !== undefined) {
    try {
      // The records are in the table already, unless damage kept them out.
      const { header, damage } = image.snapshot;
      if (damage !== undefined) throw damage;
      s.repairedOnOpen += loadAttrSection(s.mem, image.snapshot.attrs!);
      s.repairedOnOpen += loadOriginSection(s.mem, image.snapshot.origins!);
      s.nextFileId = header.nextFileId;
      if (
        image.journal !== undefined && image.journalTag === header.journalTag
      ) {
        const r = replay(s.mem, image.journal.entries);
        s.replayed = r.applied;
        if (r.diverged || image.journalError !== undefined) {
          s.repairedOnOpen++;
        }
        if (r.fileIdFloor > s.nextFileId) s.nextFileId = r.fileIdFloor;
        s.journalPristine = image.journal.pristine && r.applied === 0;
        const at = image.journal.appendAt;
        if (at !== undefined && !r.diverged) {
          append = { end: at, tail: image.journal.tail };
        }
      } else if (image.journalError !== undefined) {
        s.repairedOnOpen++;
      }
    } catch (err) {
      if (!(err instanceof CorruptError)) throw err;
      // An unreadable index is rebuilt from the elements themselves (each
      // carries its key, hash and checksums), never given up on.
      s.repairedOnOpen++;
      rebuildFromElements(io, dir, s);
    }
  } else if (!s.creating) {
    // No snapshot: one whose `entries` was lost; its elements are still
    // there. (A new store's directory held creation leftovers only, under
    // the lock: there is nothing to find.)
    rebuildFromElements(io, dir, s);
  }
  s.repairedOnOpen += checkRecords(s);
  // The use maps were rebuilt from the entries; the blocks file is only
  // checked against them and rewritten when it disagrees.
  const blocks = readRootFile(io, dir, "blocks");
  s.blocksDirty = true;
  if (blocks !== undefined) {
    try {
      s.blocksDirty = !blocksMatch(readBlocks(blocks), s.mem);
    } catch (err) {
      if (!(err instanceof CorruptError)) throw err;
    }
  }
  return { tag: image.journalTag, append };
}

/**
 * True when the use maps of a blocks file (as {@linkcode readBlocks} reads
 * it) are `mem`'s: the same as comparing them whole, without expanding or
 * copying a data map that is mostly free (2^28 slots take 32 MiB).
 */
export function blocksMatch(
  file: { slots: [number, number]; stored: Uint8Array; meta: Uint8Array },
  mem: IndexMemory,
): boolean {
  const { prefix, bytes } = mem.usedMapPrefix(DATA);
  if (useMapBytes(file.slots[0]) !== bytes) return false;
  const n = Math.min(file.stored.length, prefix.length);
  return sameBytes(file.stored.subarray(0, n), prefix.subarray(0, n)) &&
    allZero(file.stored.subarray(n)) && allZero(prefix.subarray(n)) &&
    sameBytes(file.meta, mem.useMap(META));
}

/**
 * The control record was rebuilt with a new SipHash key: no entry's hash
 * (snapshot, journal or element header) can be recomputed, so the index
 * starts empty and every slot is free; only large-file ids in use are
 * kept from being handed out again (FORMAT.md §9).
 */
function forgetElements(io: FileIO, dir: string, s: Loading): undefined {
  s.mem.loadRecords(new Uint8Array(0), 0);
  const r = rebuildIndex(io, dir, s.mem, {
    adopt: () => false,
    nsurl: s.nsurl,
  });
  s.nextFileId = r.nextFileId;
  s.blocksDirty = true;
  return undefined;
}

function rebuildFromElements(io: FileIO, dir: string, s: Loading): void {
  s.mem.loadRecords(new Uint8Array(0), 0);
  const r = rebuildIndex(io, dir, s.mem, { nsurl: s.nsurl });
  s.nextFileId = Math.max(s.nextFileId, r.nextFileId);
  if (r.count > 0) s.repairedOnOpen++;
}

const JOURNAL_NAME = /^journal-[0-9A-F]{8}$/;
const TEMP_NAMES = new Set([
  "entries.tmp",
  "blocks.tmp",
  "control.tmp",
  "control.bak.tmp",
  "CACHEDIR.TAG.tmp",
]);

/**
 * Removes what an interrupted write or rotation left behind: journals other
 * than the current one (only if they carry larder's journal magic) and
 * larder's own temp files. Nothing else is touched.
 */
function removeLeftovers(io: FileIO, dir: string, currentTag: number): void {
  for (const name of io.list(dir)) {
    if (TEMP_NAMES.has(name)) {
      io.unlink(`${dir}/${name}`);
    } else if (JOURNAL_NAME.test(name) && name !== journalName(currentTag)) {
      const head = readPrefix(io, `${dir}/${name}`, JOURNAL_MAGIC.length);
      if (
        head.length === JOURNAL_MAGIC.length &&
        JOURNAL_MAGIC.every((m, i) => head[i] === m)
      ) {
        io.unlink(`${dir}/${name}`);
      }
    }
  }
}

/**
 * Opens `dir`: creates it if needed, takes the lock, reads or creates the
 * control file, loads the snapshot, replays the journal and leaves an open
 * journal to append to (a fresh one unless the old one was untouched).
 */
export function openState(
  dir: string,
  opt: ResolvedOptions,
  ioOverride?: FileIO,
): { state: StoreState; lock: StoreLock; io: FileIO } {
  const io = ioOverride ?? new NodeFileIO();
  const madeDir = mkdirs(io, dir);
  // Held, the directory can be looked at before `lock` is created in it:
  // a directory of someone else's files is refused with nothing written.
  const lock = acquireLock(io, dir, () => refuseForeign(io, dir));
  let files: ElementFiles | undefined;
  let state: StoreState | undefined;
  let journal: Journal | undefined;
  try {
    const plan = planControl(io, dir, opt);
    const control = plan.control;
    // The index memory first: a store that cannot have it (too large
    // dimensions) fails here, before anything is written.
    const mem = new IndexMemory(control);
    mem.setSipKey(control.sipKey);
    commitControl(io, dir, plan, madeDir);
    files = new ElementFiles(
      io,
      dir,
      mem.slotCounts,
      opt.durability === "fsync",
      (action) => lock.checkDir(action),
    );
    const load: Loading = {
      mem,
      files,
      nextFileId: 0,
      journalPristine: false,
      replayed: 0,
      blocksDirty: false,
      repairedOnOpen: plan.repaired ? 1 : 0,
      creating: plan.creating,
      nsurl: control.hash === "nsurl",
    };
    // A foreign object at a temp name would make the rotation fail. One
    // listing, rather than a failed lookup a name: they are rarely there.
    const present = new Set(io.list(dir));
    for (const name of TEMP_NAMES) {
      if (!present.has(name)) continue;
      const k = io.kind(`${dir}/${name}`);
      if (k !== "missing" && k !== "file") moveAside(io, dir, name);
    }
    // One read of the pair: the journal (8 MiB or more by default) is not read again
    // just for its tag (the lock keeps anyone from rotating meanwhile).
    const { tag, append } = plan.keyLost
      ? { tag: forgetElements(io, dir, load), append: false }
      : loadIndex(io, dir, load);
    // What an interrupted rotation left takes space a new one may need.
    if (tag !== undefined) removeLeftovers(io, dir, tag);
    state = new StoreState(io, dir, {
      control,
      mem,
      files,
      journalBytes: journalBytesFor(opt, mem.entryBits),
      nextFileId: load.nextFileId,
      blocksDirty: load.blocksDirty,
      repairedOnOpen: load.repairedOnOpen,
      replayed: load.replayed,
      checkDir: (action) => lock.checkDir(action),
    });
    const kept = tag === undefined || load.repairedOnOpen !== 0
      ? undefined
      : keptJournal(io, dir, tag, mem, load.journalPristine, append);
    if (kept !== undefined) {
      state.continueJournal(journal = kept);
    } else {
      // Anything replayed, repaired or torn: start a new snapshot and an
      // empty journal, so appends never land next to stale entries.
      try {
        state.rotate();
      } catch (err) {
        // A full disk has no room for a new snapshot and journal. The
        // journal replayed whole onto the snapshot holds the table as it
        // stands (nothing was repaired): go on appending to it, after its
        // last valid entry (a torn one zeroed first).
        if (
          !(err instanceof NoSpaceError) || state.journal !== undefined ||
          tag === undefined || append === undefined ||
          load.repairedOnOpen !== 0
        ) {
          throw err;
        }
        journal = Journal.open(
          io,
          dir,
          tag,
          append.end,
          append.end + nonZeroEnd(append.tail),
        );
        state.continueJournal(journal);
      }
    }
    // A kept journal: its leftovers were removed above, under the lock.
    if (state.journal!.tag !== tag) {
      removeLeftovers(io, dir, state.journal!.tag);
    }
    return { state, lock, io };
  } catch (err) {
    try {
      (state?.journal ?? journal)?.close();
      files?.close();
    } finally {
      lock.release();
    }
    throw err;
  }
}
