// The router's prepare hook (gateway/hooks.ts): which engines may serve this request (the model it
// names, when any engine declares models) and the RouteRequest its policies see. For prefix-aware and
// kvaware decode routing, a text prompt is tokenized by a decoder's /tokenize (bounded by 2 s; on failure
// the policy keys on text instead, block-keys.ts); so is every prompt when conditional disaggregation
// is on (conditional-disagg.ts decides here, before any leg).
import type { IncomingMessage } from 'node:http';
import type { ProxyState } from '../gateway/state.js';
import type { JsonObject } from '../gateway/prefill-body.js';
import type { Prepared } from '../gateway/hooks.js';
import type { RouterConfig } from './config.js';
import type { RouteRequest } from '../gateway/policies/policy.js';
import { tokensOf } from '../gateway/policies/block-keys.js';
import { upstreamCredentials } from '../gateway/intake.js';
import { signRequest } from '../security/request-signing.js';
import type { ConditionalDisagg } from './conditional-disagg.js';

const TOKENIZE_TIMEOUT_MS = 2000;
let tokenizeCursor = 0;

export async function prepareRoute(
  st: ProxyState, _rc: RouterConfig, req: IncomingMessage, body: JsonObject, requestId: string, modelsKnown: (m: string) => boolean,
  conditional: ConditionalDisagg | null = null,
): Promise<Prepared> {
  const model = typeof body.model === 'string' ? body.model : null;
  const anyDeclared = [...st.prefillers.all, ...st.decoders.all].some((u) => u.models.length > 0);
  if (model && anyDeclared && !modelsKnown(model)) return { error: 'PDS_ERR_MODEL_NOT_FOUND', message: `The model \`${model}\` does not exist.` };
  const allow = model && anyDeclared ? (u: { models: string[] }) => !u.models.length || u.models.includes(model) : undefined;
  const route: RouteRequest = { requestId, headers: req.headers, body };
  const cond = conditional && st.prefillers.size > 0 ? conditional : null;
  if ((cond || st.decoders.policy.name === 'prefixaware' || st.decoders.policy.name === 'kvaware') && !tokensOf(route)) {
    const tokens = await tokenize(st, body, allow);
    if (tokens) route.tokens = tokens;
  }
  const d = cond?.decide(st.prefillers, st.decoders, route, allow);
  return {
    route,
    ...(allow ? { allow } : {}),
    ...(d?.decision.startsWith('local') ? { skipPrefill: d.decision } : {}),
    ...(d?.order ? { decoders: d.order, release: d.release! } : {}),
  };
}

async function tokenize(st: ProxyState, body: JsonObject, allow?: (u: { models: string[] }) => boolean): Promise<number[] | null> {
  const ok = st.decoders.all.filter((u) => u.healthy && (!allow || allow(u)));
  if (!ok.length) return null;
  const up = ok[tokenizeCursor++ % ok.length]!; // spread the tokenize calls over the healthy decoders
  if (tokenizeCursor >= 1e9) tokenizeCursor = 0;
  const payload: JsonObject = { ...(typeof body.model === 'string' ? { model: body.model } : {}) };
  if (body.messages !== undefined) payload.messages = body.messages;
  else if (typeof body.prompt === 'string') payload.prompt = body.prompt;
  else return null;
  const text = JSON.stringify(payload);
  try {
    const res = await up.pool.request({
      path: '/tokenize', method: 'POST', body: text,
      headers: { 'content-type': 'application/json', ...upstreamCredentials(st.config), ...(st.config.internalKey ? signRequest(st.config.internalKey, 'POST', '/tokenize', text) : {}) },
      headersTimeout: TOKENIZE_TIMEOUT_MS, bodyTimeout: TOKENIZE_TIMEOUT_MS, signal: AbortSignal.timeout(TOKENIZE_TIMEOUT_MS),
    });
    const j = (await res.body.json()) as { tokens?: unknown };
    return res.statusCode === 200 && Array.isArray(j?.tokens) && j.tokens.every((t) => Number.isInteger(t)) ? (j.tokens as number[]) : null;
  } catch {
    return null;
  }
}
