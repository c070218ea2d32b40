/**
 * `deno task serve`: the caching reverse proxy as a command.
 *
 * ```sh
 * deno task serve --origin http://127.0.0.1:8000 --port 8081 --dir ./.larder-proxy --limit 1GiB
 * ```
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { adminPrefix, adminToken as checkToken } from "../src/proxy/_admin.ts";
import { createProxy } from "../src/proxy/mod.ts";
import { LineBatcher } from "../src/proxy/_log_lines.ts";

const HELP = `larder serve: an RFC 9111 caching reverse proxy on a larder store

Usage: deno task serve --origin URL [options]

  --origin URL          the origin every request is forwarded to (required)
  --port N              port to listen on (default 8081; 0 picks a free one)
  --host NAME           address to listen on (default 127.0.0.1)
  --dir DIR             store directory (default ./.larder-proxy)
  --limit SIZE          store byte limit: 1GiB, 512MiB, 64KiB or bytes (default 1GiB)
  --origin-timeout MS   how long to wait for the origin's response head once the
                        request (its body included) is sent, and the longest
                        pause in its body while the proxy waits for it
                        (default 30000)
  --send-timeout MS     how long a client may take no bytes of a streamed body
                        (from the origin, or a large one from the store)
                        before its response is cut; a miss's store reads on
                        (default 30000)
  --purge-token TOKEN   turns purging on: PURGE <path> and POST <admin-path>purge?url=<url>
                        with "Authorization: Bearer TOKEN" remove a URL's stored
                        responses (every Vary variant). Better given in the
                        environment, as LARDER_PURGE_TOKEN (a flag shows in ps).
                        Without a token PURGE is answered 405 and never forwarded
  --admin-path PATH     where the proxy answers for itself (default /_larder/):
                        PATH is the status page, PATH/metrics Prometheus
                        metrics, PATH/health a health check, PATH/purge
                        purging; never forwarded
  --no-admin            no admin paths: they go to the origin like any other
  --admin-token TOKEN   the status page and metrics want "Authorization: Bearer
                        TOKEN" (or Basic with TOKEN as password); health stays
                        open. Also from LARDER_ADMIN_TOKEN. Default: none, so
                        they are open to whoever reaches --host
  --targeted-fields LIST
                        targeted cache control fields obeyed before Cache-Control
                        (RFC 9213), comma-separated, first match wins
                        (default CDN-Cache-Control; "" obeys Cache-Control alone)
  --config FILE         JSON file with any of these options by name
                        ({"origin": "...", "port": 8081, "limit": "1GiB",
                        "purge-token": "...", "admin-path": false, ...});
                        flags win over the environment, which wins over the file
  --quiet               no log line per request
  --help                this text

Logs one line per request: client, time, request line, status, length,
cache status (hit, stale, revalidated, miss, bypass, error), duration.
Range requests for stored responses are answered 206 from the store; a
Range miss fetches the whole response, stores it and sends the range.
`;

/** The command's settings after defaults. */
export interface ServeConfig {
  origin: string;
  port: number;
  host: string;
  dir: string;
  limit: number;
  originTimeoutMs: number;
  sendTimeoutMs: number;
  targetedFields: string[];
  quiet: boolean;
  /** Where the admin endpoints live, or false for none. */
  adminPath: string | false;
  /** The purge token; absent, purging is off. */
  purgeToken?: string;
  /** The admin token, if any. */
  adminToken?: string;
}

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 2 ** 10,
  kb: 2 ** 10,
  kib: 2 ** 10,
  m: 2 ** 20,
  mb: 2 ** 20,
  mib: 2 ** 20,
  g: 2 ** 30,
  gb: 2 ** 30,
  gib: 2 ** 30,
  t: 2 ** 40,
  tb: 2 ** 40,
  tib: 2 ** 40,
};

/**
 * A byte size such as `1GiB`, `512MiB`, `1.5G` or `4096` (units are
 * binary).
 *
 * @param text The size.
 * @returns Bytes, a positive integer.
 * @throws {RangeError} for anything else.
 */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m && UNITS[m[2]!.toLowerCase()];
  const bytes = m && unit !== undefined && unit !== null
    ? Math.floor(Number(m[1]) * unit)
    : NaN;
  if (!(bytes >= 1) || !Number.isSafeInteger(bytes)) {
    throw new RangeError(`Cannot parse size: ${JSON.stringify(text)}`);
  }
  return bytes;
}

function integer(name: string, value: unknown, min: number, max: number) {
  const n = typeof value === "number" ? value : Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new RangeError(
      `Cannot use --${name}: expected an integer ${min}–${max}, got ${value}`,
    );
  }
  return n;
}

/** A comma-separated list of field names (or a JSON array of them). */
function fieldList(value: unknown): string[] {
  const names = Array.isArray(value)
    ? value.map(String)
    : String(value).split(",");
  const out = names.map((n) => n.trim()).filter((n) => n !== "");
  for (const n of out) {
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(n)) {
      throw new TypeError(
        `Cannot use --targeted-fields: ${
          JSON.stringify(n)
        } is not a field name`,
      );
    }
  }
  return out;
}

const FLAGS = new Set([
  "origin",
  "port",
  "host",
  "dir",
  "limit",
  "origin-timeout",
  "send-timeout",
  "targeted-fields",
  "admin-token",
  "config",
  "purge-token",
  "admin-path",
]);

/** Config file keys besides the flag names. */
const CONFIG_ALIASES = new Set([
  "quiet",
  "originTimeoutMs",
  "sendTimeoutMs",
  "purgeToken",
  "adminPath",
  "adminToken",
]);

/**
 * Parses the command line (and the `--config` file it names, and
 * `LARDER_PURGE_TOKEN` from the environment).
 *
 * @param args The arguments after the script.
 * @param env Reads an environment variable (default `Deno.env.get`).
 * @returns The settings, or `"help"`.
 * @throws {TypeError} for an unknown flag or a missing value or origin,
 *   an empty purge token or an admin path not within slashes.
 * @throws {RangeError} for a bad number or size.
 */
export function parseServeArgs(
  args: string[],
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): ServeConfig | "help" {
  const given: Record<string, unknown> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--help" || arg === "-h") return "help";
    if (arg === "--quiet") {
      given.quiet = true;
      continue;
    }
    if (arg === "--no-admin") {
      given["admin-path"] = false;
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.startsWith("--")
      ? arg.slice(2, eq < 0 ? undefined : eq)
      : "";
    if (!FLAGS.has(name)) {
      throw new TypeError(`Cannot parse arguments: unknown flag ${arg}`);
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : args[++i];
    if (value === undefined) {
      throw new TypeError(`Cannot parse arguments: --${name} needs a value`);
    }
    given[name] = value;
  }
  let file: Record<string, unknown> = {};
  if (typeof given.config === "string") {
    file = JSON.parse(readFileSync(given.config, "utf8"));
    if (typeof file !== "object" || file === null || Array.isArray(file)) {
      throw new TypeError("Cannot read config: expected a JSON object");
    }
    for (const name of Object.keys(file)) {
      if (!FLAGS.has(name) && !CONFIG_ALIASES.has(name)) {
        throw new TypeError(`Cannot read config: unknown option ${name}`);
      }
    }
  }
  const pick = (name: string) => given[name] ?? file[name];
  const origin = pick("origin");
  if (typeof origin !== "string" || origin === "") {
    throw new TypeError("Cannot parse arguments: --origin URL is required");
  }
  new URL(origin); // a TypeError for a bad URL
  const limit = pick("limit") ?? "1GiB";
  const token = given["purge-token"] ?? env("LARDER_PURGE_TOKEN") ??
    file["purge-token"] ?? file.purgeToken;
  if (token !== undefined && (typeof token !== "string" || token === "")) {
    throw new TypeError(
      "Cannot use --purge-token: expected a non-empty string",
    );
  }
  const path = pick("admin-path") ?? file.adminPath ?? "/_larder/";
  if (path !== false && typeof path !== "string") {
    throw new TypeError(
      "Cannot read config: admin-path must be a path or false",
    );
  }
  const adminPath = adminPrefix(path) ?? false;
  // An empty LARDER_ADMIN_TOKEN is no token; an empty --admin-token is refused.
  const adminToken = checkToken(
    given["admin-token"] ?? (env("LARDER_ADMIN_TOKEN") || undefined) ??
      file["admin-token"] ?? file.adminToken,
  );
  return {
    origin,
    port: integer("port", pick("port") ?? 8081, 0, 65535),
    host: String(pick("host") ?? "127.0.0.1"),
    dir: String(pick("dir") ?? "./.larder-proxy"),
    limit: typeof limit === "number" ? limit : parseSize(String(limit)),
    originTimeoutMs: integer(
      "origin-timeout",
      pick("origin-timeout") ?? file.originTimeoutMs ?? 30_000,
      1,
      2 ** 31 - 1,
    ),
    sendTimeoutMs: integer(
      "send-timeout",
      pick("send-timeout") ?? file.sendTimeoutMs ?? 30_000,
      1,
      2 ** 31 - 1,
    ),
    targetedFields: fieldList(pick("targeted-fields") ?? "CDN-Cache-Control"),
    quiet: Boolean(given.quiet ?? file.quiet ?? false),
    adminPath,
    ...(token === undefined ? {} : { purgeToken: token }),
    ...(adminToken === undefined ? {} : { adminToken }),
  };
}

/**
 * Runs the proxy until SIGINT or SIGTERM.
 *
 * @param config The settings.
 */
export async function serve(config: ServeConfig): Promise<void> {
  const log = new LineBatcher((bytes) => Deno.stdout.writeSync(bytes));
  const proxy = await createProxy({
    origin: config.origin,
    dir: config.dir,
    storeOptions: { limit: config.limit },
    originTimeoutMs: config.originTimeoutMs,
    sendTimeoutMs: config.sendTimeoutMs,
    adminPath: config.adminPath,
    ...(config.purgeToken === undefined
      ? {}
      : { purgeToken: config.purgeToken }),
    ...(config.adminToken === undefined
      ? {}
      : { adminToken: config.adminToken }),
    targetedFields: config.targetedFields,
    ...(config.quiet ? {} : { log: (line: string) => log.line(line) }),
  });
  const server = Deno.serve({
    hostname: config.host,
    port: config.port,
    onListen({ hostname, port }) {
      console.log(
        `larder proxy on http://${hostname}:${port}/ for ${config.origin} (store ${config.dir}, limit ${config.limit} bytes${
          config.purgeToken === undefined ? "" : ", purge on"
        })${
          config.adminPath === false
            ? ""
            : `; status page http://${hostname}:${port}${config.adminPath}`
        }`,
      );
      if (
        config.adminPath !== false && config.adminToken === undefined &&
        !/^(127\.|::1$|localhost$)/.test(hostname)
      ) {
        console.error(
          `warning: the status page and metrics are open to anyone who reaches ${hostname}; give --admin-token or --no-admin`,
        );
      }
    },
  }, proxy.handler);
  const stop = async () => {
    await server.shutdown();
    await proxy.close();
    log.flush();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await server.finished;
  log.flush();
}

if (import.meta.main) {
  let config: ServeConfig | "help";
  try {
    config = parseServeArgs(Deno.args);
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${HELP}`);
    Deno.exit(2);
  }
  if (config === "help") {
    console.log(HELP);
  } else {
    await serve(config);
  }
}
