// How the engine gets its connector: createEngine calls a ConnectorFactory with the parsed
// --kv-transfer-config and what it knows of the model; the KV layer provides the factory
// (src/kv/connector/engine-factory.ts, registry of names in src/kv/connector/registry.ts).
import type { DType } from '../../native/binding.js';
import type { ModelConfig } from '../loader/model-config.js';
import type { KvConnector } from './base.js';
import type { KvTransferConfig } from './types.js';

/** What the engine knows when it builds a connector. */
export interface ConnectorContext {
  /** The model's own name (not a per-instance --served-model-name): it is part of every chunk key. */
  modelName: string;
  modelConfig: ModelConfig;
  kvDtype: DType;
  blockSize: number;
}

/** Builds the connector for --kv-transfer-config; rejects with PdsError PDS_ERR_CONFIG on a bad config. */
export type ConnectorFactory = (cfg: KvTransferConfig, ctx: ConnectorContext) => Promise<KvConnector>;
