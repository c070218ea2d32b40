/**
 * Streamed bodies still being written: their large files take disk before
 * any entry refers to them, so the byte limit counts them (FORMAT.md
 * §5.4). As they grow, eviction makes room for them; streams that would
 * together pass the limit are refused, one by one, as the one that would.
 *
 * @module
 */
import { diskBytes } from "./format.ts";
import { DATA } from "./kinds.ts";

/** What the tally asks of the store. */
export interface InFlightOptions {
  limit: number;
  /** Disk bytes of the elements entries refer to. */
  liveDisk: () => number;
  /**
   * Evicts, never entry `keep` (-1: none), until the streams' bytes fit
   * (they are counted as held).
   */
  makeRoom: (keep: number) => void;
}

/** One stream's share of the tally. */
export interface StreamTally {
  /** The stream's file now holds `size` element bytes. */
  grew(size: number): void;
  /** The stream ended (placed or abandoned): its bytes leave the tally. */
  close(): void;
}

/** Disk bytes of the streams being written into one store. */
export class StreamsInFlight {
  #opt: InFlightOptions;
  #disk = 0;

  constructor(options: InFlightOptions) {
    this.#opt = options;
  }

  /** Disk bytes the streams' files take, as the limit counts them. */
  get disk(): number {
    return this.#disk;
  }

  /**
   * A tally for a new stream; `keep()` finds the entry it replaces (-1:
   * none), which its growth does not evict: the old value stays until the
   * stream ends.
   */
  open(keep: () => number): StreamTally {
    let mine = 0;
    return {
      grew: (size) => {
        const now = diskBytes(DATA, size, true, 0, false);
        const others = this.#disk - mine;
        // One stream alone keeps its own maximum (the limit); streams in
        // flight together may not pass it.
        if (others > 0 && others + now > this.#opt.limit) {
          // Its file is removed as the stream is cancelled.
          this.#disk = others;
          mine = 0;
          throw new RangeError(
            "Cannot store element: the streams in flight would pass the limit",
          );
        }
        this.#disk += now - mine;
        mine = now;
        if (this.#opt.liveDisk() + this.#disk >= this.#opt.limit) {
          this.#opt.makeRoom(keep());
        }
      },
      close: () => {
        this.#disk -= mine;
        mine = 0;
      },
    };
  }
}
