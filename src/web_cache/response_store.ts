/**
 * The small asynchronous store the Web Cache API keeps its entries in, and
 * its implementation over a {@linkcode BackingStore}. Kept to what a remote
 * tier could also offer: get a head and body, get a head alone, put, delete.
 *
 * @module
 */
import type { BackingStore } from "../store.ts";

/** A stored entry: its head (metadata) and its body. */
export interface StoredEntry {
  /** The metadata element (a response record, FORMAT.md §12.1). */
  readonly meta: Uint8Array;
  /** The body; the caller owns these bytes or this stream. */
  readonly body: Uint8Array | ReadableStream<Uint8Array>;
  /** Ends the reference that keeps the entry's storage (idempotent). */
  release(): void;
}

/** Where the Web Cache API keeps its entries and its own small records. */
export interface ResponseStore {
  /** The entry under `key` with its body, or undefined. */
  get(key: string): Promise<StoredEntry | undefined>;
  /** The metadata of `key` without reading its body, or undefined. */
  head(key: string): Promise<Uint8Array | undefined>;
  /** Stores an entry: `meta` and the whole of `body`, replacing any old one. */
  put(
    key: string,
    meta: Uint8Array,
    body: Uint8Array | ReadableStream<Uint8Array>,
  ): Promise<void>;
  /** Removes `key`; true when something was there. */
  delete(key: string): Promise<boolean>;
  /** Closes the store. */
  close(): Promise<void>;
}

/** Reads a stream to its end into one buffer. */
export async function readAll(
  stream: ReadableStream<Uint8Array>,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of stream) {
    chunks.push(chunk);
    length += chunk.length;
  }
  const all = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return all;
}

/**
 * A {@linkcode ResponseStore} over a BackingStore's whole-element calls.
 *
 * When streaming elements land, only `get` (openEntry, a body stream that
 * releases at its end or cancel) and `put` (store(key, stream)) change.
 */
export function backingResponseStore(store: BackingStore): ResponseStore {
  return {
    async get(key) {
      const hit = await store.fetchEntry(key);
      if (hit === undefined) return undefined;
      try {
        if (hit.meta === undefined) return undefined;
        // Small elements are views into a shared read buffer: copy them.
        return {
          meta: hit.meta.slice(),
          body: hit.data?.slice() ?? new Uint8Array(0),
          release() {},
        };
      } finally {
        hit.release();
      }
    },
    async head(key) {
      const hit = await store.fetch(key, { meta: true });
      if (hit === undefined) return undefined;
      try {
        return hit.data.slice();
      } finally {
        hit.release();
      }
    },
    async put(key, meta, body) {
      const bytes = body instanceof Uint8Array ? body : await readAll(body);
      await store.storeEntry(key, bytes, meta);
    },
    delete(key) {
      return store.invalidate(key);
    },
    close() {
      return store.close();
    },
  };
}
