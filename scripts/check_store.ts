/**
 * `deno task check-store DIR [--json] [--repair] [--dedup] [--force-readonly] [--quiet]`
 *
 * Verifies (and with `--repair` repairs, with `--dedup` deduplicates) a
 * larder store (`deno task dedup DIR` is `check-store --dedup`); CHECK_STORE.md
 * documents the output, the JSON schema, the problem codes and the exit
 * codes: 0 clean, 1 problems found (and not repaired), 2 could not check.
 *
 * @module
 */
import {
  type CheckProgress,
  type CheckReport,
  checkStore,
  type Problem,
} from "../src/check.ts";
import { StoreError } from "../src/errors.ts";
import { BackingStore } from "../src/store.ts";
import type { DedupResult } from "../src/_dedup.ts";

const USAGE = `Usage: deno task check-store DIR [options]

Verifies a larder store: every file's header, the index against the use maps,
every element's key, length and CRC-32, orphans, leftovers and totals.

Options:
  --json            print the report as JSON (schema in CHECK_STORE.md)
  --repair          repair what can be repaired (takes the store's lock)
  --dedup           then deduplicate identical data elements (opens the
                    store: needs the lock; not with --force-readonly)
  --force-readonly  check without the lock, e.g. while the store is open
                    (results may be inconsistent; not with --repair)
  --quiet           no progress, and only problems in the human report
  --help            this text

Exit codes: 0 clean, 1 problems found (and not repaired), 2 could not check.
`;

/** Most problems of one code listed in the human report. */
const LIST_PER_CODE = 50;

interface Args {
  dir: string;
  json: boolean;
  repair: boolean;
  dedup: boolean;
  forceReadonly: boolean;
  quiet: boolean;
}

function parseArgs(argv: string[]): Args | string {
  const a: Args = {
    dir: "",
    json: false,
    repair: false,
    dedup: false,
    forceReadonly: false,
    quiet: false,
  };
  for (const arg of argv) {
    if (arg === "--json") a.json = true;
    else if (arg === "--repair") a.repair = true;
    else if (arg === "--dedup") a.dedup = true;
    else if (arg === "--force-readonly") a.forceReadonly = true;
    else if (arg === "--quiet" || arg === "-q") a.quiet = true;
    else if (arg.startsWith("-")) return `unknown option ${arg}`;
    else if (a.dir !== "") return "more than one directory given";
    else a.dir = arg;
  }
  if (a.dir === "") return "no store directory given";
  if (a.repair && a.forceReadonly) {
    return "--repair needs the lock: it cannot be combined with --force-readonly";
  }
  if (a.dedup && a.forceReadonly) {
    return "--dedup needs the lock: it cannot be combined with --force-readonly";
  }
  return a;
}

const enc = new TextEncoder();

function mb(bytes: number): string {
  return bytes >= 1e9
    ? `${(bytes / 1e9).toFixed(2)} GB`
    : `${(bytes / 1e6).toFixed(1)} MB`;
}

function count(n: number): string {
  return n.toLocaleString("en-US");
}

/** Progress on stderr: only on a terminal, and only after a second. */
function progressPrinter(): {
  onProgress: (p: CheckProgress) => void;
  done: () => void;
} {
  let shown = false;
  return {
    onProgress(p) {
      if (p.elapsedMs < 1000) return;
      shown = true;
      const rate = p.bytesRead / (p.elapsedMs / 1000);
      const line = `  ${p.phase}: ${count(p.done)}/${count(p.total)} ` +
        `elements, ${mb(p.bytesRead)} read, ${mb(rate)}/s`;
      Deno.stderr.writeSync(enc.encode(`\r\x1b[K${line}`));
    },
    done() {
      if (shown) Deno.stderr.writeSync(enc.encode("\r\x1b[K"));
    },
  };
}

function problemLine(p: Problem): string {
  const where = p.path === "" ? "." : p.path;
  const key = p.key === undefined ? "" : ` [${JSON.stringify(p.key)}]`;
  const tag = p.severity === "error" ? "ERROR  " : "warning";
  return `  ${tag} ${p.code.padEnd(20)} ${where}${key}: ${p.detail}`;
}

function listProblems(out: string[], problems: Problem[]): void {
  const shown = new Map<string, number>();
  // Errors first; within a severity, in the order found.
  const sorted = [
    ...problems.filter((p) => p.severity === "error"),
    ...problems.filter((p) => p.severity !== "error"),
  ];
  for (const p of sorted) {
    const n = (shown.get(p.code) ?? 0) + 1;
    shown.set(p.code, n);
    if (n <= LIST_PER_CODE) out.push(problemLine(p));
  }
  for (const [code, n] of shown) {
    if (n > LIST_PER_CODE) {
      out.push(`  ... and ${count(n - LIST_PER_CODE)} more ${code}`);
    }
  }
}

function tally(problems: Problem[]): string {
  const errors = problems.filter((p) => p.severity === "error").length;
  const warnings = problems.length - errors;
  const s = (n: number, w: string) => `${count(n)} ${w}${n === 1 ? "" : "s"}`;
  return `${s(errors, "error")}, ${s(warnings, "warning")}`;
}

/** The human report: summary first, then each problem. */
export function formatReport(r: CheckReport, quiet = false): string {
  const out: string[] = [];
  const secs = r.durationMs / 1000;
  const verdict = !r.complete
    ? "COULD NOT CHECK"
    : r.ok
    ? (r.remaining === null ? "OK" : "REPAIRED")
    : "DAMAGED";
  out.push(`larder store ${r.dir}: ${verdict}`);
  if (!quiet && r.store !== null && r.stats !== null) {
    const st = r.stats;
    const s = r.store;
    out.push(
      `  ${count(st.entries)} entries (${count(st.elements.data)} data, ${
        count(st.elements.meta)
      } metadata elements), ${mb(st.bytes)} of elements, ${
        mb(st.bytesOnDisk)
      } on disk`,
    );
    const journal = s.journal === null
      ? "no journal"
      : `${count(s.journal.operations)} journal operations replayed`;
    out.push(
      `  index: ${s.index}, ${journal}; capacity ${count(s.capacity)}; ` +
        `data slots ${count(st.slots.data.used)} of ${
          count(2 ** s.dataSlotBits)
        } used, metadata slots ${count(st.slots.meta.used)} used; ${
          count(st.largeFiles.count)
        } large files`,
    );
    out.push(
      `  checked in ${secs.toFixed(2)} s: ${mb(r.bytesRead)} read (${
        mb(r.bytesRead / Math.max(secs, 1e-3))
      }/s)`,
    );
  }
  if (r.problems.length === 0) {
    out.push("No problems found.");
  } else {
    out.push(`Found ${tally(r.problems)}:`);
    listProblems(out, r.problems);
  }
  if (r.repaired.length > 0) {
    out.push(`Repaired (${count(r.repaired.length)} changes):`);
    const shown = new Map<string, number>();
    for (const x of r.repaired) {
      const n = (shown.get(x.action) ?? 0) + 1;
      shown.set(x.action, n);
      if (n > LIST_PER_CODE) continue;
      const key = x.key === undefined ? "" : ` [${JSON.stringify(x.key)}]`;
      out.push(`  ${x.action.padEnd(25)} ${x.path}${key}: ${x.detail}`);
    }
    for (const [action, n] of shown) {
      if (n > LIST_PER_CODE) {
        out.push(`  ... and ${count(n - LIST_PER_CODE)} more ${action}`);
      }
    }
  }
  if (r.remaining !== null) {
    if (r.remaining.length === 0) out.push("After repair: no problems.");
    else {
      out.push(`After repair: ${tally(r.remaining)} remain:`);
      listProblems(out, r.remaining);
    }
  }
  return out.join("\n") + "\n";
}

/** The CLI; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    Deno.stdout.writeSync(enc.encode(USAGE));
    return 0;
  }
  const args = parseArgs(argv);
  if (typeof args === "string") {
    Deno.stderr.writeSync(enc.encode(`check-store: ${args}\n\n${USAGE}`));
    return 2;
  }
  const progress = !args.quiet && Deno.stderr.isTerminal()
    ? progressPrinter()
    : undefined;
  let report: CheckReport;
  try {
    report = await checkStore(args.dir, {
      repair: args.repair,
      forceReadonly: args.forceReadonly,
      ...(progress === undefined ? {} : { onProgress: progress.onProgress }),
    });
  } catch (err) {
    progress?.done();
    const code = err instanceof StoreError ? err.code : "ERROR";
    const message = err instanceof Error ? err.message : String(err);
    if (args.json) {
      const o = { schema: 1, dir: args.dir, error: { code, message } };
      Deno.stdout.writeSync(enc.encode(JSON.stringify(o, null, 2) + "\n"));
    } else {
      const hint = code === "LOCKED"
        ? "\n(close the store first, or use --force-readonly to check it anyway)"
        : "";
      Deno.stderr.writeSync(
        enc.encode(`check-store: ${code}: ${message}${hint}\n`),
      );
    }
    return 2;
  }
  progress?.done();
  // Deduplication runs on a store the check found sound (or repaired).
  let dedup:
    | DedupResult
    | { error: { code: string; message: string } }
    | undefined;
  if (args.dedup && report.complete && (report.ok || args.repair)) {
    dedup = await runDedup(args.dir);
  }
  Deno.stdout.writeSync(
    enc.encode(
      args.json
        ? JSON.stringify(
          dedup === undefined ? report : { ...report, dedup },
          null,
          2,
        ) + "\n"
        : formatReport(report, args.quiet) + formatDedup(dedup),
    ),
  );
  if (!report.complete) return 2;
  if (dedup !== undefined && "error" in dedup) return 2;
  return report.ok ? 0 : 1;
}

/** Opens the store at `dir` and deduplicates it (BackingStore.dedup). */
async function runDedup(
  dir: string,
): Promise<DedupResult | { error: { code: string; message: string } }> {
  try {
    const store = await BackingStore.open(dir);
    try {
      return await store.dedup();
    } finally {
      await store.close();
    }
  } catch (err) {
    return {
      error: {
        code: err instanceof StoreError ? err.code : "ERROR",
        message: err instanceof Error ? err.message : String(err),
      },
    };
  }
}

function formatDedup(
  d: DedupResult | { error: { code: string; message: string } } | undefined,
): string {
  if (d === undefined) return "";
  if ("error" in d) return `dedup: ${d.error.code}: ${d.error.message}\n`;
  return `dedup: ${count(d.scanned)} data elements scanned, ${
    count(d.merged)
  } merged, ${mb(d.bytesFreed)} freed\n`;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
