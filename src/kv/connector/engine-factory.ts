// The engine's ConnectorFactory backed by the KV layer: KV config (YAML/env) + model identity ->
// a registered connector (PdConnector, alias LMCacheConnectorV1). `pdserve serve` hands
// pdConnectorFactory(--kv-config) to createEngine. The KV config comes from kvConfigPath (--kv-config), else
// PDSERVE_KV_CONFIG_FILE, then PDSERVE_KV_* env overrides. `secret` (the internal secret's key) authenticates
// the engine to the kv-server; without one the engine warns and only talks to a server that has none.
import type { ConnectorContext, ConnectorFactory } from '../../engine/connector/factory.js';
import type { ModelIdentity } from '../chunk-hash.js';
import { loadKvConfig, type KvConfig } from '../config.js';
import { PdsError } from '../../util/errors.js';
import { createConnector, type ConnectorEnv } from './registry.js';

export function identityOf(ctx: ConnectorContext): ModelIdentity {
  const s = ctx.modelConfig.spec;
  return { name: ctx.modelName, architecture: ctx.modelConfig.arch, dtype: s.weightDtype, numLayers: s.numLayers, numKvHeads: s.numKvHeads, headDim: s.headDim, kvDtype: ctx.kvDtype };
}

export function pdConnectorFactory(kvConfigPath?: string | null, config?: KvConfig, env: ConnectorEnv = {}): ConnectorFactory {
  return async (cfg, ctx) => {
    const kv = config ?? loadKvConfig(kvConfigPath);
    if (kv.chunk_size % ctx.blockSize !== 0)
      throw new PdsError('PDS_ERR_CONFIG', `kv config: chunk_size ${kv.chunk_size} must be a multiple of --block-size ${ctx.blockSize}`, 'chunk_size');
    return createConnector(cfg, kv, identityOf(ctx), env);
  };
}

export const kvConnectorFactory: ConnectorFactory = pdConnectorFactory();
