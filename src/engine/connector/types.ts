// vLLM's --kv-transfer-config JSON and the NIXL-style per-request params.
export interface KvTransferConfig {
  kv_connector: string; // registry name, e.g. "PdConnector"
  kv_role: 'kv_producer' | 'kv_consumer' | 'kv_both';
  engine_id?: string;
  kv_buffer_device?: string;
  kv_buffer_size?: number;
  kv_ip?: string;
  kv_port?: number;
  kv_connector_extra_config?: Record<string, unknown>;
  kv_load_failure_policy?: 'fail' | 'recompute';
}

export type { KvTransferParams } from './transfer-params.js';
