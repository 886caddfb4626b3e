// Read-only routes the proxy answers from one decode instance (the engines serve one model, so any healthy
// decoder answers for all): GET /v1/models, /v1/models/{id}, /version; POST /tokenize, /detokenize.
// Tries healthy decoders first, then the rest; an upstream answer (2xx or 4xx) is relayed as it came.
import type { FastifyInstance } from 'fastify';
import { openAiErrorBody } from '../util/errors.js';
import { getLogger } from '../util/logger.js';
import { sendJson } from './generate.js';
import type { ProxyState } from './state.js';
import { errorText } from './upstream.js';
import { upstreamCredentials } from './intake.js';
import { signRequest } from '../security/request-signing.js';

const log = getLogger('proxy');

async function relay(st: ProxyState, method: 'GET' | 'POST', path: string, body: Buffer | null, out: import('node:http').ServerResponse): Promise<void> {
  const ordered = [...st.decoders.all.filter((u) => u.healthy), ...st.decoders.all.filter((u) => !u.healthy)];
  for (const up of ordered) {
    try {
      // the proxy's own credentials, never the client's: its upstream key and a signature per attempt
      const headers: Record<string, string> = {
        ...upstreamCredentials(st.config),
        ...(st.config.internalKey ? signRequest(st.config.internalKey, method, path, body) : {}),
        ...(body ? { 'content-type': 'application/json' } : {}),
      };
      const res = await up.pool.request({
        path, method, headers, headersTimeout: st.config.decodeTimeoutMs, bodyTimeout: st.config.decodeTimeoutMs,
        ...(body ? { body } : {}),
      });
      const bytes = Buffer.from(await res.body.arrayBuffer());
      if (res.statusCode >= 500) throw new Error(`HTTP ${res.statusCode}`);
      out.writeHead(res.statusCode, { 'content-type': String(res.headers['content-type'] ?? 'application/json'), 'content-length': bytes.length });
      out.end(bytes);
      return;
    } catch (e) {
      log.warn(`${method} ${path} on ${up.origin} failed: ${errorText(e)}`);
    }
  }
  sendJson(out, 503, openAiErrorBody(503, 'no decode instance is reachable'));
}

export function registerInfoRelay(app: FastifyInstance, st: ProxyState): void {
  for (const path of ['/v1/models', '/version']) {
    app.get(path, async (_req, reply) => {
      reply.hijack();
      await relay(st, 'GET', path, null, reply.raw);
    });
  }
  app.get('/v1/models/*', async (req, reply) => {
    reply.hijack();
    await relay(st, 'GET', req.url.split('?')[0]!, null, reply.raw);
  });
  for (const path of ['/tokenize', '/detokenize']) {
    app.post(path, async (req, reply) => {
      reply.hijack();
      await relay(st, 'POST', path, Buffer.isBuffer(req.body) ? req.body : Buffer.from(JSON.stringify(req.body ?? {})), reply.raw);
    });
  }
}
