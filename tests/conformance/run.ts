/**
 * HTTP caching conformance: runs the independent suite of
 * https://cache-tests.fyi (a checkout of github.com/http-tests/cache-tests
 * with its npm dependencies installed) against `deno task serve` and
 * compares every result with the recorded one in `expected.json` beside
 * this file (recorded at the suite's commit b55b8bd).
 *
 *   git clone https://github.com/http-tests/cache-tests && (cd cache-tests && npm install --omit=dev)
 *   deno task conformance --suite cache-tests [--dir D] [--keep] [--id TEST-ID]
 *
 * It starts the suite's origin server (node) and the proxy (a child
 * running scripts/serve.ts on a fresh store under `--dir`, default a
 * temp dir) on free loopback ports, runs the suite's client, and prints the
 * counts by result kind (pass, fail, optional_fail, yes/no for the
 * informational checks, setup_fail, dependency_fail).
 *
 * Exits 1 when a required test fails or an optimal one falls short that
 * `expected.json` does not list (with the reason we accept it), or the
 * harness fails; a listed one that now passes is reported so the list can
 * shrink. `--id` runs one test and prints its exchange instead.
 *
 * Needs `node`. Takes about a minute: some tests wait for freshness to
 * run out. The npm package `http-cache-tests` (0.4.5) is an older tree
 * with other tests and is not what `expected.json` records.
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";

const SUITE = "http-tests/cache-tests";
const HERE = new URL(".", import.meta.url).pathname;
const REPO = join(HERE, "../..");

interface Expected {
  /** Test id → why the failure is accepted, by result kind. */
  fail: Record<string, string>;
  optional_fail: Record<string, string>;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Polls `url` until it answers, or throws after `ms`. */
async function waitFor(url: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const res = await fetch(url);
      await res.body?.cancel();
      return;
    } catch (err) {
      if (Date.now() > end) throw new Error(`${url} never answered: ${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function stop(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    // already gone
  }
  await child.status;
}

// The suite's test kinds and dependencies, for classifying its results.
const TESTS = `
import index from './tests/index.mjs'
const out = {}
for (const s of index) for (const t of s.tests) out[t.id] = { kind: t.kind, depends_on: t.depends_on }
console.log(JSON.stringify(out))
`;

interface TestInfo {
  kind?: "required" | "optimal" | "check";
  depends_on?: string[];
}

/**
 * A raw result's kind, by the suite's own rules (its
 * `determineTestResult`, results.mjs): dependencies first, then setup
 * and harness failures, then by the test's kind.
 */
function classify(
  tests: Record<string, TestInfo>,
  raw: Record<string, unknown>,
  id: string,
): string {
  const r = raw[id];
  if (r === undefined) return "untested";
  for (const dep of tests[id]?.depends_on ?? []) {
    const d = classify(tests, raw, dep);
    if (d !== "pass" && d !== "yes") return "dependency_fail";
  }
  const [first, second] = Array.isArray(r) ? r : [];
  if (first === "Setup") return second === "retry" ? "retry" : "setup_fail";
  if (r === false || first === "AbortError") return "harness_fail";
  switch (tests[id]?.kind ?? "required") {
    case "optimal":
      return r === true ? "pass" : "optional_fail";
    case "check":
      return r === true ? "yes" : "no";
    default:
      return r === true ? "pass" : "fail";
  }
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    dir: { type: "string" },
    keep: { type: "boolean", default: false },
    id: { type: "string", default: "" },
    suite: { type: "string" },
  },
});
const work = values.dir ?? await Deno.makeTempDir({ prefix: "larder-ct-" });
await Deno.mkdir(work, { recursive: true });
if (values.suite === undefined) {
  console.error("Cannot run: --suite CHECKOUT is required (see the header)");
  Deno.exit(2);
}
const suite = values.suite;
await Deno.stat(join(suite, "tests/index.mjs")).catch(() => {
  throw new Error(`No cache-tests checkout at ${suite}`);
});

const engine = "test-engine/";

const originPort = freePort();
const origin = new Deno.Command("node", {
  args: [`${engine}server/server.mjs`],
  cwd: suite,
  env: {
    npm_config_protocol: "http",
    npm_config_port: String(originPort),
    npm_config_pidfile: join(work, "server.pid"),
  },
  stdout: "null",
  stderr: "inherit",
}).spawn();
const proxyPort = freePort();
const store = join(work, `store-${Date.now()}`);
const proxy = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-net=127.0.0.1",
    join(REPO, "scripts/serve.ts"),
    "--origin",
    `http://127.0.0.1:${originPort}`,
    "--port",
    String(proxyPort),
    "--dir",
    store,
    "--limit",
    "256MiB",
    "--quiet",
  ],
  stdout: "null",
  stderr: "inherit",
}).spawn();

let failed = false;
try {
  await waitFor(`http://127.0.0.1:${originPort}/`, 15_000);
  const base = `http://127.0.0.1:${proxyPort}`;
  await waitFor(`${base}/_larder/health`, 15_000);
  const client = await new Deno.Command("node", {
    args: ["--no-warnings", `${engine}cli.mjs`],
    cwd: suite,
    // Both spellings: npm sets them so, and the suite reads either.
    env: {
      npm_config_base: base,
      npm_package_config_base: base,
      npm_config_id: values.id,
      npm_package_config_id: values.id,
    },
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(client.stdout);
  if (!client.success) throw new Error(`the suite's client failed:\n${text}`);
  if (values.id !== "") {
    console.log(text);
  } else {
    await Deno.writeTextFile(join(work, "results.json"), text);
    await Deno.writeTextFile(join(suite, "larder-tests.mjs"), TESTS);
    const listed = await new Deno.Command("node", {
      args: ["larder-tests.mjs"],
      cwd: suite,
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!listed.success) throw new Error("Cannot list the suite's tests");
    const tests: Record<string, TestInfo> = JSON.parse(
      new TextDecoder().decode(listed.stdout),
    );
    const raw: Record<string, unknown> = JSON.parse(text);
    const results: Record<string, { kind: string; detail: string }> = {};
    for (const [id, r] of Object.entries(raw)) {
      results[id] = {
        kind: classify(tests, raw, id),
        detail: Array.isArray(r) ? String(r[1]) : "",
      };
    }
    const expected: Expected = JSON.parse(
      await Deno.readTextFile(join(HERE, "expected.json")),
    );
    const counts: Record<string, number> = {};
    const unexpected: string[] = [];
    for (const [id, r] of Object.entries(results)) {
      counts[r.kind] = (counts[r.kind] ?? 0) + 1;
      const accepted = r.kind === "fail"
        ? expected.fail[id]
        : r.kind === "optional_fail"
        ? expected.optional_fail[id]
        : "";
      if (r.kind === "harness_fail" || accepted === undefined) {
        unexpected.push(`${r.kind} ${id}: ${r.detail}`);
      }
    }
    const nowPass = [
      ...Object.keys(expected.fail),
      ...Object.keys(expected.optional_fail),
    ].filter((id) => results[id]?.kind === "pass");
    console.log(`# ${SUITE} against larder: ${JSON.stringify(counts)}`);
    for (const [id, r] of Object.entries(results)) {
      if (r.kind === "fail" || r.kind === "optional_fail") {
        const why = expected.fail[id] ?? expected.optional_fail[id] ?? "NEW";
        console.log(`${r.kind} ${id}: ${r.detail} (${why})`);
      }
    }
    for (const id of nowPass) {
      console.log(`now passes, remove from expected.json: ${id}`);
    }
    if (unexpected.length > 0) {
      failed = true;
      console.log(`\nUnexpected results:\n${unexpected.join("\n")}`);
    }
  }
} finally {
  await stop(proxy);
  await stop(origin);
  if (!values.keep) {
    await Deno.remove(values.dir === undefined ? work : store, {
      recursive: true,
    }).catch(() => {});
  }
}
if (failed) Deno.exit(1);
