// The two legs of a disaggregated request. Each returns a typed outcome; none throws for upstream
// failures. The client's abort signal is passed in; aborting it aborts the undici request, which
// closes the socket so the engine frees the request's blocks.
// Retries (one budget per request, LegContext.retry, at most one retry overall):
// - a connect failure (the request never reached the engine) moves on to the next engine for free;
// - a connection reset or closed before any response byte (a kept-alive connection to an engine that
//   just died) is retried once on another engine of the same role;
// - a failure the request may have caused (a 4xx; a 5xx, a freeze or a crash while serving it) is never
//   sent to a second engine of that role: a failed prefill falls back to the decoder prefilling it
//   itself, which spends the budget; with no budget left the request fails (502).
import type { Dispatcher } from 'undici';
import { isReset, isUnreachable, errorText, type Upstream } from './upstream.js';
import type { UpstreamSet } from './upstream-set.js';
import type { ProxyMetrics } from './metrics.js';
import { getLogger } from '../util/logger.js';
import type { RouteRequest } from './policies/policy.js';

const log = getLogger('proxy');

export interface LegContext {
  path: string; // "/v1/completions" | "/v1/chat/completions"
  requestId: string;
  headers: Record<string, string>; // sent to the engines (content-type, x-request-id; never the client's authorization)
  /** per-attempt headers for a POST of `body` (a fresh internal signature each time); default: headers */
  headersFor?: (body: string) => Record<string, string>;
  clientSignal: AbortSignal;
  metrics: ProxyMetrics;
  retry: { left: number }; // retries this request may still spend (starts at 1)
  /** what the pools' routing policies see (headers, body, tokens); absent = order by policy alone */
  route?: RouteRequest;
  /** narrows each pool (the router: engines serving the requested model) */
  allow?: (u: Upstream) => boolean;
  /** the decode pool's order picked before any leg (the router's decode-first routing); the decode leg
   *  tries it (healthy ones first, engines since removed skipped) instead of asking the policy again */
  decodeOrder?: Upstream[];
  /** told each time a prefill attempt starts on an upstream (the router's request record) */
  onPrefillAttempt?: (u: Upstream) => void;
}

export type FallbackReason = 'unreachable' | 'prefill_5xx' | 'prefill_frozen' | 'prefill_error' | 'busy';

export type PrefillOutcome =
  | { kind: 'ok'; upstream: Upstream; ms: number; kvTransferParams: unknown }
  | { kind: 'reject'; upstream: Upstream; status: number; contentType: string; body: Buffer } // 4xx: relay as is
  | { kind: 'fallback'; reason: FallbackReason }
  | { kind: 'failed'; upstream: Upstream; message: string } // failed and no retry left: 502
  | { kind: 'timeout'; upstream: Upstream }
  | { kind: 'aborted' };

const timeoutCodes = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const isTimeout = (e: unknown) => timeoutCodes.has((e as { code?: string })?.code ?? '');

export interface PrefillPolicy {
  timeoutMs: number; // bounds each attempt (headers + body)
  skipUnhealthy: boolean; // true while the health loop runs (it brings them back): no attempt on those marked down
  maxInflight: number; // per prefiller; 0 = unlimited. All full -> fallback 'busy'
  /** before the one retry after a reset: wait retryBackoffMs x [0.5, 1.5) (jitter); 0 = at once */
  retryBackoffMs?: number;
}

/** Spends the request's retry; false when none is left. */
function spendRetry(ctx: LegContext, role: 'prefill' | 'decode'): boolean {
  if (ctx.retry.left <= 0) return false;
  ctx.retry.left--;
  ctx.metrics.retries.inc({ role });
  return true;
}

/**
 * Prefill on a prefiller. Unreachable ones are skipped (and marked down); a reset before any answer
 * is retried once on the next; a 5xx, a freeze (heartbeat), another error: the caller falls back to
 * decode-only (that spends the retry; none left = 'failed').
 */
export async function runPrefill(set: UpstreamSet, body: string, ctx: LegContext, policy: PrefillPolicy): Promise<PrefillOutcome> {
  const { timeoutMs } = policy;
  const all = set.candidates(!policy.skipUnhealthy, ctx.route, ctx.allow);
  const candidates = policy.maxInflight > 0 ? all.filter((u) => u.inflight < policy.maxInflight) : all;
  if (all.length && !candidates.length) return { kind: 'fallback', reason: 'busy' };
  // the request failed on `up`: decode-only if the budget allows, else a 502
  const failOver = (up: Upstream, reason: FallbackReason, message: string): PrefillOutcome =>
    spendRetry(ctx, 'prefill') ? { kind: 'fallback', reason } : { kind: 'failed', upstream: up, message };
  for (const up of candidates) {
    if (ctx.clientSignal.aborted) return { kind: 'aborted' };
    if (up.breaker && !up.breaker.allows()) continue;
    const leg = new AbortController();
    const onClientAbort = () => leg.abort(new Error('client disconnected'));
    ctx.clientSignal.addEventListener('abort', onClientAbort, { once: true });
    let timedOut = false;
    let frozen = false;
    const timer = setTimeout(() => {
      timedOut = true;
      leg.abort(new Error('prefill timeout'));
    }, timeoutMs);
    const unwatch = up.heartbeat?.watch(() => {
      frozen = true;
      leg.abort(new Error('prefiller unresponsive'));
    });
    const t0 = performance.now();
    const count = (outcome: string) => ctx.metrics.upstreamRequests.inc({ role: 'prefill', upstream: up.origin, outcome });
    ctx.onPrefillAttempt?.(up);
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
      if (res.statusCode < 500) up.breaker?.success();
      else up.breaker?.failure();
      if (res.statusCode >= 200 && res.statusCode < 300) {
        count('ok');
        set.policy.onRouted?.(up, ctx.route);
        return { kind: 'ok', upstream: up, ms, kvTransferParams: kvParamsOf(buf) };
      }
      if (res.statusCode >= 400 && res.statusCode < 500) {
        count('4xx');
        return { kind: 'reject', upstream: up, status: res.statusCode, contentType: String(res.headers['content-type'] ?? 'application/json'), body: buf };
      }
      count('5xx');
      log.warn(`prefill on ${up.origin} answered ${res.statusCode} (request ${ctx.requestId}); not retried on another prefiller`);
      return failOver(up, 'prefill_5xx', `prefill on ${up.origin} answered ${res.statusCode}`);
    } catch (e) {
      const kind = frozen && !ctx.clientSignal.aborted ? 'frozen' : failureKind(e, ctx, timedOut);
      count(kind);
      if (kind === 'aborted') return { kind };
      up.breaker?.failure();
      if (kind === 'timeout') return { kind, upstream: up };
      if (kind === 'unreachable') {
        markUnreachable(up, 'prefill', e);
        continue;
      }
      if (kind === 'frozen') {
        log.warn(`prefiller ${up.origin} stopped answering while request ${ctx.requestId} waited (${up.lastError}); the decoder prefills it`);
        return failOver(up, 'prefill_frozen', `prefiller ${up.origin} stopped answering`);
      }
      if (kind === 'reset' && spendRetry(ctx, 'prefill')) {
        log.warn(`prefill on ${up.origin} lost its connection before any answer (${errorText(e)}); retrying request ${ctx.requestId} on the next prefiller`);
        if (policy.retryBackoffMs) await new Promise((r) => setTimeout(r, policy.retryBackoffMs! * (0.5 + Math.random())));
        continue;
      }
      log.warn(`prefill on ${up.origin} failed: ${errorText(e)} (request ${ctx.requestId})`);
      return failOver(up, 'prefill_error', `prefill on ${up.origin} failed: ${errorText(e)}`);
    } finally {
      up.inflight--;
      clearTimeout(timer);
      unwatch?.();
      ctx.clientSignal.removeEventListener('abort', onClientAbort);
    }
  }
  return { kind: 'fallback', reason: 'unreachable' };
}

/** Why a leg's request failed, in the order that matters: the client left, the leg timed out, the upstream is gone, the connection broke, other. */
function failureKind(e: unknown, ctx: LegContext, timedOut: boolean): 'aborted' | 'timeout' | 'unreachable' | 'reset' | 'error' {
  if (ctx.clientSignal.aborted) return 'aborted';
  if (timedOut) return 'timeout';
  if (isUnreachable(e)) return 'unreachable';
  if (isReset(e)) return 'reset';
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
 * caller relays `res.body`, then calls doneDecoding(upstream) (the decoder's in-flight count). `timeoutMs` bounds the wait for headers and each gap between body chunks.
 * A reset before the headers is retried once on the next decoder (if the request's budget allows).
 */
export async function runDecode(set: UpstreamSet, body: string, ctx: LegContext, timeoutMs: number): Promise<DecodeOutcome> {
  let reset: { upstream: Upstream; message: string } | null = null;
  let ordered: Upstream[];
  if (ctx.decodeOrder) {
    const live = ctx.decodeOrder.filter((u) => set.all.includes(u));
    const ok = (u: Upstream) => u.healthy && (u.breaker?.passable ?? true);
    ordered = [...live.filter(ok), ...live.filter((u) => !ok(u))];
  } else ordered = set.candidates(true, ctx.route, ctx.allow);
  for (const up of ordered) {
    if (ctx.clientSignal.aborted) return { kind: 'aborted' };
    if (up.breaker && !up.breaker.allows()) continue;
    const count = (outcome: string) => ctx.metrics.upstreamRequests.inc({ role: 'decode', upstream: up.origin, outcome });
    // in flight from the moment it is sent (a non-streamed answer's headers come only at its end), until the
    // caller's doneDecoding(up) once handed over, or here when this attempt fails
    up.inflight++;
    let handedOver = false;
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
      if (res.statusCode < 500) up.breaker?.success();
      else up.breaker?.failure();
      if (res.statusCode < 400) set.policy.onRouted?.(up, ctx.route);
      handedOver = true;
      return { kind: 'ok', upstream: up, res };
    } catch (e) {
      const kind = failureKind(e, ctx, isTimeout(e));
      count(kind);
      if (kind === 'aborted') return { kind };
      up.breaker?.failure();
      if (kind === 'timeout') return { kind, upstream: up };
      if (kind === 'unreachable') {
        markUnreachable(up, 'decode', e);
        continue;
      }
      if (kind === 'reset' && spendRetry(ctx, 'decode')) {
        log.warn(`decode on ${up.origin} lost its connection before any answer (${errorText(e)}); retrying request ${ctx.requestId} on the next decoder`);
        reset = { upstream: up, message: errorText(e) };
        continue;
      }
      return { kind: 'error', upstream: up, message: errorText(e) };
    } finally {
      if (!handedOver) up.inflight--;
    }
  }
  // the retried request found no other decoder: report the reset, not "none reachable"
  return reset ? { kind: 'error', ...reset } : { kind: 'unavailable' };
}

/** The caller of a successful runDecode finished relaying (or gave up on) the response. */
export function doneDecoding(up: Upstream): void {
  up.inflight--;
}

export { isTimeout };
