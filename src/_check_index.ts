/**
 * The check step that loads the effective index (FORMAT.md §4, §10): the
 * `entries` snapshot with its journal replayed as open replays it, or the
 * index rebuilt from the elements when the snapshot is unusable.
 *
 * @module
 */
import {
  hex,
  type LoadedIndex,
  type PassState,
  versionAt,
} from "./_check_state.ts";
import type { ProblemCode } from "./_check_report.ts";
import { CorruptError, VersionMismatchError } from "./errors.ts";
import { loadAttrSection, loadOriginSection } from "./_persist.ts";
import {
  type Control,
  decodeEntries,
  useMapBytes,
  VERSION,
  VERSION_MIN,
  versionsRead,
} from "./format.ts";
import { claimsSlot, IndexMemory, recordSlots } from "./index_memory.ts";
import { readWhole } from "./io.ts";
import {
  decodeJournalHeader,
  JOURNAL_VERSION,
  JOURNAL_VERSIONS_READ,
  journalName,
  readEntries,
  tornEntryEnd,
} from "./journal.ts";
import { KINDS, type PerKind, perKind } from "./kinds.ts";
import { replay } from "./ops.ts";
import { rebuildIndex } from "./rebuild.ts";

/**
 * Loads the effective index and sizes the pass's tables to it: the
 * `entries` snapshot with its journal replayed or, when the snapshot is
 * unusable, the index rebuilt from the elements.
 */
export function loadIndex(pass: PassState): void {
  pass.setIndex(readIndex(pass, pass.control!));
}

function readIndex(pass: PassState, control: Control): LoadedIndex {
  const io = pass.io;
  const mem = new IndexMemory(control);
  mem.setSipKey(control.sipKey);
  const path = `${pass.dir}/entries`;
  const kind = io.kind(path);
  let why: { code: ProblemCode; detail: string } | undefined;
  if (kind === "file") {
    const bytes = readWhole(io, path) ?? new Uint8Array(0);
    pass.bytesRead += bytes.length;
    try {
      const { header, records, attrs, origins } = decodeEntries(bytes);
      if (header.count > mem.capacity) {
        throw new CorruptError(
          `Cannot read entries: ${header.count} records, capacity ${mem.capacity}`,
        );
      }
      mem.loadRecords(records, header.count);
      if (loadOriginSection(mem, origins) > 0) {
        pass.writeEntries = true;
        pass.report(
          "ORIGIN_CORRUPT",
          "entries",
          "the origin section names entries the snapshot does not have, " +
            "or cannot be read: a repair writes the index without them",
        );
      }
      if (loadAttrSection(mem, attrs) > 0) {
        pass.writeEntries = true;
        pass.report(
          "ATTR_CORRUPT",
          "entries",
          "the attribute section names entries the snapshot does not " +
            "have, or cannot be read: a repair writes the index without them",
        );
      }
      const index: LoadedIndex = {
        mem,
        nextFileId: header.nextFileId,
        journalTag: header.journalTag,
        source: "snapshot",
        journal: null,
      };
      replayJournal(pass, index);
      return index;
    } catch (err) {
      if (err instanceof VersionMismatchError) {
        why = {
          code: "VERSION_NEWER",
          detail: `entries format version ${
            versionAt(bytes, 8)
          }; this larder reads ${
            versionsRead(VERSION.entries, VERSION_MIN.entries)
          }`,
        };
      } else if (err instanceof CorruptError) {
        why = { code: "ENTRIES_CORRUPT", detail: err.message };
      } else throw err;
    }
  } else if (kind !== "missing") {
    why = { code: "ENTRIES_CORRUPT", detail: `${kind}, not a file` };
  }
  pass.progress("rebuild");
  const rebuild = rebuildIndex(io, pass.dir, mem, {
    nsurl: pass.control?.hash === "nsurl",
    onProgress: (progress) => {
      pass.done = progress.done;
      pass.progress();
    },
  });
  pass.bytesRead += rebuild.bytesRead;
  if (why === undefined && rebuild.count === 0) {
    // A store that has not written its index yet, and holds nothing.
    return {
      mem,
      nextFileId: rebuild.nextFileId,
      journalTag: randomU32(),
      source: "empty",
      journal: null,
    };
  }
  why ??= {
    code: "ENTRIES_MISSING",
    detail: "no entries file, but the store holds elements",
  };
  pass.report(
    why.code,
    "entries",
    `${why.detail}; ${rebuild.count} entries recoverable from the elements` +
      ` (${rebuild.dropped} superseded, ${rebuild.corrupt} damaged)`,
  );
  pass.writeEntries = true;
  pass.writeBlocks = true;
  return {
    mem,
    nextFileId: rebuild.nextFileId,
    journalTag: randomU32(),
    source: "rebuilt",
    journal: null,
    rebuild,
  };
}

/**
 * Replays the journal the snapshot names onto it (FORMAT.md §10), as
 * open does: the valid entries in order, up to the first that fails or
 * does not match the table. Anything else in the file is reported.
 */
function replayJournal(pass: PassState, index: LoadedIndex): void {
  const io = pass.io;
  const name = journalName(index.journalTag);
  const path = `${pass.dir}/${name}`;
  const kind = io.kind(path);
  const trouble = (code: ProblemCode, detail: string) => {
    pass.writeEntries = true; // a new snapshot and journal replace it
    pass.report(code, name, detail);
  };
  if (kind === "missing") {
    return trouble(
      "JOURNAL_MISSING",
      "the journal the entries snapshot names does not exist; changes " +
        "since the snapshot are lost",
    );
  }
  if (kind !== "file") {
    return trouble("JOURNAL_CORRUPT", `${kind}, not a file; not touched`);
  }
  const bytes = readWhole(io, path) ?? new Uint8Array(0);
  pass.bytesRead += bytes.length;
  let size: number;
  try {
    const h = decodeJournalHeader(bytes);
    if (h.tag !== index.journalTag || h.size !== bytes.length) {
      return trouble(
        "JOURNAL_CORRUPT",
        `header names tag ${hex(h.tag)} and ${h.size} bytes; the file ` +
          `is ${bytes.length} bytes, the snapshot names tag ` +
          hex(index.journalTag),
      );
    }
    if (h.rotated) {
      return trouble(
        "JOURNAL_CORRUPT",
        "marked rotated, yet the entries snapshot names it",
      );
    }
    size = h.size;
  } catch (err) {
    if (err instanceof VersionMismatchError) {
      const v = versionAt(bytes, 8);
      return trouble(
        v > JOURNAL_VERSION ? "VERSION_NEWER" : "JOURNAL_CORRUPT",
        `journal format version ${v}; this larder reads ${JOURNAL_VERSIONS_READ}`,
      );
    }
    if (err instanceof CorruptError) {
      return trouble("JOURNAL_CORRUPT", err.message);
    }
    throw err;
  }
  const { entries, end } = readEntries(bytes);
  // `blocks` is written with the snapshot (FORMAT.md §10.3), so after a
  // crash it matches the snapshot, not what the journal adds to it.
  if (entries.length > 0) pass.snapshotClaims = claimedSlots(index.mem);
  const r = replay(index.mem, entries);
  index.journal = { name, size, operations: r.applied };
  if (r.fileIdFloor > index.nextFileId) index.nextFileId = r.fileIdFloor;
  const junk = firstNonZero(bytes, end);
  // One torn final entry is what a crash leaves (open discards it);
  // nonzero bytes past what one append could cover are damage.
  const torn = junk < 0 ? end : tornEntryEnd(bytes, end);
  const beyond = junk < 0 ? -1 : firstNonZero(bytes, torn);
  if (junk >= 0 && beyond < 0) {
    trouble(
      "JOURNAL_TORN_TAIL",
      `${entries.length} valid operations end at byte ${end}; the ` +
        `nonzero bytes after them (from byte ${junk}) lie within the one ` +
        `entry a crash could have torn (to byte ${torn}): the operation ` +
        "being written when the process or machine stopped is discarded",
    );
  } else if (beyond >= 0) {
    trouble(
      "JOURNAL_CORRUPT_TAIL",
      `${entries.length} valid operations end at byte ${end}; byte ` +
        `${beyond} after them is not zero, past what one torn entry ` +
        `could cover (to byte ${torn}): damage, and what follows is ignored`,
    );
  }
  if (r.diverged) {
    trouble(
      "JOURNAL_DIVERGED",
      `operation ${r.applied + 1} of ${entries.length} does not match ` +
        "the table; replay stopped there",
    );
  }
}

/** Use maps of the slots the records in `mem` claim (runs whole). */
function claimedSlots(mem: IndexMemory): PerKind<Uint8Array> {
  const maps = perKind((kind) =>
    new Uint8Array(useMapBytes(mem.slotCounts[kind]))
  );
  for (let i = 0; i < mem.count; i++) {
    for (const kind of KINDS) {
      const rec = mem.element(i, kind);
      if (!claimsSlot(rec)) continue;
      const end = Math.min(rec.loc + recordSlots(rec), mem.slotCounts[kind]);
      for (let s = rec.loc; s < end; s++) maps[kind][s >>> 3]! |= 1 << (s & 7);
    }
  }
  return maps;
}

/** Offset of the first non-zero byte at or after `from`, or -1. */
function firstNonZero(b: Uint8Array, from: number): number {
  let i = from;
  // Word at a time where aligned: journals are megabytes of zeros.
  while (i < b.length && ((b.byteOffset + i) & 3) !== 0) {
    if (b[i] !== 0) return i;
    i++;
  }
  const words = new Uint32Array(
    b.buffer,
    b.byteOffset + i,
    (b.length - i) >>> 2,
  );
  for (let w = 0; w < words.length; w++) {
    if (words[w] !== 0) {
      for (let k = i + w * 4; k < i + w * 4 + 4; k++) if (b[k] !== 0) return k;
    }
  }
  for (let k = i + words.length * 4; k < b.length; k++) {
    if (b[k] !== 0) return k;
  }
  return -1;
}

function randomU32(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}
