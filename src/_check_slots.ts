/**
 * Check steps for slot storage: the use maps in `blocks` against the slots
 * the records claim (FORMAT.md §5.1), then every block file's header and
 * each claimed slot's element (§5.2, §5.3), and anything foreign in the
 * block directories.
 *
 * @module
 */
import { CHUNK_BYTES, hasMagicAt, readSlots, slotElement } from "./_scan.ts";
import {
  fileKindName,
  kindName,
  type PassState,
  versionAt,
} from "./_check_state.ts";
import { judge } from "./_check_records.ts";
import { CorruptError, VersionMismatchError } from "./errors.ts";
import {
  BLOCK_FILE_HEADER,
  blockFileCount,
  blockFileHeaderMatches,
  blockFileVersion,
  decodeBlocks,
  MAGIC,
  SLOT_SIZE,
  SLOTS_PER_FILE,
  VERSION,
} from "./format.ts";
import { readWhole } from "./io.ts";
import { DATA, type ElementKind, KINDS, META } from "./kinds.ts";
import { BLOCK_DIRS, blockFileParts } from "./paths.ts";

/** Compares the use maps in `blocks` with the slots records claim. */
export function checkUseMaps(pass: PassState): void {
  const io = pass.io;
  const mem = pass.index!.mem;
  const path = `${pass.dir}/blocks`;
  let maps: [Uint8Array, Uint8Array] | undefined;
  const kind = io.kind(path);
  const anySlots = pass.slotTop.some((top) => top > 0);
  if (kind === "missing") {
    if (anySlots) {
      pass.writeBlocks = true;
      pass.report(
        "BLOCKS_CORRUPT",
        "blocks",
        "missing, yet entries use slots",
      );
    }
    return;
  }
  if (kind !== "file") {
    pass.writeBlocks = true; // reported as FOREIGN_OBJECT
    return;
  }
  const bytes = readWhole(io, path) ?? new Uint8Array(0);
  pass.bytesRead += bytes.length;
  try {
    const decoded = decodeBlocks(bytes);
    const [dataSlots, metaSlots] = mem.slotCounts;
    const mapBytes = mem.useMap(DATA).length;
    if (
      decoded.slots[0] !== dataSlots || decoded.slots[1] !== metaSlots ||
      decoded.maps[0].length !== mapBytes
    ) {
      pass.writeBlocks = true;
      pass.report(
        "BLOCKS_MISMATCH",
        "blocks",
        `use maps for ${decoded.slots[0]} data slots of ${
          decoded.maps[0].length
        } bytes and ${
          decoded.slots[1]
        } metadata slots; control says ${dataSlots} data slots of ${mapBytes} bytes and ${metaSlots} metadata slots`,
      );
      return;
    }
    maps = decoded.maps;
  } catch (err) {
    pass.writeBlocks = true;
    if (err instanceof VersionMismatchError) {
      pass.report(
        "VERSION_NEWER",
        "blocks",
        `blocks format version ${
          versionAt(bytes, 8)
        }; this larder reads ${VERSION.blocks}`,
      );
    } else if (err instanceof CorruptError) {
      pass.report("BLOCKS_CORRUPT", "blocks", err.message);
    } else throw err;
    return;
  }
  const claims = pass.snapshotClaims;
  for (const kind of KINDS) {
    const map = maps[kind];
    const owner = pass.slotOwner[kind];
    const slots = mem.slotCounts[kind];
    const top = pass.slotTop[kind]!;
    for (let byte = 0; byte < slots >>> 3; byte++) {
      let claimed = 0;
      if (claims !== undefined) claimed = claims[kind][byte]!;
      else if (byte * 8 < top) {
        for (let bit = 0; bit < 8; bit++) {
          if ((owner[byte * 8 + bit] ?? 0) !== 0) claimed |= 1 << bit;
        }
      }
      const marked = map[byte]!;
      if (claimed === marked) continue;
      for (let bit = 0; bit < 8; bit++) {
        const s = byte * 8 + bit;
        const m = (marked >> bit) & 1;
        const c = (claimed >> bit) & 1;
        if (m === c) continue;
        pass.writeBlocks = true;
        if (c && claims !== undefined) {
          pass.report(
            "SLOT_UNMARKED",
            "blocks",
            `${kindName(kind)} slot ${s} holds an element of the entries ` +
              "snapshot but is not marked used",
            { slot: s },
          );
        } else if (c) {
          pass.report(
            "SLOT_UNMARKED",
            "blocks",
            `${kindName(kind)} slot ${s} holds entry ${
              owner[s]! - 1
            }'s element but is not marked used`,
            { slot: s, entry: owner[s]! - 1 },
          );
        } else {
          pass.report(
            "SLOT_MARKED_FREE",
            "blocks",
            `${kindName(kind)} slot ${s} is marked used but no entry claims it`,
            { slot: s },
          );
        }
      }
    }
  }
}

// ---- §5.2 block files and slots ----------------------------------------------

/** Checks each block file's header and the element in each claimed slot. */
export function checkBlockFiles(pass: PassState): void {
  const io = pass.io;
  const mem = pass.index!.mem;
  const buf = new Uint8Array(CHUNK_BYTES);
  pass.progress("slots");
  for (const kind of KINDS) {
    const fileCount = blockFileCount(kind, mem.slotCounts[kind]);
    const per = SLOTS_PER_FILE[kind];
    const expected = new Set<string>();
    const owner = pass.slotOwner[kind];
    // Directories on the way to block files: usable, or not there.
    const dirUsable = new Map<string, boolean>();
    const usable = (rel: string): boolean => {
      let ok = dirUsable.get(rel);
      if (ok === undefined) {
        const up = rel.lastIndexOf("/");
        ok = up < 0 || usable(rel.slice(0, up));
        if (ok) {
          const k = io.kind(`${pass.dir}/${rel}`);
          ok = k === "dir";
          if (k !== "dir" && k !== "missing") {
            pass.foreignObject(
              rel,
              `${fileKindName(k)} where larder keeps a directory`,
            );
          }
        }
        dirUsable.set(rel, ok);
      }
      return ok;
    };
    for (let n = 0; n < fileCount; n++) {
      const parts = blockFileParts(kind, n, fileCount);
      const rel = parts.join("/");
      expected.add(rel);
      if (parts.length === 3) expected.add(parts.slice(0, 2).join("/"));
      const base = n * per;
      let claimed = 0;
      const end = Math.min(per, pass.slotTop[kind]! - base);
      for (let s = 0; s < end; s++) {
        if ((owner[base + s] ?? 0) !== 0) claimed++;
      }
      const path = `${pass.dir}/${rel}`;
      const k = usable(parts.slice(0, -1).join("/"))
        ? io.kind(path)
        : "missing";
      if (k !== "file") {
        if (k !== "missing") {
          pass.foreignObject(
            rel,
            `${fileKindName(k)} where larder keeps a block file`,
          );
        }
        if (claimed > 0) {
          eachClaimant(
            pass,
            kind,
            base,
            per,
            (i, s) =>
              pass.elementProblem(i, kind, "ELEMENT_MISSING", rel, {
                slot: s,
                detail: `block file ${rel} does not exist`,
              }),
          );
        }
        continue;
      }
      pass.allocated += pass.allocatedBytes(rel);
      const fd = io.openR(path);
      try {
        const head = new Uint8Array(32);
        pass.bytesRead += io.pread(fd, head, 0);
        const version = blockFileVersion(head);
        if (version > VERSION.blockFile) {
          pass.headerFixes.push({ rel, kind, n });
          pass.report(
            "VERSION_NEWER",
            rel,
            `block file format version ${version}; this larder reads ${VERSION.blockFile}`,
          );
        } else if (!blockFileHeaderMatches(head, kind, n)) {
          // A crash between creating a block file and writing its header
          // leaves zeros; open writes the header again (FORMAT.md §9).
          if (hasMagicAt(head, MAGIC.blockFile) || head.every((b) => !b)) {
            pass.headerFixes.push({ rel, kind, n });
            pass.report(
              "BLOCK_FILE_CORRUPT",
              rel,
              `header is not that of ${kindName(kind)} block file ${n}`,
            );
          } else {
            pass.report(
              "BLOCK_FILE_CORRUPT",
              rel,
              "not a larder block file (no LARDERBF magic); not touched",
            );
          }
        }
        if (claimed === 0) continue;
        // A run is judged from its first slot, read whole.
        const judged = (s: number) =>
          (owner[base + s] ?? 0) !== 0 &&
          (kind === META || !insideRun(pass, base + s));
        pass.bytesRead += readSlots(
          io,
          fd,
          kind,
          judged,
          (s, bytes) => {
            if (!judged(s)) return;
            const n = kind === DATA ? pass.runs.get(base + s) ?? 1 : 1;
            let room = SLOT_SIZE[kind];
            if (n > 1) {
              room = n * SLOT_SIZE[DATA];
              bytes = new Uint8Array(room);
              const got = io.pread(
                fd,
                bytes,
                BLOCK_FILE_HEADER + s * SLOT_SIZE[DATA],
              );
              pass.bytesRead += got;
              bytes = bytes.subarray(0, got);
            }
            judgeSlot(pass, kind, base + s, rel, bytes, room);
          },
          buf,
        );
      } finally {
        io.close(fd);
      }
      pass.progress();
    }
    foreignInBlockDir(pass, kind, expected);
  }
}

/** Calls `f` for each entry claiming a slot of `first`..`first + n`. */
function eachClaimant(
  pass: PassState,
  kind: ElementKind,
  first: number,
  n: number,
  f: (i: number, slot: number) => void,
): void {
  const owner = pass.slotOwner[kind];
  for (let s = first; s < first + n; s++) {
    if ((owner[s] ?? 0) === 0) continue;
    f(owner[s]! - 1, s);
    for (const i of pass.slotExtra[kind].get(s) ?? []) f(i, s);
  }
}

/** Reports what lies in a kind's block directory that larder did not write. */
function foreignInBlockDir(
  pass: PassState,
  kind: ElementKind,
  expected: Set<string>,
): void {
  const io = pass.io;
  const walk = (rel: string) => {
    if (pass.foreign.includes(rel)) return;
    const k = io.kind(`${pass.dir}/${rel}`);
    if (k === "missing") return;
    if (k === "dir") {
      for (const name of io.list(`${pass.dir}/${rel}`).sort()) {
        const child = `${rel}/${name}`;
        if (!expected.has(child)) {
          const ck = io.kind(`${pass.dir}/${child}`);
          pass.report(
            "FOREIGN_FILE",
            child,
            `${
              ck === "dir" ? "directory" : ck
            } larder did not write; not touched`,
          );
        } else if (io.kind(`${pass.dir}/${child}`) === "dir") walk(child);
      }
      return;
    }
    pass.report("FOREIGN_FILE", rel, `${k} where larder keeps a directory`);
  };
  walk(BLOCK_DIRS[kind]);
}

/** True when data slot `slot` is inside a run, after its first slot. */
function insideRun(pass: PassState, slot: number): boolean {
  return (pass.inRun[slot >>> 3]! & (1 << (slot & 7))) !== 0;
}

/** Judges a slot's (or run's) element, and metadata stored after data. */
function judgeSlot(
  pass: PassState,
  kind: ElementKind,
  slot: number,
  rel: string,
  bytes: Uint8Array,
  room: number,
): void {
  const facts = slotElement(room, bytes);
  const claimants = [
    pass.slotOwner[kind][slot]! - 1,
    ...(pass.slotExtra[kind].get(slot) ?? []),
  ];
  const mem = pass.index!.mem;
  for (const i of claimants) {
    judge(pass, i, kind, facts, rel, slot);
    // Metadata stored after the data (FORMAT.md §6.1) can be found only
    // through a data element that verified; else the entry goes whole.
    if (
      kind !== DATA || pass.dropElement[DATA].has(i) ||
      !mem.metaWithData(i)
    ) continue;
    const end = facts.span!;
    const after = slotElement(room - end, bytes.subarray(end));
    judge(pass, i, META, after, rel, slot, `metadata in data slot ${slot}`);
  }
}
