/**
 * Timing, latency percentiles, peak RSS and disk usage for one phase.
 *
 * @module
 */

/** What one phase of one peer measured. */
export interface PhaseResult {
  phase: string;
  ops: number;
  /** Meta + body bytes moved by the timed operations. */
  bytes: number;
  seconds: number;
  opsPerSec: number;
  mbPerSec: number;
  p50Us: number;
  p99Us: number;
  peakRssMiB: number;
  diskMiB: number;
  /** Phase-specific figures (open time, residency after eviction, …). */
  extra: Record<string, number | string>;
}

/**
 * Collects per-operation latencies. A phase's time is their sum (plus any
 * {@linkcode PhaseTimer.add}ed work), so untimed checks between operations
 * do not count.
 */
export class PhaseTimer {
  readonly #lat: Float64Array;
  #n = 0;
  #ms = 0;
  bytes = 0;

  /**
   * Starts a phase: collects the garbage the phase before left (a get pass
   * leaves gigabytes of returned buffers, whose release would otherwise be
   * timed in the next phase) when the process runs with --expose-gc, and
   * resets the peak RSS.
   */
  constructor(capacity: number) {
    this.#lat = new Float64Array(Math.max(1, capacity));
    (globalThis as { gc?: () => void }).gc?.();
    resetPeakRss();
  }

  /** Records one operation's latency. */
  record(ms: number): void {
    if (this.#n < this.#lat.length) this.#lat[this.#n++] = ms;
    this.#ms += ms;
  }

  /** Adds time that is not an operation of its own (a final flush). */
  add(ms: number): void {
    this.#ms += ms;
  }

  /**
   * Ends the phase; call after any untimed verification. Disk is what `dir`
   * holds beyond `diskBaseline` bytes (what was there before the phase).
   */
  async result(
    phase: string,
    dir: string,
    extra: Record<string, number | string> = {},
    diskBaseline = 0,
  ): Promise<PhaseResult> {
    const peakRssMiB = peakRss();
    const lat = this.#lat.subarray(0, this.#n).sort();
    const pct = (
      p: number,
    ) => (lat.length
      ? lat[Math.min(lat.length - 1, Math.floor(lat.length * p))]! * 1000
      : 0);
    const s = this.#ms / 1000 || 1e-9;
    return {
      phase,
      ops: this.#n,
      bytes: this.bytes,
      seconds: s,
      opsPerSec: this.#n / s,
      mbPerSec: this.bytes / 1e6 / s,
      p50Us: pct(0.5),
      p99Us: pct(0.99),
      peakRssMiB,
      diskMiB: Math.max(0, await diskUsage(dir) - diskBaseline) / 2 ** 20,
      extra,
    };
  }
}

/** Resets the kernel's high-water mark for this process (Linux >= 4.0). */
export function resetPeakRss(): void {
  try {
    Deno.writeTextFileSync("/proc/self/clear_refs", "5");
  } catch {
    // Not Linux or not permitted: peak then covers the whole process.
  }
}

/** Peak resident set size since the last reset, in MiB. */
export function peakRss(): number {
  try {
    const m = /VmHWM:\s+(\d+)/.exec(Deno.readTextFileSync("/proc/self/status"));
    if (m) return Number(m[1]) / 1024;
  } catch {
    // Fall through to the current RSS.
  }
  return Deno.memoryUsage().rss / 2 ** 20;
}

/** Allocated bytes under `dir` (sparse files count what they use). */
export async function diskUsage(dir: string): Promise<number> {
  // du counts allocated blocks, which a stat walk in JS would re-implement.
  const out = await new Deno.Command("du", {
    args: ["-s", "-B1", dir],
    stdout: "piped",
    stderr: "null",
  }).output();
  return Number(new TextDecoder().decode(out.stdout).split("\t")[0]) || 0;
}
