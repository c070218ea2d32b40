/**
 * Deterministic workloads for the peer comparison (issue 6).
 *
 * Every peer process builds the same workload from one mulberry32 stream,
 * so keys, sizes, orders and bytes are identical across peers. Draw order
 * (part of the definition): per object (host, id, version, meta fields,
 * body class, body size, body offset), then the byte pool, then the get
 * order, then the invalidation order.
 *
 * Bodies are views into one random byte pool at per-object offsets, so a
 * 1.6 GB workload costs 17 MiB of memory and no generation time inside the
 * timed window; a wrong object returned by a peer still fails verification
 * because offsets differ.
 *
 * @module
 */

/** Seed given by the issue ("NETS"). */
const SEED = 0x4E455453;
const KIB = 1024;
const MIB = 1024 * KIB;
const POOL_BYTES = 16 * MIB;

/** A deterministic uint32 stream (mulberry32), as specified in issue 6. */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6D2B79F5) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return (z ^ (z >>> 14)) >>> 0;
  };
}

/** The workload names the issue defines. */
export type WorkloadName = "small" | "mixed";

/** One object of a workload; its bytes come from {@linkcode Workload}. */
export interface ObjectSpec {
  key: string;
  bodySize: number;
  bodyOffset: number;
  metaSize: number;
  /** Random fields that vary the generated headers. */
  metaSeed: number;
}

/** A fully generated workload, identical in every peer process. */
export interface Workload {
  name: WorkloadName;
  objects: ObjectSpec[];
  /** Index permutation for the get phase. */
  getOrder: Uint32Array;
  /** Indices to invalidate (a random 10%). */
  invalidate: Uint32Array;
  /** Sum of meta and body bytes over all objects. */
  totalBytes: number;
  body(index: number): Uint8Array;
  meta(index: number): Uint8Array;
}

/** Returns a uniform integer in [lo, hi]. */
function between(next: () => number, lo: number, hi: number): number {
  return lo + (next() % (hi - lo + 1));
}

function bodySize(name: WorkloadName, next: () => number): number {
  if (name === "small") return between(next, 128, 4 * KIB);
  const cls = next() % 10;
  if (cls < 5) return between(next, 128, 8 * KIB);
  if (cls < 9) return between(next, 8 * KIB, 100 * KIB);
  return between(next, 100 * KIB, MIB);
}

/** A Fisher–Yates shuffle of 0 … n−1 drawn from `next`. */
export function permutation(next: () => number, n: number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = next() % (i + 1);
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

/**
 * Builds a workload.
 *
 * @param name `small` (60,000 objects) or `mixed` (20,000 objects).
 * @param options.scale Fraction of the objects to keep (quick mode uses 0.1).
 * @returns The workload.
 */
export function makeWorkload(
  name: WorkloadName,
  options: { scale?: number } = {},
): Workload {
  const next = mulberry32(SEED);
  const full = name === "small" ? 60_000 : 20_000;
  const count = Math.max(1, Math.round(full * (options.scale ?? 1)));
  const objects: ObjectSpec[] = [];
  let totalBytes = 0;
  for (let i = 0; i < count; i++) {
    const host = next() % 16;
    const version = next().toString(16).padStart(8, "0");
    const metaSeed = next();
    const metaSize = between(next, 300, 800);
    const size = bodySize(name, next);
    const bodyOffset = next() % (POOL_BYTES - size + 1);
    // The index in the path keeps keys unique; the padding keeps them ~60 chars.
    const id = `${i.toString(36).padStart(5, "0")}${
      (metaSeed % 36 ** 5).toString(36).padStart(5, "0")
    }`;
    const key = `https://host${host}.example/static/js/${id}.js?v=${version}`;
    objects.push({ key, bodySize: size, bodyOffset, metaSize, metaSeed });
    totalBytes += size + metaSize;
  }
  const pool = new Uint8Array(POOL_BYTES);
  const words = new Uint32Array(pool.buffer);
  for (let i = 0; i < words.length; i++) words[i] = next();
  const getOrder = permutation(next, count);
  const invalidate = permutation(next, count).slice(0, Math.floor(count / 10));
  return {
    name,
    objects,
    getOrder,
    invalidate,
    totalBytes,
    body: (i) => {
      const o = objects[i]!;
      return pool.subarray(o.bodyOffset, o.bodyOffset + o.bodySize);
    },
    meta: (i) => metaBytes(objects[i]!),
  };
}

const encoder = new TextEncoder();
const TYPES = ["application/javascript", "text/javascript; charset=utf-8"];
const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/**
 * Serialised response headers of exactly `metaSize` bytes.
 *
 * Names are lowercase, unique and sorted and values have no outer
 * whitespace, so a `Headers` round trip (Web Cache API) reproduces the
 * bytes exactly.
 */
function metaBytes(o: ObjectSpec): Uint8Array {
  const r = mulberry32(o.metaSeed);
  const etag = `"${r().toString(16)}${r().toString(16)}"`;
  const day = DAYS[r() % 7]!;
  const fixed: [string, string][] = [
    ["age", String(r() % 86_400)],
    ["cache-control", `public, max-age=${r() % 31_536_000}, immutable`],
    ["content-length", String(o.bodySize)],
    ["content-type", TYPES[r() % TYPES.length]!],
    ["date", `${day}, 0${1 + (r() % 9)} Jan 2026 12:00:00 GMT`],
    ["etag", etag],
    ["last-modified", `${day}, 1${r() % 10} Dec 2025 08:30:00 GMT`],
    ["vary", "Accept-Encoding"],
  ];
  const line = ([k, v]: [string, string]) => `${k}: ${v}\r\n`;
  let head = fixed.map(line).join("");
  // "x-request-id" sorts after every fixed name; it pads to the exact size.
  const prefix = "x-request-id: ";
  const pad = o.metaSize - head.length - prefix.length - 2;
  let id = "";
  while (id.length < pad) id += r().toString(36);
  head += `${prefix}${id.slice(0, Math.max(1, pad))}\r\n`;
  const bytes = encoder.encode(head);
  // Invariant: header text is ASCII, so the byte size is the string size.
  if (bytes.length !== o.metaSize && pad >= 1) {
    throw new Error(
      `Cannot build meta: got ${bytes.length} bytes, want ${o.metaSize}`,
    );
  }
  return bytes;
}
