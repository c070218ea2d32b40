/**
 * Cache-Control parsing (RFC 9111 §5.2), the delta-seconds rule (§1.2.2), and
 * targeted cache control fields such as `CDN-Cache-Control` (RFC 9213).
 *
 * @module
 */
import { parseDictionary } from "./_structured_fields.ts";

/** The largest delta-seconds a cache has to represent (RFC 9111 §1.2.2). */
export const DELTA_SECONDS_MAX = 2 ** 31;

/**
 * Cache-Control directives by lower-cased name: `true` for a directive
 * without an argument, else its argument with any quoting removed. When a
 * directive appears more than once the first occurrence wins (RFC 9111
 * §4.2.1 allows this or treating the response as stale).
 */
export type Directives = ReadonlyMap<string, string | true>;

const NO_DIRECTIVES: Directives = new Map();

/**
 * Parses a Cache-Control field value into its directives. Names are
 * case-insensitive (§5.2); arguments may be tokens or quoted strings, and
 * commas inside a quoted string do not split directives.
 *
 * @param value The combined field value (`Headers.get` joins lines with ", ").
 * @returns The directives; empty for a missing or empty field.
 * @example Parse a response's directives
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCacheControl } from "./cache_control.ts";
 * const cc = parseCacheControl('Max-Age=60, no-cache="set-cookie"');
 * assert.ok(cc.get("max-age") === "60");
 * assert.ok(cc.get("no-cache") === "set-cookie");
 * ```
 */
export function parseCacheControl(value: string | null): Directives {
  // Most requests have no Cache-Control: one shared (read-only) empty map.
  if (value === null) return NO_DIRECTIVES;
  const out = new Map<string, string | true>();
  let i = 0;
  const n = value.length;
  while (i < n) {
    while (
      i < n && (value[i] === " " || value[i] === "\t" || value[i] === ",")
    ) i++;
    const nameStart = i;
    while (i < n && value[i] !== "=" && value[i] !== ",") i++;
    const name = value.slice(nameStart, i).trim().toLowerCase();
    let arg: string | true = true;
    if (value[i] === "=") {
      i++;
      while (i < n && (value[i] === " " || value[i] === "\t")) i++;
      if (value[i] === '"') {
        i++;
        let text = "";
        while (i < n && value[i] !== '"') {
          if (value[i] === "\\" && i + 1 < n) i++;
          text += value[i];
          i++;
        }
        i++; // closing quote
        arg = text;
        while (i < n && value[i] !== ",") i++; // junk after the quoted string
      } else {
        const argStart = i;
        while (i < n && value[i] !== ",") i++;
        arg = value.slice(argStart, i).trim();
      }
    }
    if (name !== "" && !out.has(name)) out.set(name, arg);
  }
  return out;
}

/**
 * Reads a delta-seconds argument (§1.2.2): a non-negative integer, capped at
 * 2^31. A directive without an argument, or with anything else, is invalid.
 *
 * @param arg The directive's argument as {@linkcode parseCacheControl} gives it.
 * @returns The number of seconds, or `undefined` when invalid or absent.
 */
export function deltaSeconds(
  arg: string | true | undefined,
): number | undefined {
  if (typeof arg !== "string" || !/^[0-9]+$/.test(arg)) return undefined;
  return Math.min(Number(arg), DELTA_SECONDS_MAX);
}

/**
 * The field names a qualified `no-cache` or `private` directive lists
 * (§5.2.2.4, §5.2.2.7), lower-cased.
 *
 * @param arg The directive's argument.
 * @returns The names, or `undefined` for the unqualified form.
 */
export function fieldNames(
  arg: string | true | undefined,
): string[] | undefined {
  if (typeof arg !== "string") return undefined;
  const names = arg.split(",").map((s) => s.trim().toLowerCase()).filter((s) =>
    s !== ""
  );
  return names.length === 0 ? undefined : names;
}

// RFC 9213 §2.2: the types RFC 9111's directives take in a targeted field.
const DELTA_DIRECTIVES = new Set([
  "max-age",
  "s-maxage",
  "stale-while-revalidate",
  "stale-if-error",
]);
const FLAG_DIRECTIVES = new Set([
  "no-store",
  "must-revalidate",
  "proxy-revalidate",
  "public",
  "immutable",
  "must-understand",
  "no-transform",
]);
const FIELD_LIST_DIRECTIVES = new Set(["no-cache", "private"]);

/**
 * Parses a targeted cache control field such as `CDN-Cache-Control`
 * (RFC 9213 §2.2): a Structured Field Dictionary whose members are
 * response directives, mapped to the form {@linkcode parseCacheControl}
 * gives. Parameters are ignored. A field that is empty, does not parse, or
 * gives a directive this cache implements a value of the wrong type (a
 * `max-age` that is not a non-negative Integer, a `no-store` that is not
 * Boolean true, a `no-cache` that is neither true nor a String) is not a
 * valid value (§2.1), so the result is `undefined` and the caller falls
 * back to `Cache-Control`. Members of unknown directives that are inner
 * lists or false are dropped.
 *
 * @param value The combined field value, or null when absent.
 * @returns The directives, or `undefined` for an absent, empty or invalid field.
 * @example A valid field and two invalid ones
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTargetedCacheControl } from "./cache_control.ts";
 * assert.ok(parseTargetedCacheControl("max-age=60, no-cache")?.get("max-age") === "60");
 * assert.ok(parseTargetedCacheControl("max-age =60") === undefined);
 * assert.ok(parseTargetedCacheControl('max-age="60"') === undefined);
 * ```
 */
export function parseTargetedCacheControl(
  value: string | null,
): Directives | undefined {
  if (value === null) return undefined;
  const dict = parseDictionary(value);
  if (dict === undefined || dict.size === 0) return undefined;
  const out = new Map<string, string | true>();
  for (const [name, member] of dict) {
    const item = member.kind === "item" ? member.item : undefined;
    if (DELTA_DIRECTIVES.has(name)) {
      if (item?.type !== "integer" || item.value < 0) return undefined;
      out.set(name, String(item.value));
    } else if (FLAG_DIRECTIVES.has(name)) {
      if (item?.type !== "boolean" || !item.value) return undefined;
      out.set(name, true);
    } else if (FIELD_LIST_DIRECTIVES.has(name)) {
      if (item?.type === "boolean" && item.value) out.set(name, true);
      else if (item?.type === "string") out.set(name, item.value);
      else return undefined;
    } else if (item !== undefined) {
      if (item.type === "boolean") {
        if (item.value) out.set(name, true);
      } else if (item.type !== "binary") {
        out.set(name, String(item.value));
      }
    }
  }
  return out;
}
