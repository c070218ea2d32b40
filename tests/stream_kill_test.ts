// SIGKILL during streamed stores: a child streams bodies (collected ones
// and large files) into a few keys and is killed at a random moment. After
// each kill the store reopens with every acknowledged value, the one in
// flight either old or new and whole, never a torn element.
// LARDER_STREAM_KILL_ROUNDS sets the number of rounds (default 16).
import assert from "node:assert/strict";
import { BackingStore, checkStore } from "../mod.ts";
import { rng } from "./_fault_fs.ts";
import { bytesFor, killConfirmed, sameBytes, tempDir } from "./_helpers.ts";

const ROUNDS = Number(Deno.env.get("LARDER_STREAM_KILL_ROUNDS") ?? 16);
const CHILD = new URL("./_stream_kill_child.ts", import.meta.url).pathname;

async function killRound(dir: string, round: number): Promise<string> {
  const r = rng(round + 77);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      CHILD,
      dir,
      `${round}`,
      round % 2 === 1 ? "fsync" : "process",
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const { promise: opened, resolve: open } = Promise.withResolvers<void>();
  const reading = (async () => {
    const dec = new TextDecoder();
    for await (const chunk of child.stdout) {
      text += dec.decode(chunk, { stream: true });
      if (text.includes("open\n")) open();
    }
  })();
  const errText = new Response(child.stderr).text();
  await Promise.race([opened, child.status]);
  await new Promise((res) => setTimeout(res, 20 + r() * 400));
  await killConfirmed(child, reading, errText, `round ${round}`);
  return text;
}

Deno.test(`SIGKILL mid-stream over ${ROUNDS} rounds leaves the old value or the new, whole`, async () => {
  await using d = await tempDir();
  const model = new Map<string, Uint8Array>();
  let midStream = 0;
  let orphaned = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const text = await killRound(d.path, round);
    const lines = text.split("\n");
    if (!text.endsWith("\n")) lines.pop(); // a line cut by the kill
    let pending: { key: string; value: Uint8Array; line: string } | undefined;
    for (const line of lines) {
      const f = line.split(" ");
      if (f[0] === "B") {
        const [, i, , key, size] = f;
        pending = {
          key: key!,
          value: bytesFor(`${key}#${round}.${i}`, Number(size)),
          line,
        };
      } else if (f[0] === "A") {
        model.set(pending!.key, pending!.value);
        pending = undefined;
      }
    }
    if (pending?.line.includes(" S ")) midStream++;
    // What a kill mid-stream leaves is an orphan file, no element (or empty
    // directories made for it): check-store finds nothing else, and its
    // repair removes them.
    const report = await checkStore(d.path, { repair: true });
    const codes = new Set(report.problems.map((p) => p.code));
    if (codes.delete("ORPHAN_FILE")) orphaned++;
    // Directories made for a file the kill kept from being created.
    codes.delete("EMPTY_DIR");
    assert.deepEqual(
      [...codes],
      [],
      `round ${round}: ${JSON.stringify(report.problems)}`,
    );
    const st = await BackingStore.open(d.path, { entryBits: 10 });
    try {
      for (let k = 0; k < 3; k++) {
        const key = `https://stream-kill.example/${k}`;
        using hit = await st.fetch(key);
        const got = hit?.data;
        const ok = [model.get(key)];
        if (pending?.key === key) ok.push(pending.value);
        assert.ok(
          ok.some((v) => sameBytes(v, got)),
          `round ${round}: ${key} reads ${
            got === undefined ? "a miss" : `${got.length} bytes`
          }, acknowledged ${model.get(key)?.length ?? "nothing"}${
            pending ? ` (in flight: ${pending.line})` : ""
          }`,
        );
        if (got === undefined) model.delete(key);
        else model.set(key, got.slice());
        // The same bytes again through an entry reader, streamed.
        using reader = await st.openEntry(key);
        assert.equal(reader?.size, got?.length);
        if (reader !== undefined) {
          const parts: Uint8Array[] = [];
          for await (const p of reader.stream()) parts.push(p);
          const all = new Uint8Array(reader.size);
          let at = 0;
          for (const p of parts) {
            all.set(p, at);
            at += p.length;
          }
          assert.ok(sameBytes(all, got), `round ${round}: ${key} streamed`);
        }
      }
    } finally {
      await st.close();
    }
  }
  console.log(
    `stream_kill_test: ${ROUNDS} rounds, ${midStream} kills during a streamed store, ${orphaned} left an orphan file for check-store`,
  );
  assert.ok(midStream > 0, "some kill lands during a streamed store");
});
