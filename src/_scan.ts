/**
 * Reading a store's elements in bulk, for the index rebuild and
 * check-store: slots in large sequential reads, large files streamed with
 * an incremental CRC, and the large-file tree walked and matched against
 * larder's own names (FORMAT.md §2, §5.2, §6). Private to rebuild.ts and
 * check.ts.
 *
 * @module
 */
import { crc32 } from "node:zlib";
import {
  BLOCK_FILE_HEADER,
  ELEMENT_HEADER,
  type ElementHeader,
  MAGIC,
  MAX_RUN_SLOTS,
  readElementHeader,
  SLOT_SIZE,
  SLOTS_PER_FILE,
  VERSION,
} from "./format.ts";
import { toStoreError } from "./errors.ts";
import { DATA, type ElementKind, META } from "./kinds.ts";
import { type FileIO, NodeFileIO } from "./io.ts";
import { component6, LARGE_DIRS, largeFileParts, leaf32 } from "./paths.ts";

/** Bytes a bulk read asks for at once. */
export const CHUNK_BYTES = 1 << 20;
/**
 * Unwanted bytes between two wanted slots that are read through rather
 * than skipped: one read is cheaper than two below about this size.
 */
const GAP_BYTES = 256 << 10;

/** An element header, its key and where its bytes start. */
export interface ParsedElement {
  /** The checked header. */
  header: ElementHeader;
  /** The stored key (a view into the buffer parsed). */
  key: Uint8Array;
  /** Offset of the element's bytes: ELEMENT_HEADER + key length. */
  start: number;
}

/**
 * Why bytes are not an element: no magic at all (`empty`: a never-written
 * slot or someone else's bytes), a version this larder does not read
 * (`newer`), or larder's magic with a header that does not verify.
 */
export type NotAnElement = "empty" | "newer" | "header";

/** True when `b` holds `magic` at `at`. */
export function hasMagicAt(
  b: Uint8Array,
  magic: Uint8Array,
  at = 0,
): boolean {
  if (b.length < at + magic.length) return false;
  for (let i = 0; i < magic.length; i++) {
    if (b[at + i] !== magic[i]) return false;
  }
  return true;
}

/** Parses the element header (and key) at the start of `b`. */
export function parseElement(b: Uint8Array): ParsedElement | NotAnElement {
  if (!hasMagicAt(b, MAGIC.element)) return "empty";
  if (b.length > 4 && b[4]! > VERSION.element) return "newer";
  const header = readElementHeader(b);
  if (header === undefined) return "header";
  const start = ELEMENT_HEADER + header.keyLen;
  return { header, key: b.subarray(ELEMENT_HEADER, start), start };
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The key as text, or undefined when it is not valid UTF-8. */
export function keyText(key: Uint8Array): string | undefined {
  try {
    return utf8.decode(key);
  } catch {
    return undefined;
  }
}

/**
 * Reads the slots of one block file that `wanted` selects, in ascending
 * order, coalescing nearby slots into reads of up to `buf.length` bytes,
 * and calls `visit` with each slot's bytes (a view into `buf`, shorter than
 * the slot, possibly empty, where the file ends early).
 *
 * @returns the bytes read.
 */
export function readSlots(
  io: FileIO,
  fd: number,
  kind: ElementKind,
  wanted: (slotInFile: number) => boolean,
  visit: (slotInFile: number, bytes: Uint8Array) => void,
  buf: Uint8Array,
): number {
  const size = SLOT_SIZE[kind];
  const slots = SLOTS_PER_FILE[kind];
  const perRead = Math.max(1, Math.floor(buf.length / size));
  const gap = Math.max(1, Math.floor(GAP_BYTES / size));
  let bytesRead = 0;
  let i = 0;
  while (i < slots) {
    if (!wanted(i)) {
      i++;
      continue;
    }
    const first = i;
    let last = i;
    for (let j = i + 1; j < slots && j - first < perRead; j++) {
      if (j - last > gap) break;
      if (wanted(j)) last = j;
    }
    const want = (last - first + 1) * size;
    const got = io.pread(
      fd,
      buf.subarray(0, want),
      BLOCK_FILE_HEADER + first * size,
    );
    bytesRead += got;
    for (let s = first; s <= last; s++) {
      if (s !== first && s !== last && !wanted(s)) continue;
      const at = (s - first) * size;
      visit(s, buf.subarray(Math.min(at, got), Math.min(at + size, got)));
    }
    i = last + 1;
  }
  return bytesRead;
}

/**
 * Reads every slot of one block file whose index is a multiple of
 * `stride` in large sequential reads of `buf.length` bytes, and calls
 * `visit` only for those whose bytes start with the element magic (a
 * view into `buf` from the slot to the end of what was read, so a run
 * usually needs no read of its own): a
 * rebuild's scan, which meets 2^19 slots a data block file, mostly empty.
 * `visit` returns the next slot to look at (to skip a run it adopted).
 *
 * @returns the bytes read.
 */
export function readElementStarts(
  io: FileIO,
  fd: number,
  kind: ElementKind,
  stride: number,
  visit: (slotInFile: number, bytes: Uint8Array) => number,
  buf: Uint8Array,
): number {
  const size = SLOT_SIZE[kind];
  const slots = SLOTS_PER_FILE[kind];
  const perRead = Math.max(1, Math.floor(buf.length / size));
  const m = MAGIC.element;
  let bytesRead = 0;
  for (let first = 0; first < slots;) {
    const want = Math.min(perRead, slots - first) * size;
    const got = io.pread(
      fd,
      buf.subarray(0, want),
      BLOCK_FILE_HEADER + first * size,
    );
    bytesRead += got;
    if (got === 0) break;
    let next = first + perRead;
    let s = first + ((stride - (first % stride)) % stride);
    while (s < first + perRead) {
      const at = (s - first) * size;
      if (at + 4 > got) break;
      if (
        buf[at] === m[0] && buf[at + 1] === m[1] && buf[at + 2] === m[2] &&
        buf[at + 3] === m[3]
      ) {
        const after = visit(s, buf.subarray(at, got));
        if (after > first + perRead) {
          next = after;
          break;
        }
        s = Math.max(s + stride, after);
        s += (stride - (s % stride)) % stride;
      } else s += stride;
    }
    if (got < want) break;
    first = next;
  }
  return bytesRead;
}

/** A run of data slots as read by {@linkcode readRun}. */
export interface RunRead {
  /** Header, key and data element, then the metadata element after it. */
  bytes: Uint8Array;
  /** Bytes to the end of the longest run that could start there. */
  room: number;
  /** Bytes read. */
  bytesRead: number;
}

/**
 * Reads the run of data slots (FORMAT.md §5.3) that starts at slot
 * `slotInFile` of a data block file, whose first slot's bytes are `head`:
 * the data element and the metadata element stored after it (§6.1), if
 * any, however many slots they cover. Undefined when `head` starts no data
 * element, or one that (with what follows it) fits its one slot.
 */
export function readRun(
  io: FileIO,
  fd: number,
  slotInFile: number,
  head: Uint8Array,
): RunRead | undefined {
  if (!hasMagicAt(head, MAGIC.element) || head.length < ELEMENT_HEADER) {
    return undefined;
  }
  const size = SLOT_SIZE[DATA];
  const room = Math.min(MAX_RUN_SLOTS, SLOTS_PER_FILE[DATA] - slotInFile) *
    size;
  const pos = BLOCK_FILE_HEADER + slotInFile * size;
  let bytesRead = 0;
  const read = (len: number) => {
    const b = new Uint8Array(Math.min(len, room));
    const got = io.pread(fd, b, pos);
    bytesRead += got;
    return b.subarray(0, got);
  };
  // A key longer than the slot: its header is read whole first.
  const keyLen = head[6]! | (head[7]! << 8);
  if (ELEMENT_HEADER + keyLen > head.length) {
    head = read(ELEMENT_HEADER + keyLen);
  }
  const p = parseElement(head);
  if (typeof p === "string" || p.header.kind !== DATA) return undefined;
  const dataEnd = p.start + p.header.length;
  // Through the header and key of a metadata element after the data.
  let bytes = dataEnd + ELEMENT_HEADER + p.header.keyLen <= head.length
    ? head
    : read(dataEnd + ELEMENT_HEADER + p.header.keyLen);
  let end = dataEnd;
  const m = parseElement(bytes.subarray(Math.min(dataEnd, bytes.length)));
  if (typeof m !== "string" && m.header.kind === META) {
    end = dataEnd + m.start + m.header.length;
  }
  if (end <= size) return undefined;
  if (end > bytes.length) bytes = read(end);
  return { bytes, room, bytesRead };
}

/** What a slot holds at an element's place. */
export interface SlotElement {
  /**
   * `ok`; `missing` (no bytes: the block file ends before it); not an
   * element (`empty`, `newer`, `header`); `overflow` (it would run past
   * the slot), `short` (the block file ends inside it), `crc` (content CRC
   * fails).
   */
  status: NotAnElement | "ok" | "missing" | "overflow" | "short" | "crc";
  /** The header, when it parsed. */
  header?: ElementHeader;
  /** The stored key (a view into the bytes), when the header parsed. */
  key?: Uint8Array;
  /** Where the element's bytes start (after header and key). */
  start?: number;
  /** Bytes of header, key and element, when the header parsed. */
  span?: number;
}

/**
 * Judges `bytes`, read from an element's place in a slot with `room`
 * bytes to the slot's end, as an element (check-store and rebuild alike).
 */
export function slotElement(room: number, bytes: Uint8Array): SlotElement {
  if (bytes.length === 0) return { status: "missing" };
  const p = parseElement(bytes);
  if (typeof p === "string") return { status: p };
  const { header, key, start } = p;
  const end = start + header.length;
  const f: SlotElement = { status: "ok", header, key, start, span: end };
  if (end > room) f.status = "overflow";
  else if (end > bytes.length) f.status = "short";
  else if (crc32(bytes.subarray(start, end)) !== header.crc) f.status = "crc";
  return f;
}

/** What reading a large file found. */
export interface LargeRead {
  /**
   * `ok`; `missing` (cannot be opened as a regular file); not an element
   * (`empty`, `newer`, `header`); `truncated` (shorter than its header
   * says), `trailing` (longer), `crc` (content CRC fails).
   */
  status: NotAnElement | "ok" | "missing" | "truncated" | "trailing" | "crc";
  /** The header, when it parsed. */
  header?: ElementHeader;
  /** The stored key (a copy), when the header parsed. */
  key?: Uint8Array;
  /** The file's length. */
  fileSize: number;
  /** Bytes read. */
  bytesRead: number;
}

/**
 * Reads large file `path` and checks it as an element: header, exact
 * length, content CRC streamed in chunks of `scratch.length` bytes (so an
 * element of any size needs no more memory than that).
 */
export function readLargeElement(
  io: FileIO,
  path: string,
  scratch: Uint8Array,
): LargeRead {
  let fd: number;
  try {
    fd = io.openR(path);
  } catch {
    return { status: "missing", fileSize: 0, bytesRead: 0 };
  }
  try {
    // Reads until a short read instead of asking for the size: one fstat
    // less per file, and the length seen is the length read.
    let bytesRead = io.pread(fd, scratch, 0);
    let eof = bytesRead < scratch.length;
    const first = scratch.subarray(0, bytesRead);
    const parsed = parseElement(first);
    const readRest = () => {
      while (!eof) {
        const n = io.pread(fd, scratch, bytesRead);
        bytesRead += n;
        eof = n < scratch.length;
      }
      return bytesRead;
    };
    if (typeof parsed === "string") {
      return { status: parsed, fileSize: readRest(), bytesRead };
    }
    const { header, start } = parsed;
    const key = parsed.key.slice();
    const end = start + header.length;
    let crc = crc32(first.subarray(start, Math.min(end, bytesRead)));
    while (!eof && bytesRead < end) {
      const n = io.pread(fd, scratch, bytesRead);
      crc = crc32(scratch.subarray(0, Math.min(n, end - bytesRead)), crc);
      bytesRead += n;
      eof = n < scratch.length;
    }
    const fileSize = readRest();
    const base = { header, key, fileSize, bytesRead };
    if (fileSize < end) return { ...base, status: "truncated" };
    if (fileSize > end) return { ...base, status: "trailing" };
    return { ...base, status: crc === header.crc ? "ok" : "crc" };
  } finally {
    io.close(fd);
  }
}

/** What a directory entry is, without following a final symlink. */
export type EntryKind = ReturnType<FileIO["kind"]>;

/**
 * The names in directory `path` with what each is. On the native file
 * layer the kinds come with the listing (d_type), which saves an lstat per
 * name: a store of 20,000 large files has about 80,000 directories.
 */
export function listDir(
  io: FileIO,
  path: string,
): Array<{ name: string; kind: EntryKind }> {
  if (!(io instanceof NodeFileIO)) {
    return io.list(path).map((name) => ({
      name,
      kind: io.kind(`${path}/${name}`),
    }));
  }
  const out: Array<{ name: string; kind: EntryKind }> = [];
  try {
    for (const e of Deno.readDirSync(path)) {
      out.push({
        name: e.name,
        kind: e.isSymlink
          ? "symlink"
          : e.isFile
          ? "file"
          : e.isDirectory
          ? "dir"
          : "other",
      });
    }
  } catch (err) {
    throw toStoreError(`list ${path}`, err);
  }
  return out;
}

const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** The id a seven-character base32 leaf names, or -1 if not canonical. */
export function parseLeaf(name: string): number {
  if (name.length !== 7) return -1;
  let id = 0;
  for (let k = 0; k < 7; k++) {
    const v = B32.indexOf(name[k]!);
    if (v < 0) return -1;
    id += v * 2 ** (5 * k);
  }
  return id <= 0xffffffff && leaf32(id) === name ? id : -1;
}

/** Entries sorted by name, so walks visit files in a stable order. */
export function byName<T extends { name: string }>(entries: T[]): T[] {
  return entries.sort((
    a,
    b,
  ) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

const COMPONENTS = new Set(
  Array.from({ length: 64 }, (_, v) => component6(v)),
);

/** What {@linkcode walkLargeTree} reports. */
export interface LargeTreeVisitor {
  /** A regular file at larder's name for large file `id`. */
  file(rel: string, id: number): void;
  /**
   * Anything else (a wrong name, a symlink, a device...): never touched.
   * `larderName`: it is at one of larder's names, as the wrong kind of
   * object (a directory or FIFO at a file's name, a file at a directory's),
   * so it stands where larder would write.
   */
  foreign(rel: string, what: string, larderName: boolean): void;
  /** A chain of larder-named directories holding nothing; deepest first. */
  emptyChain(dirs: string[]): void;
}

/**
 * Walks `root/d` (kind 0) or `root/m` (kind 1) without following links,
 * matching every path against larder's naming (FORMAT.md §2). Paths given
 * to the visitor are relative to `root`.
 */
export function walkLargeTree(
  io: FileIO,
  root: string,
  kind: ElementKind,
  visitor: LargeTreeVisitor,
): void {
  const top = LARGE_DIRS[kind];
  const what = io.kind(`${root}/${top}`);
  if (what === "missing") return;
  if (what !== "dir") {
    visitor.foreign(top, `${what} where larder keeps a directory`, true);
    return;
  }
  // Returns the directories (deepest first) when the subtree holds nothing.
  const walk = (rel: string, depth: number): string[] | undefined => {
    let holdsSomething = false;
    const emptyChildren: string[][] = [];
    for (const { name, kind: k } of byName(listDir(io, `${root}/${rel}`))) {
      const child = `${rel}/${name}`;
      if (depth < 5) {
        if (k !== "dir" || !COMPONENTS.has(name)) {
          visitor.foreign(
            child,
            k === "dir" ? "directory" : k,
            COMPONENTS.has(name),
          );
          holdsSomething = true;
          continue;
        }
        const sub = walk(child, depth + 1);
        if (sub === undefined) holdsSomething = true;
        else emptyChildren.push(sub);
        continue;
      }
      holdsSomething = true;
      const id = parseLeaf(name);
      if (
        k === "file" && id >= 0 &&
        largeFileParts(kind, id).join("/") === child
      ) {
        visitor.file(child, id);
      } else {
        visitor.foreign(
          child,
          k === "dir" ? "directory" : k,
          id >= 0 && largeFileParts(kind, id).join("/") === child,
        );
      }
    }
    if (holdsSomething) {
      for (const chain of emptyChildren) visitor.emptyChain(chain);
      return undefined;
    }
    return [...emptyChildren.flat(), rel];
  };
  // The kind directory itself stays even when empty: larder recreates it.
  for (const { name, kind: k } of byName(listDir(io, `${root}/${top}`))) {
    const child = `${top}/${name}`;
    if (k !== "dir" || !COMPONENTS.has(name)) {
      visitor.foreign(
        child,
        k === "dir" ? "directory" : k,
        COMPONENTS.has(name),
      );
      continue;
    }
    const sub = walk(child, 1);
    if (sub !== undefined) visitor.emptyChain(sub);
  }
}
