// --kv-transfer-config JSON (vLLM's shape) -> KvTransferConfig, validated.
import { z } from 'zod';
import { PdsError } from '../../util/errors.js';
import type { KvTransferConfig } from './types.js';

const schema = z
  .object({
    kv_connector: z.string().min(1),
    kv_role: z.enum(['kv_producer', 'kv_consumer', 'kv_both']),
    engine_id: z.string().optional(),
    kv_buffer_device: z.string().optional(),
    kv_buffer_size: z.number().positive().optional(),
    kv_ip: z.string().optional(),
    kv_port: z.number().int().min(0).max(65535).optional(),
    kv_connector_extra_config: z.record(z.string(), z.unknown()).optional(),
    kv_load_failure_policy: z.enum(['fail', 'recompute']).optional(),
    kv_rank: z.number().int().optional(),
    kv_parallel_size: z.number().int().optional(),
  })
  .strict();

export function parseKvTransferConfig(json: string): KvTransferConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new PdsError('PDS_ERR_CONFIG', `--kv-transfer-config is not valid JSON: ${(e as Error).message}`, 'kv-transfer-config');
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    const field = i.code === 'unrecognized_keys' ? (i as { keys: string[] }).keys[0]! : i.path.join('.');
    throw new PdsError('PDS_ERR_CONFIG', `--kv-transfer-config: ${field}: ${i.code === 'unrecognized_keys' ? 'unknown field' : i.message}`, field);
  }
  return r.data;
}
