/**
 * The Web Cache API's own records in larder: the registry of caches and the
 * manifest chunks that list each cache's entries in insertion order.
 * Byte layouts: FORMAT.md §12.2 and §12.3.
 *
 * @module
 */
import { Reader, RecordError, Writer } from "../http/record.ts";

/** Version byte of the registry and of manifest chunks. */
export const MANIFEST_VERSION = 1;
const KIND_REGISTRY = 1;
const KIND_CHUNK = 2;

/** Entries per manifest chunk: chunk n lists orders n·256 to n·256+255. */
export const CHUNK_ENTRIES = 256;

/** One cache in the registry. */
export interface CacheInfo {
  /** The cache's name. */
  name: string;
  /** Its storage id: random hex, never reused (keys in FORMAT.md §12). */
  id: string;
  /** One more than the highest manifest chunk ever written. */
  nextChunk: number;
}

/** One stored request/response pair as the manifest lists it. */
export interface ManifestItem {
  /** Insertion order (unique in the cache, increasing). */
  order: number;
  /** The item's id: its larder key is `~wc/<id>/i/<itemId>`. */
  itemId: number;
  /** The request URL, fragment included. */
  url: string;
  /**
   * The stored response's Vary names with the stored request's value of
   * each (null when absent), or null when the response has no Vary.
   */
  vary: [name: string, value: string | null][] | null;
}

function malformed(detail: string): RecordError {
  return new RecordError(
    "MALFORMED",
    `Cannot decode web cache manifest: ${detail}`,
  );
}

function header(r: Reader, kind: number): void {
  const version = r.u8();
  if (version !== MANIFEST_VERSION) {
    throw new RecordError(
      "VERSION",
      `Cannot decode web cache manifest: version ${version} is not ${MANIFEST_VERSION}`,
    );
  }
  if (r.u8() !== kind) throw malformed("wrong kind");
}

function safeCount(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw malformed(`${what} is not a safe integer`);
  }
  return n;
}

/** Encodes the registry (FORMAT.md §12.2). */
export function encodeRegistry(caches: readonly CacheInfo[]): Uint8Array {
  const w = new Writer();
  w.u8(MANIFEST_VERSION);
  w.u8(KIND_REGISTRY);
  w.u32(caches.length);
  for (const c of caches) {
    w.str(c.name);
    w.str(c.id);
    w.f64(c.nextChunk);
  }
  return w.finish();
}

/** Decodes the registry strictly; throws {@linkcode RecordError}. */
export function decodeRegistry(bytes: Uint8Array): CacheInfo[] {
  const r = new Reader(bytes, malformed);
  header(r, KIND_REGISTRY);
  const caches: CacheInfo[] = [];
  const names = new Set<string>();
  const ids = new Set<string>();
  for (let n = r.count(16); n > 0; n--) {
    const name = r.str();
    const id = r.str();
    const nextChunk = safeCount(r.f64(), "nextChunk");
    if (!/^[0-9a-f]{16}$/.test(id)) {
      throw malformed("a cache id is not 16 hex digits");
    }
    if (names.has(name) || ids.has(id)) {
      throw malformed("a cache is listed twice");
    }
    names.add(name);
    ids.add(id);
    caches.push({ name, id, nextChunk });
  }
  if (!r.atEnd()) throw malformed("trailing bytes");
  return caches;
}

/** Encodes a manifest chunk (FORMAT.md §12.3). */
export function encodeChunk(items: readonly ManifestItem[]): Uint8Array {
  const w = new Writer();
  w.u8(MANIFEST_VERSION);
  w.u8(KIND_CHUNK);
  w.u32(items.length);
  for (const item of items) {
    w.f64(item.order);
    w.f64(item.itemId);
    w.str(item.url);
    if (item.vary === null) {
      w.u8(0);
      continue;
    }
    w.u8(1);
    w.u32(item.vary.length);
    for (const [name, value] of item.vary) {
      w.str(name);
      w.u8(value === null ? 0 : 1);
      if (value !== null) w.str(value);
    }
  }
  return w.finish();
}

/**
 * Decodes manifest chunk `chunk` strictly: every order in the chunk's
 * range, increasing; throws {@linkcode RecordError}.
 */
export function decodeChunk(bytes: Uint8Array, chunk: number): ManifestItem[] {
  const r = new Reader(bytes, malformed);
  header(r, KIND_CHUNK);
  const items: ManifestItem[] = [];
  let last = -1;
  for (let n = r.count(21); n > 0; n--) {
    const order = safeCount(r.f64(), "order");
    const itemId = safeCount(r.f64(), "itemId");
    if (order <= last || Math.floor(order / CHUNK_ENTRIES) !== chunk) {
      throw malformed("orders out of the chunk's range or not increasing");
    }
    last = order;
    const url = r.str();
    try {
      new URL(url);
    } catch {
      throw malformed("a url is not absolute");
    }
    const flag = r.u8();
    if (flag > 1) throw malformed("bad Vary flag");
    let vary: ManifestItem["vary"] = null;
    if (flag === 1) {
      vary = [];
      for (let v = r.count(5); v > 0; v--) {
        const name = r.str();
        const present = r.u8();
        if (present > 1) throw malformed("bad value flag");
        vary.push([name, present === 1 ? r.str() : null]);
      }
    }
    items.push({ order, itemId, url, vary });
  }
  if (!r.atEnd()) throw malformed("trailing bytes");
  return items;
}
