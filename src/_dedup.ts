/**
 * Out-of-band deduplication (issue 15; nrfs): data elements with the same
 * bytes are made to share one stored copy through the reference counts
 * (`_shares.ts`), and the others are freed.
 *
 * Candidates come from the records alone (the same size and content
 * CRC-32); the bytes of each candidate are then read, verified and
 * compared with the copy kept, so different bytes are never merged
 * whatever their checksums. Each merge is one journaled `share` operation
 * (FORMAT.md §11), so the work done survives a crash or a restart, and a
 * later run skips the entries that already share (it is resumable: what
 * it redoes is only comparing candidates that turned out different).
 * The work is cut into slices of a bounded number of bytes read, with the
 * event loop let run between them, so a server keeps serving meanwhile.
 *
 * @module
 */
import type { ElementFiles, Expected, ReadResult } from "./elements.ts";
import { ELEMENT_HEADER, readElementHeader } from "./format.ts";
import {
  type ElementRecord,
  type IndexMemory,
  recordSlots,
} from "./index_memory.ts";
import { DATA } from "./kinds.ts";
import { OP, type ShareOp } from "./ops.ts";
import { sameBytes } from "./_bytes.ts";
import { elementId } from "./_shares.ts";
import { nowSeconds } from "./_clock.ts";

/** Options of {@linkcode Dedup.run} (the public `dedup`). */
export interface DedupOptions {
  /**
   * Bytes read (and compared) per slice before yielding; default 8 MiB. A
   * slice reads at least one element.
   */
  sliceBytes?: number;
  /** Elements smaller than this are left alone; default 1 (all). */
  minBytes?: number;
  /**
   * Elements larger than this are left alone (they are compared in
   * memory); default 64 MiB.
   */
  maxBytes?: number;
  /** Stops the run at the next slice (the merges made so far stay). */
  signal?: AbortSignal;
}

/** {@linkcode DedupOptions} with the defaults applied. */
type CheckedDedupOptions = Required<Omit<DedupOptions, "signal">> & {
  signal?: AbortSignal;
};

/** `n` when it is an integer ≥ `min` (or undefined: `fallback`). */
function sizeOption(
  name: string,
  n: unknown,
  min: number,
  fallback: number,
): number {
  if (n === undefined) return fallback;
  if (typeof n !== "number") {
    throw new TypeError(`Cannot deduplicate: ${name} must be a number`);
  }
  if (!Number.isSafeInteger(n) || n < min) {
    throw new RangeError(
      `Cannot deduplicate: ${name} must be an integer ≥ ${min}, got ${n}`,
    );
  }
  return n;
}

/** The options with their defaults, checked (see {@linkcode Dedup.run}). */
function checkDedupOptions(options: unknown): CheckedDedupOptions {
  if (options === undefined) options = {};
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot deduplicate: options must be an object");
  }
  const o = options as Record<string, unknown>;
  const signal = o.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError("Cannot deduplicate: signal must be an AbortSignal");
  }
  const sliceBytes = sizeOption("sliceBytes", o.sliceBytes, 1, DEFAULT_SLICE);
  const minBytes = sizeOption("minBytes", o.minBytes, 0, 1);
  const maxBytes = sizeOption("maxBytes", o.maxBytes, 1, DEFAULT_MAX);
  if (minBytes > maxBytes) {
    throw new RangeError(
      `Cannot deduplicate: minBytes (${minBytes}) is over maxBytes (${maxBytes})`,
    );
  }
  return signal === undefined
    ? { sliceBytes, minBytes, maxBytes }
    : { sliceBytes, minBytes, maxBytes, signal };
}

/** What a dedup run did. */
export interface DedupResult {
  /** Data elements looked at (each candidate once). */
  scanned: number;
  /** Elements made to share another's identical copy. */
  merged: number;
  /** Bytes of storage freed (or, for pinned elements, to be freed). */
  bytesFreed: number;
}

/** What dedup asks of the store. */
export interface DedupHooks {
  /** Journals and applies `op`; returns the live bytes it freed. */
  share(op: ShareOp): number;
  /** Makes the merges so far durable, and gives freed tails back. */
  commit(): Promise<void>;
  /** True once the store is closing (the run stops). */
  closed(): boolean;
}

/** A candidate as first seen: its entry's hash and its record. */
interface Candidate {
  lo: number;
  hi: number;
  rec: ElementRecord;
}

/** A kept copy: the candidate, its bytes and the header identity. */
interface Kept {
  c: Candidate;
  bytes: Uint8Array;
  key: Uint8Array;
  lo: number;
  hi: number;
  /** The slice it was read in: read again before a merge in a later one. */
  slice: number;
}

const DEFAULT_SLICE = 8 * 1024 * 1024;
const DEFAULT_MAX = 64 * 1024 * 1024;
/** Distinct contents kept per (size, checksum) group. */
const KEPT_PER_GROUP = 4;
/** Entries grouped per slice of the first pass. */
const GROUP_PER_SLICE = 65536;

const yieldNow = () => new Promise<void>((res) => setTimeout(res, 0));

/**
 * The deduplication job of one store.
 *
 * @example Illustrative only (the parts are wired by `store.ts`):
 * ```ts ignore
 * const dedup = new Dedup(mem, files, hooks);
 * const { merged, bytesFreed } = await dedup.run({ sliceBytes: 1 << 20 });
 * ```
 */
export class Dedup {
  #mem: IndexMemory;
  #files: ElementFiles;
  #hooks: DedupHooks;
  #running: Promise<DedupResult> | undefined;

  constructor(mem: IndexMemory, files: ElementFiles, hooks: DedupHooks) {
    this.#mem = mem;
    this.#files = files;
    this.#hooks = hooks;
  }

  /**
   * Runs a pass (joining the one under way, if any).
   * @throws {TypeError} for options of the wrong type.
   * @throws {RangeError} for sizes that are not positive integers (or
   *   `minBytes` over `maxBytes`).
   */
  run(options?: DedupOptions): Promise<DedupResult> {
    const checked = checkDedupOptions(options);
    this.#running ??= this.#run(checked).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #run(options: CheckedDedupOptions): Promise<DedupResult> {
    const { sliceBytes, minBytes, maxBytes } = options;
    const result: DedupResult = { scanned: 0, merged: 0, bytesFreed: 0 };
    const stopped = () =>
      this.#hooks.closed() || options.signal?.aborted === true;
    // 1. Group data elements by (size, checksum), from the records.
    const groups = new Map<string, Candidate[]>();
    const mem = this.#mem;
    for (let i = 0; i < mem.count; i++) {
      if (i % GROUP_PER_SLICE === GROUP_PER_SLICE - 1) {
        // The table may change meanwhile: every candidate is found again
        // by its hash and record before it is used.
        await yieldNow();
        if (stopped()) return result;
      }
      const rec = mem.element(i, DATA);
      if (rec === undefined || rec.size < minBytes || rec.size > maxBytes) {
        continue;
      }
      const g = `${rec.size}:${rec.crc}`;
      const c = { lo: mem.hashLo(i), hi: mem.hashHi(i), rec };
      const list = groups.get(g);
      if (list === undefined) groups.set(g, [c]);
      else list.push(c);
    }
    // 2. In each group, compare the bytes with the copies kept and merge.
    let budget = sliceBytes;
    let slice = 0;
    for (const list of groups.values()) {
      if (list.length < 2) continue;
      // The lowest slots first: kept copies are the earliest, so freed
      // slots lie at block files' ends, whose disk blocks are given back.
      list.sort((a, b) =>
        Number(a.rec.inFile) - Number(b.rec.inFile) || a.rec.loc - b.rec.loc
      );
      const kept: Kept[] = [];
      for (const c of list) {
        if (budget <= 0) {
          await this.#hooks.commit();
          await yieldNow();
          budget = sliceBytes;
          slice++;
        }
        if (stopped()) {
          await this.#hooks.commit();
          return result;
        }
        const i = this.#find(c);
        if (i < 0) continue;
        result.scanned++;
        // Already one of the kept copies (a sharer): nothing to do.
        if (
          kept.some((k) => elementId(DATA, k.c.rec) === elementId(DATA, c.rec))
        ) {
          continue;
        }
        const read = this.#read(i, c.rec);
        budget -= c.rec.size;
        if (read === undefined) continue;
        const same = kept.find((k) => sameBytes(k.bytes, read.bytes));
        if (same === undefined) {
          if (kept.length < KEPT_PER_GROUP) kept.push({ c, ...read, slice });
          continue;
        }
        const j = this.#find(same.c);
        if (j < 0 || mem.metaWithData(i)) continue;
        if (same.slice !== slice) {
          // The table may have changed while other calls ran: compare with
          // the kept copy's bytes as they are now, in this slice.
          const now = this.#read(j, same.c.rec);
          budget -= same.c.rec.size;
          if (now === undefined || !sameBytes(now.bytes, read.bytes)) continue;
          same.slice = slice;
        }
        result.bytesFreed += this.#hooks.share({
          tag: OP.share,
          time: nowSeconds(),
          index: i,
          hashLo: mem.hashLo(i),
          hashHi: mem.hashHi(i),
          source: j,
          sourceLo: mem.hashLo(j),
          kind: DATA,
          ownKey: read.ownKey,
          originKey: same.key,
          originLo: same.lo,
          originHi: same.hi,
        });
        result.merged++;
      }
    }
    await this.#hooks.commit();
    return result;
  }

  /** The entry with `c`'s hash that still holds `c`'s element; -1 if none. */
  #find(c: Candidate): number {
    const mem = this.#mem;
    for (let pos = mem.lookupFirst(c.lo, c.hi); pos >= 0;) {
      const i = mem.entryAt(pos);
      const rec = mem.element(i, DATA);
      if (
        rec !== undefined && rec.loc === c.rec.loc &&
        rec.inFile === c.rec.inFile &&
        recordSlots(rec) === recordSlots(c.rec) &&
        rec.size === c.rec.size && rec.crc === c.rec.crc
      ) {
        return i;
      }
      pos = mem.lookupNext(c.lo, c.hi, pos);
    }
    return -1;
  }

  /**
   * Entry `i`'s data element `rec`, read and verified as its reads are
   * (against its origin's header, or its own hash): its bytes, the key
   * and hash its header carries, and the entry's own key. Undefined when
   * it does not verify (left for reads and check-store to deal with).
   */
  #read(
    i: number,
    rec: ElementRecord,
  ):
    | {
      bytes: Uint8Array;
      key: Uint8Array;
      lo: number;
      hi: number;
      ownKey: Uint8Array;
    }
    | undefined {
    const mem = this.#mem;
    const origins = mem.origins(i);
    const o = origins?.of[DATA];
    const lo = o?.hashLo ?? mem.hashLo(i);
    const hi = o?.hashHi ?? mem.hashHi(i);
    let key = o?.key;
    if (key === undefined) {
      const head = rec.inFile
        ? this.#files.readFileHeader(DATA, rec.loc, 0)
        : this.#files.readSlotHeader(DATA, rec.loc, 0);
      const h = head === undefined ? undefined : readElementHeader(head);
      if (h === undefined) return undefined;
      key = head!.slice(ELEMENT_HEADER, ELEMENT_HEADER + h.keyLen);
    }
    const want: Expected = {
      kind: DATA,
      key,
      hashLo: lo,
      hashHi: hi,
      size: rec.size,
      crc: rec.crc,
    };
    const r: ReadResult = rec.inFile
      ? this.#files.readFile(DATA, rec.loc, want)
      : this.#files.readSlot(DATA, rec.loc, want, recordSlots(rec));
    if (!r.ok) return undefined;
    // The entry's own key: kept beside its origins, else its header's.
    const ownKey = origins?.key ?? mem.attrs(i)?.key ?? key;
    return { bytes: r.bytes.slice(), key, lo, hi, ownKey };
  }
}
