// The adapter the engine registers: its ConnectorFactory signature (src/engine/create-engine.ts) ->
// createConnector. Usage in the engine's connector registry:
//   registerConnector('PdConnector', pdConnectorFactory(kvConfigPath));   // and 'LMCacheConnectorV1'
// The KV config comes from kvConfigPath (--kv-config), else PDSERVE_KV_CONFIG_FILE, then PDSERVE_KV_* env.
import type { KvConnector } from '../../engine/connector/base.js';
import type { KvTransferConfig } from '../../engine/connector/types.js';
import type { ModelIdentity } from '../chunk-hash.js';
import { loadKvConfig, type KvConfig } from '../config.js';
import { createConnector } from './registry.js';

/** What the engine knows when it builds a connector (structurally its ConnectorFactory ctx). */
export interface EngineConnectorContext {
  /** Use the model's own name (not a per-instance --served-model-name): it is part of every chunk key. */
  modelName: string;
  modelConfig: { arch: string; spec: { numLayers: number; numKvHeads: number; headDim: number; weightDtype: string } };
  kvDtype: string;
  blockSize: number;
}

export function identityOf(ctx: EngineConnectorContext): ModelIdentity {
  const s = ctx.modelConfig.spec;
  return { name: ctx.modelName, architecture: ctx.modelConfig.arch, dtype: s.weightDtype, numLayers: s.numLayers, numKvHeads: s.numKvHeads, headDim: s.headDim, kvDtype: ctx.kvDtype };
}

export function pdConnectorFactory(kvConfigPath?: string | null, config?: KvConfig): (cfg: KvTransferConfig, ctx: EngineConnectorContext) => Promise<KvConnector> {
  return async (cfg, ctx) => createConnector(cfg, config ?? loadKvConfig(kvConfigPath), identityOf(ctx));
}
