/**
 * HTTP-date parsing and formatting (RFC 9110 §5.6.7).
 *
 * @module
 */

const MONTHS = [
  "jan",
  "feb",
  "mar",
  "apr",
  "may",
  "jun",
  "jul",
  "aug",
  "sep",
  "oct",
  "nov",
  "dec",
];

const TIME = "([0-9]{2}):([0-9]{2}):([0-9]{2})";
// IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
const IMF = new RegExp(
  `^[a-z]{3}, ([0-9]{2}) ([a-z]{3}) ([0-9]{4}) ${TIME} GMT$`,
  "i",
);
// obsolete RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
const RFC850 = new RegExp(
  `^[a-z]{6,9}, ([0-9]{2})-([a-z]{3})-([0-9]{2}) ${TIME} GMT$`,
  "i",
);
// obsolete asctime: Sun Nov  6 08:49:37 1994
const ASCTIME = new RegExp(
  `^[a-z]{3} ([a-z]{3}) ([ 0-9][0-9]) ${TIME} ([0-9]{4})$`,
  "i",
);

/**
 * Parses an HTTP-date in any of its three formats. Anything else (such as
 * the `Expires: 0` that servers send to mean "already expired") is invalid,
 * where `Date.parse` would accept many strings that are not HTTP-dates.
 *
 * @param value A field value, or `null` when the field is absent.
 * @param now Milliseconds since the epoch, to place two-digit RFC 850 years
 *   (RFC 9110 §5.6.7: a year more than 50 years ahead is in the past).
 * @returns Milliseconds since the epoch, or `undefined` when invalid.
 * @example Parse the preferred format
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseHttpDate } from "./dates.ts";
 * assert.ok(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT") === 784111777000);
 * assert.ok(parseHttpDate("0") === undefined);
 * ```
 */
export function parseHttpDate(
  value: string | null,
  now = Date.now(),
): number | undefined {
  if (value === null) return undefined;
  const s = value.trim();
  let day: string, month: string, year: number, hms: string[];
  let m = IMF.exec(s);
  if (m) {
    day = m[1]!;
    month = m[2]!;
    year = Number(m[3]);
    hms = m.slice(4, 7);
  } else if ((m = RFC850.exec(s))) {
    day = m[1]!;
    month = m[2]!;
    year = 2000 + Number(m[3]);
    if (Date.UTC(year, 0) > now + 50 * 365.25 * 86_400_000) year -= 100;
    hms = m.slice(4, 7);
  } else if ((m = ASCTIME.exec(s))) {
    month = m[1]!;
    day = m[2]!.trim();
    year = Number(m[6]);
    hms = m.slice(3, 6);
  } else {
    return undefined;
  }
  const mon = MONTHS.indexOf(month.toLowerCase());
  const [h, min, sec] = hms.map(Number) as [number, number, number];
  const d = Number(day);
  if (mon < 0 || d < 1 || d > 31 || h > 23 || min > 59 || sec > 60) {
    return undefined;
  }
  const t = Date.UTC(year, mon, d, h, min, Math.min(sec, 59));
  // Rejects days past the month's end (31 Feb rolls into March).
  return new Date(t).getUTCDate() === d ? t : undefined;
}

/**
 * Formats a time as an IMF-fixdate, the form senders generate.
 *
 * @param ms Milliseconds since the epoch.
 * @returns The date, such as `Sun, 06 Nov 1994 08:49:37 GMT`.
 */
export function formatHttpDate(ms: number): string {
  return new Date(ms).toUTCString();
}
