/**
 * The check step for large files (FORMAT.md §6): each file a record
 * claims, judged against it; unreferenced element files (orphans);
 * foreign files and empty directories in the trees.
 *
 * @module
 */
import {
  CHUNK_BYTES,
  hasMagicAt,
  keyText,
  parseElement,
  readLargeElement,
  walkLargeTree,
} from "./_scan.ts";
import { type ElementFacts, kindName, type PassState } from "./_check_state.ts";
import { judge } from "./_check_records.ts";
import { StoreError } from "./errors.ts";
import { ELEMENT_HEADER, MAGIC } from "./format.ts";
import { type ElementKind, KINDS } from "./kinds.ts";
import { largeFileParts } from "./paths.ts";

/** Walks each kind's large-file tree, judging what records claim. */
export function checkLargeFiles(pass: PassState): void {
  const io = pass.io;
  const buf = new Uint8Array(CHUNK_BYTES);
  pass.progress("files");
  for (const kind of KINDS) {
    const owners = pass.fileOwners[kind];
    const seen = new Set<number>();
    walkLargeTree(io, pass.dir, kind, {
      file: (rel, id) => {
        seen.add(id);
        const claimants = owners.get(id);
        const path = `${pass.dir}/${rel}`;
        if (claimants !== undefined) {
          const r = readLargeElement(io, path, buf);
          pass.bytesRead += r.bytesRead;
          pass.largeCount++;
          pass.largeBytes += r.fileSize;
          pass.allocated += r.fileSize;
          const f: ElementFacts = { status: r.status, span: r.fileSize };
          if (r.header !== undefined) f.header = r.header;
          if (r.key !== undefined) f.key = r.key;
          for (const i of claimants) judge(pass, i, kind, f, rel);
          pass.seenFiles.push({
            kind,
            id,
            rel,
            magic: r.status !== "empty" && r.status !== "missing",
            size: r.fileSize,
          });
          pass.progress();
          return;
        }
        orphan(pass, kind, id, rel);
      },
      foreign: (rel, what, larderName) =>
        larderName
          ? pass.foreignObject(
            rel,
            what.includes(" where ")
              ? what
              : `${what === "other" ? "FIFO, socket or device" : what}` +
                " at a larder name",
          )
          : pass.report(
            "FOREIGN_FILE",
            rel,
            `${what === "dir" ? "directory" : what} larder did not write` +
              "; not touched",
          ),
      emptyChain: (dirs) =>
        pass.report(
          "EMPTY_DIR",
          dirs[dirs.length - 1]!,
          dirs.length === 1
            ? "empty directory"
            : `chain of ${dirs.length} empty directories`,
        ),
    });
    for (const [id, claimants] of owners) {
      if (seen.has(id)) continue;
      const rel = largeFileParts(kind, id).join("/");
      for (const i of claimants) {
        pass.done++;
        pass.elementProblem(i, kind, "ELEMENT_MISSING", rel, {
          detail: `large file ${rel} does not exist`,
        });
      }
    }
  }
}

/** A larder-named file no record claims: an orphan, or foreign. */
function orphan(
  pass: PassState,
  kind: ElementKind,
  id: number,
  rel: string,
): void {
  const io = pass.io;
  let head = new Uint8Array(0);
  let size = 0;
  try {
    const fd = io.openR(`${pass.dir}/${rel}`);
    try {
      size = io.size(fd);
      head = new Uint8Array(Math.min(size, ELEMENT_HEADER + 16384));
      head = head.subarray(0, io.pread(fd, head, 0));
      pass.bytesRead += head.length;
    } finally {
      io.close(fd);
    }
  } catch (err) {
    if (!(err instanceof StoreError)) throw err;
  }
  // An empty file is what a store killed between creating a large file and
  // writing its header leaves: it holds nothing of anyone's, so it is an
  // orphan like the rest (repair deletes it).
  const magic = size === 0 || hasMagicAt(head, MAGIC.element);
  pass.seenFiles.push({ kind, id, rel, magic, size });
  if (!magic) {
    pass.report(
      "FOREIGN_FILE",
      rel,
      `${size}-byte file at a larder name without larder's magic; not touched`,
    );
    return;
  }
  pass.orphanCount++;
  pass.orphanBytes += size;
  pass.allocated += size;
  const parsed = parseElement(head);
  const key = typeof parsed === "string" ? undefined : keyText(parsed.key);
  pass.report(
    "ORPHAN_FILE",
    rel,
    `${
      kindName(kind)
    } large file ${id} (${size} bytes) that no entry references`,
    key === undefined ? {} : { key },
  );
}
