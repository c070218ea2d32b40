/**
 * check-store's repair, from what the first pass found
 * (`_check_state.ts`): foreign objects moved aside, control rewritten,
 * temp files and stale journals deleted, failed elements and entries
 * dropped, the index and use maps written, and only then the files the new
 * index no longer references deleted.
 *
 * Invariant: nothing is deleted unless its path is one of larder's names
 * and its content starts with larder's magic, or it is a `.tmp` leftover
 * of one of larder's own root files (check.ts).
 *
 * @module
 */
import type { Repair, RepairAction } from "./_check_report.ts";
import type { PassState } from "./_check_state.ts";
import { hasMagicAt, walkLargeTree } from "./_scan.ts";
import { moveAside } from "./_foreign.ts";
import {
  CACHEDIR_TAG,
  encodeBlockFileHeader,
  encodeBlocksHeader,
  storedDataMap,
} from "./format.ts";
import { claimsSlot, type IndexMemory, recordSlots } from "./index_memory.ts";
import { type FileIO, readPrefix, replaceFile } from "./io.ts";
import {
  defaultJournalBytes,
  Journal,
  JOURNAL_MAGIC,
  journalName,
} from "./journal.ts";
import { DATA, KIND_TABLE, KINDS, META } from "./kinds.ts";
import { writeControlCopies } from "./_control.ts";
import { newTag, writeSnapshotTemp } from "./_persist.ts";

/** Repairs the store in `dir` from what `pass` found; says what it did. */
export function repairStore(
  io: FileIO,
  dir: string,
  pass: PassState,
): Repair[] {
  const done: Repair[] = [];
  const index = pass.index!;
  const mem = index.mem;
  const say = (
    action: RepairAction,
    path: string,
    detail: string,
    key?: string,
  ) =>
    done.push(
      key === undefined ? { action, path, detail } : {
        action,
        path,
        key,
        detail,
      },
    );
  // First, so what follows can write at those names (`_foreign.ts`).
  for (const rel of pass.foreign) {
    const to = moveAside(io, dir, rel);
    say("MOVE_ASIDE", rel, `moved the foreign object aside to ${to}`);
  }
  if (pass.controlWrite !== undefined) {
    // Before the index: everything after rests on the store's parameters.
    const { bytes, names } = pass.controlWrite;
    writeControlCopies(io, dir, bytes, names);
    for (const name of names) {
      say(
        "WRITE_CONTROL",
        name,
        "wrote the control record from the sound copy",
      );
    }
  }
  if (index.source === "rebuilt") {
    const r = index.rebuild!;
    say(
      "REBUILD_INDEX",
      "entries",
      `rebuilt ${r.count} entries from ${r.slotsScanned} slots and ${r.filesScanned} large files`,
    );
  }
  // Temp files and stale journals first: nothing refers to them, and on a
  // full disk their space is what the new snapshot and journal need.
  for (const name of pass.temps) {
    io.unlink(`${dir}/${name}`);
    say(
      "DELETE_TEMP",
      name,
      name.endsWith(".tmp")
        ? "deleted a leftover temp file"
        : "deleted a journal no snapshot names",
    );
  }
  const keyOf = new Map<number, string>();
  for (const p of pass.problems) {
    if (p.entry !== undefined && p.key !== undefined) keyOf.set(p.entry, p.key);
  }
  for (const [i, names] of pass.dropAttrs) {
    const set = mem.attrs(i)!;
    for (const name of names) {
      set.delete(name);
      say(
        "DROP_ATTR",
        "entries",
        `dropped attribute ${JSON.stringify(name)} of entry ${i}`,
        keyOf.get(i),
      );
    }
    mem.setAttrs(i, set);
    if (!mem.hasAnything(i)) pass.drop.add(i);
  }
  for (const kind of KINDS) {
    for (const i of pass.dropElement[kind]) {
      mem.clearElement(i, kind);
      mem.clearOrigin(i, kind);
      say(
        "DROP_ELEMENT",
        "entries",
        `dropped the ${
          KIND_TABLE[kind].name
        } element of entry ${i}; it keeps the other`,
        keyOf.get(i),
      );
    }
  }
  // Swap-remove moves the last record into the hole: remove from the top.
  for (const i of [...pass.drop].sort((a, b) => b - a)) {
    mem.remove(i);
    say("DROP_ENTRY", "entries", `dropped entry ${i}`, keyOf.get(i));
  }

  for (const fix of pass.headerFixes) {
    const fd = io.openRW(`${dir}/${fix.rel}`, false);
    try {
      io.pwrite(fd, encodeBlockFileHeader(fix.kind, fix.n), 0);
      io.fsync(fd);
    } finally {
      io.close(fd);
    }
    say(
      "REWRITE_BLOCK_FILE_HEADER",
      fix.rel,
      `wrote the header of ${KIND_TABLE[fix.kind].name} block file ${fix.n}`,
    );
  }

  // Never hand out an id a file at a larder name already has.
  let nextFileId = index.nextFileId;
  for (const f of pass.seenFiles) nextFileId = Math.max(nextFileId, f.id + 1);
  for (let i = 0; i < mem.count; i++) {
    for (const kind of KINDS) {
      const rec = mem.element(i, kind);
      if (rec?.inFile) nextFileId = Math.max(nextFileId, rec.loc + 1);
    }
  }
  nextFileId = nextFileId >>> 0;
  if (nextFileId !== index.nextFileId && index.source === "snapshot") {
    say(
      "RAISE_NEXT_FILE_ID",
      "entries",
      `nextFileId ${index.nextFileId} -> ${nextFileId}`,
    );
  }

  const writeEntries = pass.writeEntries || pass.drop.size > 0 ||
    pass.dropAttrs.size > 0 ||
    pass.dropElement.some((d) => d.size > 0) ||
    nextFileId !== index.nextFileId;
  if (pass.writeBlocks || writeEntries) {
    // The use maps follow the records (as at open, FORMAT.md §9).
    mem.clearUseMaps();
    for (let i = 0; i < mem.count; i++) {
      for (const kind of KINDS) {
        const rec = mem.element(i, kind);
        if (claimsSlot(rec)) mem.markRun(kind, rec.loc, recordSlots(rec));
      }
    }
    const data = storedDataMap(mem.useMap(DATA));
    const meta = mem.useMap(META);
    replaceFile(io, dir, "blocks", [
      encodeBlocksHeader(mem.slotCounts, data, meta),
      data,
      meta,
    ]);
    say("WRITE_BLOCKS", "blocks", "wrote the use maps from the entries");
  }
  if (writeEntries) {
    const name = writeSnapshot(io, dir, {
      mem,
      nextFileId,
      oldTag: index.source === "snapshot" ? index.journalTag : undefined,
      journalBytes: index.journal?.size ??
        defaultJournalBytes(mem.entryBits),
    });
    say("WRITE_ENTRIES", "entries", `wrote ${mem.count} entries`);
    say("NEW_JOURNAL", name, "created an empty journal for the new snapshot");
    if (index.source === "snapshot") {
      const old = journalName(index.journalTag);
      if (hasMagicAt(readPrefix(io, `${dir}/${old}`, 8), JOURNAL_MAGIC)) {
        io.unlink(`${dir}/${old}`);
        say("DELETE_FILE", old, "deleted the journal the old snapshot named");
      }
    }
  }

  // Only now, with the index no longer pointing at them, delete files.
  const referenced = [new Set<number>(), new Set<number>()];
  for (let i = 0; i < mem.count; i++) {
    for (const kind of KINDS) {
      const rec = mem.element(i, kind);
      if (rec?.inFile) referenced[kind]!.add(rec.loc);
    }
  }
  for (const f of pass.seenFiles) {
    if (!f.magic || referenced[f.kind]!.has(f.id)) continue;
    io.unlink(`${dir}/${f.rel}`);
    say(
      "DELETE_FILE",
      f.rel,
      `deleted unreferenced large file (${f.size} bytes)`,
    );
  }
  // Deleting files may have emptied more directories: walk again.
  for (const kind of KINDS) {
    walkLargeTree(io, dir, kind, {
      file() {},
      foreign() {},
      emptyChain(dirs) {
        let removed = 0;
        for (const rel of dirs) {
          try {
            Deno.removeSync(`${dir}/${rel}`); // fails unless empty
            removed++;
          } catch {
            break;
          }
        }
        if (removed > 0) {
          say(
            "REMOVE_DIR",
            dirs[dirs.length - 1]!,
            `removed ${removed} empty director${removed === 1 ? "y" : "ies"}`,
          );
        }
      },
    });
  }
  if (pass.writeCachedirTag) {
    replaceFile(io, dir, "CACHEDIR.TAG", [CACHEDIR_TAG]);
    say("WRITE_CACHEDIR_TAG", "CACHEDIR.TAG", "wrote the cache directory tag");
  }
  return done;
}

/**
 * Writes the table as the `entries` snapshot under a new journal tag, and
 * that empty journal, in the order of a rotation (FORMAT.md §10.3): the
 * snapshot to `entries.tmp` (fsynced), the new journal (fsynced), then the
 * rename that commits both. A crash leaves the old pair or the new one.
 * @returns the new journal's file name.
 */
function writeSnapshot(
  io: FileIO,
  dir: string,
  o: {
    mem: IndexMemory;
    nextFileId: number;
    oldTag: number | undefined;
    journalBytes: number;
  },
): string {
  const tag = newTag(o.oldTag);
  const tmp = writeSnapshotTemp(io, dir, o.mem, o.nextFileId, tag);
  try {
    Journal.create(io, dir, tag, o.journalBytes).close();
  } catch (err) {
    try {
      io.unlink(tmp);
    } catch { /* the create failure is the one to report */ }
    throw err;
  }
  io.rename(tmp, `${dir}/entries`);
  io.syncDir(dir);
  return journalName(tag);
}
