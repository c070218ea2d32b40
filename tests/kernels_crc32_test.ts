// The CRC-32 kernel against node:zlib and the references in
// tests/_reference; known answers freeze what stores persist.
import assert from "node:assert/strict";
import { crc32 as zlibCrc32 } from "node:zlib";
import { IndexMemory } from "../src/index_memory.ts";
import { crc32Bitwise, crc32Slicing8, powersOfX } from "./_reference/crc32.ts";
import { randomBytes, rng } from "./_reference/rng.ts";

const enc = new TextEncoder();
const mem = new IndexMemory({ entryBits: 8, identBits: 9 });

function pattern(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

// Lengths where the kernel changes method or buffer: the fold starts at
// 4·300·16 bytes and refills its pending buffer every 4096 blocks.
const FOLD_MIN = 4 * 300 * 16;
const CHUNK_BYTES = 4096 * 16;

Deno.test("crc32 kernel matches known answers", async (t) => {
  // Element checksums are persisted: a compiler or kernel change that
  // altered any of these would make existing stores read as corrupt.
  const cases: [string, Uint8Array, number][] = [
    ["empty", new Uint8Array(0), 0],
    ["check string", enc.encode("123456789"), 0xcbf43926],
    [
      "fox",
      enc.encode("The quick brown fox jumps over the lazy dog"),
      0x414fa339,
    ],
    ["fold threshold", pattern(FOLD_MIN), 0x3a7e3295],
    ["100013 bytes", pattern(100013), 0x1d46fcab],
    ["1 MiB", pattern(1 << 20), 0xd424bdc1],
  ];
  for (const [name, bytes, want] of cases) {
    await t.step(name, () => {
      assert.equal(mem.crc32Wasm(bytes), want);
      assert.equal(zlibCrc32(bytes), want);
    });
  }
});

Deno.test("crc32 references agree with node:zlib", () => {
  const rand = rng(7);
  for (const len of [0, 1, 3, 8, 15, 16, 17, 255, 1000]) {
    const bytes = randomBytes(rand, len);
    assert.equal(crc32Bitwise(bytes), zlibCrc32(bytes), `len ${len}`);
    assert.equal(crc32Slicing8(bytes), zlibCrc32(bytes), `len ${len}`);
  }
});

Deno.test("crc32 kernel equals node:zlib at every length 0..4096 and random alignments", () => {
  const rand = rng(0x5eed);
  const data = randomBytes(rand, 4096 + 64);
  const stage = mem.stage(4096 + 64);
  stage.set(data);
  for (let len = 0; len <= 4096; len++) {
    const at = rand(64);
    const want = zlibCrc32(data.subarray(at, at + len));
    assert.equal(
      mem.crc32Staged(stage.subarray(at, at + len)),
      want,
      `len ${len} at ${at}`,
    );
    assert.equal(crc32Slicing8(data.subarray(at, at + len)), want);
  }
});

Deno.test("crc32 kernel equals node:zlib on long inputs (folded)", async (t) => {
  const rand = rng(0xf01d);
  const max = 3 * CHUNK_BYTES + 300 * 16 + 64;
  const data = randomBytes(rand, max + 64);
  const stage = mem.stage(max + 64);
  stage.set(data);
  const lengths = [
    FOLD_MIN - 1,
    FOLD_MIN,
    FOLD_MIN + 1,
    CHUNK_BYTES + 300 * 16 - 1,
    CHUNK_BYTES + 300 * 16,
    CHUNK_BYTES + 300 * 16 + 1,
    2 * CHUNK_BYTES + 300 * 16 + 15,
    max,
  ];
  for (let k = 0; k < 24; k++) lengths.push(FOLD_MIN + rand(max - FOLD_MIN));
  for (const len of lengths) {
    await t.step(`${len} bytes`, () => {
      const at = rand(64);
      const want = zlibCrc32(data.subarray(at, at + len));
      stage.set(data); // crc32Wasm below copies through the stage
      assert.equal(
        mem.crc32Staged(stage.subarray(at, at + len)),
        want,
        `at ${at}`,
      );
      assert.equal(
        mem.crc32Wasm(data.subarray(at, at + len)),
        want,
        `copied, at ${at}`,
      );
    });
  }
  await t.step("longer than the stage, copied in steps", () => {
    const big = pattern(3 * (1 << 20) + 5);
    assert.equal(mem.crc32Wasm(big), zlibCrc32(big));
  });
});

Deno.test("crc32 kernel chunked calls equal one shot", () => {
  const rand = rng(0xc4c);
  for (let round = 0; round < 40; round++) {
    const len = round < 30 ? rand(5000) : rand(200_000);
    const data = randomBytes(rand, len);
    let crc = 0;
    for (let at = 0; at < len;) {
      const step = Math.min(len - at, 1 + rand(round < 30 ? 300 : 60_000));
      crc = mem.crc32Wasm(data.subarray(at, at + step), crc);
      at += step;
    }
    assert.equal(crc, zlibCrc32(data), `round ${round}, ${len} bytes`);
  }
});

Deno.test("crc32 fold polynomial is a multiple of the CRC-32 polynomial", () => {
  // asm/crc32.ts folds with 1 + y^89 + y^117 + y^155 + y^300, y = x^128:
  // it must vanish modulo P, or every folded CRC would be wrong.
  const y = powersOfX(128, 301);
  assert.equal((1 ^ y[89]! ^ y[117]! ^ y[155]! ^ y[300]!) >>> 0, 0);
});

Deno.test("crc32Staged rejects bytes outside the stage", () => {
  assert.throws(() => mem.crc32Staged(new Uint8Array(4)), RangeError);
});
