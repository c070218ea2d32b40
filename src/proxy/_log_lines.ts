/**
 * The proxy command's log: one line per request, written in batches. A
 * write to stdout per line (what `console.log` does) cost about as much
 * CPU as the cache hit it logged (bench/RESULTS.md, "Hit path under
 * load"); lines logged during one turn of the event loop go out in one
 * write at the end of it instead, in order, each still a line of its own.
 *
 * ```ts ignore
 * const log = new LineBatcher((bytes) => Deno.stdout.writeSync(bytes));
 * log.line("GET / 200");
 * log.flush(); // before exit
 * ```
 *
 * @module
 */

/** A batch is written at once when it holds this many bytes. */
const BATCH_BYTES = 64 * 1024;

/** Lines gathered and written a batch at a time; see the module doc. */
export class LineBatcher {
  readonly #write: (bytes: Uint8Array) => number;
  #lines: string[] = [];
  #chars = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #encoder = new TextEncoder();

  /**
   * @param write Writes some of the bytes (a prefix) and says how many,
   *   as `Deno.stdout.writeSync` does.
   */
  constructor(write: (bytes: Uint8Array) => number) {
    this.#write = write;
  }

  /** Queues `text` as one line (a newline is added). */
  line(text: string): void {
    this.#lines.push(text);
    this.#chars += text.length + 1;
    if (this.#chars >= BATCH_BYTES) this.flush();
    else this.#timer ??= setTimeout(() => this.flush(), 0);
  }

  /** Writes every queued line now. */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#lines.length === 0) return;
    const bytes = this.#encoder.encode(this.#lines.join("\n") + "\n");
    this.#lines = [];
    this.#chars = 0;
    for (let at = 0; at < bytes.length;) {
      at += this.#write(bytes.subarray(at));
    }
  }
}
