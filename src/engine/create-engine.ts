// From a resolved model to a running EngineClient: tokenizer, native model (weights), KV cache
// sized from memory, connector, LLMEngine and its async front end.
import type { ResolvedModel } from '../models/types.js';
import type { DType, NativeModel } from '../native/binding.js';
import type { KvCacheAccess, KvConnector } from './connector/base.js';
import type { KvTransferConfig } from './connector/types.js';
import type { ConnectorFactory } from './connector/factory.js';
import { loadTokenizer, type LoadTokenizerOptions } from '../tokenizer/load.js';
import { IncrementalDetokenizer } from '../tokenizer/incremental-detokenizer.js';
import { loadModel } from './loader/load-model.js';
import { warmUp } from './warm-up.js';
import { resolveKvCacheConfig } from './kv-cache-config.js';
import type { ModelConfig } from './loader/model-config.js';
import { parseEngineConfig, type EngineConfig, type EngineConfigInput } from './config.js';
import { LLMEngine } from './llm-engine.js';
import { AsyncLLM } from './async-llm.js';
import { PdsError } from '../util/errors.js';
import { formatGiB } from '../util/size.js';
import { getLogger } from '../util/logger.js';

const log = getLogger('engine');

export interface CreateEngineOptions {
  resolved: ResolvedModel;
  servedModelName?: string;
  engine: EngineConfigInput;
  kvTransferConfig?: KvTransferConfig;
  connectorFactory?: ConnectorFactory;
}

export interface CreatedEngine {
  client: AsyncLLM;
  engine: LLMEngine;
  native: NativeModel;
  config: EngineConfig;
  modelConfig: ModelConfig;
  maxModelLen: number;
  connector: KvConnector | null;
  /** the files the tokenizer came from (tokenizer workers load their own copy from them) */
  tokenizerSource: LoadTokenizerOptions;
}


/** The connector's view of the native KV cache; peer handles are imported once each (keyed by their bytes). */
export function kvCacheAccess(native: NativeModel, blockSize: number, bytesPerToken: number): KvCacheAccess {
  const access: KvCacheAccess = {
    blockSize,
    bytesPerToken,
    gather: (ids, n, dst) => native.kvGather(ids, n, dst),
    scatter: (ids, n, src) => native.kvScatter(ids, n, src),
  };
  // in-place host view of the KV cache (cpu backend): the tcp KV transport reads and writes blocks there
  if (native.kvHostRegion) access.hostRegion = () => native.kvHostRegion!() ?? null;
  // peer transfer only where the device has it (the cpu backend's methods throw "not supported")
  if (native.deviceName.startsWith('cuda'))
    access.registerHost = (view) =>
      native.registerHostMemory(view)
        ? () => {
            try {
              native.unregisterHostMemory(view);
            } catch {
              /* model disposed: the backend released it */
            }
          }
        : null;
  if (native.deviceName.startsWith('cuda') && native.kvExportIpc && native.kvImportPeer && native.kvCopyFromPeer) {
    const peers = new Map<string, number>();
    access.exportPeerHandle = () => native.kvExportIpc!();
    access.copyFromPeer = async (handle, src, dst) => {
      const key = Buffer.from(handle.buffer, handle.byteOffset, handle.byteLength).toString('base64');
      let peer = peers.get(key);
      if (peer === undefined) {
        peer = native.kvImportPeer!(handle);
        peers.set(key, peer);
      }
      await native.kvCopyFromPeer!(peer, src, dst);
    };
  }
  return access;
}

/**
 * Background KV saves (LLMEngine overlapKvSaves): on by default where the forward and KV transfers run side by
 * side (cuda: compute and copy streams); PDSERVE_OVERLAP_KV_SAVE=1 / 0 forces it on / off (measurements, tests).
 */
export function overlapKvSaves(deviceName: string): boolean {
  const env = process.env.PDSERVE_OVERLAP_KV_SAVE;
  if (env === '1' || env === '0') return env === '1';
  return deviceName.startsWith('cuda');
}

/**
 * Whether grammar rows are masked and sampled by the backend. The CPU backend: yes. CUDA: not until its
 * token-mask kernel (native/cuda/token-mask.cu) has passed the kernel tests on a GPU — it was written in a
 * session whose device never started — so the host path (logits copied out, masked, sampled) stays the
 * default there; PDSERVE_GRAMMAR_MASK_DEVICE=1 turns the device path on for that check.
 */
export function backendGrammarMasks(deviceName: string): boolean {
  return !deviceName.startsWith('cuda') || process.env.PDSERVE_GRAMMAR_MASK_DEVICE === '1';
}

export async function createEngine(o: CreateEngineOptions): Promise<CreatedEngine> {
  const config = parseEngineConfig(o.engine);
  const r = o.resolved;
  const t0 = performance.now();
  const tokenizerSource: LoadTokenizerOptions = { tokenizerJsonPath: r.tokenizerJsonPath, tokenizerConfigPath: r.tokenizerConfigPath, generationConfig: r.generationConfig };
  const tokenizer = await loadTokenizer(tokenizerSource);
  const weightDtype = config.weightDtype === 'auto' ? undefined : config.weightDtype;
  let loaded;
  try {
    loaded = await loadModel({ dir: r.dir, config: r.config, weights: r.weights, device: config.device, threads: config.threads, weightDtype, dummySeed: config.seed });
  } catch (e) {
    if (e instanceof PdsError) throw e;
    throw new PdsError('PDS_ERR_MODEL_LOAD', `cannot load model ${r.name}: ${(e as Error).message}`);
  }
  const { model: native, config: modelConfig } = loaded;
  const spec = modelConfig.spec;
  const name = o.servedModelName ?? r.name;
  if (r.description && r.weights !== 'dummy') log.info(`${name}: ${r.description}`);
  log.info(`Loaded ${name} (${modelConfig.arch}, ${spec.numLayers} layers, ${spec.weightDtype} weights, ${formatGiB(native.weightBytes())}) on ${native.deviceName} in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  if (r.weights === 'dummy') log.warn(`${name} has RANDOM weights (${r.isDemo ? 'built-in demo model' : '--load-format dummy'}): its text is meaningless; use it to test plumbing and speed`);

  const kc = resolveKvCacheConfig(config, { ...spec, maxPositionEmbeddings: modelConfig.maxPositionEmbeddings, freeMemoryBytes: () => native.freeMemoryBytes() }, (w) => log.warn(w));
  const { kvDtype, bytesPerToken, bytesPerBlock, numBlocks, maxModelLen } = kc;
  native.allocKvCache(numBlocks, config.blockSize, kvDtype);
  log.info(`KV cache: ${numBlocks} blocks x ${config.blockSize} tokens (${numBlocks * config.blockSize} tokens, ${kvDtype}, ${formatGiB(numBlocks * bytesPerBlock)}); max model len ${maxModelLen}`);
  if (native.deviceName.startsWith('cuda')) {
    const ms = await warmUp(native, { blockSize: config.blockSize, numBlocks, maxNumBatchedTokens: config.maxNumBatchedTokens });
    log.info(`warm-up forward (${Math.min(config.maxNumBatchedTokens, numBlocks * config.blockSize)} tokens) in ${ms.toFixed(0)} ms`);
  }

  let connector: KvConnector | null = null;
  if (o.kvTransferConfig) {
    if (!o.connectorFactory) throw new PdsError('PDS_ERR_CONFIG', 'a --kv-transfer-config was given but no connector is available');
    connector = await o.connectorFactory(o.kvTransferConfig, { modelName: r.name, modelConfig, kvDtype, blockSize: config.blockSize });
    connector.registerKvCache(kvCacheAccess(native, config.blockSize, bytesPerToken));
    log.info(`KV connector ${o.kvTransferConfig.kv_connector} as ${o.kvTransferConfig.kv_role}`);
  }

  const engine = new LLMEngine({
    config,
    model: native,
    numBlocks,
    vocabSize: spec.vocabSize,
    maxModelLen,
    eosTokenIds: tokenizer.eosTokenIds.length ? tokenizer.eosTokenIds : modelConfig.eosTokenIds,
    connector,
    overlapKvSaves: overlapKvSaves(native.deviceName),
    backendGrammarMasks: backendGrammarMasks(native.deviceName),
  });
  const client = new AsyncLLM(
    engine,
    tokenizer,
    {
      name,
      root: r.dir,
      maxModelLen,
      vocabSize: spec.vocabSize,
      dummyWeights: r.weights === 'dummy',
      description: r.weights === 'dummy'
        ? `${name} with RANDOM weights (${r.isDemo ? 'demo model' : 'load-format dummy'})`
        : r.description ?? `${name} (${modelConfig.arch})`,
    },
    (skipSpecialTokens, promptIds) => new IncrementalDetokenizer(tokenizer, { skipSpecialTokens, promptIds }),
    connector,
  );
  return { client, engine, native, config, modelConfig, maxModelLen, connector, tokenizerSource };
}
