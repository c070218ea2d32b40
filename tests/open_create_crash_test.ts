// Creating a store under the fault-injecting file system, crashed at every
// call: a restart finds no store (and creates one) or one that opens with
// nothing repaired, and once `open` resolved the store survives a power
// loss, its directory's name included (FORMAT.md §9).
import assert from "node:assert/strict";
import { type CrashMode, FaultFS } from "./_fault_fs.ts";
import { openForTest } from "../src/_testing.ts";

const DIR = "/p/s";
const MODES: Exclude<CrashMode, "torn">[] = ["drop", "subset", "process"];

/** `/p/s` made by an earlier open that crashed before syncing `/p`. */
function leftDir(fs: FaultFS): void {
  fs.mkdir("/p");
  fs.syncDir("/");
  fs.mkdir(DIR);
}

async function createOnce(fs: FaultFS): Promise<boolean> {
  const st = await openForTest(DIR, {}, { io: fs });
  await st.close();
  return true;
}

for (
  const [name, setup] of [
    ["a store and its parent made by open", (_: FaultFS) => {}],
    ["a store in a directory left unsynced", leftDir],
  ] as const
) {
  Deno.test(`store creation crashed at any call: ${name} opens or is absent`, async () => {
    const dry = new FaultFS();
    setup(dry);
    const calls = dry.counts.mutating;
    await createOnce(dry);
    const total = dry.counts.mutating - calls;
    assert.ok(total > 10);
    for (let n = 1; n <= total; n++) {
      const fs = new FaultFS();
      setup(fs);
      fs.crashAt(fs.counts.mutating + n);
      let acked = false;
      try {
        const st = await openForTest(DIR, {}, { io: fs });
        acked = true;
        await st.close();
      } catch { /* the crash */ }
      assert.ok(fs.crashed, `call ${n} of ${total} did not crash`);
      for (const mode of MODES) {
        const img = fs.image(mode);
        const had = img.kind(`${DIR}/control`) === "file";
        if (acked && mode === "drop") {
          assert.ok(had, `crash at ${fs.crashCall}: a created store was lost`);
        }
        const st = await openForTest(DIR, {}, { io: img });
        try {
          assert.equal(st.stats().entries, 0);
          if (had) {
            assert.equal(
              st.stats().repairedOnOpen,
              0,
              `crash at ${fs.crashCall} (${mode}): repaired on open`,
            );
          }
        } finally {
          await st.close();
        }
      }
    }
  });
}
