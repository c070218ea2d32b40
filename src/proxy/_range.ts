/**
 * Range requests (RFC 9110 §14) answered by the proxy from a complete
 * response: the parse of `Range`, the `If-Range` condition (§13.1.5), and
 * the 206 and 416 responses. Pure, apart from {@linkcode sliceStream}.
 *
 * The proxy serves one byte range (`bytes=a-b`, `bytes=a-`, `bytes=-n`)
 * with 206 and `Content-Range`; several ranges, a unit other than `bytes`,
 * an invalid range or a failed `If-Range` are ignored (a full 200, which
 * §14.2 allows), and a range with nothing in the representation is a 416
 * with `Content-Range` bytes \*\/length. Only a `GET` whose answer would be
 * a 200 is ranged (§14.2); a `HEAD` with `Range` gets the 200's head.
 *
 * @module
 */
import { parseHttpDate } from "../http/dates.ts";

/** What to send for a request's `Range` against a representation. */
export type RangePlan =
  /** The whole representation, 200: no range, or one ignored. */
  | { kind: "full" }
  /** The bytes `[start, end)`, 206. */
  | { kind: "partial"; start: number; end: number }
  /** Nothing of the representation is in the range, 416. */
  | { kind: "unsatisfiable" };

const FULL: RangePlan = { kind: "full" };

/** A decimal of any length as a number; past 2^53 it is Infinity (it passes any length). */
function position(digits: string): number {
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : Infinity;
}

/**
 * The plan for a `Range` field value against a representation of `size`
 * bytes (RFC 9110 §14.1.1, §14.2).
 *
 * @param value The `Range` field value.
 * @param size The representation's length in bytes.
 * @returns `partial` for one satisfiable byte range, `unsatisfiable` for
 *   one that is not, `full` for anything to ignore: another unit, an
 *   invalid range-set, several ranges, a suffix range of an empty
 *   representation (satisfiable, but no 206 can say "no bytes").
 *
 * ```ts ignore
 * parseRange("bytes=0-99", 1000); // { kind: "partial", start: 0, end: 100 }
 * parseRange("bytes=-10", 1000); // { kind: "partial", start: 990, end: 1000 }
 * parseRange("bytes=1000-", 1000); // { kind: "unsatisfiable" }
 * ```
 */
export function parseRange(value: string, size: number): RangePlan {
  const eq = value.indexOf("=");
  if (eq < 0 || value.slice(0, eq).trim().toLowerCase() !== "bytes") {
    return FULL;
  }
  // 1#range-spec: empty list elements are ignored (RFC 9110 §5.6.1.2).
  const specs = value.slice(eq + 1).split(",").map((s) => s.trim()).filter(
    (s) => s !== "",
  );
  if (specs.length !== 1) return FULL; // none (invalid), or several
  const m = /^(\d*)-(\d*)$/.exec(specs[0]!);
  if (m === null || (m[1] === "" && m[2] === "")) return FULL;
  if (m[1] === "") { // suffix-range
    const n = position(m[2]!);
    if (n === 0) return { kind: "unsatisfiable" };
    if (size === 0) return FULL;
    return { kind: "partial", start: Math.max(0, size - n), end: size };
  }
  const first = position(m[1]!);
  const last = m[2] === "" ? Infinity : position(m[2]!);
  if (last < first) return FULL; // invalid (§14.1.1)
  if (first >= size) return { kind: "unsatisfiable" };
  return { kind: "partial", start: first, end: Math.min(size, last + 1) };
}

/**
 * Whether an `If-Range` condition holds for a representation (RFC 9110
 * §13.1.5): an entity tag must match its `ETag` by strong comparison (a
 * weak tag on either side never does); a date must equal its
 * `Last-Modified` exactly.
 *
 * @param value The `If-Range` field value.
 * @param headers The representation's header fields.
 * @returns `true` when the range may be served.
 */
export function ifRangeHolds(value: string, headers: Headers): boolean {
  const v = value.trim();
  if (v.startsWith('"') || v.startsWith("W/")) {
    const etag = headers.get("etag")?.trim();
    return !v.startsWith("W/") && etag !== undefined &&
      !etag.startsWith("W/") && etag === v;
  }
  const date = parseHttpDate(v);
  const lastModified = parseHttpDate(headers.get("last-modified"));
  return date !== undefined && date === lastModified;
}

/**
 * The plan for a request against a complete response: ranges are for
 * `GET`s whose answer is a 200 of known length, with a `Range` field and
 * an `If-Range` (if any) that holds.
 *
 * @param method The request method.
 * @param request The request's header fields.
 * @param status The status the response would have without `Range`.
 * @param headers The response's header fields (its validators).
 * @param size Its length in bytes, or undefined when not known.
 * @returns The plan.
 */
export function planRange(
  method: string,
  request: Headers,
  status: number,
  headers: Headers,
  size: number | undefined,
): RangePlan {
  const range = request.get("range");
  if (method !== "GET" || range === null || status !== 200) return FULL;
  if (size === undefined) return FULL;
  const ifRange = request.get("if-range");
  if (ifRange !== null && !ifRangeHolds(ifRange, headers)) return FULL;
  return parseRange(range, size);
}

/**
 * A body's length from its `Content-Length`, when that is one valid
 * decimal (a list of equal values included, RFC 9112 §6.3).
 *
 * @param headers The response's header fields.
 * @returns The length, or undefined.
 */
export function declaredLength(headers: Headers): number | undefined {
  const value = headers.get("content-length");
  if (value === null) return undefined;
  const parts = value.split(",").map((s) => s.trim());
  if (!parts.every((p) => /^\d+$/.test(p) && p === parts[0])) return undefined;
  const n = Number(parts[0]);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * The head of a 206 for `[start, end)` of `size` bytes (RFC 9110 §15.3.7):
 * the 200's fields (so `Date`, `Cache-Control`, `ETag`, `Expires`, `Vary`,
 * `Age`, `Via` stay) with `Content-Range` and the part's `Content-Length`.
 *
 * @param full The fields the 200 would have had.
 * @param start First byte.
 * @param end Byte after the last.
 * @param size The representation's length.
 * @returns New header fields.
 */
export function partialHeaders(
  full: Headers,
  start: number,
  end: number,
  size: number,
): Headers {
  const h = new Headers(full);
  h.set("content-range", `bytes ${start}-${end - 1}/${size}`);
  h.set("content-length", String(end - start));
  h.set("accept-ranges", "bytes");
  return h;
}

// What a 416 keeps of the 200's fields: no freshness (a cache downstream
// must not store a 416 for the URL), no content fields (it has no content).
const UNSATISFIABLE_KEPT = [
  "date",
  "age",
  "via",
  "etag",
  "last-modified",
  "x-larder-cache",
];

/**
 * The head of a 416 for a representation of `size` bytes (RFC 9110
 * §15.5.17): `Content-Range` bytes \*\/size, the validators, `Date`, `Age`
 * and `Via`, and an empty body.
 *
 * @param full The fields the 200 would have had.
 * @param size The representation's length.
 * @returns New header fields.
 */
export function unsatisfiableHeaders(full: Headers, size: number): Headers {
  const h = new Headers();
  for (const name of UNSATISFIABLE_KEPT) {
    const v = full.get(name);
    if (v !== null) h.set(name, v);
  }
  h.set("content-range", `bytes */${size}`);
  h.set("accept-ranges", "bytes");
  h.set("content-length", "0");
  return h;
}

/**
 * The bytes `[start, end)` of a stream that delivers a whole body, read at
 * the consumer's pace. The source is cancelled once `end` is passed (or
 * when the result is cancelled); a source that ends before `end` errors
 * the result, as the part's `Content-Length` promised more.
 *
 * @param source The whole body; locked from now on.
 * @param start First byte wanted.
 * @param end Byte after the last wanted.
 * @returns The part.
 */
export function sliceStream(
  source: ReadableStream<Uint8Array>,
  start: number,
  end: number,
): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  let at = 0; // source bytes read so far
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        if (at >= end) {
          controller.close();
          await reader.cancel();
          return;
        }
        const { done, value } = await reader.read();
        if (done) {
          controller.error(
            new Error(`Cannot send range: the body ended at byte ${at}`),
          );
          return;
        }
        const from = at;
        at += value.length;
        if (at <= start) continue; // before the range
        const a = Math.max(start, from) - from;
        const b = Math.min(end, at) - from;
        controller.enqueue(value.subarray(a, b));
        if (at >= end) {
          controller.close();
          await reader.cancel();
        }
        return;
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
