// The child of stream_kill_test.ts: on a few keys, stores whole values and
// streams (a collected body or a large file, in chunks with pauses between
// them) until it is killed, printing each call before it starts
// ("B i KIND KEY SIZE") and once it resolved ("A i").
//   deno run --allow-read --allow-write tests/_stream_kill_child.ts DIR ROUND DURABILITY
import { BackingStore } from "../mod.ts";
import { rng } from "./_fault_fs.ts";
import { bytesFor } from "./_helpers.ts";

const [dir, roundText, durability] = Deno.args;
const round = Number(roundText);
const enc = new TextEncoder();
const say = (line: string) => {
  const b = enc.encode(`${line}\n`);
  let done = 0;
  while (done < b.length) done += Deno.stdout.writeSync(b.subarray(done));
};

/** `bytes` as a stream of 64 KiB chunks, pausing between some of them. */
function paced(bytes: Uint8Array, r: () => number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      if (at >= bytes.length) return c.close();
      if (r() < 0.3) await new Promise((res) => setTimeout(res, 2));
      const n = Math.min(65_536, bytes.length - at);
      c.enqueue(bytes.slice(at, at + n));
      at += n;
    },
  });
}

const st = await BackingStore.open(dir!, {
  entryBits: 10,
  durability: durability as "process" | "fsync",
});
say("open");
const r = rng(round * 104_729 + 3);
for (let i = 0;; i++) {
  const key = `https://stream-kill.example/${Math.floor(r() * 3)}`;
  const x = r();
  const size = x < 0.3
    ? Math.floor(r() * 9000)
    : x < 0.5
    ? 100_000 + Math.floor(r() * 900_000)
    : 2_200_000 + Math.floor(r() * 4_000_000);
  const bytes = bytesFor(`${key}#${round}.${i}`, size);
  if (r() < 0.3) {
    say(`B ${i} W ${key} ${size}`);
    await st.store(key, bytes);
  } else {
    say(`B ${i} S ${key} ${size}`);
    await st.store(key, paced(bytes, r));
  }
  say(`A ${i}`);
}
