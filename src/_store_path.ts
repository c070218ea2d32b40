/**
 * The store directory an open names: a path or a `file:` URL, made
 * absolute.
 *
 * @module
 */
import { posix } from "node:path";

/**
 * The local path `dir` names: a string as given (made absolute, so a later
 * chdir cannot move the store), or a `file:` URL.
 * @throws {TypeError} for anything else, or a file URL that is no path.
 */
export function storePath(dir: unknown): string {
  let path: string;
  if (typeof dir === "string") {
    path = dir;
  } else if (dir instanceof URL) {
    if (dir.protocol !== "file:") {
      throw new TypeError(
        `Cannot open store: ${dir.protocol} URLs are not local paths, only file: URLs are`,
      );
    }
    if (dir.hostname !== "" && dir.hostname !== "localhost") {
      throw new TypeError(
        `Cannot open store: file URL names host ${dir.hostname}`,
      );
    }
    if (/%2f/i.test(dir.pathname)) {
      throw new TypeError("Cannot open store: file URL path encodes a /");
    }
    try {
      path = decodeURIComponent(dir.pathname);
    } catch {
      throw new TypeError(
        `Cannot open store: file URL path is not valid percent-encoding: ${dir.pathname}`,
      );
    }
  } else {
    throw new TypeError("Cannot open store: dir must be a path or file URL");
  }
  if (path === "" || path.includes("\0")) {
    throw new TypeError("Cannot open store: dir must be a non-empty path");
  }
  if (!path.startsWith("/")) {
    try {
      path = `${Deno.cwd()}/${path}`;
    } catch { /* no permission to know the cwd: keep it relative */ }
  }
  return posix.normalize(path).replace(/(.)\/+$/, "$1");
}
