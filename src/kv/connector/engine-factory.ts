// The engine's ConnectorFactory backed by the KV layer: KV config (YAML/env) + model identity ->
// a registered connector. `pdserve serve` hands this to createEngine.
import type { ConnectorFactory } from '../../engine/create-engine.js';
import { loadKvConfig } from '../config.js';
import { createConnector } from './registry.js';

export const kvConnectorFactory: ConnectorFactory = async (cfg, ctx) => {
  const kv = loadKvConfig(process.env.PDSERVE_KV_CONFIG_FILE ?? null);
  if (kv.chunk_size % ctx.blockSize !== 0)
    throw new Error(`kv config: chunk_size ${kv.chunk_size} must be a multiple of --block-size ${ctx.blockSize}`);
  const spec = ctx.modelConfig.spec;
  return createConnector(cfg, kv, {
    name: ctx.modelName,
    architecture: ctx.modelConfig.arch,
    dtype: spec.weightDtype,
    numLayers: spec.numLayers,
    numKvHeads: spec.numKvHeads,
    headDim: spec.headDim,
    kvDtype: ctx.kvDtype,
  });
};
