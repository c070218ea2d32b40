/**
 * A request URL's path and query as `new URL(url)` gives them
 * (`pathname + search`), without parsing the URL when it cannot change
 * them: a cache hit asks this of every request.
 *
 * @module
 */
import { pathStart } from "./_admin.ts";

/**
 * Path and query characters the URL parser keeps as they are in a special
 * (http, https) URL: unreserved, sub-delims other than `'` (percent-encoded
 * in a special URL's query), `:`, `@`, `/` and `?`. No `%` (a `%2e` is a
 * dot segment), `\` (read as `/`), `#`, spaces or controls.
 */
const KEPT = /^\/[A-Za-z0-9\-._~!$&()*+,;=:@/?]*$/;
/** A `.` or `..` segment, which the parser removes. */
const DOT_SEGMENT = /\/\.\.?(?:[/?]|$)/;

/**
 * `url`'s path and query, as `new URL(url).pathname + .search`.
 *
 * @param url An absolute http(s) URL, as a `Request` gives it.
 * @returns Its path and query.
 */
export function pathAndQuery(url: string): string {
  const rest = url.slice(pathStart(url));
  if (KEPT.test(rest) && !DOT_SEGMENT.test(rest)) {
    const q = rest.indexOf("?");
    // An empty query: the parser's `search` is "" (the `?` dropped).
    if (q !== rest.length - 1) return rest;
  }
  const u = new URL(url);
  return u.pathname + u.search;
}
