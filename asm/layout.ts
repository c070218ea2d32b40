// Entry record layout shared by the kernels and src/index_memory.ts, which
// reads these exported constants instead of repeating them. FORMAT.md §4.

/** Bytes per entry record. */
export const ENTRY_SIZE: i32 = 40;
export const E_HASH_LO: i32 = 0;
export const E_HASH_HI: i32 = 4;
export const E_LAST_USED: i32 = 8;
export const E_USE_COUNT: i32 = 12;
export const E_FLAGS: i32 = 14;
/** u8: run code of the data slots the data element spans (FORMAT.md §4, §5.3). */
export const E_DATA_SLOTS: i32 = 15;
export const E_DATA_SIZE: i32 = 16;
export const E_DATA_LOC: i32 = 20;
export const E_DATA_CRC: i32 = 24;
export const E_META_SIZE: i32 = 28;
export const E_META_LOC: i32 = 32;
export const E_META_CRC: i32 = 36;

/** Flag bits; for element kind k (0 data, 1 meta): present = F_HAS << k,
 *  stored in its own large file = F_IN_FILE << k. */
export const F_HAS: i32 = 0x01;
export const F_IN_FILE: i32 = 0x04;
/** Flag bit: the metadata is stored in the data's slot, right after the
 *  data element (it claims no metadata slot of its own). */
export const F_META_WITH_DATA: i32 = 0x10;
/** Flag bit: the entry holds a live (pinned) reference; runtime only. */
export const F_PINNED: i32 = 0x80;
