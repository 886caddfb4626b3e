// KV connectors by name (vLLM's kv_connector), built from --kv-transfer-config + the KV config + the
// model identity. "LMCacheConnectorV1" is accepted as an alias of "PdConnector" so vLLM + LMCache
// command lines carry over.
import type { KvConnector } from '../../engine/connector/base.js';
import type { KvTransferConfig } from '../../engine/connector/types.js';
import { PdsError } from '../../util/errors.js';
import type { ModelIdentity } from '../chunk-hash.js';
import type { KvConfig } from '../config.js';
import { CpuTier } from '../tiers/cpu-tier.js';
import { DiskTier } from '../tiers/disk-tier.js';
import { PoolTier } from '../tiers/pool-tier.js';
import type { KvTier } from '../tiers/tier.js';
import { PdConnector } from './pd-connector.js';
import { P2pConnector } from './p2p-connector.js';
import { TcpConnector, tcpConnectorOptions } from './tcp-connector.js';

/** What a connector needs beyond its configs: the internal secret (kv-server authentication). */
export interface ConnectorEnv {
  secret?: Buffer | null;
}

export type KvConnectorFactory = (cfg: KvTransferConfig, kv: KvConfig, id: ModelIdentity, env?: ConnectorEnv) => KvConnector;

/** The tiers a KV config asks for, in lookup order: local CPU, local disk, then the kv-server pool. */
export function tiersFromConfig(kv: KvConfig, env: ConnectorEnv = {}): KvTier[] {
  const tiers: KvTier[] = [];
  if (kv.local_cpu && kv.maxLocalCpuBytes > 0) tiers.push(new CpuTier(kv.maxLocalCpuBytes));
  if (kv.disk) tiers.push(new DiskTier(kv.disk.dir, kv.disk.capacityBytes));
  if (kv.remote)
    tiers.push(
      new PoolTier({
        host: kv.remote.host,
        port: kv.remote.port,
        transport: kv.extra_config.remote_transport,
        timeoutMs: kv.extra_config.remote_timeout_secs * 1000,
        backoffMs: kv.extra_config.lookup_backoff_time * 1000,
        secret: env.secret ?? null,
      }),
    );
  return tiers;
}

// transfer_channel cuda_ipc: the point-to-point connector in front of the pool path
const pd: KvConnectorFactory = (cfg, kv, id, env) => {
  const pool = new PdConnector(cfg.kv_role, kv, id, tiersFromConfig(kv, env));
  return kv.transfer_channel === 'cuda_ipc' ? new P2pConnector(cfg.kv_role, kv, pool, cfg.engine_id ? { engineId: cfg.engine_id } : {}) : pool;
};
// engine to engine over the tcp KV transport (pull); needs the internal secret
const tcp: KvConnectorFactory = (cfg, kv, id, env = {}) => {
  if (!env.secret) throw new PdsError('PDS_ERR_CONFIG', 'TcpConnector needs the internal secret (--internal-secret-file or PDSERVE_INTERNAL_SECRET_FILE)', 'internal-secret-file');
  const identity = { model: id.name, kvDtype: id.kvDtype, numLayers: id.numLayers, numKvHeads: id.numKvHeads, headDim: id.headDim };
  return new TcpConnector(cfg.kv_role, tcpConnectorOptions(cfg.kv_connector_extra_config, { key: env.secret, identity, failurePolicy: cfg.kv_load_failure_policy, minRetrieveTokens: kv.min_retrieve_tokens }));
};
const factories = new Map<string, KvConnectorFactory>([
  ['PdConnector', pd],
  ['LMCacheConnectorV1', pd],
  ['TcpConnector', tcp],
]);

export function registerKvConnector(name: string, f: KvConnectorFactory): void {
  factories.set(name, f);
}

export function kvConnectorNames(): string[] {
  return [...factories.keys()];
}

export function createConnector(cfg: KvTransferConfig, kv: KvConfig, id: ModelIdentity, env: ConnectorEnv = {}): KvConnector {
  const f = factories.get(cfg.kv_connector);
  if (!f) throw new PdsError('PDS_ERR_CONFIG', `unknown kv_connector "${cfg.kv_connector}" (known: ${kvConnectorNames().join(', ')})`, 'kv_connector');
  if (!['kv_producer', 'kv_consumer', 'kv_both'].includes(cfg.kv_role))
    throw new PdsError('PDS_ERR_CONFIG', `kv_role must be kv_producer, kv_consumer or kv_both, got "${cfg.kv_role}"`, 'kv_role');
  return f(cfg, kv, id, env);
}
