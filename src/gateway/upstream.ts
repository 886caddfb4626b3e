// One engine behind the proxy: a keep-alive undici Pool plus its health state.
import { Pool } from 'undici';
import type { Heartbeat } from './heartbeat.js';
import type { CircuitBreaker } from './circuit-breaker.js';

export type Role = 'prefill' | 'decode';

export interface UpstreamOptions {
  connectTimeoutMs: number;
}

/** What an engine reports about itself on /metrics (scraped by the router; null until the first scrape). */
export interface EngineLoad {
  running: number; // vllm:num_requests_running
  waiting: number; // vllm:num_requests_waiting
  kvUsage: number; // vllm:gpu_cache_usage_perc / kv_cache_usage_perc, 0..1
  prefixHits: number; // vllm:gpu_prefix_cache_hits_total (tokens)
  prefixQueries: number; // vllm:gpu_prefix_cache_queries_total (tokens)
  at: number; // Date.now() of the scrape
}

export class Upstream {
  readonly origin: string;
  readonly role: Role;
  readonly pool: Pool;
  /** false after a connect failure or a failed health check; true again after a passing check. */
  healthy = true;
  lastError: string | null = null;
  inflight = 0;
  /** requests already routed here whose decode leg has not started (the router's decode-first routing) */
  reserved = 0;
  /** liveness while legs wait (prefillers, when --prefill-heartbeat is on) */
  heartbeat: Heartbeat | null = null;
  /** scraped engine stats (router); policies read them through policies/policy.ts loadOf */
  engineStats: EngineLoad | null = null;
  /** per-engine circuit breaker (router); null = none (the proxy) */
  breaker: CircuitBreaker | null = null;
  /** metadata from discovery (router): served model names and vllm_router's model label */
  models: string[] = [];
  label: string | null = null;

  constructor(origin: string, role: Role, opts: UpstreamOptions) {
    this.origin = origin;
    this.role = role;
    this.pool = new Pool(origin, {
      connections: 1024,
      pipelining: 1,
      keepAliveTimeout: 4_000,
      connect: { timeout: opts.connectTimeoutMs },
    });
  }

  markDown(reason: string): void {
    this.healthy = false;
    this.lastError = reason;
  }

  markUp(): void {
    this.healthy = true;
    this.lastError = null;
  }

  /** GET /health; resolves true on a 2xx within timeoutMs. Never throws. */
  async probe(timeoutMs: number): Promise<boolean> {
    try {
      const res = await this.pool.request({
        path: '/health',
        method: 'GET',
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.body.dump();
      if (res.statusCode >= 200 && res.statusCode < 300) return true;
      this.lastError = `GET /health answered ${res.statusCode}`;
      return false;
    } catch (e) {
      this.lastError = errorText(e);
      return false;
    }
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }
}

export function errorText(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: string }).code;
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    return [code, e.message, cause?.code].filter(Boolean).join(': ');
  }
  return String(e);
}

const unreachableCodes = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);

const resetCodes = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

/**
 * True when the connection broke (reset, closed by the other side) before any response came: what a
 * request sent on a kept-alive connection to an engine that just died sees.
 */
export function isReset(e: unknown): boolean {
  let cur: unknown = e;
  for (let depth = 0; cur && depth < 4; depth++) {
    const code = (cur as { code?: string }).code;
    if (code && resetCodes.has(code)) return true;
    cur = (cur as { cause?: unknown }).cause;
  }
  return false;
}

/** True when the request never reached the upstream (safe to send it elsewhere). */
export function isUnreachable(e: unknown): boolean {
  let cur: unknown = e;
  for (let depth = 0; cur && depth < 4; depth++) {
    const code = (cur as { code?: string }).code;
    if (code && unreachableCodes.has(code)) return true;
    const errors = (cur as { errors?: unknown[] }).errors; // AggregateError from happy-eyeballs
    if (Array.isArray(errors) && errors.some(isUnreachable)) return true;
    cur = (cur as { cause?: unknown }).cause;
  }
  return false;
}
