/**
 * The check step for entry attributes (FORMAT.md §4.1, §4.2): every value
 * record is read as a store would. A record of a newer version is
 * reported (`ATTR_VERSION_NEWER`) and kept: a newer larder wrote it and
 * reads it. A malformed one, or a name past the limits, is damage
 * (`ATTR_CORRUPT`): a repair drops that attribute.
 *
 * @module
 */
import { ATTR_LIMITS, decodeAttrValue } from "./_attrs.ts";
import type { PassState } from "./_check_state.ts";

const enc = new TextEncoder();

/** Reads every attribute record of every entry. */
export function checkAttrs(pass: PassState): void {
  const mem = pass.index!.mem;
  for (let i = 0; i < mem.count; i++) {
    const set = mem.attrs(i);
    if (set === undefined) continue;
    const key = new TextDecoder().decode(set.key);
    let n = 0;
    for (const [name, rec] of set.records) {
      n++;
      const nameBytes = enc.encode(name).length;
      const d = decodeAttrValue(rec);
      if (!d.ok && d.why === "newer") {
        pass.report(
          "ATTR_VERSION_NEWER",
          "entries",
          `attribute ${JSON.stringify(name)} of entry ${i} is a version ${
            rec[0]
          } record; this larder reads version 1 and treats it as absent`,
          { entry: i, key },
        );
        continue;
      }
      const bad = !d.ok ? "is malformed" : name.includes("\0") ||
          nameBytes === 0 || nameBytes > ATTR_LIMITS.nameBytes
        ? "has a name past the limits"
        : n > ATTR_LIMITS.perEntry
        ? "is past the limit of attributes an entry has"
        : undefined;
      if (bad !== undefined) {
        let names = pass.dropAttrs.get(i);
        if (names === undefined) pass.dropAttrs.set(i, names = []);
        names.push(name);
        pass.report(
          "ATTR_CORRUPT",
          "entries",
          `attribute ${JSON.stringify(name)} of entry ${i} ${bad}`,
          { entry: i, key },
        );
      }
    }
  }
}
