/**
 * A tee paced by its slower branch.
 *
 * `ReadableStream.prototype.tee` reads the source as fast as the faster
 * branch pulls and queues every chunk for the slower one without bound: a
 * store that writes at disk speed behind a slow client would hold the whole
 * body in memory. Here the source is read only when every branch that is
 * still open wants more, so each branch queues at most its high-water mark;
 * a branch that is cancelled drops out, and the other goes on alone (a
 * client that disconnects does not stop the store).
 *
 * @module
 */

/** Chunks each branch may queue. */
const QUEUED_CHUNKS = 4;

/**
 * Splits `source` into two streams of the same chunks (shared, not copied:
 * neither consumer may change them).
 *
 * @param source The stream to split; locked from now on.
 * @returns The two branches.
 */
export function pacedTee(
  source: ReadableStream<Uint8Array>,
): [ReadableStream<Uint8Array>, ReadableStream<Uint8Array>] {
  const reader = source.getReader();
  const controllers: ReadableStreamDefaultController<Uint8Array>[] = [];
  const open = [true, true];
  let reading = false;
  let ended = false;

  const live = () => controllers.filter((_, i) => open[i]);

  async function pump(): Promise<void> {
    while (!reading && !ended) {
      const branches = live();
      if (branches.some((c) => (c.desiredSize ?? 0) <= 0)) return;
      reading = true;
      try {
        const { done, value } = await reader.read();
        if (done) {
          ended = true;
          for (const c of live()) c.close();
          return;
        }
        for (const c of live()) c.enqueue(value);
      } catch (err) {
        ended = true;
        for (const c of live()) c.error(err);
        return;
      } finally {
        reading = false;
      }
    }
  }

  const branch = (i: number) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        controllers[i] = controller;
      },
      pull: pump,
      async cancel(reason) {
        open[i] = false;
        if (!open.includes(true)) {
          ended = true;
          await reader.cancel(reason);
        } else {
          // The other branch may have been waiting for this one; not
          // awaited, so a cancel does not wait for the source's next chunk.
          pump();
        }
      },
    }, new CountQueuingStrategy({ highWaterMark: QUEUED_CHUNKS }));

  return [branch(0), branch(1)];
}
