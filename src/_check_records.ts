/**
 * The check step for each entry record's structure (FORMAT.md §8
 * invariants 1–3), which also maps the slots and large files records
 * claim, and {@linkcode judge}, which compares an element found in a slot
 * or file with its record.
 *
 * @module
 */
import { keyText } from "./_scan.ts";
import { sameBytes } from "./_bytes.ts";
import {
  type ElementFacts,
  hex,
  kindName,
  type PassState,
} from "./_check_state.ts";
import type { ProblemCode } from "./_check_report.ts";
import { pairRecordsFit, recordFitsSlots } from "./elements.ts";
import { ELEMENT_HEADER, runWithin, VERSION } from "./format.ts";
import { MAX_KEY_BYTES, recordSlots } from "./index_memory.ts";
import {
  DATA,
  type ElementKind,
  KIND_TABLE,
  KINDS,
  META,
  perKind,
} from "./kinds.ts";

/** Structural checks of each record (FORMAT.md §8 invariants 1–3). */
export function checkRecords(pass: PassState): void {
  const { mem, nextFileId } = pass.index!;
  for (let i = 0; i < mem.count; i++) {
    const recs = perKind((kind) => mem.element(i, kind));
    // An entry with attributes only is an entry (FORMAT.md §4.1).
    if (recs.every((rec) => rec === undefined) && mem.attrs(i) === undefined) {
      pass.invalid(i, "has no elements");
      continue;
    }
    for (const kind of KINDS) {
      const rec = recs[kind];
      if (rec === undefined) continue;
      pass.total++;
      if (rec.withData === true) {
        // Judged with the data's slot (judgeSlot); it claims no slot itself.
        if (!pairRecordsFit(recs[DATA], rec)) {
          pass.invalid(
            i,
            `metadata is marked as in the data's slot ${rec.loc}, which ` +
              "the data does not have or has no room for it",
          );
        }
        continue;
      }
      if (rec.inFile) {
        const owners = pass.fileOwners[kind].get(rec.loc);
        if (owners === undefined) pass.fileOwners[kind].set(rec.loc, [i]);
        else owners.push(i);
        if (rec.loc >= nextFileId) {
          pass.nextFileIdNeeded = Math.max(
            pass.nextFileIdNeeded,
            rec.loc + 1,
          );
        }
        continue;
      }
      const n = recordSlots(rec);
      if (!runWithin(kind, mem.slotCounts[kind], rec.loc, n)) {
        pass.invalid(
          i,
          n === 1
            ? `${kindName(kind)} slot ${rec.loc} out of range`
            : `data run of ${n} slots from ${rec.loc} out of range or across block files`,
        );
        continue;
      }
      const after = kind === DATA && recs[META]?.withData
        ? recs[META]
        : undefined;
      if (!recordFitsSlots(kind, rec, after)) {
        pass.invalid(
          i,
          `${kindName(kind)} element of ${rec.size} bytes cannot fit ${
            n === 1 ? "a slot" : `${n} slots`
          }`,
        );
        continue;
      }
      if (n > 1) pass.runs.set(rec.loc, n);
      const owner = pass.slotOwner[kind];
      pass.slotTop[kind] = Math.max(pass.slotTop[kind]!, rec.loc + n);
      for (let s = rec.loc; s < rec.loc + n; s++) {
        if (s > rec.loc) pass.inRun[s >>> 3]! |= 1 << (s & 7);
        if (owner[s] === 0) owner[s] = i + 1;
        else {
          const extra = pass.slotExtra[kind].get(s);
          if (extra === undefined) pass.slotExtra[kind].set(s, [i]);
          else extra.push(i);
        }
      }
    }
  }
  if (pass.nextFileIdNeeded > nextFileId) {
    pass.writeEntries = true;
    pass.report(
      "NEXT_FILE_ID",
      "entries",
      `nextFileId is ${nextFileId} but entries use large-file ids up to ${
        pass.nextFileIdNeeded - 1
      }`,
    );
  }
}

/**
 * Compares what a slot or file holds with entry `i`'s record of it and
 * reports the first thing that disagrees.
 */
export function judge(
  pass: PassState,
  i: number,
  kind: ElementKind,
  f: ElementFacts,
  rel: string,
  slot?: number,
  where = slot === undefined
    ? `large file ${rel}`
    : `${kindName(kind)} slot ${slot}`,
): void {
  pass.done++;
  const rec = pass.index!.mem.element(i, kind)!;
  const fail = (code: ProblemCode, detail: string, key?: string) =>
    pass.elementProblem(i, kind, code, rel, {
      detail: `${where}: ${detail}`,
      ...(slot === undefined ? {} : { slot }),
      ...(key === undefined ? {} : { key }),
    });
  switch (f.status) {
    case "missing":
      return fail("ELEMENT_MISSING", "the block file ends before it");
    case "empty":
      return fail(
        slot === undefined ? "ELEMENT_HEADER" : "ELEMENT_MISSING",
        slot === undefined
          ? "no element header (no LDEL magic)"
          : "holds no element",
      );
    case "newer":
      return fail(
        "VERSION_NEWER",
        `element format version newer than ${VERSION.element}`,
      );
    case "header":
      return fail("ELEMENT_HEADER", "element header checksum fails");
  }
  const h = f.header!;
  const text = keyText(f.key!);
  if (h.kind !== kind) {
    return fail(
      "ELEMENT_MISMATCH",
      `holds a ${KIND_TABLE[h.kind]?.name} element`,
    );
  }
  const mem = pass.index!.mem;
  // An element moved, copied or deduplicated onto this entry carries its
  // origin's key and hash (FORMAT.md §4.3).
  const origins = mem.origins(i);
  const origin = origins?.of[kind];
  const wantLo = origin?.hashLo ?? mem.hashLo(i);
  const wantHi = origin?.hashHi ?? mem.hashHi(i);
  if (h.hashLo !== wantLo || h.hashHi !== wantHi) {
    return fail(
      "ELEMENT_KEY",
      `holds another key's element (hash ${hex(h.hashHi)}${
        hex(h.hashLo).slice(2)
      }, entry ${i} expects ${hex(wantHi)}${hex(wantLo).slice(2)})`,
      text,
    );
  }
  if (origin !== undefined && !sameBytes(f.key!, origin.key)) {
    return fail(
      "ELEMENT_KEY",
      `holds an element for ${JSON.stringify(text)}, not the origin the ` +
        "entry names",
      text,
    );
  }
  if (text === undefined) {
    return fail("ELEMENT_KEY", "stored key is not valid UTF-8");
  }
  if (h.keyLen > MAX_KEY_BYTES) {
    return fail(
      "ELEMENT_KEY",
      `stored key is ${h.keyLen} bytes, over ${MAX_KEY_BYTES}`,
      text,
    );
  }
  if (h.length !== rec.size || h.crc !== rec.crc) {
    return fail(
      "ELEMENT_MISMATCH",
      `header says ${h.length} bytes, CRC ${
        hex(h.crc)
      }; the entry says ${rec.size} bytes, CRC ${hex(rec.crc)}`,
      text,
    );
  }
  switch (f.status) {
    case "overflow":
      return fail("ELEMENT_MISMATCH", "element overflows its slot", text);
    case "short":
      return fail(
        "ELEMENT_MISSING",
        "the block file ends inside the element",
        text,
      );
    case "truncated":
      return fail(
        "LARGE_FILE_TRUNCATED",
        `${f.span} bytes, the element needs ${
          ELEMENT_HEADER + h.keyLen + h.length
        }`,
        text,
      );
    case "trailing":
      return fail(
        "LARGE_FILE_TRAILING",
        `${f.span} bytes, longer than the element's ${
          ELEMENT_HEADER + h.keyLen + h.length
        }`,
        text,
      );
    case "crc":
      return fail("ELEMENT_CRC", "content CRC-32 does not match", text);
  }
  // The entry's key: its own, not the origin's its element header names.
  pass.keyOf[kind][i] = origins === undefined
    ? text
    : keyText(origins.key) ?? text;
  pass.storedAt[i] = Math.max(pass.storedAt[i]!, h.storedAt);
  pass.verifiedBytes += h.length;
  // Metadata in the data's slot fills that slot.
  if (slot !== undefined) {
    pass.slotSpan[rec.withData === true ? DATA : kind]! += f.span!;
  }
}
