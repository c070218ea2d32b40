// Foreign objects at larder's names: a FIFO, a directory, a symlink where
// larder keeps a file, or a file, FIFO or symlink where it keeps a
// directory, planted in a closed store. Opening, storing and fetching must
// neither hang (a FIFO opened for reading blocks until a writer comes) nor
// fail untyped, never return wrong bytes, and never delete the object;
// check-store must call the store damaged, and --repair must make it
// usable. Everything that opens a planted FIFO runs in a child process
// with a timeout, so a hang fails the test instead of stalling it.
import { BackingStore } from "../mod.ts";
import assert from "node:assert/strict";
import { tempDir } from "./_helpers.ts";

const CHILD = new URL("./_foreign_child.ts", import.meta.url).pathname;
const CHECK_CLI = new URL("../scripts/check_store.ts", import.meta.url)
  .pathname;
const TIMEOUT_MS = 180_000;

type Kind = "fifo" | "dir" | "symlink" | "file";

/** Where to plant, as a function of the store's files. */
interface Place {
  name: string;
  rel: (dir: string) => string;
  /** What larder keeps there. */
  keeps: "file" | "dir";
}

function firstFile(dir: string, rel: string): string {
  for (const e of [...Deno.readDirSync(`${dir}/${rel}`)].sort()) {
    const child = `${rel}/${e.name}`;
    if (!e.isDirectory) return child;
    const f = firstFile(dir, child);
    if (f !== "") return f;
  }
  return "";
}

const PLACES: Place[] = [
  ...["control", "entries", "blocks", "entries.tmp", "blocks.tmp"].map((
    n,
  ) => ({ name: n, rel: () => n, keeps: "file" as const })),
  {
    name: "journal",
    rel: (dir) =>
      [...Deno.readDirSync(dir)].find((e) => e.name.startsWith("journal-"))!
        .name,
    keeps: "file",
  },
  { name: "dblk/A", rel: () => "dblk/A", keeps: "file" },
  { name: "mblk/A", rel: () => "mblk/A", keeps: "file" },
  { name: "large data file", rel: (d) => firstFile(d, "d"), keeps: "file" },
  { name: "large meta file", rel: (d) => firstFile(d, "m"), keeps: "file" },
  ...["dblk", "mblk", "d", "m"].map((n) => ({
    name: n,
    rel: () => n,
    keeps: "dir" as const,
  })),
  {
    name: "directory under d",
    rel: (d) => firstFile(d, "d").split("/").slice(0, 3).join("/"),
    keeps: "dir",
  },
];

interface Case {
  label: string;
  dir: string;
  rel: string;
  kind: Kind;
}

async function buildStore(dir: string): Promise<void> {
  const store = await BackingStore.open(dir);
  const put = (k: string, n: number, v: number, meta: boolean) =>
    store.store(`https://foreign.example/${k}`, new Uint8Array(n).fill(v), {
      meta,
    });
  await put("old-small", 300, 1, false);
  await put("old-small", 200, 2, true);
  await put("old-large", 2_500_000, 3, false);
  await put("old-large", 2_500_000, 4, true);
  await store.close();
}

async function plant(dir: string, rel: string, kind: Kind): Promise<void> {
  const path = `${dir}/${rel}`;
  try {
    Deno.removeSync(path, { recursive: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err; // a temp name
  }
  if (kind === "dir") {
    Deno.mkdirSync(path);
    Deno.writeTextFileSync(`${path}/keep`, "not larder's");
  } else if (kind === "file") {
    Deno.writeTextFileSync(path, "not larder's");
  } else if (kind === "symlink") {
    Deno.writeTextFileSync(`${dir}.target`, "not larder's");
    Deno.symlinkSync(`${dir}.target`, path);
  } else {
    const r = await new Deno.Command("mkfifo", { args: [path] }).output();
    assert.equal(r.code, 0, "mkfifo failed");
  }
}

/** Builds one store per place and kind, each with its object planted. */
async function plantAll(root: string, skip: (p: Place) => boolean) {
  const cases: Case[] = [];
  for (const place of PLACES) {
    if (skip(place)) continue;
    const kinds: Kind[] = place.keeps === "file"
      ? ["fifo", "dir", "symlink"]
      : ["fifo", "file", "symlink"];
    for (const kind of kinds) {
      const dir = `${root}/s${cases.length}`;
      await buildStore(dir);
      const rel = place.rel(dir);
      assert.notEqual(rel, "", `${place.name}: nothing to replace`);
      await plant(dir, rel, kind);
      cases.push({
        label: `${kind} at ${place.name} (${rel})`,
        dir,
        rel,
        kind,
      });
    }
  }
  return cases;
}

/** Runs the child over every case; a hang past the timeout fails. */
async function runChild(
  mode: string,
  cases: Case[],
): Promise<Map<string, Record<string, unknown>>> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      CHILD,
      mode,
      ...cases.map((c) => c.dir),
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, TIMEOUT_MS);
  const out = await child.output();
  clearTimeout(timer);
  const results = new Map<string, Record<string, unknown>>();
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    if (line === "") continue;
    const r = JSON.parse(line) as Record<string, unknown>;
    results.set(r.dir as string, r);
  }
  const next = cases.find((c) => !results.has(c.dir));
  assert.ok(
    !timedOut,
    `the child hung (killed after ${TIMEOUT_MS} ms) at: ${next?.label}`,
  );
  assert.equal(
    out.code,
    0,
    `child failed at ${next?.label}: ${new TextDecoder().decode(out.stderr)}`,
  );
  return results;
}

function kindAt(path: string): Kind | "missing" | "other" {
  try {
    const st = Deno.lstatSync(path);
    if (st.isSymlink) return "symlink";
    if (st.isDirectory) return "dir";
    if (st.isFile) return "file";
    return st.isFifo ? "fifo" : "other";
  } catch {
    return "missing";
  }
}

/** The planted object is still there, at its name or moved aside. */
function assertKept(c: Case): void {
  const at = [c.rel, `${c.rel}.foreign-1`].find((r) =>
    kindAt(`${c.dir}/${r}`) === c.kind &&
    (c.kind !== "file" ||
      Deno.readTextFileSync(`${c.dir}/${r}`) === "not larder's")
  );
  assert.ok(
    at !== undefined,
    `${c.label}: the planted object is gone (${
      [...Deno.readDirSync(c.dir)].map((e) => e.name).join(" ")
    })`,
  );
  if (c.kind === "dir") {
    assert.equal(
      Deno.readTextFileSync(`${c.dir}/${at}/keep`),
      "not larder's",
      `${c.label}: the planted directory lost its file`,
    );
  }
  if (c.kind === "symlink") {
    // Never followed: the target is neither read, written nor truncated.
    assert.equal(
      Deno.readTextFileSync(`${c.dir}.target`),
      "not larder's",
      `${c.label}: the symlink's target changed`,
    );
  }
}

/** Open, store, fetch, close and reopen all worked, with right bytes. */
function assertUsable(c: Case, use: Record<string, string>): void {
  const msg = `${c.label}: ${JSON.stringify(use)}`;
  assert.equal(use.open, "ok", msg);
  const old: Array<[string, string]> = [
    ["old-small", "300:1"],
    ["old-small-meta", "200:2"],
    ["old-large", "2500000:3"],
    ["old-large-meta", "2500000:4"],
  ];
  for (const [k, want] of old) {
    assert.ok(use[k] === want || use[k] === "miss", `${k}: ${msg}`);
  }
  assert.equal(use.small, "300:7 300:7", msg);
  assert.equal(use.large, "2500000:9 2500000:9", msg);
  assert.equal(use.close, "ok", msg);
  assert.equal(use.reopen, "300:7 2500000:9", msg);
}

Deno.test("open, store and fetch never hang or fail on a foreign object at a larder name", async () => {
  await using tmp = await tempDir();
  const cases = await plantAll(tmp.path, () => false);
  const results = await runChild("store", cases);
  for (const c of cases) {
    const use = results.get(c.dir)!.use as Record<string, string>;
    if (c.rel === "control") {
      // Another copy or a rebuild may bring control back; until then the
      // failure is typed, never a hang.
      assert.ok(
        use.open === "ok" || /^[A-Za-z]+Error:[A-Z_]+$/.test(use.open!),
        `${c.label}: ${use.open}`,
      );
      if (use.open === "ok") assertUsable(c, use);
    } else {
      assertUsable(c, use);
    }
    assertKept(c);
  }
});

Deno.test("checkStore reports a foreign object at a larder name and repair moves it aside", async () => {
  await using tmp = await tempDir();
  const cases = await plantAll(tmp.path, (p) => p.name === "control");
  const results = await runChild("check", cases);
  for (const c of cases) {
    const r = results.get(c.dir)! as {
      check: { ok: boolean; problems: string[] };
      repair: { ok: boolean; remaining: string[]; repaired: string[] };
      use: Record<string, string>;
    };
    const msg = `${c.label}: ${JSON.stringify(r)}`;
    assert.equal(typeof r.check, "object", msg);
    assert.equal(r.check.ok, false, msg);
    const journal = c.rel.startsWith("journal-");
    assert.ok(
      r.check.problems.includes(
        `${journal ? "JOURNAL_CORRUPT" : "FOREIGN_OBJECT"} ${c.rel}`,
      ),
      msg,
    );
    assert.equal(r.repair.ok, true, msg);
    assert.deepEqual(r.repair.remaining, [], msg);
    if (!journal) {
      assert.ok(r.repair.repaired.includes(`MOVE_ASIDE ${c.rel}`), msg);
    }
    assertUsable(c, r.use);
    assertKept(c);
  }
});

Deno.test("check-store CLI exits 1 for a directory at a block file's name and 0 once repaired", async () => {
  await using tmp = await tempDir();
  await buildStore(tmp.path);
  await plant(tmp.path, "dblk/A", "dir");
  const run = async (...args: string[]) =>
    (await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-write", CHECK_CLI, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output()).code;
  assert.equal(await run(tmp.path, "--quiet"), 1);
  assert.equal(await run(tmp.path, "--repair", "--quiet"), 0);
  assert.equal(await run(tmp.path, "--quiet"), 0);
  assert.equal(kindAt(`${tmp.path}/dblk/A.foreign-1`), "dir");
  const store = await BackingStore.open(tmp.path);
  try {
    await store.store("https://foreign.example/x", new Uint8Array(10));
    using h = await store.fetch("https://foreign.example/x");
    assert.equal(h?.data.length, 10);
  } finally {
    await store.close();
  }
});
