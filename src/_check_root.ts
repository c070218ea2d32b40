/**
 * Check steps for the store's root directory (FORMAT.md §2, §3, §7):
 * what lies in it, the control record's two copies, and journals no
 * snapshot names.
 *
 * @module
 */
import { byName, hasMagicAt, listDir } from "./_scan.ts";
import { fileKindName, type PassState, versionAt } from "./_check_state.ts";
import { VersionMismatchError } from "./errors.ts";
import { CACHEDIR_TAG, VERSION } from "./format.ts";
import { readPrefix, readWhole } from "./io.ts";
import { JOURNAL_MAGIC, journalName } from "./journal.ts";
import { BLOCK_DIRS } from "./paths.ts";
import {
  chooseControl,
  type ControlCopy,
  readControlCopies,
} from "./_control.ts";

const ROOT_FILES = new Set([
  "lock",
  "CACHEDIR.TAG",
  "control",
  "control.bak",
  "entries",
  "blocks",
]);
/** Root files larder replaces through `NAME.tmp` (FORMAT.md §7). */
const REPLACED = [
  "control",
  "control.bak",
  "entries",
  "blocks",
  "CACHEDIR.TAG",
];
/** Journal file names (FORMAT.md §10.1). */
const JOURNAL_NAME = /^journal-[0-9A-F]{8}$/;

/** Sorts out the root's entries: larder's, leftovers, and foreign ones. */
export function checkRootFiles(pass: PassState): void {
  const io = pass.io;
  for (const { name, kind: k } of byName(listDir(io, pass.dir))) {
    if (ROOT_FILES.has(name)) {
      if (k !== "file" && (name === "entries" || name === "blocks")) {
        pass.foreignObject(
          name,
          `${fileKindName(k)} where larder keeps a file`,
        );
      } else if (k !== "file") {
        pass.report("FOREIGN_FILE", name, `${k} where larder keeps a file`);
      }
      pass.allocated += pass.allocatedBytes(name);
      continue;
    }
    if (name === "d" || name === "m") continue; // walked later
    if ((BLOCK_DIRS as readonly string[]).includes(name)) {
      if (k !== "dir") {
        pass.foreignObject(
          name,
          `${fileKindName(k)} where larder keeps a directory`,
        );
      }
      continue;
    }
    if (JOURNAL_NAME.test(name) && k === "file") {
      pass.journals.push(name); // classified once the index names one
      pass.allocated += pass.allocatedBytes(name);
      continue;
    }
    if (name.endsWith(".tmp") && REPLACED.includes(name.slice(0, -4))) {
      if (k === "file") {
        pass.temps.push(name);
        pass.report(
          "TEMP_LEFTOVER",
          name,
          "left by an interrupted replacement of " + name.slice(0, -4),
        );
      } else {
        pass.foreignObject(
          name,
          `${fileKindName(k)} where larder writes a temp file`,
        );
      }
      continue;
    }
    pass.report(
      "FOREIGN_FILE",
      name,
      `${k === "dir" ? "directory" : k} larder did not write; not touched`,
    );
  }
  const tag = `${pass.dir}/CACHEDIR.TAG`;
  const tagKind = io.kind(tag);
  if (tagKind === "missing") {
    pass.writeCachedirTag = true;
    pass.report("CACHEDIR_TAG", "CACHEDIR.TAG", "missing");
  } else if (tagKind === "file") {
    const bytes = readWhole(io, tag) ?? new Uint8Array(0);
    pass.bytesRead += bytes.length;
    if (!hasMagicAt(bytes, CACHEDIR_TAG.subarray(0, 43))) {
      pass.report(
        "CACHEDIR_TAG",
        "CACHEDIR.TAG",
        "does not start with the cache directory signature; not touched",
      );
    }
  }
}

/** Journals other than the current one are leftovers of a rotation. */
export function classifyJournals(pass: PassState): void {
  const index = pass.index!;
  for (const name of pass.journals) {
    if (name === index.journal?.name) continue;
    if (
      index.source === "snapshot" && name === journalName(index.journalTag)
    ) {
      continue; // the current journal, reported by replayJournal
    }
    const head = readPrefix(pass.io, `${pass.dir}/${name}`, 8);
    if (hasMagicAt(head, JOURNAL_MAGIC)) {
      pass.temps.push(name);
      pass.report(
        "JOURNAL_STALE",
        name,
        "a journal no snapshot names (left by an interrupted rotation)",
      );
    } else {
      pass.report(
        "FOREIGN_FILE",
        name,
        "file at a journal name without larder's magic; not touched",
      );
    }
  }
}

/** Chooses the control record (FORMAT.md §3); false when none is usable. */
export function checkControl(pass: PassState): boolean {
  const copies = readControlCopies(pass.io, pass.dir);
  for (const c of copies) pass.bytesRead += c.bytes?.length ?? 0;
  let chosen: ControlCopy | undefined;
  try {
    chosen = chooseControl(copies);
  } catch (err) {
    if (!(err instanceof VersionMismatchError)) throw err;
    const newer = copies.find((c) => c.state === "newer")!;
    const version = versionAt(newer.bytes!, 8);
    pass.complete = false;
    // An older control is a store of 8 KiB data slots (FORMAT.md §3):
    // refused as a whole, as open refuses it.
    pass.report(
      version < VERSION.control ? "VERSION_OLD" : "VERSION_NEWER",
      newer.name,
      `control format version ${version}; this larder reads ${VERSION.control}: nothing else can be checked`,
    );
    return false;
  }
  if (chosen === undefined) {
    // Both copies lost in a directory larder's files prove is a store
    // (probeStore refused anything else).
    pass.complete = false;
    pass.controlLost = true;
    pass.report(
      "CONTROL_LOST",
      "control",
      `no sound copy of the control record (${
        copies.map((c) => `${c.name}: ${c.detail ?? c.state}`).join("; ")
      }): nothing else can be checked; an open or --repair rebuilds it`,
    );
    return false;
  }
  for (const c of copies) {
    if (c.state === "ok") continue;
    if (c.state === "missing" && c.name === "control.bak") {
      pass.report(
        "CONTROL_COPY_MISSING",
        c.name,
        "no second copy of the control record (a store made before it existed)",
      );
    } else {
      pass.report(
        "CONTROL_CORRUPT",
        c.name,
        `${c.detail ?? c.state}; ${chosen.name} is sound and is used`,
      );
    }
  }
  const names = copies.filter((c) => c.state !== "ok").map((c) => c.name);
  if (names.length > 0) pass.controlWrite = { bytes: chosen.bytes!, names };
  pass.control = chosen.control;
  return true;
}
