// Everything one running proxy shares between its routes.
import type { ProxyConfig } from './config.js';
import type { ProxyMetrics } from './metrics.js';
import type { StatsWindow } from './stats-window.js';
import type { UpstreamSet } from './upstream-set.js';
import type { KvServerProbe } from './kv-probe.js';
import type { GatewayHooks } from './hooks.js';
import type { Admission } from './admission.js';

export interface ProxyState {
  config: ProxyConfig;
  prefillers: UpstreamSet; // size 0 = no prefill leg
  decoders: UpstreamSet;
  metrics: ProxyMetrics;
  stats: StatsWindow;
  inflight: number;
  aborters: Set<AbortController>; // one per in-flight generation request; aborted on shutdown
  kvServer: KvServerProbe | null; // --kv-server, reported in /health
  hooks?: GatewayHooks; // the router's; the proxy has none
  admission?: Admission; // the router's bounded queue; the proxy: --max-inflight's plain 429
  prefillRetryBackoffMs?: number; // the router's jittered backoff before a prefill retry
}
