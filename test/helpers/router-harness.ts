// Starts an in-process router on a free loopback port with background loops effectively off (tests
// call checkHealth / scrapeStats themselves); `over` replaces router fields, `gw` gateway fields.
import { defaultRouterConfig, type Backend, type RouterConfig } from '../../src/router/config.js';
import { startRouter, type RunningRouter } from '../../src/router/server.js';

export function backend(url: string, label: string | null = null, model: string | null = null): Backend {
  return { url, label, model, type: null };
}

export function testRouter(
  backends: Backend[], over: Partial<RouterConfig> = {}, gw: Partial<RouterConfig['gateway']> = {}, sink: (t: string) => void = () => undefined,
): Promise<RunningRouter> {
  return startRouter(
    {
      ...defaultRouterConfig,
      engineStatsIntervalMs: 3_600_000,
      ...over,
      backends,
      gateway: { ...defaultRouterConfig.gateway, host: '127.0.0.1', port: 0, healthIntervalMs: 0, connectTimeoutMs: 1000, ...gw },
    },
    sink,
  );
}
