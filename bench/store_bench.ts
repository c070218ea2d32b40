/**
 * Single-operation benchmarks: larder's store and fetch next to what a Deno
 * user would write by hand (one file per object) and `node:sqlite`.
 *
 *   deno task bench
 *
 * Each group runs the same operation on the same bytes; `deno bench` prints
 * the ratio to the baseline in one run.
 * @module
 */
import * as fs from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { BackingStore } from "../mod.ts";

const N = 20_000;
const small = new Uint8Array(1024).map((_, i) => i * 7);
const large = new Uint8Array(64 * 1024).map((_, i) => i * 13);
const keys = Array.from(
  { length: N },
  (_, i) =>
    `https://host${i % 31}.example/static/js/${i}.js?v=${i.toString(16)}`,
);

const dir = Deno.makeTempDirSync({ prefix: "larder-bench-" });
const store = await BackingStore.open(`${dir}/larder`, { entryBits: 17 });
fs.mkdirSync(`${dir}/files`);
const db = new DatabaseSync(`${dir}/sqlite.db`);
db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
db.exec("CREATE TABLE c (key TEXT PRIMARY KEY, body BLOB)");
const put = db.prepare("INSERT OR REPLACE INTO c (key, body) VALUES (?, ?)");
const get = db.prepare("SELECT body FROM c WHERE key = ?");
const fileOf = (i: number) => `${dir}/files/${i}`;

for (let i = 0; i < N; i++) {
  await store.store(keys[i]!, small);
  fs.writeFileSync(fileOf(i), small);
  put.run(keys[i]!, small);
}
let n = 0;
const next = () => (n = (n + 7919) % N);

Deno.bench(
  { name: "larder store 1 KiB", group: "store 1 KiB", baseline: true },
  async () => {
    await store.store(keys[next()]!, small);
  },
);
Deno.bench({
  name: "one file per object (writeFileSync)",
  group: "store 1 KiB",
}, () => {
  fs.writeFileSync(fileOf(next()), small);
});
Deno.bench({ name: "node:sqlite WAL insert", group: "store 1 KiB" }, () => {
  put.run(keys[next()]!, small);
});

Deno.bench(
  { name: "larder fetch 1 KiB", group: "fetch 1 KiB", baseline: true },
  async () => {
    (await store.fetch(keys[next()]!))?.release();
  },
);
Deno.bench(
  { name: "one file per object (readFileSync)", group: "fetch 1 KiB" },
  () => {
    fs.readFileSync(fileOf(next()));
  },
);
Deno.bench({ name: "node:sqlite select", group: "fetch 1 KiB" }, () => {
  get.get(keys[next()]!);
});

Deno.bench({
  name: "larder store 64 KiB (own file)",
  group: "store 64 KiB",
  baseline: true,
}, async () => {
  await store.store("large", large);
});
Deno.bench({
  name: "one file per object (writeFileSync)",
  group: "store 64 KiB",
}, () => {
  fs.writeFileSync(`${dir}/files/large`, large);
});

Deno.bench({
  name: "larder fetch 64 KiB (own file)",
  group: "fetch 64 KiB",
  baseline: true,
}, async () => {
  (await store.fetch("large"))?.release();
});
Deno.bench({
  name: "one file per object (readFileSync)",
  group: "fetch 64 KiB",
}, () => {
  fs.readFileSync(`${dir}/files/large`);
});

globalThis.addEventListener("unload", () => {
  db.close();
  void store.close();
  Deno.removeSync(dir, { recursive: true });
});
