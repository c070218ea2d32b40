// A strict parser of the Prometheus text exposition format 0.0.4, written
// from the format's description (not from larder's writer), for checking
// `/_larder/metrics`: every line is a HELP, a TYPE or a sample; names match
// [a-zA-Z_:][a-zA-Z0-9_:]*; a metric's HELP and TYPE come once, before its
// samples; counters end in `_total`; a histogram's buckets are cumulative
// and its `+Inf` bucket equals its `_count`.
import assert from "node:assert/strict";

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const VALUE = /^(?:[+-]?Inf|NaN|[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)$/;

type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

export interface Sample {
  /** The family (metric) it belongs to. */
  family: string;
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseValue(text: string, line: number): number {
  if (!VALUE.test(text)) throw new Error(`line ${line}: bad value ${text}`);
  if (/^\+?Inf$/.test(text)) return Infinity;
  if (text === "-Inf") return -Infinity;
  return Number(text);
}

/** Labels `{a="x",b="y"}` from `at` (at the `{`); returns them and the end. */
function parseLabels(
  s: string,
  at: number,
  line: number,
): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  let i = at + 1;
  while (s[i] !== "}") {
    const eq = s.indexOf("=", i);
    if (eq < 0) throw new Error(`line ${line}: bad labels`);
    const name = s.slice(i, eq);
    if (!LABEL.test(name)) {
      throw new Error(`line ${line}: bad label name ${name}`);
    }
    if (name in labels) throw new Error(`line ${line}: label ${name} twice`);
    if (s[eq + 1] !== '"') {
      throw new Error(`line ${line}: unquoted label value`);
    }
    let v = "";
    let j = eq + 2;
    for (; j < s.length && s[j] !== '"'; j++) {
      if (s[j] === "\\") {
        const e = s[++j];
        if (e === "n") v += "\n";
        else if (e === "\\" || e === '"') v += e;
        else throw new Error(`line ${line}: bad escape \\${e}`);
      } else v += s[j];
    }
    if (j >= s.length) {
      throw new Error(`line ${line}: unterminated label value`);
    }
    labels[name] = v;
    i = j + 1;
    if (s[i] === ",") i++;
    else if (s[i] !== "}") throw new Error(`line ${line}: bad labels`);
  }
  return [labels, i + 1];
}

const key = (name: string, labels: Record<string, string>) =>
  `${name}{${
    Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`).join(",")
  }}`;

export class Exposition {
  readonly types = new Map<string, MetricType>();
  readonly samples: Sample[] = [];

  /** The value of one series; throws when absent. */
  value(name: string, labels: Record<string, string>): number {
    const s = this.samples.find((s) =>
      key(s.name, s.labels) === key(name, labels)
    );
    if (s === undefined) throw new Error(`no sample ${key(name, labels)}`);
    return s.value;
  }

  /**
   * Checks that every counter (and histogram count, sum and bucket) of
   * `before` is still there and not smaller.
   */
  assertCountersGrew(before: Exposition): void {
    const now = new Map(this.samples.map((s) => [key(s.name, s.labels), s]));
    for (const s of before.samples) {
      const type = before.types.get(s.family);
      if (type !== "counter" && type !== "histogram") continue;
      const later = now.get(key(s.name, s.labels));
      assert.ok(later !== undefined, `${key(s.name, s.labels)} disappeared`);
      assert.ok(
        later.value >= s.value,
        `${key(s.name, s.labels)} went down: ${s.value} → ${later.value}`,
      );
    }
  }
}

/** Parses `text`; throws an Error naming the line for anything malformed. */
export function parseExposition(text: string): Exposition {
  const out = new Exposition();
  if (!text.endsWith("\n")) throw new Error("does not end in a newline");
  const help = new Set<string>();
  const seenSeries = new Set<string>();
  const lines = text.slice(0, -1).split("\n");
  lines.forEach((l, n) => {
    const line = n + 1;
    if (l.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(l);
      if (m === null) throw new Error(`line ${line}: bad comment ${l}`);
      const [, kind, name, rest] = m as unknown as [
        string,
        string,
        string,
        string,
      ];
      if (!NAME.test(name)) {
        throw new Error(`line ${line}: bad metric name ${name}`);
      }
      if (out.samples.some((s) => s.family === name)) {
        throw new Error(`line ${line}: ${kind} for ${name} after its samples`);
      }
      if (kind === "HELP") {
        if (help.has(name)) throw new Error(`line ${line}: HELP ${name} twice`);
        help.add(name);
      } else {
        if (out.types.has(name)) {
          throw new Error(`line ${line}: TYPE ${name} twice`);
        }
        if (
          !["counter", "gauge", "histogram", "summary", "untyped"].includes(
            rest,
          )
        ) {
          throw new Error(`line ${line}: bad type ${rest}`);
        }
        if (rest === "counter" && !name.endsWith("_total")) {
          throw new Error(
            `line ${line}: counter ${name} does not end in _total`,
          );
        }
        out.types.set(name, rest as MetricType);
      }
      return;
    }
    const nm = /^[^{\s]+/.exec(l);
    if (nm === null) {
      throw new Error(`line ${line}: not a sample: ${JSON.stringify(l)}`);
    }
    const name = nm[0];
    if (!NAME.test(name)) {
      throw new Error(`line ${line}: bad metric name ${name}`);
    }
    let labels: Record<string, string> = {};
    let at = name.length;
    if (l[at] === "{") [labels, at] = parseLabels(l, at, line);
    if (l[at] !== " ") {
      throw new Error(`line ${line}: no space before the value`);
    }
    const parts = l.slice(at + 1).split(" ");
    if (
      parts.length > 2 || (parts.length === 2 && !/^-?\d+$/.test(parts[1]!))
    ) {
      throw new Error(`line ${line}: bad value or timestamp`);
    }
    const value = parseValue(parts[0]!, line);
    let family = name;
    if (!out.types.has(name)) {
      const base = name.replace(/_(bucket|sum|count)$/, "");
      if (
        out.types.get(base) !== "histogram" && out.types.get(base) !== "summary"
      ) {
        throw new Error(`line ${line}: ${name} has no TYPE before it`);
      }
      family = base;
    } else if (out.types.get(name) === "histogram") {
      throw new Error(
        `line ${line}: a histogram's samples are _bucket, _sum, _count`,
      );
    }
    if (name.endsWith("_bucket") && !("le" in labels)) {
      throw new Error(`line ${line}: bucket without le`);
    }
    const k = key(name, labels);
    if (seenSeries.has(k)) throw new Error(`line ${line}: ${k} twice`);
    seenSeries.add(k);
    out.samples.push({ family, name, labels, value });
  });
  // Histograms: cumulative buckets ending in +Inf = _count.
  for (const [family, type] of out.types) {
    if (type !== "histogram") continue;
    const groups = new Map<string, Sample[]>();
    for (const s of out.samples) {
      if (s.name !== `${family}_bucket`) continue;
      const { le: _, ...rest } = s.labels;
      const g = key("", rest);
      groups.set(g, [...(groups.get(g) ?? []), s]);
    }
    for (const [g, buckets] of groups) {
      let prevLe = -Infinity;
      let prev = 0;
      for (const b of buckets) {
        const le = parseValue(b.labels.le!, 0);
        if (!(le > prevLe)) throw new Error(`${family}${g}: le not increasing`);
        if (b.value < prev) {
          throw new Error(`${family}${g}: buckets not cumulative`);
        }
        prevLe = le;
        prev = b.value;
      }
      if (prevLe !== Infinity) throw new Error(`${family}${g}: no +Inf bucket`);
      const count = out.samples.find((s) =>
        s.name === `${family}_count` && key("", s.labels) === g
      );
      if (count?.value !== prev) {
        throw new Error(`${family}${g}: +Inf ≠ _count`);
      }
      if (
        !out.samples.some((s) =>
          s.name === `${family}_sum` && key("", s.labels) === g
        )
      ) {
        throw new Error(`${family}${g}: no _sum`);
      }
    }
  }
  for (const name of out.types.keys()) {
    if (!help.has(name)) throw new Error(`${name}: no HELP`);
  }
  return out;
}
