import assert from "node:assert/strict";
import { LineBatcher } from "../src/proxy/_log_lines.ts";

const text = (chunks: Uint8Array[]) =>
  chunks.map((c) => new TextDecoder().decode(c)).join("");

Deno.test("LineBatcher writes a turn's lines in one write, in order", async () => {
  const writes: Uint8Array[] = [];
  const log = new LineBatcher((b) => {
    writes.push(b.slice());
    return b.length;
  });
  log.line("one");
  log.line("two");
  assert.equal(writes.length, 0);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(writes.length, 1);
  assert.equal(text(writes), "one\ntwo\n");
  log.line("three");
  log.flush();
  assert.equal(text(writes), "one\ntwo\nthree\n");
  log.flush(); // nothing queued: no write
  assert.equal(writes.length, 2);
});

Deno.test("LineBatcher finishes a partial write and flushes a full batch at once", () => {
  const writes: Uint8Array[] = [];
  const log = new LineBatcher((b) => {
    const n = Math.min(b.length, 1000); // a pipe that takes 1,000 bytes at a time
    writes.push(b.slice(0, n));
    return n;
  });
  const line = "x".repeat(99);
  for (let i = 0; i < 700; i++) log.line(`${line}`); // 70,000 bytes
  // 64 KiB reached: written without waiting for the timer.
  assert.ok(writes.length > 1);
  log.flush();
  assert.equal(text(writes), `${line}\n`.repeat(700));
});
