/**
 * The last check step: the report's totals (`stats`, CHECK_STORE.md).
 *
 * @module
 */
import type { SlotStats } from "./_check_report.ts";
import type { PassState } from "./_check_state.ts";
import { SLOT_SIZE } from "./format.ts";
import { claimsSlot, type ElementRecord } from "./index_memory.ts";
import { DATA, type ElementKind, KINDS, META } from "./kinds.ts";

/** Totals of the index and of what the pass found. */
export function countStats(pass: PassState): void {
  const { mem } = pass.index!;
  const now = Math.floor(Date.now() / 1000);
  const useBuckets = Array.from({ length: 17 }, (_, b) => ({
    min: b === 0 ? 0 : 2 ** (b - 1),
    max: b === 0 ? 0 : 2 ** b - 1,
    count: 0,
  }));
  const ages = [3600, 86400, 7 * 86400, 30 * 86400, 365 * 86400, null];
  const ageBuckets = ages.map((maxAgeSeconds) => ({
    maxAgeSeconds,
    count: 0,
  }));
  let future = 0;
  let bytes = 0;
  const elements = { data: 0, meta: 0 };
  const slotUse: [number, number] = [0, 0];
  for (let i = 0; i < mem.count; i++) {
    const uses = mem.useCount(i);
    useBuckets[uses === 0 ? 0 : 32 - Math.clz32(uses)]!.count++;
    const age = now - mem.lastUsed(i);
    if (age < 0) future++;
    else {
      ageBuckets.find((b) => b.maxAgeSeconds === null || age < b.maxAgeSeconds)!
        .count++;
    }
    for (const kind of KINDS) {
      const rec: ElementRecord | undefined = mem.element(i, kind);
      if (rec === undefined) continue;
      bytes += rec.size;
      if (kind === DATA) elements.data++;
      else elements.meta++;
      if (claimsSlot(rec)) slotUse[kind]++;
    }
  }
  const slotStats = (kind: ElementKind): SlotStats => {
    const owner = pass.slotOwner[kind];
    let highest = -1;
    const top = Math.min(owner.length, pass.slotTop[kind]!);
    for (let s = top - 1; s >= 0; s--) {
      if (owner[s]! !== 0) {
        highest = s;
        break;
      }
    }
    let used = 0;
    for (let s = 0; s <= highest; s++) if (owner[s]! !== 0) used++;
    return {
      used,
      free: owner.length - used,
      fragmentation: highest < 0 ? 0 : (highest + 1 - used) / (highest + 1),
      fill: used === 0 ? 0 : pass.slotSpan[kind]! / (used * SLOT_SIZE[kind]),
    };
  };
  pass.stats = {
    entries: mem.count,
    elements,
    bytes,
    bytesVerified: pass.verifiedBytes,
    bytesOnDisk: pass.allocated,
    slots: { data: slotStats(DATA), meta: slotStats(META) },
    largeFiles: { count: pass.largeCount, bytes: pass.largeBytes },
    orphans: { count: pass.orphanCount, bytes: pass.orphanBytes },
    useCountHistogram: useBuckets.filter((b) => b.count > 0),
    ageHistogram: ageBuckets,
    future,
  };
}
