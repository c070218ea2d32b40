/**
 * Options of {@linkcode BackingStore.open}: defaults, limits, validation.
 * Everything is checked before the store touches the disk.
 *
 * @module
 */
import { type HashName, MAX_DATA_SLOT_BITS } from "./format.ts";
import type { FileIO } from "./io.ts";
import { defaultJournalBytes } from "./journal.ts";

/** Options for opening a store; every field is optional. */
export interface OpenOptions {
  /** Byte limit the store keeps itself under. Default 1 GiB. */
  limit?: number;
  /** Bytes freed per eviction beyond the limit. Default `limit / 5`. */
  hysteresis?: number;
  /** log2 of the entry capacity, 8–24. Default 16 (65,536 entries). */
  entryBits?: number;
  /** log2 of the address-map size, entryBits+1–28. Default 20. */
  identBits?: number;
  /** Key hash: keyed SipHash-1-3 (default) or NetSurf's nsurl hash. */
  hash?: HashName;
  /** Delay before deferred index writes, ms. Default 10,000 (as NetSurf). */
  maintenanceDelayMs?: number;
  /**
   * How long a fetched reference may pin its entry, ms. After this an
   * unreleased reference no longer protects the entry from eviction or
   * delays freeing its storage (the holder keeps its bytes). Default 60,000.
   */
  pinTimeoutMs?: number;
  /**
   * What a resolved `store`/`invalidate` survives. `"process"` (default):
   * the death of the process (its journal entry is written before the call
   * resolves). `"fsync"`: also power loss (element and journal are fsynced
   * first; concurrent calls share one fsync).
   */
  durability?: "process" | "fsync";
  /**
   * Size of the journal file, bytes (64 KiB – 1 GiB). Default 8 MiB for up
   * to 2^20 entries (entryBits ≤ 20), doubling with each entryBits above
   * that (128 MiB at 24), taken from the store's own entryBits.
   */
  journalBytes?: number;
}

/**
 * What tests may replace, through `openForTest` (src/_testing.ts); not
 * part of the public options.
 */
export interface TestHooks {
  /** The file layer (a fault-injecting one). */
  io?: FileIO;
  /**
   * Replaces the key hash with this 32-bit function. Stores written under
   * one override must be reopened with the same one.
   */
  hashOverride?: (key: string) => number;
}

/** Options after defaults; `explicit` says which were given. */
export interface ResolvedOptions {
  limit: number;
  hysteresis: number;
  entryBits: number;
  identBits: number;
  hash: HashName;
  maintenanceDelayMs: number;
  pinTimeoutMs: number;
  hashOverride: ((key: string) => number) | undefined;
  durability: "process" | "fsync";
  /**
   * Size of each new journal; when not `explicit`, the default for
   * `entryBits` (open uses the store's own entryBits instead, through
   * {@linkcode journalBytesFor}).
   */
  journalBytes: number;
  explicit: {
    entryBits: boolean;
    identBits: boolean;
    hash: boolean;
    journalBytes: boolean;
  };
}

/** Default byte limit: 1 GiB. */
export const DEFAULT_LIMIT = 2 ** 30;
/** Default log2 entry capacity (NetSurf's). */
export const DEFAULT_ENTRY_BITS = 16;
/** Default log2 address-map size (NetSurf's). */
export const DEFAULT_IDENT_BITS = 20;
/** Smallest and largest entryBits. */
export const ENTRY_BITS_RANGE = [8, 24] as const;
/** Largest identBits (the smallest is entryBits + 1). */
export const MAX_IDENT_BITS = 28;

/**
 * True when a control file's table dimensions are ones larder can have
 * made (FORMAT.md §3): entryBits in range, identBits above it, and
 * dataSlotBits from entryBits to MAX_DATA_SLOT_BITS.
 */
export function tableDimensionsValid(
  c: { entryBits: number; identBits: number; dataSlotBits: number },
): boolean {
  return c.entryBits >= ENTRY_BITS_RANGE[0] &&
    c.entryBits <= ENTRY_BITS_RANGE[1] &&
    c.identBits > c.entryBits && c.identBits <= MAX_IDENT_BITS &&
    c.dataSlotBits >= c.entryBits && c.dataSlotBits <= MAX_DATA_SLOT_BITS;
}

function integerIn(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== "number") {
    throw new TypeError(`Cannot open store: ${name} must be a number`);
  }
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(
      `Cannot open store: ${name} must be an integer in [${min}, ${max}], got ${v}`,
    );
  }
  return v;
}

/**
 * Applies defaults and checks ranges.
 * @throws {TypeError} for a wrongly typed option.
 * @throws {RangeError} for an out-of-range option.
 */
export function resolveOptions(
  o: OpenOptions = {},
  hooks: TestHooks = {},
): ResolvedOptions {
  if (typeof o !== "object" || o === null) {
    throw new TypeError("Cannot open store: options must be an object");
  }
  const limit = o.limit === undefined
    ? DEFAULT_LIMIT
    : integerIn("limit", o.limit, 1, Number.MAX_SAFE_INTEGER);
  const hysteresis = o.hysteresis === undefined
    ? Math.floor(limit / 5)
    : integerIn("hysteresis", o.hysteresis, 0, limit);
  const entryBits = o.entryBits === undefined ? DEFAULT_ENTRY_BITS : integerIn(
    "entryBits",
    o.entryBits,
    ENTRY_BITS_RANGE[0],
    ENTRY_BITS_RANGE[1],
  );
  const identBits = o.identBits === undefined
    ? Math.max(DEFAULT_IDENT_BITS, entryBits + 1)
    : integerIn("identBits", o.identBits, entryBits + 1, MAX_IDENT_BITS);
  if (o.hash !== undefined && o.hash !== "siphash13" && o.hash !== "nsurl") {
    throw new RangeError(
      `Cannot open store: hash must be "siphash13" or "nsurl", got ${
        String(o.hash)
      }`,
    );
  }
  if (
    o.durability !== undefined && o.durability !== "process" &&
    o.durability !== "fsync"
  ) {
    throw new RangeError(
      `Cannot open store: durability must be "process" or "fsync", got ${
        String(o.durability)
      }`,
    );
  }
  if (
    hooks.hashOverride !== undefined && typeof hooks.hashOverride !== "function"
  ) {
    throw new TypeError("Cannot open store: hashOverride must be a function");
  }
  return {
    limit,
    hysteresis,
    entryBits,
    identBits,
    hash: o.hash ?? "siphash13",
    maintenanceDelayMs: o.maintenanceDelayMs === undefined
      ? 10_000
      : integerIn("maintenanceDelayMs", o.maintenanceDelayMs, 0, 2 ** 31 - 1),
    pinTimeoutMs: o.pinTimeoutMs === undefined
      ? 60_000
      : integerIn("pinTimeoutMs", o.pinTimeoutMs, 0, 2 ** 31 - 1),
    hashOverride: hooks.hashOverride,
    durability: o.durability ?? "process",
    journalBytes: o.journalBytes === undefined
      ? defaultJournalBytes(entryBits)
      : integerIn("journalBytes", o.journalBytes, 2 ** 16, 2 ** 30),
    explicit: {
      entryBits: o.entryBits !== undefined,
      identBits: o.identBits !== undefined,
      hash: o.hash !== undefined,
      journalBytes: o.journalBytes !== undefined,
    },
  };
}

/**
 * The size of each new journal of a store of `entryBits`: the explicit
 * option, or the default for the store's table.
 */
export function journalBytesFor(
  opt: ResolvedOptions,
  entryBits: number,
): number {
  return opt.explicit.journalBytes
    ? opt.journalBytes
    : defaultJournalBytes(entryBits);
}
