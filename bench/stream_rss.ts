// Peak memory of a streamed store and read against a whole one: a body
// (256 MiB by default) stored from a ReadableStream and read back through
// openEntry().stream(), against store() of the whole body and fetch().
// Each mode runs in a child process of its own, so one cannot inflate the
// other's peak; the resident set (Deno.memoryUsage().rss) is sampled after
// every chunk and by a 2 ms timer.
//   deno run --allow-read --allow-write --allow-env --allow-run bench/stream_rss.ts [MiB]
import { BackingStore } from "../mod.ts";

const MiB = 2 ** 20;
const CHUNK = 64 * 1024;

/** Deterministic bytes of chunk `n` (cheap: one word pattern). */
function chunkOf(n: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  new Uint32Array(b.buffer, 0, len >>> 2).fill(0x9e3779b9 ^ n);
  return b;
}

interface Result {
  mode: string;
  baseMiB: number;
  peakMiB: number;
  storeMs: number;
  readMs: number;
  bytes: number;
}

async function child(mode: "stream" | "whole", size: number): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "larder-rss-" });
  const store = await BackingStore.open(dir, { limit: 2 * size + 64 * MiB });
  let peak = 0;
  const sample = () => {
    peak = Math.max(peak, Deno.memoryUsage().rss);
  };
  const timer = setInterval(sample, 2);
  sample();
  const base = Deno.memoryUsage().rss;
  peak = base;
  let t = performance.now();
  if (mode === "stream") {
    let at = 0;
    let n = 0;
    await store.store(
      "https://bench.example/big",
      new ReadableStream<Uint8Array>({
        pull(c) {
          sample();
          if (at >= size) return c.close();
          const len = Math.min(CHUNK, size - at);
          c.enqueue(chunkOf(n++, len));
          at += len;
        },
      }, { highWaterMark: 0 }),
    );
  } else {
    const body = new Uint8Array(size);
    for (let at = 0, n = 0; at < size; at += CHUNK, n++) {
      body.set(chunkOf(n, Math.min(CHUNK, size - at)), at);
    }
    sample();
    await store.store("https://bench.example/big", body);
    sample();
  }
  const storeMs = performance.now() - t;
  t = performance.now();
  let bytes = 0;
  if (mode === "stream") {
    using reader = await store.openEntry("https://bench.example/big");
    for await (const part of reader!.stream()) {
      bytes += part.length;
      sample();
    }
  } else {
    using hit = await store.fetch("https://bench.example/big");
    sample();
    bytes = hit!.data.length;
  }
  const readMs = performance.now() - t;
  clearInterval(timer);
  await store.close();
  await Deno.remove(dir, { recursive: true });
  const r: Result = {
    mode,
    baseMiB: base / MiB,
    peakMiB: peak / MiB,
    storeMs,
    readMs,
    bytes,
  };
  console.log(JSON.stringify(r));
}

async function main(size: number): Promise<void> {
  const rows: Result[] = [];
  for (const mode of ["stream", "whole"]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        new URL(import.meta.url).pathname,
        "--child",
        mode,
        `${size}`,
      ],
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error(`Cannot run ${mode}: child failed`);
    rows.push(JSON.parse(new TextDecoder().decode(out.stdout).trim()));
  }
  console.log(
    `${
      size / MiB
    } MiB body | RSS after open | peak RSS | growth | store | read`,
  );
  console.log("--- | ---: | ---: | ---: | ---: | ---:");
  for (const r of rows) {
    if (r.bytes !== size) throw new Error(`${r.mode} read ${r.bytes} bytes`);
    const label = r.mode === "stream"
      ? "store(stream) + openEntry().stream()"
      : "store(bytes) + fetch()";
    console.log(
      `${label} | ${r.baseMiB.toFixed(0)} MiB | ${r.peakMiB.toFixed(0)} MiB | ${
        (r.peakMiB - r.baseMiB).toFixed(0)
      } MiB | ${r.storeMs.toFixed(0)} ms | ${r.readMs.toFixed(0)} ms`,
    );
  }
}

if (import.meta.main) {
  const [flag, mode, sizeText] = Deno.args;
  if (flag === "--child") {
    await child(mode as "stream" | "whole", Number(sizeText));
  } else await main(Number(flag ?? 256) * MiB);
}
