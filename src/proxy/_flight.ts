/**
 * A collapsed miss's flight (src/proxy/proxy.ts `lead`): the leader's
 * origin fetch of one URL that other misses wait for, and, while they
 * wait, a copy of the body the leader stores, for waiters that find the
 * stored entry gone (docs/ARCHITECTURE.md, "Request collapsing").
 *
 * @module
 */
import type { ResponseRecord } from "../http/record.ts";

/**
 * How a collapsed miss's flight ended: its response `stored` (with no
 * Vary, so a lookup by any waiter finds it while it is there) or
 * `stored-variant` (a Vary response: a waiter may want another variant);
 * `not-stored` (not storable: no-store, an error status, stale on
 * arrival, …), which each waiter then fetches itself; or `failed`: the
 * origin exchange or the store's write failed (a timeout, a body cut
 * mid-way, a store error), so the waiters may collapse onto a new flight.
 */
export type FlightEnd = "stored" | "stored-variant" | "not-stored" | "failed";

/**
 * Bodies kept for the waiters at most: those the store reads whole (a
 * slot's largest element, FORMAT.md §6.2). A longer one goes to disk in
 * chunks, and its waiters that find it gone collapse once more.
 */
export const KEPT_MAX = 2 * 2 ** 20;

/** The smallest buffer a body of unknown length is kept in. */
const FIRST_BUFFER = 16 * 1024;

/**
 * One flight. Its body is kept only when a waiter is already waiting at
 * its first byte (most waiters come while the origin's head is awaited;
 * a fill no one waits for copies nothing), only up to {@linkcode KEPT_MAX},
 * and only until the flight has ended and its last waiter has looked:
 * so at most one body of 2 MiB a collapsed URL, for as long as its
 * waiters take to be answered.
 */
export class Flight {
  /** The target URL. */
  readonly href: string;
  /** Settles when the flight ends. */
  readonly ended: Promise<FlightEnd>;
  #settle!: (end: FlightEnd) => void;
  #done = false;
  #waiters = 0;
  /** `idle` before the body's first byte, `none` when it is not kept. */
  #state: "idle" | "keeping" | "none" = "idle";
  #buf = new Uint8Array(0);
  #used = 0;
  #record: ResponseRecord | undefined;
  #expected = 0;
  /** What `kept` made of the record and body, made once a flight. */
  #kept: unknown;

  readonly #dropped: () => void;

  /**
   * @param href The target URL.
   * @param dropped Called when the kept body is dropped (or none kept).
   */
  constructor(href: string, dropped: () => void) {
    this.href = href;
    this.#dropped = dropped;
    this.ended = new Promise((resolve) => this.#settle = resolve);
  }

  /** Ends the flight; a body kept for a flight no one waits for is dropped. */
  settle(end: FlightEnd): void {
    this.#done = true;
    if (end !== "stored" && end !== "stored-variant") this.drop();
    if (this.#waiters === 0) this.drop();
    this.#settle(end);
  }

  /** A waiter starts waiting. */
  join(): void {
    this.#waiters++;
  }

  /** A waiter is done with the flight (answered or sent on). */
  leave(): void {
    this.#waiters--;
    if (this.#done && this.#waiters === 0) this.drop();
  }

  /**
   * The record the leader stores, with the expected body length (an
   * HTTP Content-Length, else 0): the first buffer's size.
   */
  storing(record: ResponseRecord, expected: number): void {
    this.#record = record;
    this.#expected = expected;
  }

  /** A chunk of the body as the store reads it; copied when kept. */
  chunk(chunk: Uint8Array): void {
    if (this.#state === "idle") {
      const keep = this.#waiters > 0 && this.#record !== undefined &&
        this.#expected <= KEPT_MAX;
      this.#state = keep ? "keeping" : "none";
      if (keep) {
        this.#buf = new Uint8Array(Math.max(this.#expected, FIRST_BUFFER));
      }
    }
    if (this.#state !== "keeping") return;
    const need = this.#used + chunk.length;
    if (need > KEPT_MAX) return this.drop();
    if (need > this.#buf.length) {
      const grown = new Uint8Array(
        Math.min(KEPT_MAX, Math.max(need, 2 * this.#buf.length)),
      );
      grown.set(this.#buf.subarray(0, this.#used));
      this.#buf = grown;
    }
    this.#buf.set(chunk, this.#used);
    this.#used = need;
  }

  /**
   * What the leader stored, kept whole, as `make` makes it of the record
   * and the body (shared by the waiters: never written into), once a
   * flight; undefined when it was not kept (no waiter at its first byte,
   * a body over the bound, or dropped) or the flight has not ended.
   *
   * @param make Makes what the waiters are answered from.
   */
  kept<T>(
    make: (record: ResponseRecord, body: Uint8Array) => T,
  ): T | undefined {
    if (this.#kept !== undefined) return this.#kept as T;
    const record = this.#record;
    // Still `idle` at the end: a body of no bytes (no chunk came).
    if (record === undefined || !this.#done || this.#state === "none") {
      return undefined;
    }
    const made = make(record, this.#buf.subarray(0, this.#used));
    this.#kept = made;
    return made;
  }

  /**
   * Drops the kept body: the flight's waiters are done, or its URL was
   * invalidated (the body must not answer anyone afterwards).
   */
  drop(): void {
    this.#state = "none";
    this.#buf = new Uint8Array(0);
    this.#used = 0;
    this.#record = undefined;
    this.#kept = undefined;
    this.#dropped();
  }
}
