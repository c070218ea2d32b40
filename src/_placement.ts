/**
 * Placement: where a new element goes (a slot, a run of data slots, the
 * data's slot for metadata stored with it, or a large file), writing it
 * there, and freeing that storage again once no entry refers to it
 * (FORMAT.md §5, §6).
 *
 * @module
 */
import { crc32 } from "node:zlib";
import { toStoreError } from "./errors.ts";
import { type ElementFiles, fitsSlot, runSlots } from "./elements.ts";
import { NSURL_SLOTS, SLOTS_PER_FILE } from "./format.ts";
import {
  type ElementRecord,
  type IndexMemory,
  recordSlots,
} from "./index_memory.ts";
import { DATA, type ElementKind, META } from "./kinds.ts";
import type { Found } from "./_lookup.ts";
import type { StoreState } from "./_state.ts";

/**
 * A large file a streamed store has written (key region left empty),
 * waiting for its header: placing it only completes it (FORMAT.md §6).
 */
export interface WrittenFile {
  /** Kind the file was created for. */
  readonly kind: ElementKind;
  /** Its large-file id. */
  readonly id: number;
  /** Its open descriptor until placed. */
  readonly fd: number;
  /** Key length the key region was left for. */
  readonly keyLen: number;
  /** Element bytes written after the key region. */
  readonly size: number;
  /** CRC-32 of those bytes. */
  readonly crc: number;
  /** True once its header is written and its descriptor closed. */
  placed: boolean;
}

/** An element to place: its bytes, or a large file already written. */
export type Body = Uint8Array | WrittenFile;

/** The element length of `body`. */
export function bodySize(body: Body): number {
  return body instanceof Uint8Array ? body.length : body.size;
}

/**
 * Writes elements to fresh storage (never over what an entry refers to)
 * and frees storage no entry refers to any more.
 *
 * @example Illustrative only (the parts are wired by `store.ts`):
 * ```ts ignore
 * const placement = new Placement(state, { fsync: false });
 * const rec = placement.place(DATA, found, keyBytes, body, now);
 * placement.unplace(DATA, rec); // the journal append failed
 * ```
 */
export class Placement {
  #mem: IndexMemory;
  #files: ElementFiles;
  #state: StoreState;
  #fsync: boolean;
  #nsurl: boolean;

  constructor(state: StoreState, options: { fsync: boolean }) {
    this.#state = state;
    this.#mem = state.mem;
    this.#files = state.files;
    this.#fsync = options.fsync;
    this.#nsurl = state.control.hash === "nsurl";
  }

  /** The header of an element about to be written. */
  #header(
    kind: ElementKind,
    found: Found,
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
  place(
    kind: ElementKind,
    found: Found,
    keyBytes: Uint8Array,
    bytes: Body,
    now: number,
  ): ElementRecord {
    if (!(bytes instanceof Uint8Array)) {
      return this.#placeWritten(kind, found, keyBytes, bytes, now);
    }
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
      : {
        size: bytes.length,
        loc: this.#state.allocFileId(kind),
        crc,
        inFile: true,
      };
    if (slot >= 0 && n > 1) rec.slots = n;
    try {
      if (rec.inFile) {
        this.#files.writeFile(kind, rec.loc, header, keyBytes, bytes);
      } else this.#files.writeSlot(kind, rec.loc, header, keyBytes, bytes);
    } catch (err) {
      this.unplace(kind, rec);
      throw toStoreError("store element", err);
    }
    return rec;
  }

  /** Completes a streamed large file: its header and key. */
  #placeWritten(
    kind: ElementKind,
    found: Found,
    keyBytes: Uint8Array,
    file: WrittenFile,
    now: number,
  ): ElementRecord {
    // Invariant: the stream left room for this key's bytes, of this kind.
    if (file.keyLen !== found.keyLen || file.kind !== kind) {
      throw new Error("Cannot place streamed file: key or kind differs");
    }
    const rec: ElementRecord = {
      size: file.size,
      loc: file.id,
      crc: file.crc,
      inFile: true,
    };
    file.placed = true;
    try {
      this.#files.finishFile(
        kind,
        file.id,
        file.fd,
        this.#header(kind, found, file.size, file.crc, now),
        keyBytes,
      );
    } catch (err) {
      this.unplace(kind, rec);
      throw toStoreError("store element", err);
    }
    return rec;
  }

  /**
   * 1. Writes data and metadata together to a fresh data slot or run of
   * slots (FORMAT.md §6.1, §5.3) and returns their records; undefined when
   * they do not fit a run or no run is free.
   */
  placePair(
    found: Found,
    keyBytes: Uint8Array,
    data: Body,
    meta: Uint8Array,
    now: number,
  ): [ElementRecord, ElementRecord] | undefined {
    if (!(data instanceof Uint8Array)) return undefined; // a large file
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
   * is given): the run its bytes need (runSlots), or 0 for a large file.
   * nsurl stores keep to one aligned slot of NSURL_SLOTS (8 KiB): their
   * key hash is public, so a body that carries a forged element at a slot
   * boundary inside a run could otherwise be adopted under a chosen key by
   * a rebuild after the run's first slot was reused (FORMAT.md §5.3).
   */
  #runFor(keyLen: number, dataLen: number, metaLen?: number): number {
    const n = runSlots(keyLen, dataLen, metaLen);
    if (!this.#nsurl) return n;
    return n > 0 && n <= NSURL_SLOTS ? NSURL_SLOTS : 0;
  }

  /** Claims `n` free slots of `kind` in one block file; -1 if none. */
  #claimRun(kind: ElementKind, n: number): number {
    // An nsurl store's slots are aligned: a run of NSURL_SLOTS within a
    // group of as many.
    const group = kind === DATA && this.#nsurl
      ? NSURL_SLOTS
      : SLOTS_PER_FILE[kind];
    return this.#mem.claimRun(kind, this.#files.slotCounts[kind], n, group);
  }

  /** Undoes place or placePair after a later step failed. */
  unplace(kind: ElementKind, rec: ElementRecord): void {
    if (rec.withData === true) return; // the data's slot is undone with it
    try {
      if (rec.inFile) this.#files.removeFile(kind, rec.loc);
      else this.#mem.freeRun(kind, rec.loc, recordSlots(rec));
    } catch { /* the original error is the one to report */ }
  }

  /**
   * Frees the storage of an element no entry refers to any more; in fsync
   * mode a slot only once the change that freed it is durable.
   */
  free(kind: ElementKind, rec: ElementRecord): void {
    // Metadata in its data's slot goes with that slot.
    if (rec.withData === true) return;
    if (rec.inFile) {
      try {
        this.#files.removeFileAfterCommit(kind, rec.loc);
      } catch {
        // A file that cannot be removed is an orphan for check-store; the
        // index no longer refers to it, so no wrong bytes can come of it.
      }
    } else if (this.#fsync) {
      // Reusing the slot before the change that freed it is durable could
      // overwrite a value the durable index still points at (a crash right
      // after the block file's sync and before the journal's).
      this.#state.freeSlotsLater(kind, rec.loc, recordSlots(rec));
    } else {
      this.#mem.freeRun(kind, rec.loc, recordSlots(rec));
      this.#files.slotFreed(kind, rec.loc + recordSlots(rec) - 1);
      this.#state.blocksChanged();
    }
  }
}

/** CRC-32 of an element; node:zlib's native crc32 (see README: Performance). */
function crc32Of(bytes: Uint8Array): number {
  return crc32(bytes);
}
