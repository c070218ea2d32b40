/**
 * What the soak (bench/proxy/soak.ts) waits on once its run has ended,
 * and the deadlines that keep it from waiting for ever: every step after
 * the run is named, every 15 s past the end the soak prints the step and
 * the checker's requests still unanswered, and a step past its deadline
 * fails the soak in words rather than stalling it.
 *
 * @module
 */
import { sh } from "./_spawn.ts";

/** A checker request not yet answered in full (head and body). */
export interface Pending {
  /** Method and path, say `GET /o/100/1`, or `raw GET …` for a socket. */
  what: string;
  /** When it was sent (performance.now()). */
  sinceMs: number;
}

/** A step that took longer than its deadline. */
export class Stalled extends Error {
  override name = "Stalled";
}

/** How often the soak says what it waits on, once its run has ended. */
const SAY_MS = 15_000;
/** How long a child has to exit on SIGTERM. */
const EXIT_MS = 30_000;

/**
 * The TCP connections on `url`'s port, as `ss` lists them: counts by
 * state, and the first established ones with their queues.
 */
export async function connections(url: string): Promise<string> {
  const port = new URL(url).port;
  try {
    const out = await sh("ss", ["-tnH", "state", "all", `sport = :${port}`]);
    const lines = out.split("\n").filter((l) => l !== "");
    const states: Record<string, number> = {};
    for (const l of lines) {
      const state = l.split(/\s+/)[0]!;
      states[state] = (states[state] ?? 0) + 1;
    }
    const open = lines.filter((l) => l.startsWith("ESTAB")).slice(0, 8)
      .map((l) => l.replace(/\s+/g, " "));
    return `${JSON.stringify(states)}${
      open.length > 0 ? ` (${open.join("; ")})` : ""
    }`;
  } catch (err) {
    return `(ss failed: ${err})`;
  }
}

/**
 * The soak's steps after its run: the one under way, printed with the
 * checker's pending requests while it lasts past the run's end.
 */
export class Watch {
  /** The step under way. */
  step = "the run";
  /** Steps past their deadline that let the soak go on, in words. */
  readonly late: string[] = [];
  readonly #pending: Set<Pending>;
  readonly #endMs: number;
  readonly #start: ReturnType<typeof setTimeout>;
  #timer: ReturnType<typeof setInterval> | undefined;

  /**
   * @param pending The checker's requests in progress (it adds and
   *   removes them).
   * @param endMs When the run ends (Date.now()).
   */
  constructor(pending: Set<Pending>, endMs: number) {
    this.#pending = pending;
    this.#endMs = endMs;
    const untilEnd = Math.max(0, endMs - Date.now());
    this.#start = setTimeout(() => {
      this.#timer = setInterval(() => console.error(this.say()), SAY_MS);
      Deno.unrefTimer(this.#timer);
    }, untilEnd + SAY_MS);
    Deno.unrefTimer(this.#start);
  }

  /** What the soak waits on, in one paragraph. */
  say(): string {
    const past = ((Date.now() - this.#endMs) / 1000).toFixed(0);
    const now = performance.now();
    const open = [...this.#pending].sort((a, b) => a.sinceMs - b.sinceMs);
    const list = open.slice(0, 10).map((p) =>
      `${p.what} (${((now - p.sinceMs) / 1000).toFixed(0)} s)`
    ).join(", ");
    return `soak: ${past} s past the run's end, waiting on ${this.step}; ` +
      `checker requests unanswered: ${open.length}${
        open.length > 0 ? `: ${list}` : ""
      }`;
  }

  /**
   * Runs step `name`: `work`'s result, or a {@linkcode Stalled} error
   * naming the step when it takes over `ms`.
   */
  async within<T>(name: string, ms: number, work: Promise<T>): Promise<T> {
    this.step = name;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new Stalled(`${this.say()} (its deadline: ${ms / 1000} s)`));
      }, ms);
    });
    try {
      return await Promise.race([work, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Sends `child` SIGTERM and waits EXIT_MS for its exit; past that, notes
   * in `late` what was still connected to `url`, kills it and gives that
   * status (exit code 137).
   */
  async exit(
    child: Deno.ChildProcess,
    name: string,
    url: string,
  ): Promise<Deno.CommandStatus> {
    child.kill("SIGTERM");
    try {
      return await this.within(
        `${name}'s exit on SIGTERM`,
        EXIT_MS,
        child.status,
      );
    } catch (err) {
      if (!(err instanceof Stalled)) throw err;
      const line =
        `${err.message}; connections on its port: ${await connections(url)}`;
      console.error(line);
      this.late.push(line);
      child.kill("SIGKILL");
      return await child.status;
    }
  }

  /** Stops printing. */
  stop(): void {
    clearTimeout(this.#start);
    clearInterval(this.#timer);
  }
}
