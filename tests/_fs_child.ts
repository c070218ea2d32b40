// Child process for tests/permissions_test.ts: opens a store with whatever
// permissions it was started with and reports on stdout.
//   store DIR         open, store and fetch a small and a large element, close
//   hold DIR          open, print "open", wait for stdin to close, then close
//   lock DIR          try to open once; print "ok" or the error code
import { BackingStore, StoreError } from "../mod.ts";

const [mode, dir] = Deno.args;
const big = new Uint8Array(3 * 2 ** 20).fill(7);
try {
  if (mode === "store") {
    const s = await BackingStore.open(dir!);
    await s.store("small", new Uint8Array([1, 2, 3]));
    await s.store("big", big);
    const a = await s.fetch("small");
    const b = await s.fetch("big");
    const ok = a?.data.length === 3 && b?.data.length === big.length;
    a?.release();
    b?.release();
    await s.close();
    console.log(ok ? "ok" : "wrong");
  } else if (mode === "hold") {
    const s = await BackingStore.open(dir!);
    await s.store("a", new Uint8Array([1]));
    console.log("open");
    for await (const _ of Deno.stdin.readable) { /* until closed */ }
    await s.close();
  } else if (mode === "lock") {
    const s = await BackingStore.open(dir!);
    await s.close();
    console.log("ok");
  }
} catch (err) {
  console.log(err instanceof StoreError ? err.code : `${err}`);
  if (Deno.env.get("FS_CHILD_DEBUG")) console.error(err);
}
