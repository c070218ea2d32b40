// Streaming bodies: store/storeEntry from a ReadableStream of unknown
// length, and openEntry's EntryReader (ranges and streams, verified chunk
// by chunk; FORMAT.md §6.2).
import assert from "node:assert/strict";
import fs from "node:fs";
import {
  BackingStore,
  ClosedError,
  CorruptError,
  type EntryReader,
} from "../mod.ts";
import {
  assertBytes,
  bytesFor,
  FILE_SIZED,
  largeFiles,
  read,
  tempDir,
  tempStore,
} from "./_helpers.ts";
import { findInFile, flipBit, largeFileOf } from "./_damage.ts";
import { expectLength } from "../src/_streamed.ts";

const MiB = 2 ** 20;
const CHUNK = 64 * 1024;

/** A stream of `bytes` in chunks of varying sizes (seeded). */
function streamOf(
  bytes: Uint8Array,
  chunk = 10_007,
): ReadableStream<Uint8Array> {
  let at = 0;
  let n = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (at >= bytes.length) {
        c.close();
        return;
      }
      const len = Math.min(bytes.length - at, chunk + (n++ % 7) * 1013);
      c.enqueue(bytes.slice(at, at + len));
      at += len;
    },
  });
}

/**
 * A stream the test drives: `push` enqueues, `end` closes, `fail` errors;
 * `pulled` resolves once the consumer asked for more after everything
 * pushed so far (it has taken it).
 */
function driven() {
  let ctl!: ReadableStreamDefaultController<Uint8Array>;
  let wake: (() => void) | undefined;
  let cancelled: unknown = "not cancelled";
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      ctl = c;
    },
    pull() {
      wake?.();
      wake = undefined;
    },
    cancel(reason) {
      cancelled = reason;
    },
  }, { highWaterMark: 0 });
  return {
    stream,
    push(b: Uint8Array) {
      ctl.enqueue(b);
    },
    end() {
      ctl.close();
    },
    fail(err: unknown) {
      ctl.error(err);
    },
    pulled(): Promise<void> {
      return new Promise((res) => {
        wake = res;
      });
    },
    get cancelled() {
      return cancelled;
    },
  };
}

async function drain(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of s) parts.push(p);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function readAll(reader: EntryReader): Promise<Uint8Array> {
  return await drain(reader.stream());
}

Deno.test("streamed store lands in a slot, a run or a file by its final size", async (t) => {
  await using s = await tempStore({ limit: 64 * MiB });
  const sizes = [0, 1, 100, 7000, 100_000, FILE_SIZED - 200, 3 * MiB + 17];
  for (const size of sizes) {
    await t.step(`${size} bytes`, async () => {
      const key = `https://stream.example/${size}`;
      const body = bytesFor(key, size);
      const filesBefore = largeFiles(s.dir).length;
      await s.store.store(key, streamOf(body));
      assertBytes(await read(s.store, key), body, "fetch");
      using reader = await s.store.openEntry(key);
      assert.equal(reader?.size, size);
      assertBytes(await readAll(reader!), body, "stream");
      const inFile = largeFiles(s.dir).length - filesBefore;
      assert.equal(inFile, size > FILE_SIZED ? 1 : 0);
    });
  }
  await t.step(
    "metadata from a stream, and entries with a streamed data element",
    async () => {
      const meta = bytesFor("m", 300);
      await s.store.store("m", streamOf(meta), { meta: true });
      assertBytes(await read(s.store, "m", { meta: true }), meta, "meta");
      for (const size of [5, 50_000, 3 * MiB]) {
        const data = bytesFor(`e${size}`, size);
        await s.store.storeEntry(`e${size}`, streamOf(data), meta);
        using hit = await s.store.fetchEntry(`e${size}`);
        assertBytes(hit?.data, data, "entry data");
        assertBytes(hit?.meta, meta, "entry meta");
        using reader = await s.store.openEntry(`e${size}`);
        assertBytes(reader?.meta, meta, "reader meta");
        assertBytes(await readAll(reader!), data, "reader data");
      }
    },
  );
  await t.step(
    "a streamed data element moves metadata out of the data's slot",
    async () => {
      const meta = bytesFor("pm", 200);
      await s.store.storeEntry("pair", bytesFor("pd", 100), meta); // one slot
      const data = bytesFor("pd2", 3 * MiB);
      await s.store.store("pair", streamOf(data));
      using hit = await s.store.fetchEntry("pair");
      assertBytes(hit?.data, data, "new data");
      assertBytes(hit?.meta, meta, "kept metadata");
    },
  );
  await t.step("everything survives a reopen", async () => {
    await s.store.close();
    const again = await BackingStore.open(s.dir);
    try {
      for (const size of sizes) {
        const key = `https://stream.example/${size}`;
        assertBytes(await read(again, key), bytesFor(key, size), key);
      }
    } finally {
      await again.close();
    }
    s.store = await BackingStore.open(s.dir);
  });
});

Deno.test("a streamed body is the same bytes whatever length it was expected to have", async (t) => {
  await using s = await tempStore({ limit: 64 * MiB });
  const sizes = [0, 1, 7000, 100_000, FILE_SIZED - 1, FILE_SIZED, 3 * MiB];
  for (const size of sizes) {
    const hints = [0, size, size >> 1, 2 * size + 1, FILE_SIZED + 1];
    for (const hint of hints) {
      await t.step(`${size} bytes, ${hint} expected`, async () => {
        const key = `https://expect.example/${size}/${hint}`;
        const body = bytesFor(key, size);
        // The producer reuses one buffer: every chunk must be copied.
        const chunk = new Uint8Array(9_973);
        let at = 0;
        const stream = new ReadableStream<Uint8Array>({
          pull(c) {
            if (at >= size) return c.close();
            const n = Math.min(chunk.length, size - at);
            chunk.set(body.subarray(at, at + n));
            c.enqueue(chunk.subarray(0, n));
            at += n;
          },
        }, { highWaterMark: 0 });
        await s.store.store(key, expectLength(stream, hint));
        assertBytes(await read(s.store, key), body, "fetch");
      });
    }
  }
  await t.step("more than a small limit, expected under it", async () => {
    await using small = await tempStore({ limit: MiB });
    await small.store.store("k", bytesFor("old", 100));
    const src = driven();
    const storing = small.store.store("k", expectLength(src.stream, 1000));
    const err = assert.rejects(storing, RangeError);
    for (let i = 0; i < 3; i++) src.push(bytesFor("y", MiB / 2));
    await err;
    assert.ok(src.cancelled instanceof RangeError, "the source is cancelled");
    assertBytes(await read(small.store, "k"), bytesFor("old", 100), "old");
    assert.equal(small.store.stats().bytes, 100);
  });
  await t.step("expected over the limit: still refused", async () => {
    await using small = await tempStore({ limit: MiB });
    const src = driven();
    const storing = small.store.store("k", expectLength(src.stream, 4 * MiB));
    const err = assert.rejects(storing, RangeError);
    for (let i = 0; i < 3; i++) src.push(bytesFor("y", MiB / 2));
    await err;
    assert.equal(await read(small.store, "k"), undefined);
  });
});

Deno.test("streamed store replaces the old value only when the stream ends", async () => {
  await using s = await tempStore({ limit: 64 * MiB });
  await using copy = await tempDir();
  const old = bytesFor("old", 5000);
  await s.store.store("k", old);
  const body = bytesFor("new", 4 * MiB);
  const src = driven();
  const storing = s.store.store("k", src.stream);
  for (let at = 0; at < 3 * MiB; at += MiB) {
    const taken = src.pulled();
    src.push(body.slice(at, at + MiB));
    await taken;
    assertBytes(await read(s.store, "k"), old, "mid-stream fetch");
  }
  // Nothing journaled yet: a restart now (a copy of the live files) finds
  // the old value.
  fs.cpSync(s.dir, `${copy.path}/s`, { recursive: true });
  fs.rmSync(`${copy.path}/s/lock`);
  fs.cpSync(`${copy.path}/s`, `${copy.path}/lost`, { recursive: true });
  {
    await using other = await BackingStore.open(`${copy.path}/s`);
    assertBytes(await read(other, "k"), old, "copy mid-stream");
  }
  // With the index lost too, the rebuild from elements does not take the
  // unfinished file (its provisional header never parses).
  for (const name of fs.readdirSync(`${copy.path}/lost`)) {
    if (name === "entries" || name.startsWith("journal-")) {
      fs.rmSync(`${copy.path}/lost/${name}`);
    }
  }
  assert.equal(largeFiles(`${copy.path}/lost`).length, 1);
  {
    await using other = await BackingStore.open(`${copy.path}/lost`);
    assertBytes(await read(other, "k"), old, "rebuilt mid-stream");
    assert.equal(other.stats().entries, 1);
  }
  src.push(body.slice(3 * MiB));
  src.end();
  await storing;
  assertBytes(await read(s.store, "k"), body, "after the end");
});

Deno.test("streamed store that fails leaves the old value and frees what it wrote", async (t) => {
  await using s = await tempStore({ limit: 8 * MiB });
  const old = bytesFor("old", 3 * MiB);
  await s.store.store("k", old);
  const baseline = () => ({
    files: largeFiles(s.dir).length,
    bytes: s.store.stats().bytes,
  });
  const before = baseline();
  const expectOld = async () => {
    assertBytes(await read(s.store, "k"), old, "old value");
    assert.deepEqual(baseline(), before);
  };
  for (const at of [1000, 3 * MiB]) {
    await t.step(`stream error after ${at} bytes`, async () => {
      const src = driven();
      const storing = s.store.store("k", src.stream);
      src.push(bytesFor("x", at));
      await src.pulled();
      const failure = new Error("network down");
      src.fail(failure);
      await assert.rejects(storing, (err) => err === failure);
      await expectOld();
    });
    await t.step(`producer abort after ${at} bytes`, async () => {
      const pipe = new TransformStream<Uint8Array, Uint8Array>();
      const storing = s.store.store("k", pipe.readable);
      const w = pipe.writable.getWriter();
      await w.write(bytesFor("x", at));
      await w.abort(new Error("aborted by producer"));
      await assert.rejects(storing, /aborted by producer/);
      await expectOld();
    });
    await t.step(
      `a chunk that is no Uint8Array after ${at} bytes`,
      async () => {
        const src = driven();
        const storing = s.store.store(
          "k",
          src.stream as unknown as ReadableStream<Uint8Array>,
        );
        src.push(bytesFor("x", at));
        await src.pulled();
        (src.push as (b: unknown) => void)("text");
        await assert.rejects(storing, TypeError);
        assert.ok(
          src.cancelled instanceof TypeError,
          "the source is cancelled",
        );
        await expectOld();
      },
    );
  }
  await t.step("more than the limit", async () => {
    const src = driven();
    const storing = s.store.storeEntry("k", src.stream);
    const err = assert.rejects(storing, RangeError);
    for (let i = 0; i < 9; i++) src.push(bytesFor("y", MiB));
    await err;
    assert.ok(src.cancelled instanceof RangeError, "the source is cancelled");
    await expectOld();
  });
  await t.step("more than a small limit, while still collecting", async () => {
    await using small = await tempStore({ limit: MiB });
    await small.store.store("k", bytesFor("old", 100));
    const src = driven();
    const storing = small.store.store("k", src.stream);
    const err = assert.rejects(storing, RangeError);
    for (let i = 0; i < 3; i++) src.push(bytesFor("y", MiB / 2));
    await err;
    assertBytes(await read(small.store, "k"), bytesFor("old", 100), "old");
    assert.equal(small.store.stats().bytes, 100);
  });
  await t.step("a locked stream or other data is a TypeError", async () => {
    const src = driven();
    src.stream.getReader();
    await assert.rejects(s.store.store("k", src.stream), TypeError);
    await assert.rejects(
      s.store.store("k", "text" as unknown as Uint8Array),
      TypeError,
    );
    await expectOld();
  });
  await t.step("the store closing mid-stream", async () => {
    const src = driven();
    const storing = s.store.store("k", src.stream);
    src.push(bytesFor("x", 3 * MiB));
    await src.pulled();
    await s.store.close();
    src.push(bytesFor("x", 10));
    src.end();
    await assert.rejects(storing, ClosedError);
    s.store = await BackingStore.open(s.dir);
    await expectOld();
  });
});

Deno.test("stores concurrent with a streamed store to the same key end with the last to finish", async () => {
  await using s = await tempStore({ limit: 64 * MiB });
  const streamed = bytesFor("streamed", 3 * MiB);
  const whole = bytesFor("whole", 9000);
  const src = driven();
  const storing = s.store.store("k", src.stream);
  src.push(streamed.slice(0, MiB));
  await src.pulled();
  await s.store.store("k", whole);
  assertBytes(await read(s.store, "k"), whole, "the whole store");
  src.push(streamed.slice(MiB));
  src.end();
  await storing;
  assertBytes(await read(s.store, "k"), streamed, "the stream, ended last");
  // Two streams: the one that ends last wins; the other's file is freed.
  const a = driven();
  const b = driven();
  const sa = s.store.store("k", a.stream);
  const sb = s.store.store("k", b.stream);
  a.push(bytesFor("a", 3 * MiB));
  b.push(bytesFor("b", 3 * MiB));
  await Promise.all([a.pulled(), b.pulled()]);
  b.end();
  await sb;
  a.end();
  await sa;
  assertBytes(await read(s.store, "k"), bytesFor("a", 3 * MiB), "a");
  await s.store.invalidate("k");
  assert.equal(largeFiles(s.dir).length, 0);
  assert.equal(s.store.stats().bytes, 0);
});

Deno.test("entry reader keeps its bytes through replace, invalidate and evict", async (t) => {
  for (const size of [3000, 3 * MiB + 5]) {
    await t.step(`${size} bytes`, async () => {
      await using s = await tempStore({ limit: 16 * MiB, hysteresis: 0 });
      const body = bytesFor("v", size);
      const reopen = async (change: () => Promise<unknown>) => {
        await s.store.store("k", body);
        const reader = (await s.store.openEntry("k"))!;
        await change();
        assert.equal(await read(s.store, "k") === undefined, true);
        assertBytes(await readAll(reader), body, "stream after the change");
        assertBytes(await reader.read(1, 100), body.slice(1, 101), "read");
        if (size > FILE_SIZED) assert.equal(largeFiles(s.dir).length, 1);
        assert.ok(s.store.stats().deferredBytes >= size);
        reader.release();
        assert.equal(s.store.stats().deferredBytes, 0);
        assert.equal(largeFiles(s.dir).length, 0);
      };
      await reopen(() => s.store.invalidate("k"));
      await reopen(async () => {
        // Replaced, then the replacement invalidated: only the reader's
        // bytes are left.
        await s.store.store("k", bytesFor("w", size));
        await s.store.invalidate("k");
      });
      await reopen(async () => {
        // Room only for the filler: the pinned entry goes too.
        await s.store.store("filler", bytesFor("f", 16 * MiB - 1000));
        await s.store.invalidate("filler");
      });
      assert.equal(s.store.stats().evictions > 0, true);
    });
  }
  await t.step("a fetch shares a large file's reader pin", async () => {
    await using s = await tempStore({ limit: 16 * MiB });
    const body = bytesFor("v", 3 * MiB);
    await s.store.store("k", body);
    using reader = await s.store.openEntry("k");
    using hit = await s.store.fetch("k");
    assertBytes(hit?.data, body, "fetch");
    await s.store.store("k", bytesFor("w", 10));
    assertBytes(await readAll(reader!), body, "reader");
    assertBytes(hit?.data, body, "hit");
  });
});

Deno.test("entry reader ranges and reads", async (t) => {
  await using s = await tempStore({ limit: 64 * MiB });
  for (const size of [0, 5000, 200_000, 3 * MiB + 12_345]) {
    await t.step(`${size} bytes`, async () => {
      const body = bytesFor(`r${size}`, size);
      await s.store.store(`r${size}`, body);
      using reader = (await s.store.openEntry(`r${size}`))!;
      const ranges: [number | undefined, number | undefined][] = [
        [undefined, undefined],
        [0, size],
        [0, Math.min(size, 10)],
        [
          Math.floor(size / 2),
          Math.floor(size / 2) + Math.min(size >> 1, 3 * CHUNK),
        ],
        [Math.max(0, size - 7), size],
        [size, size],
        [Math.floor(size / 3), undefined],
        [Math.floor(size / 3), Math.floor(size / 3)],
      ];
      for (const [start, end] of ranges) {
        assertBytes(
          await drain(reader.stream(start, end)),
          body.slice(start ?? 0, end ?? size),
          `stream(${start}, ${end})`,
        );
        const from = start ?? 0;
        const len = (end ?? size) - from;
        const got = await reader.read(from, len);
        assertBytes(got, body.slice(from, from + len), `read(${from}, ${len})`);
        got.fill(0); // the caller owns it
      }
      assertBytes(await reader.read(0, size), body, "whole read");
      for (
        const [a, b] of [[-1, 1], [0, size + 1], [2, 1], [0.5, 1], [NaN, 1]]
      ) {
        assert.throws(
          () => reader.stream(a, b),
          RangeError,
          `stream(${a}, ${b})`,
        );
      }
      assert.throws(() => reader.stream("1" as unknown as number), TypeError);
      await assert.rejects(reader.read(0, size + 1), RangeError);
      await assert.rejects(reader.read(size, 1), RangeError);
      await assert.rejects(reader.read(-1, 1), RangeError);
      await assert.rejects(reader.read(size + 1, 0), RangeError);
      assert.deepEqual(await reader.read(size, 0), new Uint8Array(0));
    });
  }
  await t.step("cancelling a stream leaves the reader usable", async () => {
    const body = bytesFor("c", 3 * MiB);
    await s.store.store("c", body);
    using reader = (await s.store.openEntry("c"))!;
    const r = reader.stream().getReader();
    const first = await r.read();
    assertBytes(first.value, body.slice(0, CHUNK), "first chunk");
    await r.cancel();
    assertBytes(await readAll(reader), body, "a new stream");
  });
  await t.step("a released reader refuses to read", async () => {
    const reader = (await s.store.openEntry("c"))!;
    const st = reader.stream();
    reader.release();
    reader.release();
    await assert.rejects(reader.read(0, 1), ClosedError);
    await assert.rejects(drain(st), ClosedError);
  });
  await t.step("a miss, and an entry with only metadata", async () => {
    assert.equal(await s.store.openEntry("nothing"), undefined);
    await s.store.store("onlymeta", bytesFor("m", 10), { meta: true });
    assert.equal(await s.store.openEntry("onlymeta"), undefined);
  });
});

Deno.test("entry reader never delivers damaged bytes", async (t) => {
  const size = 3 * MiB + 1000; // 49 chunks
  const chunks = Math.ceil(size / CHUNK);
  const where = { first: 10, middle: 24 * CHUNK + 5, last: size - 1 };
  const key = "https://damage.example/k";
  for (const [name, at] of Object.entries(where)) {
    await t.step(
      `damage in the ${name} chunk, before the first read`,
      async () => {
        await using s = await tempStore({ limit: 64 * MiB });
        const body = bytesFor("d", size);
        await s.store.store(key, body);
        const file = `${s.dir}/${largeFileOf(s.dir, key)}`;
        flipBit(file, 32 + key.length + at);
        using reader = (await s.store.openEntry(key))!;
        const r = reader.stream().getReader();
        await assert.rejects(r.read(), CorruptError); // not one chunk first
        await assert.rejects(reader.read(0, 1), CorruptError);
        assert.equal(await read(s.store, key), undefined, "dropped");
        assert.equal(s.store.stats().corruptions, 1);
      },
    );
    await t.step(`damage in the ${name} chunk while streaming`, async () => {
      await using s = await tempStore({ limit: 64 * MiB });
      const body = bytesFor("d", size);
      await s.store.store(key, body);
      const file = `${s.dir}/${largeFileOf(s.dir, key)}`;
      using reader = (await s.store.openEntry(key))!;
      const r = reader.stream().getReader();
      const first = await r.read(); // verified whole, then chunk 0 delivered
      assertBytes(first.value, body.slice(0, CHUNK), "chunk 0");
      const c = Math.floor(at / CHUNK);
      flipBit(file, 32 + key.length + at);
      let delivered = 1;
      if (c === 0) {
        // Chunk 0 was delivered before the damage: a read of it now fails.
        await assert.rejects(reader.read(0, 1), CorruptError);
      } else {
        for (; delivered < c; delivered++) {
          const next = await r.read();
          assertBytes(
            next.value,
            body.slice(delivered * CHUNK, (delivered + 1) * CHUNK),
            `chunk ${delivered}`,
          );
        }
        await assert.rejects(r.read(), CorruptError);
        assert.ok(c < chunks);
      }
      await assert.rejects(reader.read(at, 1), CorruptError);
      assert.equal(await read(s.store, key), undefined, "dropped");
    });
  }
  await t.step(
    "a later reader checks chunks against the kept CRC-32s",
    async () => {
      await using s = await tempStore({ limit: 64 * MiB });
      const body = bytesFor("d", size);
      await s.store.store(key, body);
      const file = `${s.dir}/${largeFileOf(s.dir, key)}`;
      {
        using first = (await s.store.openEntry(key))!;
        assertBytes(await first.read(0, 10), body.slice(0, 10), "first reader");
      }
      flipBit(file, 32 + key.length + where.last);
      using later = (await s.store.openEntry(key))!;
      // No whole pass again: the undamaged first chunk is served at once,
      // the damaged last one never.
      assertBytes(await later.read(0, CHUNK), body.slice(0, CHUNK), "chunk 0");
      await assert.rejects(later.read(size - 1, 1), CorruptError);
      assert.equal(await read(s.store, key), undefined, "dropped");
    },
  );
  await t.step("damaged slot and run elements are misses", async () => {
    await using s = await tempStore();
    for (const size of [3000, 100_000]) {
      await s.store.store(`k${size}`, bytesFor(`k${size}`, size));
    }
    // Damage found by whole verification: flip a byte of each body.
    for (const size of [3000, 100_000]) {
      const key = `k${size}`;
      const body = bytesFor(key, size);
      const files = fs.readdirSync(s.dir, { recursive: true }).map(String)
        .filter((p) => fs.statSync(`${s.dir}/${p}`).isFile());
      let hitFile = "";
      let off = -1;
      for (const p of files) {
        off = findInFile(`${s.dir}/${p}`, body.subarray(0, 64));
        if (off >= 0) {
          hitFile = p;
          break;
        }
      }
      assert.ok(off >= 0, "body found on disk");
      flipBit(`${s.dir}/${hitFile}`, off + Math.floor(size / 2));
      assert.equal(await s.store.openEntry(key), undefined);
      assert.equal(await read(s.store, key), undefined);
    }
  });
});

Deno.test("fetch still returns a streamed large element whole", async () => {
  await using s = await tempStore({ limit: 64 * MiB });
  const body = bytesFor("w", 5 * MiB);
  await s.store.store("k", streamOf(body, 65_536));
  using hit = await s.store.fetch("k");
  assertBytes(hit?.data, body, "fetch");
  using e = await s.store.fetchEntry("k");
  assertBytes(e?.data, body, "fetchEntry");
});

Deno.test("a 256 MiB body streams in and out with bounded retained memory", async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return; // needs --v8-flags=--expose-gc (deno task test)
  await using s = await tempStore({ limit: 512 * MiB });
  const size = 256 * MiB;
  const retained = () => {
    gc(); // twice: array buffers freed by the first are counted after it
    gc();
    const u = Deno.memoryUsage();
    return u.external + u.heapUsed;
  };
  const base = retained();
  let worst = 0;
  let at = 0;
  const chunk = new Uint8Array(CHUNK); // the producer reuses its buffer
  await s.store.store(
    "big",
    new ReadableStream<Uint8Array>({
      pull(c) {
        if (at >= size) return c.close();
        if ((at & (32 * MiB - 1)) === 0) {
          worst = Math.max(worst, retained() - base);
        }
        chunk.fill(at / CHUNK);
        c.enqueue(chunk);
        at += CHUNK;
      },
    }, { highWaterMark: 0 }),
  );
  using reader = (await s.store.openEntry("big"))!;
  assert.equal(reader.size, size);
  let seen = 0;
  for await (const part of reader.stream()) {
    if (part[0] !== ((seen / CHUNK) & 255)) assert.fail(`chunk at ${seen}`);
    seen += part.length;
    if ((seen & (32 * MiB - 1)) === 0) {
      worst = Math.max(worst, retained() - base);
    }
  }
  assert.equal(seen, size);
  // Bounded by the collected prefix (2 MiB) and a few chunks, never the body.
  assert.ok(worst < 8 * MiB, `retained ${(worst / MiB).toFixed(1)} MiB`);
});

Deno.test("streamed store and openEntry on a closed store are ClosedError", async () => {
  await using d = await tempDir();
  const store = await BackingStore.open(d.path);
  await store.store("k", bytesFor("k", 3 * MiB));
  const reader = (await store.openEntry("k"))!;
  await store.close();
  const src = driven();
  await assert.rejects(store.store("k", src.stream), ClosedError);
  await assert.rejects(store.storeEntry("k", src.stream), ClosedError);
  await assert.rejects(store.openEntry("k"), ClosedError);
  await assert.rejects(store.openEntry(42 as unknown as string), TypeError);
  // A reader opened before the close keeps its bytes until released.
  assertBytes(await reader.read(0, 3 * MiB), bytesFor("k", 3 * MiB), "read");
  reader.release();
});
