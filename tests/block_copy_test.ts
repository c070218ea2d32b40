// A block file's copy in pieces (src/_block_copy.ts, FORMAT.md §5.2): what
// is written to the old file while the copy is under way ends up in the
// copy, wherever the write starts and ends relative to the slots the copy
// has reached and the used prefix it started with.
import assert from "node:assert/strict";
import { BlockCopy, type UsedSlots } from "../src/_block_copy.ts";
import { BLOCK_FILE_HEADER, SLOT_SIZE } from "../src/format.ts";
import { NodeFileIO } from "../src/io.ts";
import { DATA } from "../src/kinds.ts";
import { tempDir } from "./_helpers.ts";

const SIZE = SLOT_SIZE[DATA];
const SLOTS = 8;
const EXTENT = BLOCK_FILE_HEADER + SLOTS * SIZE;
const at = (slot: number) => BLOCK_FILE_HEADER + slot * SIZE;

/** `slots` slots of bytes `fill`, `fill + 1`, … (one value a slot). */
function run(fill: number, slots: number): Uint8Array {
  const b = new Uint8Array(slots * SIZE);
  for (let s = 0; s < slots; s++) {
    b.fill((fill + s) & 0xff, s * SIZE, (s + 1) * SIZE);
  }
  return b;
}

/** The first byte of each slot of the file at `path`. */
function slotBytes(path: string): number[] {
  const b = Deno.readFileSync(path);
  return Array.from({ length: SLOTS }, (_, s) => b[at(s)] ?? 0);
}

/** An old block file whose slots [0, used) hold 1, 2, …; a copy of it. */
function begin(io: NodeFileIO, path: string, used: number) {
  const old = io.openRW(path, true);
  io.pwrite(old, new Uint8Array(BLOCK_FILE_HEADER).fill(0xee), 0);
  io.pwrite(old, run(1, used), at(0));
  io.ftruncate(old, EXTENT);
  const copy = new BlockCopy(
    io,
    (p) => io.openRW(p, true),
    { kind: DATA, n: 0, path },
    old,
    { first: 0, used, extent: EXTENT },
  );
  /** A write to the old file, mirrored as BlockFiles does. */
  const write = (bytes: Uint8Array, slot: number) => {
    io.pwrite(old, bytes, at(slot));
    copy.mirror(bytes, at(slot));
  };
  return { old, copy, write };
}

const usedBelow = (n: number): UsedSlots => ({
  slotUsed: (_kind, slot) => slot < n,
});

Deno.test("block copy: a run written from a slot not yet copied past the used prefix is in the copy", async () => {
  await using dir = await tempDir();
  const io = new NodeFileIO();
  const path = `${dir.path}/dblk-0`;
  // The copy starts with slots 0 and 1 used. Before it copies any, a run
  // is written from slot 1 over slots 2 and 3 (the last used slot was
  // freed and claimed again with the free slots after it).
  const { old, copy, write } = begin(io, path, 2);
  write(run(0x40, 3), 1);
  copy.step(usedBelow(4));
  assert.equal(copy.copied, true);
  const fd = copy.finish();
  assert.deepEqual(slotBytes(path), [1, 0x40, 0x41, 0x42, 0, 0, 0, 0]);
  io.close(fd);
  io.close(old);
});

Deno.test("block copy: writes before, inside and after the slots copied so far are all in the copy", async () => {
  await using dir = await tempDir();
  const io = new NodeFileIO();
  const path = `${dir.path}/dblk-0`;
  const { old, copy, write } = begin(io, path, 6);
  write(run(0x10, 1), 0); // not reached yet: copied later from the old file
  copy.step(usedBelow(6));
  assert.equal(copy.copied, true);
  write(run(0x20, 2), 2); // already copied: written to the copy at once
  write(run(0x30, 1), 7); // past the used prefix
  const fd = copy.finish();
  assert.deepEqual(slotBytes(path), [0x10, 2, 0x20, 0x21, 5, 6, 0, 0x30]);
  io.close(fd);
  io.close(old);
});
