// The engine's ConnectorFactory backed by the KV layer: KV config (YAML/env) + model identity ->
// a registered connector (PdConnector, alias LMCacheConnectorV1). `pdserve serve` hands
// kvConnectorFactory to createEngine. The KV config comes from kvConfigPath (--kv-config), else
// PDSERVE_KV_CONFIG_FILE, then PDSERVE_KV_* env overrides. `secret` (the internal secret's key) authenticates
// the engine to the kv-server; without one the engine warns and only talks to a server that has none.
import type { KvConnector } from '../../engine/connector/base.js';
import type { KvTransferConfig } from '../../engine/connector/types.js';
import type { ConnectorFactory } from '../../engine/create-engine.js';
import type { ModelIdentity } from '../chunk-hash.js';
import { loadKvConfig, type KvConfig } from '../config.js';
import { PdsError } from '../../util/errors.js';
import { createConnector, type ConnectorEnv } from './registry.js';

/** What the engine knows when it builds a connector (structurally its ConnectorFactory ctx). */
export interface EngineConnectorContext {
  /** The model's own name (not a per-instance --served-model-name): it is part of every chunk key. */
  modelName: string;
  modelConfig: { arch: string; spec: { numLayers: number; numKvHeads: number; headDim: number; weightDtype: string } };
  kvDtype: string;
  blockSize: number;
}

export function identityOf(ctx: EngineConnectorContext): ModelIdentity {
  const s = ctx.modelConfig.spec;
  return { name: ctx.modelName, architecture: ctx.modelConfig.arch, dtype: s.weightDtype, numLayers: s.numLayers, numKvHeads: s.numKvHeads, headDim: s.headDim, kvDtype: ctx.kvDtype };
}

export function pdConnectorFactory(kvConfigPath?: string | null, config?: KvConfig, env: ConnectorEnv = {}): (cfg: KvTransferConfig, ctx: EngineConnectorContext) => Promise<KvConnector> {
  return async (cfg, ctx) => {
    const kv = config ?? loadKvConfig(kvConfigPath);
    if (kv.chunk_size % ctx.blockSize !== 0)
      throw new PdsError('PDS_ERR_CONFIG', `kv config: chunk_size ${kv.chunk_size} must be a multiple of --block-size ${ctx.blockSize}`, 'chunk_size');
    return createConnector(cfg, kv, identityOf(ctx), env);
  };
}

export const kvConnectorFactory: ConnectorFactory = pdConnectorFactory();
