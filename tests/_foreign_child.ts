// The child of foreign_objects_test.ts. For each store directory given, in
// order, prints one JSON line saying what happened:
//
// - mode "store": open, fetch the elements stored before, store and fetch
//   a small and a large element, close, reopen and fetch again;
// - mode "check": checkStore, then checkStore with repair, then as "store".
//
// A planted FIFO that blocks an open blocks this process; the parent's
// timeout then kills it and fails the test.
//
//   deno run --allow-read --allow-write tests/_foreign_child.ts MODE DIR...
import { BackingStore, StoreError } from "../mod.ts";
import { checkStore } from "../src/check.ts";

const [mode, ...dirs] = Deno.args as [string, ...string[]];

function outcome(err: unknown): string {
  if (err instanceof StoreError) return `${err.name}:${err.code}`;
  return `untyped:${err instanceof Error ? err.name : typeof err}:${
    err instanceof Error ? err.message : String(err)
  }`;
}

const SMALL = new Uint8Array(300).fill(7);
const LARGE = new Uint8Array(2_500_000).fill(9); // a large file of its own

async function got(store: BackingStore, key: string, meta = false) {
  using h = await store.fetch(`https://foreign.example/${key}`, { meta });
  return h === undefined ? "miss" : `${h.data.length}:${h.data[0]}`;
}

async function useStore(dir: string): Promise<Record<string, string>> {
  const r: Record<string, string> = {};
  const step = async (name: string, f: () => Promise<string>) => {
    try {
      r[name] = await f();
    } catch (err) {
      r[name] = outcome(err);
    }
  };
  let store: BackingStore;
  try {
    store = await BackingStore.open(dir);
  } catch (err) {
    r.open = outcome(err);
    return r;
  }
  r.open = "ok";
  for (const k of ["old-small", "old-large"]) {
    await step(k, () => got(store, k));
    await step(`${k}-meta`, () => got(store, k, true));
  }
  for (const [k, v] of [["small", SMALL], ["large", LARGE]] as const) {
    await step(k, async () => {
      await store.store(`https://foreign.example/${k}`, v);
      await store.store(`https://foreign.example/${k}`, v, { meta: true });
      return `${await got(store, k)} ${await got(store, k, true)}`;
    });
  }
  await step("close", async () => (await store.close(), "ok"));
  await step("reopen", async () => {
    const again = await BackingStore.open(dir);
    try {
      return `${await got(again, "small")} ${await got(again, "large")}`;
    } finally {
      await again.close();
    }
  });
  return r;
}

for (const dir of dirs) {
  const result: Record<string, unknown> = { dir };
  if (mode === "check") {
    for (const repair of [false, true]) {
      try {
        const rep = await checkStore(dir, { repair });
        result[repair ? "repair" : "check"] = {
          ok: rep.ok,
          problems: rep.problems.map((p) => `${p.code} ${p.path}`),
          remaining: rep.remaining?.filter((p) => p.severity === "error")
            .map((p) => `${p.code} ${p.path}`) ?? null,
          repaired: rep.repaired.map((p) => `${p.action} ${p.path}`),
        };
      } catch (err) {
        result[repair ? "repair" : "check"] = outcome(err);
      }
    }
  }
  result.use = await useStore(dir);
  console.log(JSON.stringify(result));
}
