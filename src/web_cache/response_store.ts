/**
 * The small asynchronous store the Web Cache API keeps its entries in, and
 * its implementation over a {@linkcode BackingStore}. Kept to what a remote
 * tier could also offer: get a head and body, get a head alone, put, delete.
 *
 * @module
 */
import type { EntryReader } from "../_entry_reader.ts";
import type { BackingStore } from "../store.ts";
import { concatBytes } from "../_bytes.ts";

/** A stored entry: its head (metadata) and its body. */
export interface StoredEntry {
  /** The metadata element (a response record, FORMAT.md §12.1). */
  readonly meta: Uint8Array;
  /** The body; the caller owns these bytes or this stream. */
  readonly body: Uint8Array | ReadableStream<Uint8Array>;
  /**
   * A streamed body's exact length in bytes, when the store knows it (a
   * stream that ends short of it has failed).
   */
  readonly size?: number;
  /** Ends the reference that keeps the entry's storage (idempotent). */
  release(): void;
}

/** How {@linkcode ResponseStore.get} hands out a body. */
export interface GetOptions {
  /**
   * Pin the body without reading any of it: it is read (and verified) as
   * its stream is consumed, so a body damaged on disk errors its stream
   * instead of making the entry a miss. Such a body is always a stream.
   */
  deferBody?: boolean;
}

/** Where the Web Cache API keeps its entries and its own small records. */
export interface ResponseStore {
  /**
   * The entry under `key` with its body, or undefined. A body stream keeps
   * the entry's bytes readable (even if it is replaced meanwhile) until it
   * ends, is cancelled or is collected.
   */
  get(key: string, options?: GetOptions): Promise<StoredEntry | undefined>;
  /** The metadata of `key` without reading its body, or undefined. */
  head(key: string): Promise<Uint8Array | undefined>;
  /**
   * Stores an entry: `meta` and the whole of `body`, replacing any old one
   * once the body has ended; a body that errors leaves the old one.
   */
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
  return concatBytes(chunks, length);
}

/** Bodies up to this length are read whole at `get` by default, their pin ended at once. */
const SMALL_BODY = 64 * 1024;

/** Options of {@linkcode backingResponseStore}. */
export interface BackingResponseStoreOptions {
  /**
   * Bodies up to this many bytes are returned by `get` as bytes (read and
   * verified whole, the pin ended at once), longer ones as a stream.
   * Default 64 KiB.
   */
  wholeBodyBytes?: number;
}

/**
 * A body stream over a pinned reader: the reader is released when the
 * stream ends, errors or is cancelled, and (by the reader's own
 * FinalizationRegistry) when the stream is garbage-collected unread; the
 * stream holds the reader, so the reader lives as long as the stream.
 */
function bodyStream(reader: EntryReader): ReadableStream<Uint8Array> {
  return releasingStream(reader, () => reader.stream());
}

/**
 * The stream `open` makes (at the first read), releasing `reader` when it
 * ends, errors or is cancelled.
 *
 * @param reader What to release.
 * @param open Makes the source stream.
 * @returns The stream.
 */
export function releasingStream(
  reader: { release(): void },
  open: () => ReadableStream<Uint8Array>,
): ReadableStream<Uint8Array> {
  let source: ReadableStreamDefaultReader<Uint8Array> | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        source ??= open().getReader();
        const { done, value } = await source.read();
        if (done) {
          reader.release();
          controller.close();
        } else controller.enqueue(value);
      } catch (err) {
        reader.release();
        controller.error(err);
      }
    },
    async cancel(reason) {
      try {
        await source?.cancel(reason);
      } finally {
        reader.release();
      }
    },
  }, { highWaterMark: 0 });
}

/**
 * A {@linkcode ResponseStore} over a BackingStore. `put` streams a body
 * into the store (the entry changes when it ends; a body that errors
 * stores nothing); `get` pins the entry with `openEntry` and returns a
 * body stream that reads it chunk by chunk, verified, and releases the
 * pin at its end, on cancel or when garbage-collected. A body of at most
 * `options.wholeBodyBytes` (64 KiB) is returned as bytes and its pin
 * ended at once, unless `deferBody` asks for it unread (`openEntry` with
 * `defer`).
 *
 * @param store The store; closed by the ResponseStore's `close()`.
 * @param options How long a body `get` returns as bytes.
 * @returns The ResponseStore.
 */
export function backingResponseStore(
  store: BackingStore,
  options: BackingResponseStoreOptions = {},
): ResponseStore {
  const whole = options.wholeBodyBytes ?? SMALL_BODY;
  return {
    async get(key, options) {
      const defer = options?.deferBody === true;
      const reader = await store.openEntry(key, { defer });
      if (reader === undefined) return undefined;
      let handed = false;
      try {
        if (reader.meta === undefined) return undefined;
        const meta = reader.meta.slice(); // shared with other references
        if (!defer && reader.size <= whole) {
          return {
            meta,
            body: await reader.read(0, reader.size),
            release() {},
          };
        }
        handed = true;
        return {
          meta,
          body: bodyStream(reader),
          size: reader.size,
          release: reader.release,
        };
      } finally {
        if (!handed) reader.release();
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
    put(key, meta, body) {
      return store.storeEntry(key, body, meta);
    },
    delete(key) {
      return store.invalidate(key);
    },
    close() {
      return store.close();
    },
  };
}
