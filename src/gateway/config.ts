// The proxy's one config type, validated once (normalizeProxyConfig) before anything starts.
import { PdsError } from '../util/errors.js';
import { defaultListenerLimits, type ListenerLimits } from '../util/http-listener.js';

export interface ProxyConfig {
  host: string;
  port: number; // 0 = pick a free port
  prefillers: string[]; // origins, e.g. "http://127.0.0.1:8100"; [] = no prefill leg (colocated routing)
  decoders: string[]; // at least one
  prefillTimeoutMs: number; // whole prefill leg (headers + body)
  decodeTimeoutMs: number; // decode leg: max wait for headers, and max gap between body chunks
  connectTimeoutMs: number;
  healthIntervalMs: number; // background GET /health per upstream; 0 = off
  statsIntervalMs: number; // periodic stats print; 0 = off
  maxInflight: number; // 0 = unlimited; beyond it: 429
  prefillMaxInflight: number; // per prefiller; 0 = unlimited; all full -> the decoder prefills locally
  localPrefillBelow: number; // prompt size (conditional.ts) below which the decoder prefills locally; 0 = off
  bodyLimitBytes: number;
  kvServer: string | null; // "host:port" of the kv-server, probed for /health; null = none
  prefillHeartbeatMs: number; // while a prefill leg waits, GET /health every this often; 2 misses = frozen -> fallback; 0 = off
  apiKeys: string[]; // clients' keys for /v1/* (none = open)
  internalKey: Buffer | null; // signs every upstream request (engines trust it in place of a key)
  upstreamApiKey: string | null; // Bearer key sent upstream (engines run by someone else); never the client's
  listener: Omit<ListenerLimits, 'bodyLimitBytes'>;
  /** pull (default): prefill, then decode with the prefiller's kv_transfer_params; push: both legs at once (push-legs.ts) */
  kvMode?: 'pull' | 'push';
}

export const defaultProxyConfig: Omit<ProxyConfig, 'prefillers' | 'decoders'> = {
  host: '127.0.0.1',
  port: 9000,
  prefillTimeoutMs: 300_000,
  decodeTimeoutMs: 600_000,
  connectTimeoutMs: 5_000,
  healthIntervalMs: 3_000,
  statsIntervalMs: 10_000,
  maxInflight: 0,
  prefillMaxInflight: 0,
  localPrefillBelow: 0,
  bodyLimitBytes: 16 * 1024 * 1024,
  kvServer: null,
  prefillHeartbeatMs: 1_000,
  apiKeys: [],
  internalKey: null,
  upstreamApiKey: null,
  listener: defaultListenerLimits,
  kvMode: 'pull',
};

/** "host:port", "http://host:port[/]" -> "http://host:port" (origin only; paths are not allowed). */
export function normalizeOrigin(raw: string): string {
  const s = raw.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? s : `http://${s}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new PdsError('PDS_ERR_CONFIG', `invalid upstream URL: ${raw}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new PdsError('PDS_ERR_CONFIG', `upstream URL must be http(s): ${raw}`);
  }
  if (u.pathname !== '/' && u.pathname !== '') {
    throw new PdsError('PDS_ERR_CONFIG', `upstream URL must not have a path: ${raw}`);
  }
  if (!u.port) throw new PdsError('PDS_ERR_CONFIG', `upstream URL needs a port: ${raw}`);
  return u.origin;
}

/**
 * vLLM-style host/port lists: each flag repeatable and comma-separated. One host with several ports
 * (or one port with several hosts) pairs it with each; otherwise the lists must have equal length.
 */
export function pairHostsPorts(hosts: string[], ports: string[], what: string): string[] {
  const hs = hosts.flatMap((h) => h.split(',')).map((h) => h.trim()).filter(Boolean);
  const ps = ports.flatMap((p) => p.split(',')).map((p) => p.trim()).filter(Boolean);
  if (!hs.length && !ps.length) return [];
  const H = hs.length ? hs : ['localhost'];
  if (!ps.length) throw new PdsError('PDS_ERR_CONFIG', `--${what}-host given without --${what}-port`);
  const n = Math.max(H.length, ps.length);
  if (H.length !== 1 && ps.length !== 1 && H.length !== ps.length) {
    throw new PdsError('PDS_ERR_CONFIG', `--${what}-host and --${what}-port lists differ in length (${H.length} vs ${ps.length})`);
  }
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const h = H[H.length === 1 ? 0 : i]!;
    const p = ps[ps.length === 1 ? 0 : i]!;
    if (!/^\d+$/.test(p) || Number(p) < 1 || Number(p) > 65535) throw new PdsError('PDS_ERR_CONFIG', `invalid --${what}-port: ${p}`);
    out.push(normalizeOrigin(`${h.includes(':') && !h.startsWith('[') ? `[${h}]` : h}:${p}`));
  }
  return out;
}

/** `allowNoDecoders`: the router with service discovery, whose pools fill later. */
export function normalizeProxyConfig(c: ProxyConfig, allowNoDecoders = false): ProxyConfig {
  const prefillers = c.prefillers.map(normalizeOrigin);
  const decoders = c.decoders.map(normalizeOrigin);
  if (!decoders.length && !allowNoDecoders) throw new PdsError('PDS_ERR_CONFIG', 'at least one decoder is required');
  const nonNeg = (v: number, name: string) => {
    if (!Number.isFinite(v) || v < 0) throw new PdsError('PDS_ERR_CONFIG', `${name} must be a number >= 0, got ${v}`);
    return v;
  };
  for (const [k, v] of [['prefill timeout', c.prefillTimeoutMs], ['decode timeout', c.decodeTimeoutMs], ['connect timeout', c.connectTimeoutMs]] as const) {
    if (!(v > 0)) throw new PdsError('PDS_ERR_CONFIG', `${k} must be > 0`);
  }
  if (!Number.isInteger(c.port) || c.port < 0 || c.port > 65535) throw new PdsError('PDS_ERR_CONFIG', `invalid --port ${c.port}`);
  return {
    ...c,
    prefillers,
    decoders,
    healthIntervalMs: nonNeg(c.healthIntervalMs, 'health interval'),
    statsIntervalMs: nonNeg(c.statsIntervalMs, 'stats interval'),
    maxInflight: Math.floor(nonNeg(c.maxInflight, 'max inflight')),
    prefillMaxInflight: Math.floor(nonNeg(c.prefillMaxInflight, 'prefill max inflight')),
    localPrefillBelow: nonNeg(c.localPrefillBelow, 'local prefill threshold'),
    kvServer: c.kvServer ?? null,
    prefillHeartbeatMs: nonNeg(c.prefillHeartbeatMs ?? 0, 'prefill heartbeat'),
  };
}
