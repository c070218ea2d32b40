/**
 * The attribute calls of an open store (`setAttr`, `unsetAttr`,
 * `getAttr`, `attrs`, `attrSize`, `readAttr`, `writeAttr`): arguments
 * checked, values encoded and decoded (`_attrs.ts`), changes made by
 * `IndexChanges` as one journaled operation each. `store.ts` wraps them
 * with its open check and the durability commit.
 *
 * @module
 */
import {
  ATTR_LIMITS,
  attrBytesView,
  type AttrValue,
  bytesRecord,
  decodeAttrValue,
  encodeAttrName,
  encodeAttrValue,
} from "./_attrs.ts";
import type { IndexChanges } from "./_changes.ts";
import type { IndexMemory } from "./index_memory.ts";
import type { NormalKey } from "./key.ts";
import type { KeyLookup } from "./_lookup.ts";

function offsetArg(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    throw new RangeError(
      `Cannot access attribute: ${what} must be a non-negative integer`,
    );
  }
  return v;
}

/**
 * Attribute access for one store.
 *
 * @example Illustrative only (the parts are wired by `store.ts`):
 * ```ts ignore
 * const calls = new AttrCalls(mem, lookup, changes);
 * calls.set(nk, "type", "text/plain");
 * calls.get(nk, "type"); // "text/plain"
 * ```
 */
export class AttrCalls {
  #mem: IndexMemory;
  #lookup: KeyLookup;
  #changes: IndexChanges;

  constructor(mem: IndexMemory, lookup: KeyLookup, changes: IndexChanges) {
    this.#mem = mem;
    this.#lookup = lookup;
    this.#changes = changes;
  }

  #records(nk: NormalKey): Map<string, Uint8Array> | undefined {
    const i = this.#lookup.find(nk).entry;
    return i < 0 ? undefined : this.#mem.attrs(i)?.records;
  }

  #entryExists(nk: NormalKey): boolean {
    return this.#lookup.find(nk).entry >= 0;
  }

  /** Sets `name` to `value` (checked and encoded first). */
  set(nk: NormalKey, name: unknown, value: unknown): void {
    const nameBytes = encodeAttrName(name);
    const rec = encodeAttrValue(value);
    this.#changes.setAttr(nk, name as string, nameBytes, rec);
  }

  /** Removes `name`; false when absent. */
  unset(nk: NormalKey, name: unknown): boolean {
    const nameBytes = encodeAttrName(name);
    return this.#changes.unsetAttr(nk, name as string, nameBytes);
  }

  /** The value of `name`, or undefined (absent, or a newer record). */
  get(nk: NormalKey, name: unknown): AttrValue | undefined {
    encodeAttrName(name);
    const rec = this.#records(nk)?.get(name as string);
    if (rec === undefined) return undefined;
    const d = decodeAttrValue(rec);
    return d.ok ? d.value : undefined;
  }

  /** Every readable attribute; undefined when the key has no entry. */
  all(nk: NormalKey): Map<string, AttrValue> | undefined {
    const records = this.#records(nk);
    if (records === undefined && !this.#entryExists(nk)) return undefined;
    const out = new Map<string, AttrValue>();
    for (const [name, rec] of records ?? []) {
      const d = decodeAttrValue(rec);
      if (d.ok) out.set(name, d.value);
    }
    return out;
  }

  #bytesOf(nk: NormalKey, name: unknown): Uint8Array | undefined {
    encodeAttrName(name);
    const rec = this.#records(nk)?.get(name as string);
    if (rec === undefined) return undefined;
    const view = attrBytesView(rec);
    if (view === "list") {
      throw new TypeError(
        "Cannot access attribute: a string list has no byte access",
      );
    }
    return view;
  }

  /** Byte length of `name`'s value, or undefined when absent. */
  size(nk: NormalKey, name: unknown): number | undefined {
    return this.#bytesOf(nk, name)?.length;
  }

  /** Up to `length` bytes of `name`'s value from `start` (a copy). */
  read(
    nk: NormalKey,
    name: unknown,
    start: unknown,
    length: unknown,
  ): Uint8Array | undefined {
    const s = offsetArg(start, "start");
    const n = offsetArg(length, "length");
    const bytes = this.#bytesOf(nk, name);
    return bytes?.slice(
      Math.min(s, bytes.length),
      Math.min(s + n, bytes.length),
    );
  }

  /**
   * Writes `bytes` into `name`'s value at `start`, extending it (with
   * zeros up to `start`) as needed; the result is a binary value.
   */
  write(nk: NormalKey, name: unknown, bytes: unknown, start: unknown): void {
    if (!(bytes instanceof Uint8Array)) {
      throw new TypeError("Cannot write attribute: bytes must be a Uint8Array");
    }
    const s = offsetArg(start, "start");
    const nameBytes = encodeAttrName(name);
    const old = this.#bytesOf(nk, name) ?? new Uint8Array(0);
    const end = Math.max(old.length, s + bytes.length);
    if (end > ATTR_LIMITS.valueBytes) {
      throw new RangeError(
        `Cannot write attribute: the value would be ${end} bytes, more than the maximum of ${ATTR_LIMITS.valueBytes}`,
      );
    }
    const next = new Uint8Array(end);
    next.set(old);
    next.set(bytes, s);
    this.#changes.setAttr(nk, name as string, nameBytes, bytesRecord(next));
  }
}
