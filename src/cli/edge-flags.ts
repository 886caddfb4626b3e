// Flags every pdserve HTTP listener shares (serve, proxy): credentials and listener limits.
//   --api-key KEY            repeatable or comma list; else $PDSERVE_API_KEY, else $VLLM_API_KEY
//   --internal-secret-file P else $PDSERVE_INTERNAL_SECRET_FILE (pdserve up sets it)
//   --max-request-body-bytes SIZE, --timeout-keep-alive S (uvicorn's name), --http-headers-timeout S,
//   --http-request-timeout S (whole request incl. body: cuts slow bodies), --max-connections N
import type { Command } from 'commander';
import { resolveApiKeys } from '../security/api-key.js';
import { resolveInternalSecret, type InternalSecret } from '../security/internal-secret.js';
import { defaultListenerLimits, type ListenerLimits } from '../util/http-listener.js';
import { getLogger } from '../util/logger.js';
import { parseSize } from '../util/size.js';
import { intOption, numOption } from './flags.js';

const log = getLogger('edge');
const collectList = (v: string, prev: string[]) => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];

export function addEdgeOptions(cmd: Command, bodyLimitHelp: string): Command {
  const d = defaultListenerLimits;
  return cmd
    .option('--api-key <key>', 'require Authorization: Bearer KEY on /v1/* (repeatable or comma list; env PDSERVE_API_KEY / VLLM_API_KEY)', collectList, [])
    .option('--internal-secret-file <path>', 'the deployment\'s internal secret (mode 0600); env PDSERVE_INTERNAL_SECRET_FILE')
    .option('--max-request-body-bytes <size>', `largest request body, e.g. 8M (${bodyLimitHelp}); larger gets 413`)
    .option('--timeout-keep-alive <s>', 'close a kept-alive connection idle this long', numOption('--timeout-keep-alive', 0), d.keepAliveTimeoutMs / 1000)
    .option('--http-headers-timeout <s>', 'close a connection that has not sent its request headers within this time', numOption('--http-headers-timeout', 0.1), d.headersTimeoutMs / 1000)
    .option('--http-request-timeout <s>', 'close a connection that has not sent its whole request (body too) within this time', numOption('--http-request-timeout', 0.1), d.requestTimeoutMs / 1000)
    .option('--max-connections <n>', 'open connections beyond which new ones are closed at once (0 = unlimited)', intOption('--max-connections', 0), d.maxConnections);
}

export interface EdgeFlags {
  apiKey: string[];
  internalSecretFile?: string;
  maxRequestBodyBytes?: string;
  timeoutKeepAlive: number;
  httpHeadersTimeout: number;
  httpRequestTimeout: number;
  maxConnections: number;
}

export interface EdgeSettings {
  apiKeys: string[];
  secret: InternalSecret | null;
  bodyLimitBytes: number | undefined; // undefined = the listener's own default
  listener: Omit<ListenerLimits, 'bodyLimitBytes'>;
}

export function edgeSettings(f: EdgeFlags, host: string): EdgeSettings {
  const apiKeys = resolveApiKeys(f.apiKey);
  const secret = resolveInternalSecret(f.internalSecretFile);
  const loopback = host === 'localhost' || host === '::1' || host.startsWith('127.');
  if (!loopback && !apiKeys.length) log.warn(`listening on ${host} (beyond loopback) without --api-key: anyone who can reach it may use it`);
  return {
    apiKeys,
    secret,
    bodyLimitBytes: f.maxRequestBodyBytes ? parseSize(f.maxRequestBodyBytes) : undefined,
    listener: {
      keepAliveTimeoutMs: f.timeoutKeepAlive * 1000,
      headersTimeoutMs: f.httpHeadersTimeout * 1000,
      requestTimeoutMs: f.httpRequestTimeout * 1000,
      maxConnections: f.maxConnections,
      checkIntervalMs: Math.max(100, Math.min(1000, (f.httpHeadersTimeout * 1000) / 4)),
    },
  };
}
