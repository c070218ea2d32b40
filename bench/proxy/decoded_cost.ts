/**
 * The heap one entry of the proxy's decoded-record cache costs
 * (`ProxyCache.#decoded`, src/proxy/proxy_store.ts): fills a proxy with N
 * responses as the hit benchmark does, reads their stored records back,
 * then measures the JS heap (after gc()) before and after holding N
 * decoded entries built as the cache builds them (the record's bytes and
 * their words, the decoded record, the prepared head). Needs
 * `--v8-flags=--expose-gc`.
 *
 * Usage: deno run -A --v8-flags=--expose-gc bench/proxy/decoded_cost.ts
 * [N] [EXTRA_HEADERS] (response headers added to the two of the hit bench)
 *
 * @module
 */
import { createProxy } from "../../src/proxy/mod.ts";
import {
  DECODED_HEAP_BYTES,
  decodedCost,
  recordToHead,
} from "../../src/proxy/proxy_store.ts";
import { BackingStore } from "../../src/store.ts";
import { decodeResponseRecord } from "../../src/http/record.ts";
import { prepareHead } from "../../src/http/policy.ts";
import { fixedOrigin } from "./_fixed_origin.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with --v8-flags=--expose-gc");
const n = Number(Deno.args[0] ?? 10_000);
const extra = Number(Deno.args[1] ?? 0);
const extraHeaders = Object.fromEntries(
  Array.from({ length: extra }, (_, i) => [`x-extra-${i}`, `value-${i}-abc`]),
);
const body = new Uint8Array(1024).fill(97);
const origin = fixedOrigin(body, extraHeaders);
const base = `http://127.0.0.1:${origin.addr.port}`;
const dir = await Deno.makeTempDir({ prefix: "larder-decoded-cost-" });
const proxy = await createProxy({ origin: base, dir });
for (let i = 0; i < n; i++) {
  await (await proxy.handler(new Request(`http://proxy/o/${i}`))).arrayBuffer();
}
await proxy.close();
const store = await BackingStore.open(dir);
const metas: Uint8Array[] = [];
for (let i = 0; i < n; i++) {
  const hit = await store.fetch(`~px/r/${base}/o/${i}`, { meta: true });
  if (hit === undefined) throw new Error("missing record");
  metas.push(hit.data.slice());
  hit.release();
}
await store.close();
await origin.shutdown();
await Deno.remove(dir, { recursive: true });

function heap(): number {
  for (let i = 0; i < 4; i++) gc!();
  return Deno.memoryUsage().heapUsed + Deno.memoryUsage().external;
}

const key = (i: number) => `~px/r/${base}/o/${i}`;
let estimate = 0;
for (let i = 0; i < n; i++) estimate += decodedCost(key(i), metas[i]!);
const kept = new Map<string, unknown>();
const before = heap();
for (let i = 0; i < n; i++) {
  const meta = metas[i]!;
  const record = decodeResponseRecord(meta);
  const copy = meta.slice();
  kept.set(key(i), {
    meta: copy,
    words: new Int32Array(copy.buffer, 0, copy.length >> 2),
    record,
    prepared: prepareHead(recordToHead(record), {}),
  });
}
const after = heap();
const recordBytes = metas.reduce((s, m) => s + m.length, 0) / n;
console.log(
  `${n} entries: ${
    ((after - before) / 2 ** 20).toFixed(1)
  } MiB heap+external,` +
    ` ${((after - before) / n).toFixed(0)} B an entry` +
    ` (record ${recordBytes.toFixed(0)} B; ${kept.size} kept); estimated` +
    ` ${(estimate / n).toFixed(0)} B an entry, ${
      (estimate / 2 ** 20).toFixed(1)
    } MiB: the cache's bound of ${DECODED_HEAP_BYTES / 2 ** 20} MiB holds ${
      Math.min(n, Math.floor(DECODED_HEAP_BYTES / (estimate / n)))
    } of them`,
);
