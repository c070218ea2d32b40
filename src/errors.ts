/**
 * The one error hierarchy for storage failures. Bad arguments throw the
 * built-in `TypeError` / `RangeError` instead; everything that goes wrong
 * with the store itself is a {@linkcode StoreError} with a stable `code`.
 *
 * @module
 */

/** Stable machine-readable codes carried by every {@linkcode StoreError}. */
export type StoreErrorCode =
  | "LOCKED"
  | "CORRUPT"
  | "VERSION_MISMATCH"
  | "NOT_A_STORE"
  | "IO"
  | "NO_SPACE"
  | "CLOSED"
  | "OPTION_MISMATCH"
  | "REPLACED";

/**
 * Base class of every storage failure larder reports.
 *
 * @example Telling a locked store from other failures
 * ```ts
 * import { BackingStore, StoreError } from "@larder/larder";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await using first = await BackingStore.open(dir);
 * try {
 *   await BackingStore.open(dir);
 *   assert.fail("a second handle opened the store");
 * } catch (err) {
 *   if (!(err instanceof StoreError && err.code === "LOCKED")) throw err;
 *   console.error(`another handle is using ${dir}`);
 * }
 * await first.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class StoreError extends Error {
  /** The stable code; compare this, not the message. */
  readonly code: StoreErrorCode;

  /**
   * Makes an error with a stable code.
   *
   * @param code The stable code.
   * @param message `Cannot <action>: <detail>`.
   * @param options `cause`: the underlying error, if any.
   */
  constructor(code: StoreErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Another handle (in this process or another) holds the store's lock. */
export class LockedError extends StoreError {
  /**
   * Makes a `LOCKED` error.
   *
   * @param message `Cannot <action>: <detail>`.
   * @param options `cause`: the underlying error, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super("LOCKED", message, options);
  }
}

/** A file larder wrote does not parse or fails its checksum. */
export class CorruptError extends StoreError {
  /**
   * Makes a `CORRUPT` error.
   *
   * @param message `Cannot <action>: <detail>`.
   * @param options `cause`: the underlying error, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super("CORRUPT", message, options);
  }
}

/** A file was written by a newer (or unknown) format version. */
export class VersionMismatchError extends StoreError {
  /**
   * Makes a `VERSION_MISMATCH` error.
   *
   * @param message `Cannot <action>: <detail>`.
   * @param options `cause`: the underlying error, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super("VERSION_MISMATCH", message, options);
  }
}

/** The directory holds something that is not a larder store. */
export class NotAStoreError extends StoreError {
  /**
   * Makes a `NOT_A_STORE` error.
   *
   * @param message `Cannot <action>: <detail>`.
   * @param options `cause`: the underlying error, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super("NOT_A_STORE", message, options);
  }
}

/** An operating-system I/O call failed. */
export class IOError extends StoreError {
  /**
   * Makes a `IO` error.
   *
   * @param message `Cannot <action>: <detail>`.
   * @param options `cause`: the underlying error, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super("IO", message, options);
  }
}

/** The disk (or quota) is full. */
export class NoSpaceError extends StoreError {
  /**
   * Makes a `NO_SPACE` error.
   *
   * @param message `Cannot <action>: <detail>`.
   * @param options `cause`: the underlying error, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super("NO_SPACE", message, options);
  }
}

/** The store was closed before (or while) the call ran. */
export class ClosedError extends StoreError {
  /**
   * Makes a `CLOSED` error.
   *
   * @param message `Cannot <action>: <detail>`.
   * @param options `cause`: the underlying error, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super("CLOSED", message, options);
  }
}

/** An option given to `open` contradicts what the store was created with. */
export class OptionMismatchError extends StoreError {
  /**
   * Makes a `OPTION_MISMATCH` error.
   *
   * @param message `Cannot <action>: <detail>`.
   * @param options `cause`: the underlying error, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super("OPTION_MISMATCH", message, options);
  }
}

/**
 * The store directory was removed, or replaced by another directory, while
 * this handle had it open: the handle no longer writes anything by path.
 */
export class ReplacedError extends StoreError {
  /**
   * Makes a `REPLACED` error.
   *
   * @param message `Cannot <action>: <detail>`.
   * @param options `cause`: the underlying error, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super("REPLACED", message, options);
  }
}

/**
 * Wraps an operating-system error in the matching {@linkcode StoreError}.
 * Errors that already are `StoreError`s pass through unchanged.
 */
export function toStoreError(action: string, err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const detail = err instanceof Error ? err.message : String(err);
  if (code === "ENOSPC" || code === "EDQUOT") {
    return new NoSpaceError(`Cannot ${action}: no space left: ${detail}`, {
      cause: err,
    });
  }
  return new IOError(`Cannot ${action}: ${detail}`, { cause: err });
}

/**
 * Something other than a regular file (a directory, FIFO, socket, device
 * or symlink) sits where larder keeps a file. It is never opened for I/O
 * (a FIFO would block the process); callers treat it as a damaged file.
 */
export class ForeignFileError extends CorruptError {
  /** @param message The description. @param options The cause. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}
