/**
 * The NetSurf backing-store anchor's workload (issue 16), reproduced
 * exactly from `/work/shared/anchors/netsurf-c/README.md` and `bench.c`:
 * the same generator, sizes, URLs, metadata, data stamps, fetch order and
 * limits, so larder and the C anchor store and fetch the same bytes.
 *
 * @module
 */

import { mulberry32, permutation } from "../compare/workload.ts";

/** The anchor's generator seed ("NETS"). */
const SEED = 0x4E455453;

/** The anchor's scenarios. */
export type Scenario = "mixed" | "small";
/** The anchor's limit modes. */
export type LimitMode = "noevict" | "evict";

/** One object: its URL and the sizes of its data and metadata elements. */
export interface NsObject {
  url: string;
  size: number;
  msize: number;
}

/** The generated workload of one case. */
export interface NsWorkload {
  scenario: Scenario;
  n: number;
  objects: NsObject[];
  /** Fetch order (a permutation of 0..n-1). */
  order: Uint32Array;
  /** Sum of data and metadata sizes (bench.c's `total`). */
  workloadBytes: number;
  dataBytes: number;
  /** Objects per size class (mixed: <8 KiB, <100 KiB, larger). */
  buckets: [number, number, number];
  /** `fingerprint = fingerprint*31 + size` (32-bit) in index order, hex. */
  sizeFingerprint: string;
}

/** The check values the anchor's README gives for the standard cases. */
export const CHECK_VALUES: Record<
  string,
  {
    workloadBytes: number;
    dataBytes: number;
    sizeFingerprint: string;
    buckets?: string;
  }
> = {
  "mixed 20000": {
    workloadBytes: 968278511,
    dataBytes: 957267902,
    buckets: "9959/8033/2008",
    sizeFingerprint: "d886ba6a",
  },
  "small 60000": {
    workloadBytes: 100090788,
    dataBytes: 67087282,
    sizeFingerprint: "0fe4caba",
  },
};

/** mulberry32 with the anchor's seed. */
function generator(): () => number {
  return mulberry32(SEED);
}

/**
 * Builds a case's workload and checks it against the README's check
 * values when it is a standard case.
 *
 * @throws {Error} when a standard case does not reproduce its check values.
 */
export function makeWorkload(scenario: Scenario, n: number): NsWorkload {
  const draw = generator();
  // lo + floor((hi-lo) * t^3 / 2^30): the product is below 2^53, exact.
  const skewed = (lo: number, hi: number) => {
    const t = draw() % 1024;
    return lo + Math.floor((hi - lo) * t * t * t / 2 ** 30);
  };
  const objects: NsObject[] = [];
  const buckets: [number, number, number] = [0, 0, 0];
  let workloadBytes = 0;
  let dataBytes = 0;
  let fp = 0;
  for (let i = 0; i < n; i++) {
    const r = draw() % 100;
    let size: number;
    if (scenario === "small") {
      size = skewed(128, 4096);
      buckets[0]++;
    } else if (r < 50) {
      size = skewed(128, 8192);
      buckets[0]++;
    } else if (r < 90) {
      size = skewed(8192, 102400);
      buckets[1]++;
    } else {
      size = skewed(102400, 1048576);
      buckets[2]++;
    }
    const msize = 300 + draw() % 501;
    const url = `https://host${i % 50}.example.org/assets/${
      i % 1000
    }/obj${i}.bin${i % 4 === 0 ? "?v=1" : ""}`;
    objects.push({ url, size, msize });
    dataBytes += size;
    workloadBytes += size + msize;
    fp = (Math.imul(fp, 31) + size) >>> 0;
  }
  const order = permutation(draw, n);
  const w: NsWorkload = {
    scenario,
    n,
    objects,
    order,
    workloadBytes,
    dataBytes,
    buckets,
    sizeFingerprint: fp.toString(16).padStart(8, "0"),
  };
  const want = CHECK_VALUES[`${scenario} ${n}`];
  if (want !== undefined) {
    const got = {
      workloadBytes: w.workloadBytes,
      dataBytes: w.dataBytes,
      sizeFingerprint: w.sizeFingerprint,
      buckets: want.buckets === undefined ? undefined : buckets.join("/"),
    };
    if (
      got.workloadBytes !== want.workloadBytes ||
      got.dataBytes !== want.dataBytes ||
      got.sizeFingerprint !== want.sizeFingerprint ||
      got.buckets !== want.buckets
    ) {
      throw new Error(
        `Cannot build workload: ${scenario} ${n} gives ${
          JSON.stringify(got)
        }, the anchor's check values are ${JSON.stringify(want)}`,
      );
    }
  }
  return w;
}

/** The byte limit of a case: 1 GiB, or half the workload bytes. */
export function limitOf(w: NsWorkload, mode: LimitMode): number {
  return mode === "evict" ? Math.floor(w.workloadBytes / 2) : 2 ** 30;
}

/**
 * bench.c's `fill_data`: xorshift32 filler (little-endian words), the
 * tail bytes `i & 0xff`, then the stamp: index and size at the start,
 * `index ^ 0xA5A5A5A5` in the last four bytes.
 */
export function fillData(size: number, idx: number): Uint8Array {
  const p = new Uint8Array(size);
  const words = size >>> 2;
  // Whole words through an aligned view (x86 is little-endian, as bench.c).
  const w32 = new Uint32Array(p.buffer, 0, words);
  let x = (Math.imul(idx, 2654435761) + 1) >>> 0;
  for (let i = 0; i < words; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    w32[i] = x;
  }
  for (let i = words * 4; i < size; i++) p[i] = i & 0xff;
  const v = new DataView(p.buffer);
  v.setUint32(0, idx, true);
  v.setUint32(4, size, true);
  v.setUint32(size - 4, (idx ^ 0xA5A5A5A5) >>> 0, true);
  return p;
}

const encoder = new TextEncoder();

/**
 * bench.c's `make_meta`: `msize` bytes of `h`, starting with the URL and a
 * NUL (as llcache writes it), then the size in decimal and a NUL; the last
 * byte is NUL.
 */
export function makeMeta(o: NsObject): Uint8Array {
  const m = new Uint8Array(o.msize).fill(0x68);
  const head = encoder.encode(`${o.url}\0${o.size}\0`);
  m.set(head.subarray(0, o.msize));
  m[o.msize - 1] = 0;
  return m;
}

/** bench.c's `check_data`: the length and the stamp at both ends. */
export function checkData(p: Uint8Array, idx: number, size: number): boolean {
  if (p.length !== size) return false;
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  return v.getUint32(0, true) === idx && v.getUint32(4, true) === size &&
    v.getUint32(size - 4, true) === ((idx ^ 0xA5A5A5A5) >>> 0);
}

/**
 * llcache's URL check, as bench.c does it: the metadata holds a NUL and
 * the string before it is the object's URL.
 */
export function checkMeta(m: Uint8Array, url: Uint8Array): boolean {
  if (m.length <= url.length || m[url.length] !== 0) return false;
  for (let i = 0; i < url.length; i++) if (m[i] !== url[i]) return false;
  return true;
}
