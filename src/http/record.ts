/**
 * The stored-response record: the head of a request and of its response,
 * as the Web Cache API and the caching proxy keep it in a larder entry's
 * metadata element (the body is the data element). Byte layout: FORMAT.md
 * §12.1.
 *
 * Decoding is strict: anything but a well-formed record of a known version
 * is a {@linkcode RecordError}, which callers treat as a miss.
 *
 * @module
 */

/** The record version written (FORMAT.md §12.1, byte 0). */
export const RECORD_VERSION = 1;

/** Largest record accepted by encode and decode (16 MiB). */
export const MAX_RECORD_BYTES = 16 * 2 ** 20;

/** A header list: `[name, value]` pairs, in order, duplicates allowed. */
export type HeaderPairs = [name: string, value: string][];

/** What a stored response is kept with (FORMAT.md §12.1). */
export interface ResponseRecord {
  /** Milliseconds since the epoch when the request was sent (RFC 9111 §4.2.3 request_time). */
  requestTime: number;
  /** Milliseconds since the epoch when the response was received (response_time). */
  responseTime: number;
  /** The writer's sequence number (the Web Cache: the item's id in its cache). */
  seq: number;
  /** The name of the cache the record belongs to ("" for none). */
  cacheName: string;
  /** The request method. */
  method: string;
  /** The request URL, fragment included. */
  url: string;
  /** The request headers. */
  requestHeaders: HeaderPairs;
  /** The response status, 100–599. */
  status: number;
  /** The response status text. */
  statusText: string;
  /** The response URL ("" for a constructed response). */
  responseUrl: string;
  /** The response headers. */
  responseHeaders: HeaderPairs;
  /** The field names of the response's Vary headers, lower-cased, in order. */
  vary: string[];
}

/** Why a record could not be decoded or encoded. */
export type RecordErrorCode = "VERSION" | "MALFORMED";

/** A record that is not well-formed, or of an unknown version. */
export class RecordError extends Error {
  /** `VERSION` for an unknown version byte, `MALFORMED` for anything else. */
  readonly code: RecordErrorCode;

  /**
   * Makes a record error.
   *
   * @param code The stable code.
   * @param message `Cannot <action>: <detail>`.
   */
  constructor(code: RecordErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = "RecordError";
  }
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: no NUL, CR or LF (RFC 9110 §5.5); tabs and obs-text allowed.
const FIELD_VALUE = /^[^\0\r\n]*$/;

/**
 * The field names listed by a header list's Vary fields, lower-cased and
 * trimmed, in order ("*" kept as it is).
 *
 * @param headers The response header pairs.
 * @returns The Vary field names.
 */
export function varyNames(headers: Iterable<[string, string]>): string[] {
  const names: string[] = [];
  for (const [name, value] of headers) {
    if (name.toLowerCase() !== "vary") continue;
    for (const part of value.split(",")) {
      const field = part.trim().toLowerCase();
      if (field !== "") names.push(field);
    }
  }
  return names;
}

function malformed(detail: string): RecordError {
  return new RecordError(
    "MALFORMED",
    `Cannot decode response record: ${detail}`,
  );
}

function isAbsoluteUrl(s: string): boolean {
  try {
    new URL(s);
    return true;
  } catch {
    return false;
  }
}

/** Checks every field; the same rules hold for encode and decode. */
function validate(r: ResponseRecord, fail: (detail: string) => Error): void {
  for (
    const [name, t] of [["requestTime", r.requestTime], [
      "responseTime",
      r.responseTime,
    ]] as const
  ) {
    if (typeof t !== "number" || !Number.isFinite(t) || t < 0) {
      throw fail(`${name} is not a time`);
    }
  }
  if (!Number.isSafeInteger(r.seq) || r.seq < 0) {
    throw fail("seq is not a safe non-negative integer");
  }
  if (!TOKEN.test(r.method)) throw fail("method is not a token");
  if (!isAbsoluteUrl(r.url)) throw fail("url is not an absolute URL");
  if (r.responseUrl !== "" && !isAbsoluteUrl(r.responseUrl)) {
    throw fail("responseUrl is not an absolute URL");
  }
  if (!Number.isInteger(r.status) || r.status < 100 || r.status > 599) {
    throw fail("status is not 100-599");
  }
  if (!FIELD_VALUE.test(r.statusText)) {
    throw fail("statusText has a control character");
  }
  for (const list of [r.requestHeaders, r.responseHeaders]) {
    for (const pair of list) {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw fail("a header is not a pair");
      }
      if (!TOKEN.test(pair[0])) throw fail("a header name is not a token");
      if (!FIELD_VALUE.test(pair[1])) {
        throw fail("a header value has a control character");
      }
    }
  }
  for (const name of r.vary) {
    if (name !== "*" && !TOKEN.test(name)) {
      throw fail("a Vary name is not a token");
    }
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
/** Strings up to this many bytes are read without the decoder when ASCII. */
const ASCII_FAST = 256;

/**
 * Encodes a record (FORMAT.md §12.1).
 *
 * @param record The record.
 * @returns Its bytes, version first.
 * @throws {TypeError} for a field that breaks the record's rules.
 * @throws {RangeError} for a record over {@linkcode MAX_RECORD_BYTES}.
 *
 * @example
 * ```ts
 * import { decodeResponseRecord, encodeResponseRecord } from "@larder/larder";
 * import assert from "node:assert/strict";
 *
 * const record = {
 *   requestTime: 1_700_000_000_000, responseTime: 1_700_000_000_120, seq: 7,
 *   cacheName: "v1", method: "GET", url: "https://example.com/a#top",
 *   requestHeaders: [["accept", "text/html"]] as [string, string][],
 *   status: 200, statusText: "OK", responseUrl: "https://example.com/a",
 *   responseHeaders: [["vary", "Accept"]] as [string, string][], vary: ["accept"],
 * };
 * const bytes = encodeResponseRecord(record);
 * assert.equal(bytes[0], 1); // the version
 * assert.deepEqual(decodeResponseRecord(bytes), record);
 * ```
 */
export function encodeResponseRecord(record: ResponseRecord): Uint8Array {
  validate(record, (d) => new TypeError(`Cannot encode response record: ${d}`));
  const w = new Writer();
  w.u8(RECORD_VERSION);
  w.u8(0);
  w.f64(record.requestTime);
  w.f64(record.responseTime);
  w.f64(record.seq);
  w.u16(record.status);
  for (
    const s of [
      record.cacheName,
      record.method,
      record.url,
      record.responseUrl,
      record.statusText,
    ]
  ) {
    w.str(s);
  }
  w.pairs(record.requestHeaders);
  w.pairs(record.responseHeaders);
  w.u32(record.vary.length);
  for (const name of record.vary) w.str(name);
  return w.finish();
}

/**
 * Decodes a record, strictly: every length in bounds, UTF-8 well formed,
 * every field valid (the rules of {@linkcode encodeResponseRecord}), no
 * trailing bytes.
 *
 * @param bytes The record's bytes.
 * @returns The record.
 * @throws {RecordError} `VERSION` for an unknown version, `MALFORMED`
 *   otherwise.
 *
 * @example
 * ```ts
 * import { decodeResponseRecord, RecordError } from "@larder/larder";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => decodeResponseRecord(new Uint8Array([9])), RecordError);
 * ```
 */
export function decodeResponseRecord(bytes: Uint8Array): ResponseRecord {
  if (!(bytes instanceof Uint8Array)) throw malformed("not a Uint8Array");
  if (bytes.length > MAX_RECORD_BYTES) throw malformed("over 16 MiB");
  if (bytes.length === 0) throw malformed("empty");
  if (bytes[0] !== RECORD_VERSION) {
    throw new RecordError(
      "VERSION",
      `Cannot decode response record: version ${
        bytes[0]
      } is not ${RECORD_VERSION}`,
    );
  }
  const r = new Reader(bytes);
  r.u8();
  if (r.u8() !== 0) throw malformed("reserved byte is not 0");
  const requestTime = r.f64();
  const responseTime = r.f64();
  const seq = r.f64();
  const status = r.u16();
  const cacheName = r.str();
  const method = r.str();
  const url = r.str();
  const responseUrl = r.str();
  const statusText = r.str();
  const requestHeaders = r.pairs();
  const responseHeaders = r.pairs();
  const vary: string[] = [];
  for (let n = r.count(4); n > 0; n--) vary.push(r.str());
  if (!r.atEnd()) throw malformed("trailing bytes");
  const record: ResponseRecord = {
    requestTime,
    responseTime,
    seq,
    cacheName,
    method,
    url,
    requestHeaders,
    status,
    statusText,
    responseUrl,
    responseHeaders,
    vary,
  };
  validate(record, malformed);
  return record;
}

/** Little-endian writer of the record's field types (FORMAT.md §12.1). */
export class Writer {
  #buf = new Uint8Array(256);
  #view = new DataView(this.#buf.buffer);
  #at = 0;

  #room(n: number): void {
    if (this.#at + n > MAX_RECORD_BYTES) {
      throw new RangeError("Cannot encode record: over 16 MiB");
    }
    if (this.#at + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#at + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#at));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  /** Appends a byte. */
  u8(v: number): void {
    this.#room(1);
    this.#view.setUint8(this.#at, v);
    this.#at += 1;
  }

  /** Appends a 16-bit unsigned integer. */
  u16(v: number): void {
    this.#room(2);
    this.#view.setUint16(this.#at, v, true);
    this.#at += 2;
  }

  /** Appends a 32-bit unsigned integer. */
  u32(v: number): void {
    this.#room(4);
    this.#view.setUint32(this.#at, v, true);
    this.#at += 4;
  }

  /** Appends a float64. */
  f64(v: number): void {
    this.#room(8);
    this.#view.setFloat64(this.#at, v, true);
    this.#at += 8;
  }

  /** Appends a u32 byte length and the UTF-8 of `s`. */
  str(s: string): void {
    const bytes = encoder.encode(s);
    this.u32(bytes.length);
    this.#room(bytes.length);
    this.#buf.set(bytes, this.#at);
    this.#at += bytes.length;
  }

  /** Appends a u32 count and the pairs. */
  pairs(list: HeaderPairs): void {
    this.u32(list.length);
    for (const [name, value] of list) {
      this.str(name);
      this.str(value);
    }
  }

  /** The bytes written. */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#at);
  }
}

/** Bounds-checked reader of the record's field types; overruns are MALFORMED. */
export class Reader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #at = 0;
  readonly #fail: (detail: string) => Error;

  /**
   * @param bytes What to read.
   * @param fail Makes the error for a malformed input.
   */
  constructor(bytes: Uint8Array, fail: (detail: string) => Error = malformed) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#fail = fail;
  }

  #need(n: number): number {
    if (this.#at + n > this.#bytes.length) throw this.#fail("truncated");
    const at = this.#at;
    this.#at += n;
    return at;
  }

  /** Reads a byte. */
  u8(): number {
    return this.#view.getUint8(this.#need(1));
  }

  /** Reads a 16-bit unsigned integer. */
  u16(): number {
    return this.#view.getUint16(this.#need(2), true);
  }

  /** Reads a 32-bit unsigned integer. */
  u32(): number {
    return this.#view.getUint32(this.#need(4), true);
  }

  /** Reads a float64. */
  f64(): number {
    return this.#view.getFloat64(this.#need(8), true);
  }

  /** Reads a count of items each at least `minBytes` long, checked against what is left. */
  count(minBytes: number): number {
    const n = this.u32();
    if (n * minBytes > this.#bytes.length - this.#at) {
      throw this.#fail("count exceeds the bytes left");
    }
    return n;
  }

  /** Reads a length-prefixed UTF-8 string. */
  str(): string {
    const len = this.u32();
    const at = this.#need(len);
    if (len <= ASCII_FAST) {
      // Most of a record (names, dates, URLs) is short ASCII, which needs
      // no decoder: a call to TextDecoder costs more than these bytes.
      const b = this.#bytes;
      let ascii = true;
      for (let i = at; i < at + len; i++) {
        if (b[i]! >= 0x80) {
          ascii = false;
          break;
        }
      }
      if (ascii) {
        return String.fromCharCode.apply(
          null,
          b.subarray(at, at + len) as unknown as number[],
        );
      }
    }
    try {
      return decoder.decode(this.#bytes.subarray(at, at + len));
    } catch {
      throw this.#fail("a string is not UTF-8");
    }
  }

  /** Reads a count and that many string pairs. */
  pairs(): HeaderPairs {
    const list: HeaderPairs = [];
    for (let n = this.count(8); n > 0; n--) list.push([this.str(), this.str()]);
    return list;
  }

  /** True when every byte was read. */
  atEnd(): boolean {
    return this.#at === this.#bytes.length;
  }
}
