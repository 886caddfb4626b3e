// resolveKvCacheConfig: the engine's derived KV values, from the validated EngineConfig and what loading
// the model told (its shape, max_position_embeddings, the device's free memory). No side effects but `warn`
// (createEngine: its logger); createEngine allocates. Rules:
//   kvDtype       'auto' = f32 on cpu, the weight dtype on a GPU
//   maxModelLen   --max-model-len capped at max_position_embeddings (warned)
//   budget        --kv-cache-memory, else cpu: min(4 GiB, cpuKvFraction x free), GPU: gpuMemoryUtilization x free
//   numBlocks     budget / block bytes; without --kv-cache-memory at most max(1024, the blocks maxNumSeqs
//                 full-length sequences need + 1) (more would only be prefix cache)
//   a pool smaller than one max-length sequence: PDS_ERR_CONFIG when --max-model-len was given (or not one
//   block fits), else maxModelLen shrinks to what the pool holds (warned)
import { kvBytesPerToken, type DType } from '../util/dtype.js';
import { PdsError } from '../util/errors.js';
import { formatGiB } from '../util/size.js';
import type { EngineConfig } from './config.js';

export interface KvCacheModelFacts {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  weightDtype: DType;
  maxPositionEmbeddings: number;
  /** asked only when --kv-cache-memory is not given */
  freeMemoryBytes: () => number;
}

export interface KvCacheConfig {
  kvDtype: DType;
  bytesPerToken: number;
  bytesPerBlock: number;
  budget: number; // bytes the pool may use
  numBlocks: number;
  maxModelLen: number;
}

export function resolveKvCacheConfig(config: EngineConfig, m: KvCacheModelFacts, warn: (msg: string) => void = () => {}): KvCacheConfig {
  let maxModelLen = Math.min(config.maxModelLen ?? m.maxPositionEmbeddings, m.maxPositionEmbeddings);
  if (config.maxModelLen && config.maxModelLen > m.maxPositionEmbeddings)
    warn(`--max-model-len ${config.maxModelLen} exceeds the model's max_position_embeddings ${m.maxPositionEmbeddings}; using ${maxModelLen}`);

  const kvDtype: DType = config.kvCacheDtype !== 'auto' ? config.kvCacheDtype : config.device === 'cpu' ? 'f32' : m.weightDtype;
  const bytesPerToken = kvBytesPerToken(m.numLayers, m.numKvHeads, m.headDim, kvDtype);
  const bytesPerBlock = bytesPerToken * config.blockSize;
  let budget: number;
  if (config.kvCacheMemory) budget = config.kvCacheMemory;
  else if (config.device === 'cpu') budget = Math.min(4 * 2 ** 30, config.cpuKvFraction * m.freeMemoryBytes());
  else budget = config.gpuMemoryUtilization * m.freeMemoryBytes();
  const useful = config.maxNumSeqs * Math.ceil(maxModelLen / config.blockSize) + 1;
  let numBlocks = Math.floor(budget / bytesPerBlock);
  if (!config.kvCacheMemory) numBlocks = Math.min(numBlocks, Math.max(useful, 1024));
  const minBlocks = Math.ceil(maxModelLen / config.blockSize);
  if (numBlocks < minBlocks) {
    if (config.maxModelLen || numBlocks < 1)
      throw new PdsError('PDS_ERR_CONFIG', `KV cache of ${formatGiB(budget)} holds ${numBlocks} blocks of ${config.blockSize} tokens, fewer than one max-length sequence needs (${minBlocks}); raise --kv-cache-memory or lower --max-model-len`);
    const fit = numBlocks * config.blockSize;
    warn(`the KV cache (${formatGiB(budget)}) holds ${fit} tokens, less than the model's ${maxModelLen}: max model len set to ${fit} (raise --kv-cache-memory for more)`);
    maxModelLen = fit;
  }
  return { kvDtype, bytesPerToken, bytesPerBlock, budget, numBlocks, maxModelLen };
}
