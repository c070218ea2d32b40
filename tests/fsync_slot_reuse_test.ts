import assert from "node:assert/strict";
import { FaultFS } from "./_fault_fs.ts";
import { bytesFor, read } from "./_helpers.ts";
import { openForTest } from "../src/_testing.ts";

// Regression: in fsync mode a slot freed by a change must not be claimed
// (and overwritten) by a concurrent store before that change's journal
// entry is durable. Otherwise a crash between the block file's sync and the
// journal's sync leaves the durable index pointing at another key's bytes,
// and the acknowledged value is lost.

async function workload(fs: FaultFS, acked: { a: boolean }): Promise<void> {
  const st = await openForTest("/s", { durability: "fsync" }, { io: fs });
  await st.store("a", bytesFor("a1", 100));
  acked.a = true; // from here on a must survive any crash
  // One tick: replacing a frees its slot; c claims a slot in the same commit.
  await Promise.all([
    st.store("a", bytesFor("a2", 100)),
    st.store("c", bytesFor("c", 100)),
  ]);
  await st.close();
}

Deno.test("fsync mode: a freed slot is not reused before the change that freed it is durable", async () => {
  const dry = new FaultFS();
  dry.trace = [];
  await workload(dry, { a: false });
  // The journal fsync of the concurrent commit: the second-to-last commit's
  // journal sync before close (close rotates, syncing other files).
  const syncs = dry.trace.map((name, i) => [name, i + 1] as const).filter((
    [n],
  ) => n.startsWith("fsync /s/journal-"));
  assert.ok(syncs.length >= 2);
  let checked = 0;
  for (const [, call] of syncs) {
    const fs = new FaultFS();
    fs.crashAt(call);
    const acked = { a: false };
    await workload(fs, acked).catch(() => {});
    assert.ok(fs.crashed);
    if (!acked.a) continue; // a was in flight: it may or may not be there
    for (const mode of ["drop", "subset"] as const) {
      await using st = await openForTest("/s", { durability: "fsync" }, {
        io: fs.image(mode),
      });
      const a = await read(st, "a");
      assert.ok(
        a !== undefined,
        `crash at call ${call} (${fs.crashCall}, ${mode}): a's acknowledged value was lost`,
      );
      assert.ok(
        String(a) === String(bytesFor("a1", 100)) ||
          String(a) === String(bytesFor("a2", 100)),
        `crash at call ${call}: a holds foreign bytes`,
      );
      checked++;
    }
  }
  assert.ok(checked >= 4);
});
