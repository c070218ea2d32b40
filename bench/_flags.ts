/**
 * Command-line flags of the bench scripts: `--name value` pairs, read the
 * same way by every runner.
 *
 * @module
 */

/** The value after `--name` in `argv`, or `fallback` when it is absent. */
export function flag(
  name: string,
  fallback: string,
  argv: readonly string[] = Deno.args,
): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
}
