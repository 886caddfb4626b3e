// Everything one running proxy shares between its routes.
import type { ProxyConfig } from './config.js';
import type { ProxyMetrics } from './metrics.js';
import type { StatsWindow } from './stats-window.js';
import type { UpstreamSet } from './upstream-set.js';
import type { KvServerProbe } from './kv-probe.js';

export interface ProxyState {
  config: ProxyConfig;
  prefillers: UpstreamSet; // size 0 = no prefill leg
  decoders: UpstreamSet;
  metrics: ProxyMetrics;
  stats: StatsWindow;
  inflight: number;
  aborters: Set<AbortController>; // one per in-flight generation request; aborted on shutdown
  kvServer: KvServerProbe | null; // --kv-server, reported in /health
}
