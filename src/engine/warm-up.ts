// One throwaway forward before serving, on devices whose first forward pays one-off costs (cuda: cuBLAS
// initialisation and algorithm choice, activation buffers sized for the largest step: ~200 ms measured on an
// H200 for the first 2048-token step). Uses the first blocks of the KV pool as scratch: nothing is registered
// in the block manager, and every later step writes its KV before reading it.
import { greedyRows, type NativeModel } from '../native/binding.js';

export async function warmUp(model: NativeModel, o: { blockSize: number; numBlocks: number; maxNumBatchedTokens: number }): Promise<number> {
  const T = Math.max(1, Math.min(o.maxNumBatchedTokens, o.numBlocks * o.blockSize));
  const blocks = Math.ceil(T / o.blockSize);
  const positions = Int32Array.from({ length: T }, (_, i) => i);
  const t0 = performance.now();
  await model.forwardSample(
    {
      tokenIds: new Int32Array(T),
      positions,
      slotMapping: positions,
      queryStartLoc: Int32Array.of(0, T),
      contextLens: Int32Array.of(T),
      blockTables: Int32Array.from({ length: blocks }, (_, i) => i),
      maxBlocksPerSeq: blocks,
      logitsIndices: Int32Array.of(T - 1),
    },
    greedyRows(1),
    false,
  );
  return performance.now() - t0;
}
