// SIGKILL rounds: a child process stores, invalidates, moves and copies
// (and sets attributes) in a loop on a
// real directory and is killed at a random moment (sometimes while it is
// still opening, and so recovering from the previous kill). After each
// kill the store must reopen with every acknowledged call reflected, the
// one in flight either way, and no other bytes. Rounds continue on the same
// directory. LARDER_KILL_ROUNDS sets the number of rounds (default 50;
// `deno task test:kill` runs 1,000).
import assert from "node:assert/strict";
import { BackingStore } from "../mod.ts";
import { rng } from "./_fault_fs.ts";
import { ATTR_NAMES, attrCell, cellOf, shortKey } from "./_crash_model.ts";
import { bytesFor, killConfirmed, sameBytes, tempDir } from "./_helpers.ts";

const ROUNDS = Number(Deno.env.get("LARDER_KILL_ROUNDS") ?? 50);
const CHILD = new URL("./_kill_child.ts", import.meta.url).pathname;

type Value = Uint8Array | undefined;

/** As the child opens the store. */
const OPTIONS = { entryBits: 10, journalBytes: 65536 };
/** Entries stored before the rounds and checked after them. */
const FILLERS = 600;

/** The journal file's name in `dir` (one after a completed rotation). */
function journalOf(dir: string): string | undefined {
  return [...Deno.readDirSync(dir)].map((e) => e.name)
    .filter((n) => n.startsWith("journal-")).sort().join(",");
}

interface Round {
  acked: number;
  inFlight: boolean;
  opened: boolean;
}

/** Runs one child and kills it; returns its output. */
async function killRound(dir: string, round: number): Promise<string> {
  const r = rng(round);
  const durability = round % 2 === 1 ? "fsync" : "process";
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      CHILD,
      dir,
      `${round}`,
      durability,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const { promise: openSeen, resolve: opened } = Promise.withResolvers<void>();
  const { promise: started, resolve: starting } = Promise.withResolvers<void>();
  const reading = (async () => {
    const dec = new TextDecoder();
    for await (const chunk of child.stdout) {
      text += dec.decode(chunk, { stream: true });
      if (text.includes("start\n")) starting();
      if (text.includes("open\n")) opened();
    }
  })();
  const errText = new Response(child.stderr).text();
  if (r() < 0.2) {
    // Early: in the open, i.e. in the recovery from the previous kill.
    await Promise.race([started, child.status]);
    await new Promise((res) => setTimeout(res, r() * 12));
  } else {
    await Promise.race([openSeen, child.status]);
    await new Promise((res) => setTimeout(res, 5 + r() * 150));
  }
  await killConfirmed(child, reading, errText, `round ${round}`);
  return text;
}

Deno.test(`SIGKILL at random moments over ${ROUNDS} rounds loses no acknowledged call`, async () => {
  await using d = await tempDir();
  const model = new Map<string, Uint8Array>();
  const rounds: Round[] = [];
  const started = performance.now();
  // Entries the rounds never touch make the table large beside the
  // journal, so some opens and closes keep the journal (FORMAT.md §10.3)
  // instead of rotating; all must be intact at the end.
  const filler = (i: number) => `https://fill.example/${i}`;
  {
    await using st = await BackingStore.open(d.path, OPTIONS);
    for (let i = 0; i < FILLERS; i++) {
      await st.store(filler(i), bytesFor(filler(i), 40 + i % 60));
    }
    await st.flush();
  }
  let kept = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const before = journalOf(d.path);
    const text = await killRound(d.path, round);
    const lines = text.split("\n");
    if (!text.endsWith("\n")) lines.pop(); // a line cut by the kill
    let pending: { effects: [string, Value][]; line: string } | undefined;
    let acked = 0;
    for (const line of lines) {
      const f = line.split(" ");
      if (f[0] === "B") {
        const [, i, op, key] = f;
        let effects: [string, Value][] = [];
        if (op === "S") {
          const size = Number(f[5]);
          effects = [[
            cellOf(key!, f[4] === "1"),
            bytesFor(`${key}#${round}.${i}`, size),
          ]];
        } else if (op === "E") {
          effects = [
            [cellOf(key!), bytesFor(`${key}#${round}.${i}`, Number(f[4]))],
            [
              cellOf(key!, true),
              f[5] === "-"
                ? undefined
                : bytesFor(`${key}#${round}.${i}m`, Number(f[5])),
            ],
          ];
        } else if (op === "I") {
          effects = [
            [cellOf(key!), undefined],
            [cellOf(key!, true), undefined],
            ...ATTR_NAMES.map((n): [string, Value] => [
              attrCell(key!, n),
              undefined,
            ]),
          ];
        } else if (op === "T") {
          effects = [[
            attrCell(key!, f[4]!),
            bytesFor(`${key}#${round}.${i}a`, Number(f[5])),
          ]];
        } else if (op === "U") {
          effects = [[attrCell(key!, f[4]!), undefined]];
        } else if (op === "P") {
          const size = Number(f[4]);
          effects = [[cellOf(key!), bytesFor(`dup${size}`, size)]];
        } else if (op === "M" || op === "C") {
          // The destination gets every cell of the source; a move empties
          // the source. A source with nothing changes nothing.
          const to = f[4]!;
          const cells = (k: string) => [
            cellOf(k),
            cellOf(k, true),
            ...ATTR_NAMES.map((n) => attrCell(k, n)),
          ];
          const src = cells(key!);
          if (to !== key && src.some((c) => model.has(c))) {
            const dst = cells(to);
            effects = dst.map((c, j): [string, Value] => [
              c,
              model.get(src[j]!),
            ]);
            if (op === "M") {
              for (const c of src) effects.push([c, undefined]);
            }
          }
        }
        pending = { effects, line };
      } else if (f[0] === "A") {
        for (const [cell, v] of pending!.effects) {
          if (v === undefined) model.delete(cell);
          else model.set(cell, v);
        }
        pending = undefined;
        acked++;
      }
    }
    rounds.push({
      acked,
      inFlight: pending !== undefined,
      opened: text.includes("open\n"),
    });
    // Reopen: every acknowledged call is there; the one in flight may be.
    const killed = journalOf(d.path);
    const st = await BackingStore.open(d.path, OPTIONS);
    if (killed !== before && journalOf(d.path) === killed) kept++;
    const sides = new Set<"old" | "new">();
    try {
      for (let k = 0; k < 40; k++) {
        const key = `https://kill.example/${k}`;
        for (const meta of [false, true]) {
          const cell = cellOf(key, meta);
          using hit = await st.fetch(key, { meta });
          const got = hit?.data;
          const ok: Value[] = [model.get(cell)];
          for (const [c, v] of pending?.effects ?? []) {
            if (c === cell) ok.push(v);
          }
          assert.ok(
            ok.some((v) => sameBytes(v, got)),
            `round ${round}: ${shortKey(key)}${meta ? " (meta)" : ""} reads ${
              got === undefined ? "a miss" : `${got.length} bytes`
            }, acknowledged ${model.get(cell)?.length ?? "nothing"}${
              pending ? ` (in flight: ${pending.line})` : ""
            }`,
          );
          // A storeEntry in flight leaves the old pair or the new one,
          // never one element of each.
          const side = pending?.effects.find(([c]) => c === cell);
          if (pending?.line.includes(" E ") && side !== undefined) {
            const isNew = sameBytes(side[1], got);
            const isOld = sameBytes(model.get(cell), got);
            if (isNew !== isOld) sides.add(isNew ? "new" : "old");
          }
          // The call in flight went one way or the other; the next rounds
          // build on what the reopen found.
          if (ok.length > 1) {
            if (got === undefined) model.delete(cell);
            else model.set(cell, got.slice());
          }
        }
      }
      for (let k = 0; k < 40; k++) {
        const key = `https://kill.example/${k}`;
        for (const name of ATTR_NAMES) {
          const cell = attrCell(key, name);
          const v = await st.getAttr(key, name);
          assert.ok(v === undefined || v instanceof Uint8Array);
          const got = v as Value;
          const ok: Value[] = [model.get(cell)];
          for (const [c, w] of pending?.effects ?? []) {
            if (c === cell) ok.push(w);
          }
          assert.ok(
            ok.some((w) => sameBytes(w, got)),
            `round ${round}: ${shortKey(key)} attribute ${name} reads ${
              got === undefined ? "nothing" : `${got.length} bytes`
            }, acknowledged ${model.get(cell)?.length ?? "nothing"}${
              pending ? ` (in flight: ${pending.line})` : ""
            }`,
          );
          if (ok.length > 1) {
            if (got === undefined) model.delete(cell);
            else model.set(cell, got.slice());
          }
        }
      }
      assert.ok(
        sides.size < 2,
        `round ${round}: storeEntry in flight (${pending?.line}) left one element old and one new`,
      );
    } finally {
      await st.close();
    }
  }
  {
    await using st = await BackingStore.open(d.path, OPTIONS);
    for (let i = 0; i < FILLERS; i++) {
      using hit = await st.fetch(filler(i));
      assert.ok(
        sameBytes(hit?.data, bytesFor(filler(i), 40 + i % 60)),
        `${filler(i)} after ${ROUNDS} rounds`,
      );
    }
  }
  if (ROUNDS >= 50) {
    assert.ok(kept > 0, "no reopen after a kill kept the child's journal");
  }
  // The reference counts agree with the entries after every recovery:
  // removing every entry frees every byte and slot.
  {
    const st = await BackingStore.open(d.path, OPTIONS);
    try {
      for (let k = 0; k < 40; k++) {
        await st.invalidate(`https://kill.example/${k}`);
      }
      for (let i = 0; i < FILLERS; i++) await st.invalidate(filler(i));
      const s = st.stats();
      assert.deepEqual(
        [
          s.entries,
          s.bytes,
          s.dataSlotsUsed,
          s.metaSlotsUsed,
          s.sharedElements,
        ],
        [0, 0, 0, 0, 0],
      );
    } finally {
      await st.close();
    }
  }
  const total = rounds.reduce((a, r) => a + r.acked, 0);
  const inOpen = rounds.filter((r) => !r.opened).length;
  const inFlight = rounds.filter((r) => r.inFlight).length;
  console.log(
    `kill_test: ${ROUNDS} rounds, ${total} acknowledged calls checked, ${inFlight} kills with a call in flight, ${inOpen} kills during open, ${kept} reopens kept the journal; ${
      ((performance.now() - started) / 1000).toFixed(1)
    } s`,
  );
});
