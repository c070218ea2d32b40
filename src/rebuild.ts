/**
 * Rebuilding the index from the elements alone, for when `entries` is
 * lost or damaged. Every slot and large file starts with a header naming
 * its kind, key, key hash, length, content CRC and store time (FORMAT.md
 * §6), so the index can be recovered without trusting anything else.
 *
 * What is adopted: a slot of a block file (any but one whose intact header
 * declares a newer version: open writes a damaged header again, FORMAT.md
 * §9), or a regular file at larder's name for a large file (§2), holding
 * an element of that kind whose header verifies, whose
 * length fits (a slot) or matches exactly (a file), whose key is valid
 * UTF-8, and whose content CRC verifies; and the same of a metadata
 * element right after a data element in its slot (FORMAT.md §6.1), which
 * is adopted only with that data element. Nothing else is read as an
 * element, and nothing is written or deleted here.
 *
 * Which copy wins when one key and kind has several valid elements (an
 * old and a new value after a crash): the later `storedAt`; within the
 * same second, a large file over a slot, then the higher large-file id,
 * then the higher slot number. Large-file ids only grow (until they wrap
 * at 2^32), so the file rule is exact; slots are reused, so within one
 * second the slot rule may keep the older of two values. Both are whole,
 * verified values of that key, never another key's bytes.
 *
 * Data and metadata of one key become one entry. Its hash is the winning
 * data element's (else the metadata's); a metadata element whose header
 * carries another hash is dropped. `lastUsed` is the newest `storedAt` of
 * the two, the use count 1. If more keys survive than the table holds,
 * the most recently stored are kept.
 *
 * @module
 */
import {
  blockFileCount,
  blockFileVersion,
  NSURL_SLOTS,
  roundRun,
  SLOT_SIZE,
  SLOTS_PER_FILE,
  VERSION,
} from "./format.ts";
import {
  CHUNK_BYTES,
  keyText,
  readElementStarts,
  readLargeElement,
  readRun,
  slotElement,
  walkLargeTree,
} from "./_scan.ts";
import {
  DATA,
  type ElementKind,
  type ElementRecord,
  type IndexMemory,
  META,
} from "./index_memory.ts";
import type { FileIO } from "./io.ts";
import { apply, OP, type Table } from "./ops.ts";
import { KINDS } from "./kinds.ts";
import { blockFileParts } from "./paths.ts";

const NO_KEY = new Uint8Array(0);

/** Progress of a long scan, reported at most every 100 ms. */
export interface ScanProgress {
  /** What is being read. */
  phase: string;
  /** Elements examined so far. */
  done: number;
  /** Elements to examine, when known in advance (else 0). */
  total: number;
  /** Bytes read so far. */
  bytesRead: number;
  /** Milliseconds since the scan started. */
  elapsedMs: number;
}

/** Options of {@linkcode rebuildIndex}. */
export interface RebuildOptions {
  /** Called with progress at most every 100 ms. */
  onProgress?: (p: ScanProgress) => void;
  /**
   * Whether a verified element of `key` with header hash [lo, hi] may be
   * adopted (default: all). Refused ones count as dropped.
   */
  adopt?: (key: string, hashLo: number, hashHi: number) => boolean;
  /**
   * An nsurl store: data elements start only at multiples of
   * {@linkcode NSURL_SLOTS} data slots and take that many (FORMAT.md §5.3).
   */
  nsurl?: boolean;
}

/** What {@linkcode rebuildIndex} found and loaded. */
export interface RebuildResult {
  /** Entries now in the table. */
  count: number;
  /**
   * One past the highest large-file id seen at a larder name (adopted or
   * not), so new files never land on an existing one.
   */
  nextFileId: number;
  /**
   * Valid elements not adopted: older copies of a key, metadata under
   * another hash, keys beyond the table's capacity.
   */
  dropped: number;
  /** Elements with larder's header whose content failed (CRC, length). */
  corrupt: number;
  /** Slots examined (every slot of every block file present). */
  slotsScanned: number;
  /** Large files examined. */
  filesScanned: number;
  /** Block files skipped because their header declares a newer version. */
  blockFilesSkipped: number;
  /** Bytes read. */
  bytesRead: number;
}

interface Candidate {
  inFile: boolean;
  /** Metadata stored after the data in data slot `loc` (FORMAT.md §6.1). */
  withData: boolean;
  loc: number;
  /** Data in slots: the run's slot count (FORMAT.md §5.3). */
  slots: number;
  size: number;
  crc: number;
  hashLo: number;
  hashHi: number;
  storedAt: number;
}

interface Group {
  key: string;
  el: [Candidate | undefined, Candidate | undefined];
}

function newer(a: Candidate, b: Candidate): boolean {
  if (a.storedAt !== b.storedAt) return a.storedAt > b.storedAt;
  if (a.inFile !== b.inFile) return a.inFile;
  return a.loc > b.loc;
}

/**
 * Scans every block-file slot and large file of the store in `dir` and
 * replaces the table in `mem` with the entries they hold (see the module
 * doc for the rules). The slot use maps in `mem` are set to match.
 *
 * @param io The file layer.
 * @param dir The store directory.
 * @param mem The index to fill (sized by the store's control file); its
 *   previous contents are discarded.
 * @param options Progress reporting.
 * @returns counts, and the `nextFileId` the store must continue from.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BackingStore } from "../mod.ts";
 * import { decodeControl } from "./format.ts";
 * import { IndexMemory } from "./index_memory.ts";
 * import { NodeFileIO, readWhole } from "./io.ts";
 * import { rebuildIndex } from "./rebuild.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const store = await BackingStore.open(dir);
 * await store.store("https://example.com/", new Uint8Array([1, 2, 3]));
 * await store.close();
 *
 * const io = new NodeFileIO();
 * const mem = new IndexMemory(decodeControl(readWhole(io, `${dir}/control`)!));
 * const { count, nextFileId } = rebuildIndex(io, dir, mem);
 * assert.deepEqual([count, nextFileId], [1, 0]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function rebuildIndex(
  io: FileIO,
  dir: string,
  mem: IndexMemory,
  options: RebuildOptions = {},
): RebuildResult {
  const started = performance.now();
  let lastReport = started;
  const result: RebuildResult = {
    count: 0,
    nextFileId: 0,
    dropped: 0,
    corrupt: 0,
    slotsScanned: 0,
    filesScanned: 0,
    blockFilesSkipped: 0,
    bytesRead: 0,
  };
  const progress = (phase: string) => {
    const now = performance.now();
    if (options.onProgress === undefined || now - lastReport < 100) return;
    lastReport = now;
    options.onProgress({
      phase,
      done: result.slotsScanned + result.filesScanned,
      total: 0,
      bytesRead: result.bytesRead,
      elapsedMs: now - started,
    });
  };
  const groups = new Map<string, Group>();
  const offer = (kind: ElementKind, key: Uint8Array, c: Candidate) => {
    const text = keyText(key);
    if (text === undefined) {
      result.corrupt++;
      return;
    }
    if (
      options.adopt !== undefined && !options.adopt(text, c.hashLo, c.hashHi)
    ) {
      result.dropped++;
      return;
    }
    let g = groups.get(text);
    if (g === undefined) {
      g = { key: text, el: [undefined, undefined] };
      groups.set(text, g);
    }
    const old = g.el[kind];
    if (old === undefined || newer(c, old)) g.el[kind] = c;
    if (old !== undefined) result.dropped++;
  };

  // Adopts the element at the start of `b` (with `room` bytes to its
  // slot's or run's end) if it verifies; returns it and where it ends.
  const adoptSlotElement = (
    b: Uint8Array,
    kind: ElementKind,
    room: number,
    loc: number,
    withData: boolean,
  ): [Candidate, number] | undefined => {
    const f = slotElement(room, b);
    const h = f.header;
    if (h === undefined || h.kind !== kind) return undefined;
    if (f.status !== "ok") {
      result.corrupt++; // overflow, short or CRC
      return undefined;
    }
    const c: Candidate = {
      inFile: false,
      withData,
      loc,
      slots: 1,
      size: h.length,
      crc: h.crc,
      hashLo: h.hashLo,
      hashHi: h.hashHi,
      storedAt: h.storedAt,
    };
    offer(kind, f.key!, c);
    return [c, f.span!];
  };

  const buf = new Uint8Array(CHUNK_BYTES);
  for (const kind of KINDS) {
    const size = SLOT_SIZE[kind];
    const fileCount = blockFileCount(kind, mem.slotCounts[kind]);
    for (let n = 0; n < fileCount; n++) {
      const path = `${dir}/${blockFileParts(kind, n, fileCount).join("/")}`;
      if (io.kind(path) !== "file") continue;
      const fd = io.openR(path);
      try {
        const head = buf.subarray(0, 32);
        result.bytesRead += io.pread(fd, head, 0);
        // Slots prove themselves; only another version's layout is skipped.
        if (blockFileVersion(head) > VERSION.blockFile) {
          result.blockFilesSkipped++;
          continue;
        }
        // Slots inside a run adopted here are not read as elements of
        // their own (their bytes are the run's).
        const stride = kind === DATA && options.nsurl === true
          ? NSURL_SLOTS
          : 1;
        const scan = (s: number, b: Uint8Array): number => {
          result.slotsScanned++;
          const loc = n * SLOTS_PER_FILE[kind] + s;
          const run = kind === DATA ? readRun(io, fd, s, b) : undefined;
          if (run !== undefined) result.bytesRead += run.bytesRead;
          const bytes = run?.bytes ?? b;
          // An nsurl store's element ends within its one slot.
          const room = stride > 1
            ? Math.min(run?.room ?? size, stride * size)
            : run?.room ?? size;
          const data = adoptSlotElement(bytes, kind, room, loc, false);
          if (data === undefined || kind !== DATA) return s + 1;
          // A data element may have its entry's metadata after it.
          const [c, end] = data;
          const meta = adoptSlotElement(
            bytes.subarray(end),
            META,
            room - end,
            loc,
            true,
          );
          const used = end + (meta?.[1] ?? 0);
          // The run placement gave it: the shortest a run code stands for,
          // or an nsurl store's one slot (FORMAT.md §5.3).
          c.slots = stride > 1 ? stride : roundRun(Math.ceil(used / size));
          return s + Math.ceil(end / size);
        };
        result.bytesRead += readElementStarts(io, fd, kind, stride, scan, buf);
      } finally {
        io.close(fd);
      }
      progress("slots");
    }
  }

  let maxId = -1;
  for (const kind of KINDS) {
    walkLargeTree(io, dir, kind, {
      file(rel, id) {
        result.filesScanned++;
        const r = readLargeElement(io, `${dir}/${rel}`, buf);
        result.bytesRead += r.bytesRead;
        progress("files");
        // Any file at a larder name keeps its id from being handed out.
        maxId = Math.max(maxId, id);
        if (r.status === "empty" || r.status === "missing") return;
        if (r.status !== "ok" || r.header!.kind !== kind) {
          result.corrupt++;
          return;
        }
        const h = r.header!;
        offer(kind, r.key!, {
          inFile: true,
          withData: false,
          loc: id,
          slots: 1,
          size: h.length,
          crc: h.crc,
          hashLo: h.hashLo,
          hashHi: h.hashHi,
          storedAt: h.storedAt,
        });
      },
      foreign() {},
      emptyChain() {},
    });
  }
  result.nextFileId = (maxId + 1) >>> 0;

  let list = [...groups.values()];
  for (const g of list) {
    const [d, m] = g.el;
    // One entry has one hash: a metadata element under another hash
    // cannot be found through the data's entry. Metadata stored after a
    // data element is kept only with that data.
    if (d !== undefined && m !== undefined) {
      if (d.hashLo !== m.hashLo || d.hashHi !== m.hashHi) {
        result.dropped++;
        g.el[META] = undefined;
      }
    }
    if (m?.withData && (d === undefined || d.inFile || d.loc !== m.loc)) {
      result.dropped++;
      g.el[META] = undefined;
    }
  }
  const stored = (g: Group) =>
    Math.max(g.el[DATA]?.storedAt ?? 0, g.el[META]?.storedAt ?? 0);
  if (list.length > mem.capacity) {
    list.sort((a, b) => stored(b) - stored(a));
    result.dropped += list.length - mem.capacity;
    list = list.slice(0, mem.capacity);
  }

  mem.loadRecords(new Uint8Array(0), 0);
  mem.clearUseMaps();
  // Each entry is added as the store operations that would have made it,
  // applied as replay applies them (use count 1, last used = stored at).
  const table: Table = { mem, dropped() {}, placed() {}, removed() {} };
  for (const g of list) {
    const first = (g.el[DATA] ?? g.el[META])!;
    const lastUsed = stored(g);
    const index = mem.count;
    for (const kind of KINDS) {
      const c = g.el[kind];
      if (c === undefined) continue;
      const rec: ElementRecord = {
        size: c.size,
        loc: c.loc,
        crc: c.crc,
        inFile: c.inFile,
      };
      if (c.withData) rec.withData = true;
      else if (kind === DATA && !c.inFile && c.slots > 1) rec.slots = c.slots;
      apply(table, {
        tag: OP.store,
        time: lastUsed,
        index,
        hashLo: first.hashLo,
        hashHi: first.hashHi,
        kind,
        rec,
        key: NO_KEY,
      });
      if (!c.inFile && !c.withData) mem.markRun(kind, c.loc, c.slots);
    }
  }
  result.count = mem.count;
  return result;
}
