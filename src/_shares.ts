/**
 * Reference counts of stored elements (issue 15: copy-on-write `copy`,
 * `move`, `dedup`; nrfs's reference counts).
 *
 * An element (a slot, a run of slots, a large file, or metadata in its
 * data's slot) may be referred to by several entries and by pins of
 * superseded references. The counts are not stored: they are derived at
 * open from the records (every record claiming an element is one entry
 * reference), so they can never disagree with them (FORMAT.md §4.3). This
 * table keeps only elements whose count is not the usual one entry and no
 * pin; the rest are implicitly `{ entries: 1, pins: 0 }`.
 *
 * Storage is freed when the last reference goes (entry or pin); its bytes
 * leave the live count with the last entry reference (and are then
 * deferred until the last pin ends), so the limit counts a shared element
 * once.
 *
 * @module
 */
import {
  type ElementRecord,
  type IndexMemory,
  recordSlots,
  scratchRecords,
} from "./index_memory.ts";
import { type ElementKind, KINDS } from "./kinds.ts";
import { recordDisk } from "./_slot_fit.ts";

/** The references to one element. */
interface Refs {
  entries: number;
  pins: number;
  size: number;
}

/** What dropping one entry reference to an element leaves. */
export type Dropped =
  /** Other entries still refer to it: nothing changes. */
  | "kept"
  /** Only pins refer to it now: its bytes are deferred until they end. */
  | "deferred"
  /** Nothing refers to it: free it now. */
  | "free";

/**
 * A number naming element `rec` of `kind`: its location, whether it is a
 * slot (or run), a large file or metadata in the data's slot, and its kind.
 */
export function elementId(kind: ElementKind, rec: ElementRecord): number {
  const where = rec.inFile ? 1 : rec.withData === true ? 2 : 0;
  return rec.loc * 8 + where * 2 + kind;
}

/**
 * Two records name the same stored element the same way (location, run
 * length, size and checksum).
 */
export function sameElement(a: ElementRecord, b: ElementRecord): boolean {
  return a.loc === b.loc && a.inFile === b.inFile &&
    (a.withData === true) === (b.withData === true) &&
    recordSlots(a) === recordSlots(b) && a.size === b.size && a.crc === b.crc;
}

/**
 * The reference counts of one open store.
 *
 * @example
 * ```ts ignore
 * const shares = new Shares();
 * shares.share(DATA, rec); // a copy refers to it too
 * shares.drop(DATA, rec, false); // "kept": the source still does
 * shares.drop(DATA, rec, false); // "free"
 * ```
 */
export class Shares {
  #refs: Map<number, Refs> = new Map();

  /**
   * Derives the counts from the records of `mem` (open): one entry
   * reference a claim. Returns the bytes and disk bytes counted more
   * than once by a sum over the records (to subtract from it).
   */
  load(mem: IndexMemory): { bytes: number; disk: number } {
    const scan = scanShares(mem);
    this.#refs = scan.refs;
    return { bytes: scan.extraBytes, disk: scan.extraDisk };
  }

  #get(kind: ElementKind, rec: ElementRecord): [number, Refs] {
    const id = elementId(kind, rec);
    return [id, this.#refs.get(id) ?? { entries: 1, pins: 0, size: rec.size }];
  }

  #put(id: number, r: Refs): void {
    if (r.entries === 1 && r.pins === 0) this.#refs.delete(id);
    else if (r.entries === 0 && r.pins === 0) this.#refs.delete(id);
    else this.#refs.set(id, r);
  }

  /** One more entry refers to element `rec` of `kind`. */
  share(kind: ElementKind, rec: ElementRecord): void {
    const [id, r] = this.#get(kind, rec);
    r.entries++;
    this.#put(id, r);
  }

  /**
   * One entry reference to `rec` goes; `pinned` when a pin of that
   * reference takes it over (held until the pin ends, `unpin`).
   */
  drop(kind: ElementKind, rec: ElementRecord, pinned: boolean): Dropped {
    const [id, r] = this.#get(kind, rec);
    r.entries--;
    if (pinned) r.pins++;
    this.#put(id, r);
    if (r.entries > 0) return "kept";
    return r.pins > 0 ? "deferred" : "free";
  }

  /**
   * A pin holding `rec` ended; true when nothing refers to it any more
   * (free it now: its bytes were deferred).
   */
  unpin(kind: ElementKind, rec: ElementRecord): boolean {
    const [id, r] = this.#get(kind, rec);
    r.pins = Math.max(0, r.pins - 1);
    this.#put(id, r);
    return r.entries === 0 && r.pins === 0;
  }

  /** Entry references to `rec` (1 for an element not tracked). */
  entryRefs(kind: ElementKind, rec: ElementRecord): number {
    return this.#get(kind, rec)[1].entries;
  }

  /** True when more than one entry refers to `rec`. */
  isShared(kind: ElementKind, rec: ElementRecord): boolean {
    return this.entryRefs(kind, rec) > 1;
  }

  /** True when no element is shared or held by a pin (the usual state). */
  get empty(): boolean {
    return this.#refs.size === 0;
  }

  /**
   * Elements more than one entry refers to, and the bytes their sharing
   * saves (a copy of each for every reference past the first).
   */
  totals(): { sharedElements: number; bytesSaved: number } {
    let sharedElements = 0;
    let bytesSaved = 0;
    for (const r of this.#refs.values()) {
      if (r.entries < 2) continue;
      sharedElements++;
      bytesSaved += r.size * (r.entries - 1);
    }
    return { sharedElements, bytesSaved };
  }
}

/** How an entry claims an element: where, how long, and whose header. */
interface Claim {
  slots: number;
  size: number;
  crc: number;
  hashLo: number;
  hashHi: number;
}

/**
 * The slot claims open's record check has accepted, by element, so that a
 * later claim of the same run is accepted as a share exactly when it
 * claims it alike (same run, size, checksum, and the same header hash:
 * its origin's, or the entry's own). Anything else claiming a used slot is
 * damage, dropped as before.
 */
export class SlotClaims {
  #claims = new Map<number, Claim>();

  /** True when `rec`, whose run is marked used, is an accepted claim alike. */
  sameAs(
    mem: IndexMemory,
    i: number,
    kind: ElementKind,
    rec: ElementRecord,
  ): boolean {
    const had = this.#claims.get(elementId(kind, rec));
    return had !== undefined && sameClaim(had, claimOf(mem, i, kind, rec));
  }

  /** Notes an accepted claim; true when it is the element's first. */
  note(
    mem: IndexMemory,
    i: number,
    kind: ElementKind,
    rec: ElementRecord,
  ): boolean {
    const id = elementId(kind, rec);
    if (this.#claims.has(id)) return false;
    this.#claims.set(id, claimOf(mem, i, kind, rec));
    return true;
  }
}

/** What {@linkcode scanShares} found. */
export interface ShareScan {
  /** Elements more than one record claims, with their claim counts. */
  refs: Map<number, Refs>;
  /** Bytes a sum over the records counts more than once. */
  extraBytes: number;
  /** The same for their disk bytes (FORMAT.md §5.4). */
  extraDisk: number;
  /** Per kind, slot claims past the first of a shared slot or run. */
  clashes: [number, number];
  /** True when every shared element's claimants claim it alike. */
  alike: boolean;
}

/**
 * Finds the shared elements of `mem`'s records: every element some
 * entry holds with an origin (only such elements can be shared, FORMAT.md
 * §4.3), and every claim of those. Two passes over the table and a set of
 * those elements: a store without origins costs nothing.
 */
export function scanShares(mem: IndexMemory): ShareScan {
  const out: ShareScan = {
    refs: new Map(),
    extraBytes: 0,
    extraDisk: 0,
    clashes: [0, 0],
    alike: true,
  };
  if (!mem.anyOrigins()) return out;
  const ids = new Set<number>();
  for (let i = 0; i < mem.count; i++) {
    const o = mem.origins(i);
    if (o === undefined) continue;
    for (const kind of KINDS) {
      const rec = o.of[kind] === undefined ? undefined : mem.element(i, kind);
      if (rec !== undefined) ids.add(elementId(kind, rec));
    }
  }
  // One record object a kind, read into (a pass over a million entries).
  const scratch = scratchRecords();
  const first = new Map<number, Claim>();
  for (let i = 0; i < mem.count; i++) {
    for (const kind of KINDS) {
      const rec = mem.elementInto(i, kind, scratch[kind]!);
      if (rec === undefined) continue;
      const id = elementId(kind, rec);
      if (!ids.has(id)) continue;
      const claim = claimOf(mem, i, kind, rec);
      const r = out.refs.get(id);
      if (r === undefined) {
        out.refs.set(id, { entries: 1, pins: 0, size: rec.size });
        first.set(id, claim);
        continue;
      }
      r.entries++;
      out.extraBytes += rec.size;
      out.extraDisk += recordDisk(kind, rec);
      if (!rec.inFile && !rec.withData) out.clashes[kind]++;
      if (!sameClaim(first.get(id)!, claim)) out.alike = false;
    }
  }
  for (const [id, r] of out.refs) if (r.entries === 1) out.refs.delete(id);
  return out;
}

function claimOf(
  mem: IndexMemory,
  i: number,
  kind: ElementKind,
  rec: ElementRecord,
): Claim {
  const o = mem.origins(i)?.of[kind];
  return {
    slots: recordSlots(rec),
    size: rec.size,
    crc: rec.crc,
    hashLo: o?.hashLo ?? mem.hashLo(i),
    hashHi: o?.hashHi ?? mem.hashHi(i),
  };
}

function sameClaim(a: Claim, b: Claim): boolean {
  return a.slots === b.slots && a.size === b.size && a.crc === b.crc &&
    a.hashLo === b.hashLo && a.hashHi === b.hashHi;
}
