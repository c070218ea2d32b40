/**
 * The peers the driver knows, and what their processes need. Kept apart
 * from the adapters so the driver imports none of the peers' packages.
 *
 * @module
 */

import type { PeerFactory } from "./types.ts";

/** How to start one peer's process. */
export interface PeerEntry {
  /** Command-line id (`--peers larder,lmdb`). */
  id: string;
  /** Adapter module, relative to this file. */
  module: string;
  /** The module's export holding the factory; `default` if absent. */
  export?: string;
  /** Extra `deno run` flags. */
  flags?: string[];
  /** Extra environment, given the process's temp dir. */
  env?(root: string): Record<string, string>;
}

/** In report order: larder, the ceiling, then the alternatives. */
export const PEERS: PeerEntry[] = [
  { id: "larder", module: "./larder.ts" },
  { id: "raw-file", module: "./raw_file.ts" },
  { id: "lmdb", module: "./lmdb.ts" },
  { id: "lmdb-nosync", module: "./lmdb.ts", export: "noSync" },
  { id: "sqlite", module: "./sqlite.ts" },
  { id: "files", module: "./files.ts" },
  { id: "deno-kv", module: "./deno_kv.ts", flags: ["--unstable-kv"] },
  // Deno keeps Web Cache data under DENO_DIR; aim it at the temp dir.
  {
    id: "web-cache",
    module: "./web_cache.ts",
    env: (root) => ({ DENO_DIR: `${root}/deno_dir` }),
  },
  { id: "cacache", module: "./cacache.ts" },
];

/** Imports `entry`'s adapter (only now, so only its packages load). */
export async function loadPeer(entry: PeerEntry): Promise<PeerFactory> {
  const module = await import(new URL(entry.module, import.meta.url).href);
  return module[entry.export ?? "default"] as PeerFactory;
}
