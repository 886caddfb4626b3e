// The two legs of a disaggregated request. Each returns a typed outcome; none throws for upstream
// failures. The client's abort signal is passed in; aborting it aborts the undici request, which
// closes the socket so the engine frees the request's blocks.
import type { Dispatcher } from 'undici';
import { isUnreachable, errorText, type Upstream } from './upstream.js';
import type { UpstreamSet } from './upstream-set.js';
import type { ProxyMetrics } from './metrics.js';
import { getLogger } from '../util/logger.js';

const log = getLogger('proxy');

export interface LegContext {
  path: string; // "/v1/completions" | "/v1/chat/completions"
  requestId: string;
  headers: Record<string, string>; // sent to the engines (content-type, x-request-id; never the client's authorization)
  /** per-attempt headers for a POST of `body` (a fresh internal signature each time); default: headers */
  headersFor?: (body: string) => Record<string, string>;
  clientSignal: AbortSignal;
  metrics: ProxyMetrics;
}

export type PrefillOutcome =
  | { kind: 'ok'; upstream: Upstream; ms: number; kvTransferParams: unknown }
  | { kind: 'reject'; upstream: Upstream; status: number; contentType: string; body: Buffer } // 4xx: relay as is
  | { kind: 'fallback'; reason: 'unreachable' | 'prefill_5xx' | 'busy' }
  | { kind: 'timeout'; upstream: Upstream }
  | { kind: 'aborted' };

const timeoutCodes = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const isTimeout = (e: unknown) => timeoutCodes.has((e as { code?: string })?.code ?? '');

export interface PrefillPolicy {
  timeoutMs: number; // bounds each attempt (headers + body)
  skipUnhealthy: boolean; // true while the health loop runs (it brings them back): no attempt on those marked down
  maxInflight: number; // per prefiller; 0 = unlimited. All full -> fallback 'busy'
}

/**
 * Prefill on one prefiller after another: unreachable ones are skipped (and marked down), a 5xx or a
 * socket error is retried on the next prefiller once, then the caller falls back to decode-only.
 */
export async function runPrefill(set: UpstreamSet, body: string, ctx: LegContext, policy: PrefillPolicy): Promise<PrefillOutcome> {
  const { timeoutMs } = policy;
  let failures = 0;
  let sawFailure = false;
  const all = set.candidates(!policy.skipUnhealthy);
  const candidates = policy.maxInflight > 0 ? all.filter((u) => u.inflight < policy.maxInflight) : all;
  if (all.length && !candidates.length) return { kind: 'fallback', reason: 'busy' };
  for (const up of candidates) {
    if (ctx.clientSignal.aborted) return { kind: 'aborted' };
    const leg = new AbortController();
    const onClientAbort = () => leg.abort(new Error('client disconnected'));
    ctx.clientSignal.addEventListener('abort', onClientAbort, { once: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      leg.abort(new Error('prefill timeout'));
    }, timeoutMs);
    const t0 = performance.now();
    const count = (outcome: string) => ctx.metrics.upstreamRequests.inc({ role: 'prefill', upstream: up.origin, outcome });
    up.inflight++;
    try {
      // undici's own 300 s defaults must not cut in before our total timer
      const res = await up.pool.request({
        path: ctx.path,
        method: 'POST',
        headers: ctx.headersFor ? ctx.headersFor(body) : ctx.headers,
        body,
        signal: leg.signal,
        headersTimeout: timeoutMs + 1000,
        bodyTimeout: timeoutMs + 1000,
      });
      const buf = Buffer.from(await res.body.arrayBuffer());
      const ms = performance.now() - t0;
      up.markUp(); // it answered
      if (res.statusCode >= 200 && res.statusCode < 300) {
        count('ok');
        return { kind: 'ok', upstream: up, ms, kvTransferParams: kvParamsOf(buf) };
      }
      if (res.statusCode >= 400 && res.statusCode < 500) {
        count('4xx');
        return { kind: 'reject', upstream: up, status: res.statusCode, contentType: String(res.headers['content-type'] ?? 'application/json'), body: buf };
      }
      count('5xx');
      log.warn(`prefill on ${up.origin} answered ${res.statusCode} (request ${ctx.requestId})`);
      sawFailure = true;
      if (++failures >= 2) break;
    } catch (e) {
      const kind = failureKind(e, ctx, timedOut);
      count(kind);
      if (kind === 'aborted') return { kind };
      if (kind === 'timeout') return { kind, upstream: up };
      if (kind === 'unreachable') {
        markUnreachable(up, 'prefill', e);
        continue;
      }
      log.warn(`prefill on ${up.origin} failed: ${errorText(e)} (request ${ctx.requestId})`);
      sawFailure = true;
      if (++failures >= 2) break;
    } finally {
      up.inflight--;
      clearTimeout(timer);
      ctx.clientSignal.removeEventListener('abort', onClientAbort);
    }
  }
  return { kind: 'fallback', reason: sawFailure ? 'prefill_5xx' : 'unreachable' };
}

/** Why a leg's request failed, in the order that matters: the client left, the leg timed out, the upstream is gone, other. */
function failureKind(e: unknown, ctx: LegContext, timedOut: boolean): 'aborted' | 'timeout' | 'unreachable' | 'error' {
  if (ctx.clientSignal.aborted) return 'aborted';
  if (timedOut) return 'timeout';
  if (isUnreachable(e)) return 'unreachable';
  return 'error';
}

function markUnreachable(up: Upstream, role: 'prefill' | 'decode', e: unknown): void {
  up.markDown(errorText(e));
  log.warn(`${role} instance ${up.origin} unreachable (${errorText(e)}); trying the next one`);
}

function kvParamsOf(buf: Buffer): unknown {
  try {
    const j = JSON.parse(buf.toString('utf8')) as { kv_transfer_params?: unknown };
    return j && typeof j === 'object' ? j.kv_transfer_params : undefined;
  } catch {
    return undefined;
  }
}

export type DecodeOutcome =
  | { kind: 'ok'; upstream: Upstream; res: Dispatcher.ResponseData }
  | { kind: 'unavailable' } // no decoder reachable
  | { kind: 'timeout'; upstream: Upstream }
  | { kind: 'error'; upstream: Upstream; message: string }
  | { kind: 'aborted' };

/**
 * Sends the decode leg to the first reachable decoder. Resolves once response headers arrived; the
 * caller relays `res.body`. `timeoutMs` bounds the wait for headers and each gap between body chunks.
 */
export async function runDecode(set: UpstreamSet, body: string, ctx: LegContext, timeoutMs: number): Promise<DecodeOutcome> {
  for (const up of set.candidates()) {
    if (ctx.clientSignal.aborted) return { kind: 'aborted' };
    const count = (outcome: string) => ctx.metrics.upstreamRequests.inc({ role: 'decode', upstream: up.origin, outcome });
    try {
      const res = await up.pool.request({
        path: ctx.path,
        method: 'POST',
        headers: ctx.headersFor ? ctx.headersFor(body) : ctx.headers,
        body,
        signal: ctx.clientSignal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      count(res.statusCode < 400 ? 'ok' : res.statusCode < 500 ? '4xx' : '5xx');
      up.markUp(); // it answered
      return { kind: 'ok', upstream: up, res };
    } catch (e) {
      const kind = failureKind(e, ctx, isTimeout(e));
      count(kind);
      if (kind === 'aborted') return { kind };
      if (kind === 'timeout') return { kind, upstream: up };
      if (kind === 'unreachable') {
        markUnreachable(up, 'decode', e);
        continue;
      }
      return { kind: 'error', upstream: up, message: errorText(e) };
    }
  }
  return { kind: 'unavailable' };
}

export { isTimeout };
