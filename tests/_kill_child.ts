// The child of kill_test.ts: stores, invalidates, sets and unsets
// attributes, moves, copies, dedups and fetches in a loop on
// a real directory until it is killed, printing each call before it starts
// ("B …") and once it resolved ("A n"), so the parent knows exactly what was
// acknowledged and what was in flight.
//   deno run --allow-read --allow-write tests/_kill_child.ts DIR ROUND DURABILITY
import { BackingStore } from "../mod.ts";
import { rng } from "./_fault_fs.ts";
import { bytesFor } from "./_helpers.ts";

const [dir, roundText, durability] = Deno.args;
const round = Number(roundText);
const out = new TextEncoder();
const say = (line: string) => {
  const b = out.encode(`${line}\n`);
  let done = 0;
  while (done < b.length) done += Deno.stdout.writeSync(b.subarray(done));
};

say("start");
const st = await BackingStore.open(dir!, {
  entryBits: 10,
  journalBytes: 65536,
  // Use counts get journaled by the timer while the loop runs, too.
  maintenanceDelayMs: 20,
  durability: durability as "process" | "fsync",
});
say("open");
const r = rng(round * 7919 + 1);
for (let i = 0;; i++) {
  const key = `https://kill.example/${Math.floor(r() * 40)}`;
  const x = r();
  if (x < 0.12) {
    // A whole entry: data, and metadata unless it is dropped ("-").
    const size = r() < 0.7
      ? Math.floor(r() * 7000)
      : 9000 + Math.floor(r() * 30000);
    const metaSize = r() < 0.2
      ? -1
      : Math.floor(r() * (r() < 0.8 ? 900 : 4000));
    say(`B ${i} E ${key} ${size} ${metaSize < 0 ? "-" : metaSize}`);
    await st.storeEntry(
      key,
      bytesFor(`${key}#${round}.${i}`, size),
      metaSize < 0 ? undefined : bytesFor(`${key}#${round}.${i}m`, metaSize),
    );
  } else if (x < 0.6) {
    const meta = x < 0.2;
    const size = meta
      ? (r() < 0.8 ? Math.floor(r() * 900) : 1100 + Math.floor(r() * 3000))
      : (r() < 0.7 ? Math.floor(r() * 7000) : 9000 + Math.floor(r() * 30000));
    say(`B ${i} S ${key} ${meta ? 1 : 0} ${size}`);
    await st.store(key, bytesFor(`${key}#${round}.${i}`, size), { meta });
  } else if (x < 0.75) {
    say(`B ${i} I ${key}`);
    await st.invalidate(key);
  } else if (x < 0.83) {
    // An attribute (issue 15), on an entry or a key with none yet.
    const name = r() < 0.5 ? "x" : "y";
    const size = Math.floor(r() * 3000);
    say(`B ${i} T ${key} ${name} ${size}`);
    await st.setAttr(key, name, bytesFor(`${key}#${round}.${i}a`, size));
  } else if (x < 0.87) {
    const name = r() < 0.5 ? "x" : "y";
    say(`B ${i} U ${key} ${name}`);
    await st.unsetAttr(key, name);
  } else if (x < 0.93) {
    // A move or a copy-on-write copy (issue 15), onto a new or an
    // existing key, from a key that may have no entry.
    const to = `https://kill.example/${Math.floor(r() * 40)}`;
    const move = r() < 0.4;
    say(`B ${i} ${move ? "M" : "C"} ${key} ${to}`);
    await (move ? st.move(key, to) : st.copy(key, to));
  } else if (x < 0.95) {
    // A body other keys may hold too, for dedup (issue 15).
    const size = [3000, 20_000][Math.floor(r() * 2)]!;
    say(`B ${i} P ${key} ${size}`);
    await st.store(key, bytesFor(`dup${size}`, size));
  } else if (x < 0.96) {
    say(`B ${i} D`);
    await st.dedup({ sliceBytes: 16384 });
  } else if (x < 0.99) {
    say(`B ${i} F ${key}`);
    (await st.fetch(key, { meta: x > 0.9 }))?.release();
  } else {
    say(`B ${i} X`);
    await st.flush();
  }
  say(`A ${i}`);
  // Let the maintenance timer run now and then.
  if (i % 100 === 99) await new Promise((res) => setTimeout(res, 25));
}
