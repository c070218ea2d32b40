/**
 * A client body with a send timeout (nginx's `send_timeout`): once the
 * client has a chunk, it must take the next within `ms`, or the body is
 * cut. Time the body spends waiting for its source does not count, only
 * time the client leaves it waiting.
 *
 * Cutting cancels the source: an origin body passed through is closed,
 * and a branch of `pacedTee` drops out so the store reads on alone. The
 * client sees its connection end before the body's end (Deno.serve closes
 * it on a body that errors).
 *
 * @module
 */

/**
 * `source`, cut when its reader takes no chunk for `ms` after the last.
 *
 * @param source The body to send; locked from now on.
 * @param ms The longest wait for the reader, ms.
 * @param onCut Told when the body is cut.
 * @returns The body the client reads.
 */
export function withSendTimeout(
  source: ReadableStream<Uint8Array>,
  ms: number,
  onCut: () => void = () => {},
): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      clearTimeout(timer);
      const { done, value } = await reader.read();
      if (done) return controller.close();
      controller.enqueue(value);
      timer = setTimeout(() => {
        const err = new Error(
          `Cannot send to client: it took nothing for ${ms} ms`,
        );
        // One line on Deno.serve's stderr, as the origin's cut bodies.
        err.stack = err.message;
        onCut();
        controller.error(err);
        reader.cancel(err).catch(() => {});
      }, ms);
    },
    cancel(reason) {
      clearTimeout(timer);
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
