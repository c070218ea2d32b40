/**
 * The interface every peer adapter implements.
 *
 * Durability parity: every peer runs in its fastest mode that is still
 * crash-consistent for a cache (a crash may lose recent writes but must not
 * return wrong bytes), and no peer fsyncs per operation, since larder does
 * not either. Each put and get is awaited before the next one starts, as a
 * request handler would.
 *
 * @module
 */

/** A hit: metadata and body bytes, valid until `release()` (if any). */
export interface Entry {
  meta: Uint8Array;
  body: Uint8Array;
  release?(): void;
}

/** An open store under test. */
export interface Peer {
  put(key: string, meta: Uint8Array, body: Uint8Array): Promise<void>;
  get(key: string): Promise<Entry | undefined>;
  /** Returns true when the key existed. */
  invalidate(key: string): Promise<boolean>;
  /**
   * Makes every put so far visible to a reopen (not necessarily fsynced);
   * the put phases time it. Absent when each put already is.
   */
  flush?(): Promise<void>;
  close(): Promise<void>;
}

/** Options for opening a peer. */
export interface OpenOptions {
  /** Byte budget (meta + body); absent means unbounded. */
  limit?: number;
  /** Expected number of objects, for stores that size tables up front. */
  objects: number;
  /** Meta + body bytes of the whole workload. */
  workloadBytes: number;
}

/** How a peer honours `limit`. */
export type Eviction =
  | "native" // the store enforces the limit itself
  | "emulated" // the adapter deletes least-recently-used entries itself
  | "ring"; // the adapter overwrites the oldest bytes of a fixed-size file

/** A peer adapter module's default export. */
export interface PeerFactory {
  name: string;
  eviction: Eviction;
  open(dir: string, options: OpenOptions): Promise<Peer>;
  /** Deletes a closed store; the default removes `dir`. */
  drop?(dir: string): Promise<void>;
}
