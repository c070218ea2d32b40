// larder's WASM kernels. Only AssemblyScript lives in asm/; the one
// TypeScript module that loads the result is src/index_memory.ts.
export * from "./layout";
export * from "./bitmap";
export * from "./crc32";
export * from "./hash";
export * from "./evict";
export * from "./load";

/** First byte above the kernels' static data; tables start here. */
export function heap_base(): usize {
  return __heap_base;
}
