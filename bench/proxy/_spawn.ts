/**
 * The processes the proxy benchmarks start and measure: a command's output,
 * a child waited on until its banner, a free loopback port, a process's CPU
 * time and wrk's presence. Shared by run.ts, soak.ts and profile_hits.ts.
 *
 * @module
 */

/** Runs a command; resolves with its stdout and stderr, throws on failure. */
export async function sh(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${text}`);
  return text.trim();
}

/**
 * CPU time a process and its children have used, µs (utime + stime of
 * /proc/PID/stat, all threads, at the kernel's 100 Hz tick). The CPU a
 * server spends per request is what other load on the machine changes
 * least.
 */
export async function cpuUs(pid: number): Promise<number> {
  const out = await sh("sh", [
    "-c",
    `for p in ${pid} $(pgrep -P ${pid}); do cut -d' ' -f14,15 /proc/$p/stat; done`,
  ]);
  let ticks = 0;
  for (const t of out.split(/\s+/)) ticks += Number(t);
  return ticks * 10_000;
}

/** A loopback port free a moment ago. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A child that printed its banner; its stderr kept when asked. */
export interface Child {
  process: Deno.ChildProcess;
  banner: RegExpExecArray;
  /** What the child wrote on stderr so far ("" when not kept). */
  stderr: () => string;
}

/**
 * Spawns `cmd`, resolves once its stdout matches `banner` (the rest of its
 * stdout is read and dropped, as a terminal would take it). Its stderr is
 * inherited, or kept for `stderr()` with `keepStderr`.
 */
export async function spawnUntil(
  cmd: string,
  args: string[],
  banner: RegExp,
  options: { env?: Record<string, string>; keepStderr?: boolean } = {},
): Promise<Child> {
  const process = new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: options.keepStderr ? "piped" : "inherit",
    env: options.env ?? {},
  }).spawn();
  let err = "";
  if (options.keepStderr) {
    (async () => {
      for await (
        const t of process.stderr.pipeThrough(new TextDecoderStream())
      ) err += t;
    })().catch(() => {});
  }
  const reader = process.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`${cmd} ${args.join(" ")} exited: ${text}${err}`);
    text += value;
    const m = banner.exec(text);
    if (m) {
      (async () => {
        while (!(await reader.read()).done); // drain the rest
      })().catch(() => {});
      return { process, banner: m, stderr: () => err };
    }
  }
}

/** Installs Debian's wrk when it is not on PATH. */
export async function ensureWrk(): Promise<void> {
  try {
    await sh("sh", ["-c", "command -v wrk"]);
  } catch {
    console.log("installing wrk (apt-get)…");
    await sh("apt-get", ["install", "-y", "wrk"]);
  }
}
