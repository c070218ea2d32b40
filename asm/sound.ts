import {
  E_DATA_LOC, E_DATA_SIZE, E_DATA_SLOTS, E_FLAGS, E_META_LOC, E_META_SIZE,
  F_HAS, F_IN_FILE, F_META_WITH_DATA,
} from "./layout";
import { DATA_SLOT_BYTES, META_SLOT_BYTES, runSlots } from "./run";

// The checks an open makes of each record on its own, shared by the load
// kernel `table_sound` and the use maps' `use_mark_sound` (not exported
// from the module). src/_open.ts `recordsSoundJs` is the reference.

/** Bytes of an element's header in its slot (FORMAT.md §6). */
const ELEMENT_HEADER: u64 = 32;
/** Slots in one block file of each kind (FORMAT.md §5.2). */
const DATA_SLOTS_PER_FILE: u64 = 524288;
const META_SLOTS_PER_FILE: u64 = 4096;

/** {@linkcode recordSound}'s result for an unsound record. */
export const UNSOUND: u64 = 0;
/** Bit of {@linkcode recordSound}'s result: the record is sound. */
export const SOUND: u64 = <u64>1 << 32;
/** Bit of {@linkcode recordSound}'s result: an element is a large file. */
export const HAS_FILE: u64 = <u64>1 << 33;

/**
 * Whether the record at `e` passes the checks an open makes of each record
 * on its own: it holds an element; each element in slots lies within its
 * kind's `dataSlots` or `metaSlots` and within one block file, its header
 * and bytes fitting its run (data) or slot (metadata); metadata marked as
 * stored after its data has data in slots at the same slot, both fitting
 * that run. {@linkcode UNSOUND}, or {@linkcode SOUND} with
 * {@linkcode HAS_FILE} when an element is a large file and the greatest
 * such id in the low 32 bits.
 */
// @ts-ignore: decorator
@inline export function recordSound(e: usize, dataSlots: u32, metaSlots: u32): u64 {
  const flags = <u32>load<u8>(e, E_FLAGS);
  if ((flags & (F_HAS | (F_HAS << 1))) == 0) return UNSOUND;
  let r: u64 = SOUND;
  let run: u64 = 0;
  if (flags & F_HAS) {
    const loc = load<u32>(e, E_DATA_LOC);
    if (flags & F_IN_FILE) {
      r = SOUND | HAS_FILE | <u64>loc;
    } else {
      run = <u64>runSlots(<u32>load<u8>(e, E_DATA_SLOTS));
      const l = <u64>loc;
      if (
        l + run > <u64>dataSlots ||
        l % DATA_SLOTS_PER_FILE + run > DATA_SLOTS_PER_FILE ||
        ELEMENT_HEADER + <u64>load<u32>(e, E_DATA_SIZE) > run * DATA_SLOT_BYTES
      ) return UNSOUND;
    }
  }
  if (flags & (F_HAS << 1)) {
    const loc = load<u32>(e, E_META_LOC);
    if (flags & F_META_WITH_DATA) {
      // In the data's slot, after the data: both must fit there.
      if (
        (flags & F_HAS) == 0 || (flags & F_IN_FILE) != 0 ||
        load<u32>(e, E_DATA_LOC) != loc ||
        2 * ELEMENT_HEADER + <u64>load<u32>(e, E_DATA_SIZE) +
            <u64>load<u32>(e, E_META_SIZE) > run * DATA_SLOT_BYTES
      ) return UNSOUND;
    } else if (flags & (F_IN_FILE << 1)) {
      if ((r & HAS_FILE) == 0 || <u64>loc > (r & 0xffffffff)) {
        r = SOUND | HAS_FILE | <u64>loc;
      }
    } else {
      const l = <u64>loc;
      if (
        l + 1 > <u64>metaSlots ||
        l % META_SLOTS_PER_FILE + 1 > META_SLOTS_PER_FILE ||
        ELEMENT_HEADER + <u64>load<u32>(e, E_META_SIZE) > META_SLOT_BYTES
      ) return UNSOUND;
    }
  }
  return r;
}
