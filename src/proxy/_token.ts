/**
 * Secret tokens (the purge and admin tokens), compared as SHA-256 digests
 * in time that depends neither on where a wrong token differs nor on its
 * length.
 *
 * @module
 */

const encoder = new TextEncoder();

async function digest(s: string): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.digest("SHA-256", encoder.encode(s)),
  );
}

/** A token to check requests' tokens against. */
export class SecretToken {
  readonly #want: Promise<Uint8Array>;

  /** @param token The token. */
  constructor(token: string) {
    this.#want = digest(token);
  }

  /**
   * Whether `given` is the token (undefined, as when a request gave none,
   * never is).
   */
  async matches(given: string | undefined): Promise<boolean> {
    const want = await this.#want;
    const got = given === undefined ? undefined : await digest(given);
    let diff = got === undefined ? 1 : 0;
    for (let i = 0; i < want.length; i++) diff |= want[i]! ^ (got?.[i] ?? 0);
    return diff === 0;
  }
}
