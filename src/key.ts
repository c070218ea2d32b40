/**
 * Keys: what a caller passes, and the one canonical string a store uses.
 *
 * A `URL` with a host, or a string that parses as an absolute URL with a
 * host, is normalised the way NetSurf's nsurl does: lower-case scheme and
 * host, default port dropped, dot segments resolved (all done by WHATWG URL
 * parsing), percent-escapes of unreserved characters decoded, other
 * escapes upper-cased, and the fragment dropped. A `URL` without a host
 * (`mailto:`, `data:`, `urn:`, `file:`…) is the key its `href` string is.
 * Any other string is a key verbatim. A string that is not well-formed
 * UTF-16 (a lone surrogate) is refused: UTF-8 cannot tell it apart from
 * U+FFFD, so two such keys would share an entry.
 *
 * Invariant: a key and its canonical text normalise alike (same text, same
 * `url`), so check-store and rebuild, which only see the text, recompute
 * the hash the store used.
 *
 * @module
 */

/** What `store`, `fetch` and `invalidate` accept as a key. */
export type Key = URL | string;

/** A normalised key. */
export interface NormalKey {
  /** The canonical key text; equal texts are the same entry. */
  text: string;
  /** True when the key is a URL (its text is a canonical URL). */
  url: boolean;
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

function normaliseEscapes(s: string): string {
  if (!s.includes("%")) return s;
  return s.replace(/%([0-9a-fA-F]{2})/g, (_m, hex: string) => {
    const ch = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
  });
}

function fromUrl(url: URL): NormalKey & { components: string[] } {
  const scheme = url.protocol.slice(0, -1);
  const user = normaliseEscapes(url.username);
  const pass = normaliseEscapes(url.password);
  const host = url.hostname;
  const port = url.port;
  const path = normaliseEscapes(url.pathname);
  const query = normaliseEscapes(url.search.slice(1));
  // Only URLs with a host come here (see normaliseKey).
  let text = `${scheme}://`;
  if (user !== "" || pass !== "") {
    text += pass !== "" ? `${user}:${pass}@` : `${user}@`;
  }
  text += host + (port !== "" ? `:${port}` : "");
  text += path + (query !== "" ? `?${query}` : "");
  const components = [scheme];
  for (const c of [user, pass, host, port, path, query]) {
    if (c !== "") components.push(c);
  }
  return { text, url: true, components };
}

/**
 * Normalises a key.
 *
 * @param key A `URL` or a string.
 * @returns the canonical text, and nsurl components for URL keys.
 * @throws {TypeError} when `key` is neither a `URL` nor a string, or is a
 *   string that is not well-formed UTF-16.
 *
 * @example
 * ```ts
 * import { normaliseKey } from "./key.ts";
 * normaliseKey("HTTP://Example.COM:80/a/./b/../c#x").text; // "http://example.com/a/c"
 * normaliseKey("my-key").text; // "my-key"
 * ```
 */
export function normaliseKey(key: Key): NormalKey {
  if (key instanceof URL) {
    // A URL is the key its href string is: without a host that is the
    // verbatim string, so `new URL("mailto:x")` and "mailto:x" are one key
    // (and one nsurl hash). The text is checked too: a subclass may
    // override the getters.
    const nk = key.hostname !== ""
      ? fromUrl(key)
      : { text: String(key.href), url: false };
    return wellFormed(nk.text) ? nk : illFormed(nk.text);
  }
  if (typeof key === "string" && isCanonicalUrl(key)) {
    return { text: key, url: true };
  }
  if (typeof key !== "string") {
    throw new TypeError(
      `Cannot use key: expected a URL or a string, got ${describe(key)}`,
    );
  }
  // Before URL parsing, which would turn a lone surrogate into %EF%BF%BD.
  if (!wellFormed(key)) illFormed(key);
  // Cheap pre-checks: only strings with "://" can be absolute URLs with a
  // host, and only those whose first code unit is an ASCII letter or one
  // the URL parser strips (C0 controls and space) can have a scheme: the
  // proxy's "~px/…" keys (FORMAT.md §12.4) are verbatim without a parse.
  if (key.includes("://") && mayStartScheme(key.charCodeAt(0))) {
    const url = URL.parse(key);
    if (url !== null && url.hostname !== "") return fromUrl(url);
  }
  return { text: key, url: false };
}

/** WHATWG URL parsing: a scheme starts with an ASCII letter, after leading C0 controls and spaces. */
function mayStartScheme(c: number): boolean {
  return c <= 0x20 || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

function wellFormed(s: string): boolean {
  return s.isWellFormed();
}

function illFormed(s: string): never {
  let at = 0;
  for (const ch of s) { // by code point: a lone surrogate is one alone
    if (!ch.isWellFormed()) break;
    at += ch.length;
  }
  throw new TypeError(
    `Cannot use key: not well-formed UTF-16 (lone surrogate at index ${at})`,
  );
}

/**
 * nsurl components (present ones, in hash order) of a normalised key, for
 * the NetSurf-compatible hash; a non-URL key is one component.
 */
export function nsurlComponents(nk: NormalKey): string[] {
  return nk.url ? fromUrl(new URL(nk.text)).components : [nk.text];
}

// An http(s) URL that WHATWG parsing and the steps above would leave exactly
// as it is: lower-case scheme and host (no IPv4-like last label, which
// parsing rewrites), no userinfo, no port, a path without dot segments, an
// optional non-empty query, and only characters no step encodes or decodes
// (no "%", "#", "'", spaces, backslashes or non-ASCII). Most keys a server
// sees look like this; they skip URL parsing. Anything else takes the full
// path, so this only ever decides speed, never the result (tests compare
// both paths). One pass over the characters (a regular expression and the
// slices it needed took ~1 µs a fetch); the grammar, as a pattern:
//   ^https?://[a-z0-9-]+(\.[a-z0-9-]+)*/[A-Za-z0-9\-._~!$&()*+,;=:@/]*
//   (\?[A-Za-z0-9\-._~!$&()*+,;=:@/?]+)?$
// and nowhere after the host a dot segment, "/." or "/.." followed by "/",
// "?" or the end.

/** 1: a path character of the pattern above; 2: also a query one ("?"). */
const URL_CHAR = (() => {
  const t = new Uint8Array(128);
  const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" +
    "0123456789-._~!$&()*+,;=:@/";
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 3;
  t[0x3f] = 2; // "?"
  return t;
})();

/** True when `s` is already in canonical form (see above). */
export function isCanonicalUrl(s: string): boolean {
  let i: number;
  if (s.startsWith("https://")) i = 8;
  else if (s.startsWith("http://")) i = 7;
  else return false;
  const n = s.length;
  // The host: labels of [a-z0-9-], dot-separated, none empty, up to "/".
  let label = i;
  for (;; i++) {
    if (i >= n) return false;
    const c = s.charCodeAt(i);
    if ((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d) {
      continue;
    }
    if (i === label || (c !== 0x2e && c !== 0x2f)) return false;
    if (c === 0x2f) break;
    label = i + 1;
  }
  // Punycode labels are validated (and may be rejected) by IDNA
  // processing: "xn--" anywhere in the host (it holds no "/").
  const xn = s.indexOf("xn--");
  if ((xn >= 0 && xn < i) || numericLabel(s, label, i)) return false;
  // The path, then an optional non-empty query: "?" is a query character.
  let mask = 1;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || (URL_CHAR[c]! & mask) === 0) {
      if (c !== 0x3f || mask === 2 || i + 1 === n) return false;
      mask = 2; // the query starts
      continue;
    }
    if (c === 0x2f && s.charCodeAt(i + 1) === 0x2e) {
      // A dot segment: "/." or "/.." then "/", "?" or the end.
      let j = i + 2;
      if (s.charCodeAt(j) === 0x2e) j++;
      const d = s.charCodeAt(j); // NaN at the end
      if (j === n || d === 0x2f || d === 0x3f) return false;
    }
  }
  return true;
}

// WHATWG's "ends in a number" for the last label `s[from, to)`: digits
// only, or "0x" and hex digits; such a host is parsed as IPv4 and rewritten.
function numericLabel(s: string, from: number, to: number): boolean {
  let i = from;
  if (
    to - from >= 2 && s.charCodeAt(i) === 0x30 && s.charCodeAt(i + 1) === 0x78
  ) {
    for (i += 2; i < to; i++) {
      const c = s.charCodeAt(i);
      if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
    }
    return true;
  }
  for (; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "object") return (v as object).constructor?.name ?? "object";
  return typeof v;
}
