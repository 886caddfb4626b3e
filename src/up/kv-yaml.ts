// The KV config files `up` writes for its engines (fields of src/kv/config.ts, LMCache names).
import YAML from 'yaml';

export interface KvYamlOptions {
  remoteUrl: string; // pdkv://127.0.0.1:PORT
  chunkSize: number;
  role: 'prefiller' | 'decoder';
  /** transfer_channel: pool (default) or cuda_ipc (GPU to GPU, the pool path as fallback) */
  transferChannel?: 'pool' | 'cuda_ipc';
}

export function kvYaml(o: KvYamlOptions): string {
  const doc = {
    chunk_size: o.chunkSize,
    // the prefiller only produces: its chunks go to the kv-server; the decoder keeps a local copy too
    local_cpu: o.role === 'decoder',
    remote_url: o.remoteUrl,
    save_unfull_chunk: true,
    blocking_timeout_secs: 10,
    transfer_channel: o.transferChannel ?? 'pool',
    extra_config: { lookup_backoff_time: 0.1 },
  };
  return `# written by pdserve up for the ${o.role}s\n${YAML.stringify(doc)}`;
}
