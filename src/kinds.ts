/**
 * Element kinds: the one table of what differs between an entry's data
 * and its metadata (FORMAT.md §2, §5, §6). Everything that varies by kind
 * (slot size, directory names, whether data runs span several slots, the
 * name in messages) is read from {@linkcode KIND_TABLE}, indexed by the
 * kind's value, which is also the kind byte on disk.
 *
 * A third kind (per-object attributes) is a new row here with the next
 * value; the entry record (FORMAT.md §4) and the WASM layout then need
 * its fields too, which bumps the entries version.
 *
 * @module
 */

/** The data element (kind byte 0 on disk). */
export const DATA = 0;
/** The metadata element (kind byte 1 on disk). */
export const META = 1;
/** An element kind: its value on disk and its row in KIND_TABLE. */
export type ElementKind = typeof DATA | typeof META;

/** What is particular to one element kind. */
export interface KindInfo {
  /** The kind's value (on disk, and its index here). */
  readonly kind: ElementKind;
  /** Its name in messages and reports. */
  readonly name: string;
  /** Bytes a block slot of this kind holds (FORMAT.md §5.2). */
  readonly slotSize: number;
  /** Most consecutive slots one element spans (FORMAT.md §5.3). */
  readonly maxRunSlots: number;
  /** Slots in one block file of this kind (FORMAT.md §5.2). */
  readonly slotsPerFile: number;
  /** Top-level directory of its block files (FORMAT.md §2). */
  readonly blockDir: string;
  /** Top-level directory of its large files (FORMAT.md §2). */
  readonly largeDir: string;
}

/** Every element kind, by value. */
export const KIND_TABLE: readonly [KindInfo, KindInfo] = [
  {
    kind: DATA,
    name: "data",
    // 64-byte slots: an element takes the run of them its bytes need
    // (FORMAT.md §5.3), so small ones share disk blocks.
    slotSize: 64,
    maxRunSlots: 32768,
    slotsPerFile: 524288,
    blockDir: "dblk",
    largeDir: "d",
  },
  {
    kind: META,
    name: "metadata",
    slotSize: 1024,
    maxRunSlots: 1,
    slotsPerFile: 4096,
    blockDir: "mblk",
    largeDir: "m",
  },
];

/** A value for each element kind, indexed by kind (a readonly array). */
export type PerKind<T> = readonly T[] & { readonly [K in ElementKind]: T };

/** The element kinds, in value order. */
export const KINDS: readonly ElementKind[] = KIND_TABLE.map((k) => k.kind);

/** Builds a per-kind value from `f`. */
export function perKind<T>(f: (kind: ElementKind) => T): PerKind<T> {
  return KIND_TABLE.map((k) => f(k.kind)) as unknown as PerKind<T>;
}

/** The kinds other than `kind`. */
export function otherKinds(kind: ElementKind): readonly ElementKind[] {
  return OTHERS[kind];
}

const OTHERS: PerKind<readonly ElementKind[]> = perKind((kind) =>
  KINDS.filter((k) => k !== kind)
);

/** True when `v` is the value of an element kind. */
export function isKind(v: number): v is ElementKind {
  return v >= 0 && v < KIND_TABLE.length && Number.isInteger(v);
}
