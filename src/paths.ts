/**
 * File names inside a store (FORMAT.md §2): short upper-case base32
 * components, at most 64 names a directory, as NetSurf's store lays them
 * out, so a store is valid on every file system.
 *
 * @module
 */

import {
  type ElementKind,
  KIND_TABLE,
  type PerKind,
  perKind,
} from "./kinds.ts";

const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** A 6-bit value as a directory component: 0-31 one char, 32-63 "B"+char. */
export function component6(v: number): string {
  const x = v & 63;
  return x < 32 ? B32[x]! : `B${B32[x - 32]!}`;
}

/** A 32-bit value as the seven-character base32 leaf (5 bits a char). */
export function leaf32(v: number): string {
  let s = "";
  for (let shift = 0; shift < 35; shift += 5) s += B32[(v >>> shift) & 31]!;
  return s;
}

/** Top-level directory of large files by element kind. */
export const LARGE_DIRS: PerKind<string> = perKind((k) =>
  KIND_TABLE[k].largeDir
);
/** Top-level directory of block files by element kind. */
export const BLOCK_DIRS: PerKind<string> = perKind((k) =>
  KIND_TABLE[k].blockDir
);

/**
 * Path components (relative to the store root) of large file `id`: kind
 * dir, five 6-bit directories from the high bits down, base32 leaf.
 *
 * NetSurf orders the directories low bits first, which spreads its random
 * idents; our ids come from a counter, so high bits first keeps consecutive
 * files together: 64 files a leaf directory and one new directory per 64
 * files, instead of a new five-deep chain for almost every file.
 */
export function largeFileParts(kind: ElementKind, id: number): string[] {
  return [
    LARGE_DIRS[kind],
    component6(id >>> 30),
    component6(id >>> 24),
    component6(id >>> 18),
    component6(id >>> 12),
    component6(id >>> 6),
    leaf32(id),
  ];
}

/**
 * Path components of block file `n` in a store with `fileCount` block
 * files a kind: one level up to 64 files, two levels beyond.
 */
export function blockFileParts(
  kind: ElementKind,
  n: number,
  fileCount: number,
): string[] {
  return fileCount <= 64
    ? [BLOCK_DIRS[kind], component6(n)]
    : [BLOCK_DIRS[kind], component6(n >>> 6), component6(n)];
}
