// `pdserve proxy`: the disaggregation proxy (src/proxy). Flags match vLLM's disagg_proxy_server.py
// (--prefiller-host/--prefiller-port/--decoder-host/--decoder-port) plus URL lists.
import { Option, type Command } from 'commander';
import { defaultProxyConfig, pairHostsPorts, type ProxyConfig } from '../gateway/config.js';
import { startProxy } from '../proxy/server.js';
import { PdsError } from '../util/errors.js';
import { addEdgeOptions, edgeSettings, type EdgeFlags } from './edge-flags.js';

const collect = (v: string, prev: string[]) => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];
const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number, got ${v}`);
  return n;
};

interface ProxyFlags extends Partial<EdgeFlags> {
  upstreamApiKey?: string;
  host: string;
  port: number;
  prefiller: string[];
  decoder: string[];
  prefillerHost: string[];
  prefillerPort: string[];
  decoderHost: string[];
  decoderPort: string[];
  prefillTimeout: number;
  decodeTimeout: number;
  connectTimeout: number;
  healthInterval: number;
  statsInterval: number;
  maxInflight: number;
  prefillMaxInflight: number;
  localPrefillBelow: number;
  kvServer?: string;
  prefillHeartbeat?: number;
  kvMode?: 'pull' | 'push';
}

/** Flags -> ProxyConfig. No upstream flag at all = vLLM's defaults (localhost:8100 / localhost:8200). */
export function proxyConfigFromFlags(f: ProxyFlags): ProxyConfig {
  let prefillers = [...f.prefiller, ...pairHostsPorts(f.prefillerHost, f.prefillerPort, 'prefiller')];
  let decoders = [...f.decoder, ...pairHostsPorts(f.decoderHost, f.decoderPort, 'decoder')];
  const anyUpstreamFlag = [f.prefiller, f.decoder, f.prefillerHost, f.prefillerPort, f.decoderHost, f.decoderPort].some((l) => l.length);
  if (!anyUpstreamFlag) {
    prefillers = ['http://localhost:8100'];
    decoders = ['http://localhost:8200'];
  }
  if (!decoders.length) throw new PdsError('PDS_ERR_CONFIG', 'give at least one --decoder URL (or --decoder-host/--decoder-port)');
  const edge = f.apiKey ? edgeSettings(f as EdgeFlags, f.host) : null;
  return {
    ...defaultProxyConfig,
    ...(edge ? {
      apiKeys: edge.apiKeys,
      internalKey: edge.secret?.key ?? null,
      listener: edge.listener,
      ...(edge.bodyLimitBytes !== undefined ? { bodyLimitBytes: edge.bodyLimitBytes } : {}),
    } : {}),
    upstreamApiKey: f.upstreamApiKey || null,
    host: f.host,
    port: f.port,
    prefillers,
    decoders,
    prefillTimeoutMs: f.prefillTimeout * 1000,
    decodeTimeoutMs: f.decodeTimeout * 1000,
    connectTimeoutMs: f.connectTimeout * 1000,
    healthIntervalMs: f.healthInterval * 1000,
    statsIntervalMs: f.statsInterval * 1000,
    maxInflight: f.maxInflight,
    prefillMaxInflight: f.prefillMaxInflight,
    localPrefillBelow: f.localPrefillBelow,
    kvServer: f.kvServer ?? null,
    prefillHeartbeatMs: (f.prefillHeartbeat ?? defaultProxyConfig.prefillHeartbeatMs / 1000) * 1000,
    kvMode: f.kvMode ?? 'pull',
  };
}

export function registerProxy(program: Command): void {
  const d = defaultProxyConfig;
  const cmd = program
    .command('proxy')
    .description('disaggregation proxy: prefill on a prefiller (max_tokens 1), then decode on a decoder, relayed')
    .option('--host <host>', 'address to listen on', d.host)
    .option('--port <port>', 'port to listen on', num('--port'), d.port)
    .option('--prefiller <url>', 'prefiller base URL (repeatable, or comma list); none = no prefill leg', collect, [])
    .option('--decoder <url>', 'decoder base URL (repeatable, or comma list)', collect, [])
    .option('--prefiller-host <host>', 'vLLM-style prefiller host(s)', collect, [])
    .option('--prefiller-port <port>', 'vLLM-style prefiller port(s)', collect, [])
    .option('--decoder-host <host>', 'vLLM-style decoder host(s)', collect, [])
    .option('--decoder-port <port>', 'vLLM-style decoder port(s)', collect, [])
    .option('--prefill-timeout <s>', 'max seconds for the prefill leg', num('--prefill-timeout'), d.prefillTimeoutMs / 1000)
    .option('--decode-timeout <s>', 'max seconds the decoder may stay silent (headers or between chunks)', num('--decode-timeout'), d.decodeTimeoutMs / 1000)
    .option('--connect-timeout <s>', 'max seconds to open a connection to an engine', num('--connect-timeout'), d.connectTimeoutMs / 1000)
    .option('--health-interval <s>', 'seconds between health checks of the engines (0 = off)', num('--health-interval'), d.healthIntervalMs / 1000)
    .option('--stats-interval <s>', 'seconds between stats prints (0 = off)', num('--stats-interval'), d.statsIntervalMs / 1000)
    .option('--max-inflight <n>', 'requests in flight beyond which clients get 429 (0 = unlimited)', num('--max-inflight'), d.maxInflight)
    .option('--prefill-max-inflight <n>', 'prefill legs per prefiller; when all are full the decoder prefills locally (0 = unlimited)', num('--prefill-max-inflight'), d.prefillMaxInflight)
    .option('--local-prefill-below <n>', 'prompts smaller than this (token ids, or characters/4) skip the prefill leg (0 = off)', num('--local-prefill-below'), d.localPrefillBelow)
    .option('--kv-server <host:port>', 'kv-server to probe (TCP) and report in /health; down = status "degraded"')
    .option('--prefill-heartbeat <s>', 'while a prefill leg waits, probe the prefiller every this many seconds; 2 misses = frozen: the decoder prefills (0 = off)', num('--prefill-heartbeat'), d.prefillHeartbeatMs / 1000)
    .addOption(new Option('--kv-mode <mode>', 'pull: prefill, then decode pulling the KV (vLLM NIXL); push: both legs at once, the prefiller writes the KV into the decoder as it computes (TcpConnector engines)').choices(['pull', 'push']).default('pull'))
    .option('--upstream-api-key <key>', 'Bearer key sent to the engines (for engines run with their own --api-key); the client\'s is never forwarded');
  addEdgeOptions(cmd, `default ${d.bodyLimitBytes / 2 ** 20} MiB`)
    .action(async (flags: ProxyFlags) => {
      let proxy;
      try {
        proxy = await startProxy(proxyConfigFromFlags(flags));
      } catch (e) {
        console.error(`pdserve proxy: ${(e as Error).message}`);
        process.exit(2);
      }
      const stop = () => {
        void proxy.close().then(() => process.exit(0));
        setTimeout(() => process.exit(0), 5000).unref();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
