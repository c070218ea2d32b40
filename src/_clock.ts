/**
 * The clock for the times entries record (FORMAT.md §1: u32 seconds). It
 * never goes back: within a process a wall-clock step back is bridged by
 * monotonic time until the wall clock catches up, and an opened store
 * raises it past the latest use it recorded (clockAtLeast), so eviction
 * order survives a clock set back, live or between runs. Shared by the
 * stores of a process (as the wall clock is); it only ever runs ahead.
 *
 * @module
 */
let clockLast = 0; // last time returned, ms
let clockBase = -1; // while bridging: the time at clockMono, ms; else -1
let clockMono = 0; // performance.now() at clockBase

function nowMs(): number {
  const wall = Date.now();
  if (clockBase < 0) {
    if (wall >= clockLast) return clockLast = wall; // the usual path
    clockBase = clockLast; // stepped back: bridge from the last time
    clockMono = performance.now();
  }
  const bridged = clockBase + (performance.now() - clockMono);
  if (wall >= bridged) {
    clockBase = -1; // caught up (or stepped forward): the wall clock again
    return clockLast = wall;
  }
  return clockLast = Math.max(clockLast, bridged);
}

/** Now, in whole seconds (u32), never earlier than a time returned before. */
export function nowSeconds(): number {
  return Math.min(Math.floor(nowMs() / 1000), 0xffffffff);
}

/** Moves the clock to the second after `seconds` if it is not past it. */
export function clockAtLeast(seconds: number): void {
  const now = nowMs();
  if (Math.floor(now / 1000) >= seconds) return;
  clockBase = (seconds + 1) * 1000;
  clockMono = performance.now();
  clockLast = clockBase;
}
