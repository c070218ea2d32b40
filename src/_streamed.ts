/**
 * Streamed stores: reading a `ReadableStream` body of unknown length with
 * bounded memory. A body that ends small enough for a slot or a run is
 * returned as bytes; a larger one is written as it arrives into a fresh
 * large file (a new id: nothing any entry refers to), whose header is
 * written only when the change is placed. Nothing here touches the index:
 * the caller places, journals and applies the change after the stream
 * ended, in one synchronous step, exactly as for a whole body.
 *
 * @module
 */
import { crc32 } from "node:zlib";
import { toStoreError } from "./errors.ts";
import type { ElementFiles } from "./elements.ts";
import { ELEMENT_HEADER, MAX_RUN_SLOTS, SLOT_SIZE } from "./format.ts";
import { DATA, type ElementKind } from "./kinds.ts";
import type { Body, WrittenFile } from "./_placement.ts";

/** Bodies up to this length are collected in memory (they may fit a run). */
export const COLLECT_MAX = MAX_RUN_SLOTS * SLOT_SIZE[DATA];

/** The smallest buffer a body of unknown length is collected into. */
const FIRST_BUFFER = 16 * 1024;

const expected = new WeakMap<ReadableStream<Uint8Array>, number>();

/**
 * Says `stream` should carry `length` bytes (an HTTP Content-Length), so
 * {@linkcode drainStream} collects it into one buffer of that size. A
 * hint only: a stream that ends shorter or runs longer is still read
 * exactly as it is.
 *
 * @returns `stream`.
 */
export function expectLength(
  stream: ReadableStream<Uint8Array>,
  length: number,
): ReadableStream<Uint8Array> {
  if (Number.isSafeInteger(length) && length > 0) expected.set(stream, length);
  return stream;
}

/**
 * A body collected in memory: one buffer of `size` bytes at first (the
 * expected length), doubled as it fills past that (never past `cap`).
 */
class Collected {
  #buf: Uint8Array;
  #used = 0;
  readonly #cap: number;

  constructor(size: number, cap: number) {
    this.#cap = cap;
    this.#buf = new Uint8Array(size);
  }

  /** Copies `chunk` in (the producer may reuse its buffer); at most `cap`. */
  add(chunk: Uint8Array): void {
    const need = this.#used + chunk.length;
    if (need > this.#buf.length) {
      const grown = new Uint8Array(
        Math.min(
          this.#cap,
          Math.max(need, 2 * this.#buf.length, FIRST_BUFFER),
        ),
      );
      grown.set(this.#buf.subarray(0, this.#used));
      this.#buf = grown;
    }
    this.#buf.set(chunk, this.#used);
    this.#used = need;
  }

  /** The bytes so far (a view of the buffer). */
  bytes(): Uint8Array {
    return this.#buf.subarray(0, this.#used);
  }
}

/** Where a streamed body may go. */
export interface StreamTarget {
  files: ElementFiles;
  /** Hands out a fresh large-file id of `kind`. */
  allocFileId(kind: ElementKind): number;
  kind: ElementKind;
  /** UTF-8 length of the key, for the key region of a large file. */
  keyLen: number;
  /** The most element bytes accepted. */
  max: number;
  /**
   * The large file now holds `size` element bytes (it may throw: the
   * stream is cancelled and the file removed).
   */
  grew?: (size: number) => void;
}

/**
 * Reads `stream` to its end: its bytes when there are at most COLLECT_MAX,
 * else a large file holding them. A stream that errors, a chunk that is
 * no Uint8Array, or more than `max` bytes cancels the stream, removes
 * what was written and rejects.
 */
export async function drainStream(
  stream: ReadableStream<Uint8Array>,
  target: StreamTarget,
): Promise<Body> {
  let reader: ReadableStreamDefaultReader<Uint8Array>;
  try {
    reader = stream.getReader();
  } catch {
    throw new TypeError("Cannot store element: the stream is locked");
  }
  // Collected up to COLLECT_MAX, then written to a file: a body expected
  // longer starts with that much; one expected over the limit, with none.
  const cap = Math.min(COLLECT_MAX, target.max);
  const length = expected.get(stream) ?? 0;
  let held: Collected | undefined = new Collected(
    length > target.max ? 0 : Math.min(length, cap),
    cap,
  );
  let total = 0;
  let crc = 0;
  let file: WrittenFile | undefined;
  let sourceFailed = false;
  try {
    for (;;) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch (err) {
        sourceFailed = true;
        throw err;
      }
      if (next.done) break;
      const chunk: unknown = next.value;
      if (!(chunk instanceof Uint8Array)) {
        throw new TypeError(
          "Cannot store element: stream chunks must be Uint8Arrays",
        );
      }
      if (chunk.length === 0) continue;
      total += chunk.length;
      if (total > target.max) {
        throw new RangeError(
          `Cannot store element: more than the maximum of ${target.max} bytes`,
        );
      }
      crc = crc32(chunk, crc);
      if (held !== undefined && total <= COLLECT_MAX) {
        held.add(chunk);
        continue;
      }
      // Counted before it is written: eviction makes room first.
      target.grew?.(total);
      if (file === undefined) {
        file = createFile(target);
        const bytes = held!.bytes();
        held = undefined;
        if (bytes.length > 0) {
          target.files.writeAt(file.fd, bytes, ELEMENT_HEADER + target.keyLen);
        }
      }
      target.files.writeAt(
        file.fd,
        chunk,
        ELEMENT_HEADER + target.keyLen + total - chunk.length,
      );
    }
  } catch (err) {
    if (!sourceFailed) reader.cancel(err).catch(() => {});
    if (file !== undefined) abandon(target.files, file);
    // The stream's own error is the caller's to see as it is.
    throw sourceFailed || err instanceof TypeError || err instanceof RangeError
      ? err
      : toStoreError("store element", err);
  } finally {
    reader.releaseLock();
  }
  if (file === undefined) return held!.bytes();
  return { ...file, size: total, crc };
}

function createFile(target: StreamTarget): WrittenFile {
  const id = target.allocFileId(target.kind);
  const fd = target.files.createFile(target.kind, id, target.keyLen);
  return {
    kind: target.kind,
    id,
    fd,
    keyLen: target.keyLen,
    size: 0,
    crc: 0,
    placed: false,
  };
}

/**
 * Removes a streamed file that was never placed (the stream failed, or
 * the store did); a placed one is the change's to keep or undo.
 */
export function abandon(files: ElementFiles, body: Body): void {
  if (body instanceof Uint8Array || body.placed) return;
  body.placed = true;
  try {
    files.closeFile(body.fd);
  } catch { /* removing it is what matters */ }
  try {
    files.removeFile(body.kind, body.id);
  } catch { /* an orphan no entry refers to: check-store reports it */ }
}
