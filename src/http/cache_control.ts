/**
 * Cache-Control parsing (RFC 9111 §5.2) and the delta-seconds rule (§1.2.2).
 *
 * @module
 */

/** The largest delta-seconds a cache has to represent (RFC 9111 §1.2.2). */
export const DELTA_SECONDS_MAX = 2 ** 31;

/**
 * Cache-Control directives by lower-cased name: `true` for a directive
 * without an argument, else its argument with any quoting removed. When a
 * directive appears more than once the first occurrence wins (RFC 9111
 * §4.2.1 allows this or treating the response as stale).
 */
export type Directives = ReadonlyMap<string, string | true>;

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
  const out = new Map<string, string | true>();
  if (value === null) return out;
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
