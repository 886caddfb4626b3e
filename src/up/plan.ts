// What `pdserve up` starts: a pure function from the options to child specs (no I/O).
import { join } from 'node:path';
import { PdsError } from '../util/errors.js';
import { INTERNAL_SECRET_FILE_ENV } from '../security/internal-secret.js';
import { kvEventsPlan } from './kv-events-plan.js';

/** Env var the proxy reads its users' API key from (src/security/api-key.ts); never given to engines. */
export const API_KEY_ENVS = ['PDSERVE_API_KEY', 'VLLM_API_KEY'] as const;

/**
 * Which child CLIs take `--internal-secret-file PATH`. Every child also gets the path in
 * PDSERVE_INTERNAL_SECRET_FILE, which each CLI falls back to; flip an entry once its CLI has the flag.
 */
export const SECRET_FLAG_KNOWN: Record<ChildKind, boolean> = { 'kv-server': false, prefiller: false, decoder: false, proxy: false };

export type ChildKind = 'kv-server' | 'prefiller' | 'decoder' | 'proxy';

export interface UpOptions {
  model: string | null; // null = the engine's default model
  prefill: number; // 0 = colocated baseline (no kv-server, no prefill leg)
  decode: number; // >= 1
  host: string; // where the proxy listens
  port: number; // proxy port
  device: string | null; // --device for every engine, unless per-role lists are given
  prefillDevices: string[]; // CUDA indices; prefiller i gets cuda:<list[i % len]>
  decodeDevices: string[];
  kvPoolSize: string; // "1G"
  kvPoolFile: string; // the kv-server's --pool-file; removed on shutdown
  chunkSize: number;
  kvTransfer?: 'pool' | 'cuda_ipc' | 'tcp'; // pool/cuda_ipc: the engines' transfer_channel; tcp: TcpConnector, no kv-server
  kvMode?: 'pull' | 'push'; // with tcp: the proxy's --kv-mode (push: both legs at once)
  loadFormat: string | null;
  runDir: string;
  engineArgs: string[]; // appended to every engine's command line
  proxyArgs: string[]; // appended to the proxy's command line
  router?: string | null; // set: the front process is `pdserve router --routing-logic THIS` instead of the proxy
  healthTimeoutMs: number;
  graceMs: number; // SIGTERM -> SIGKILL
  internalSecretFile?: string | null; // the run directory's secret file, for every child
  apiKey?: string | null; // the users' key: the proxy's only (through PDSERVE_API_KEY)
  kvProbe?: boolean; // the proxy gets --kv-server HOST:PORT to report the kv-server in /health (default true)
}

export interface ChildSpec {
  name: string; // "kv-server", "prefiller-0", "decoder-1", "proxy"
  kind: ChildKind;
  port: number;
  args: string[]; // after the CLI entry (`serve ...`, `kv-server ...`, `proxy ...`)
  env: Record<string, string | null>; // over up's own environment; null = removed
  logFile: string;
  /** how readiness is checked: an HTTP GET /health, or a TCP connect */
  ready: 'http' | 'tcp';
}

export interface Ports {
  kv: number | null;
  prefill: number[];
  decode: number[];
  /** KV-event PUB and replay ports per engine (prefillers, then decoders), when kvEventsWanted(o) */
  kvEvents?: [number, number][];
}

/** Whether the engines publish KV events under up (kv-events-plan.ts); the launcher then finds 2 ports per engine. */
export function kvEventsWanted(o: UpOptions): boolean {
  return kvEventsPlan(o.router, o.proxyArgs, o.engineArgs) !== null;
}

export interface Plan {
  kvServer: ChildSpec | null;
  engines: ChildSpec[];
  proxy: ChildSpec;
  files: Record<string, string>; // path -> contents, written before anything starts
}

export function deviceFor(o: UpOptions, kind: 'prefiller' | 'decoder', i: number): string | null {
  const list = kind === 'prefiller' ? o.prefillDevices : o.decodeDevices;
  if (list.length) return `cuda:${list[i % list.length]}`;
  return o.device;
}

export function makePlan(o: UpOptions, ports: Ports, kvYamlFor: (role: 'prefiller' | 'decoder', remoteUrl: string) => string): Plan {
  const files: Record<string, string> = {};
  const disagg = o.prefill > 0;
  let kvServer: ChildSpec | null = null;
  const tcp = o.kvTransfer === 'tcp'; // engine to engine over the tcp KV transport: no kv-server
  if (o.kvMode === 'push' && !tcp) throw new PdsError('PDS_ERR_CONFIG', '--kv-mode push needs --kv-transfer tcp', 'kv-mode');
  if (disagg && !tcp) {
    const kvPort = ports.kv!;
    kvServer = {
      name: 'kv-server',
      kind: 'kv-server',
      port: kvPort,
      args: ['kv-server', '--host', '127.0.0.1', '--port', String(kvPort), '--pool-size', o.kvPoolSize, '--pool-file', o.kvPoolFile],
      env: {},
      logFile: join(o.runDir, 'kv-server.log'),
      ready: 'tcp',
    };
    const remoteUrl = `pdkv://127.0.0.1:${kvPort}`;
    files[join(o.runDir, 'prefiller.yaml')] = kvYamlFor('prefiller', remoteUrl);
    files[join(o.runDir, 'decoder.yaml')] = kvYamlFor('decoder', remoteUrl);
  }
  const kvEv = kvEventsPlan(o.router, o.proxyArgs, o.engineArgs);
  if (kvEv && (ports.kvEvents?.length ?? 0) < ports.prefill.length + ports.decode.length) throw new Error('makePlan: KV events need two ports per engine (Ports.kvEvents)');
  const engine = (kind: 'prefiller' | 'decoder', i: number, port: number): ChildSpec => {
    const args = ['serve', ...(o.model ? [o.model] : []), '--host', '127.0.0.1', '--port', String(port)];
    if (disagg && tcp) args.push('--kv-transfer-config', JSON.stringify({ kv_connector: 'TcpConnector', kv_role: kind === 'prefiller' ? 'kv_producer' : 'kv_consumer' }));
    else if (disagg) {
      const role = kind === 'prefiller' ? 'kv_producer' : 'kv_consumer';
      args.push('--kv-transfer-config', JSON.stringify({ kv_connector: 'PdConnector', kv_role: role }));
      args.push('--kv-config', join(o.runDir, `${kind}.yaml`));
    }
    const dev = deviceFor(o, kind, i);
    if (dev) args.push('--device', dev);
    if (o.loadFormat) args.push('--load-format', o.loadFormat);
    if (kvEv) args.push(...kvEv.perEngine(kind === 'prefiller' ? i : ports.prefill.length + i, ports.kvEvents![kind === 'prefiller' ? i : ports.prefill.length + i]!));
    args.push(...(kvEv ? kvEv.engineArgs : o.engineArgs));
    return { name: `${kind}-${i}`, kind, port, args, env: {}, logFile: join(o.runDir, `${kind}-${i}.log`), ready: 'http' };
  };
  const engines = [
    ...ports.prefill.map((p, i) => engine('prefiller', i, p)),
    ...ports.decode.map((p, i) => engine('decoder', i, p)),
  ];
  const proxyArgs = o.router ? [...routerArgs(o, ports), ...(kvEv ? kvEv.routerArgs(ports.kvEvents!) : [])] : ['proxy', '--host', o.host, '--port', String(o.port)];
  if (!o.router) {
    for (const p of ports.prefill) proxyArgs.push('--prefiller', `http://127.0.0.1:${p}`);
    for (const p of ports.decode) proxyArgs.push('--decoder', `http://127.0.0.1:${p}`);
    if (kvServer && o.kvProbe !== false) proxyArgs.push('--kv-server', `127.0.0.1:${kvServer.port}`);
    if (tcp && o.kvMode === 'push') proxyArgs.push('--kv-mode', 'push');
  }
  proxyArgs.push(...o.proxyArgs);
  const proxy: ChildSpec = { name: 'proxy', kind: 'proxy', port: o.port, args: proxyArgs, env: {}, logFile: join(o.runDir, 'proxy.log'), ready: 'http' };
  for (const c of [...(kvServer ? [kvServer] : []), ...engines, proxy]) {
    // the users' key reaches the proxy only; engines behind it must not demand it
    for (const k of API_KEY_ENVS) c.env[k] = null;
    if (o.internalSecretFile) {
      c.env[INTERNAL_SECRET_FILE_ENV] = o.internalSecretFile;
      if (SECRET_FLAG_KNOWN[c.kind]) c.args.splice(1, 0, '--internal-secret-file', o.internalSecretFile);
    }
  }
  if (o.apiKey) proxy.env.PDSERVE_API_KEY = o.apiKey; // in the env, not argv: /proc/PID/cmdline is world-readable
  return { kvServer, engines, proxy, files };
}

/** `pdserve router` in the proxy's place: static backends labelled prefill/decode (up's engines). */
function routerArgs(o: UpOptions, ports: { prefill: number[]; decode: number[] }): string[] {
  const urls = [...ports.prefill, ...ports.decode].map((p) => `http://127.0.0.1:${p}`);
  const labels = [...ports.prefill.map(() => 'prefill'), ...ports.decode.map(() => 'decode')];
  const args = ['router', '--host', o.host, '--port', String(o.port), '--service-discovery', 'static',
    '--static-backends', urls.join(','), '--static-model-labels', labels.join(','), '--routing-logic', o.router!];
  if (o.router === 'disaggregated_prefill') args.push('--prefill-model-labels', 'prefill', '--decode-model-labels', 'decode');
  return args;
}
