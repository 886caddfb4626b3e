// Who may call what on an engine's API server.
//   /v1/* (except internal ones), /tokenize, /detokenize: `Authorization: Bearer <--api-key>` when keys are
//     configured (vLLM guards /v1 only; the tokenizer routes cost CPU, so they are guarded too), or a
//     valid internal signature (a proxy or peer holding the internal secret).
//   internal (/v1/kv/* (connector routes, e.g. /v1/kv/release), /debug/*): a valid internal signature only; the users' key is refused (403).
//     With no internal secret configured, /debug/* stays open to loopback clients while no API key is set
//     (a lone trusted box, as before); /v1/kv/release is then refused to everyone (no peer can exist).
//   /health, /ping, /version, /metrics: open (health checks, scrapers), as in vLLM.
// A signed request gets the reply proof header; `isPeerRequest` tells handlers whether peer-only fields
// (kv_transfer_params) may be honoured.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiKeyGuard } from '../security/api-key.js';
import { AUTH_HEADER, AUTH_REPLY_HEADER, NonceCache, verifyRequest } from '../security/request-signing.js';
import { PdsError } from '../util/errors.js';

export interface EdgeAuthOptions {
  apiKeys: string[];
  internalKey: Buffer | null;
}

type Access = 'open' | 'user' | 'internal';

const peerFlag = Symbol('pdsPeer');
const rawBody = Symbol('pdsRawBody');

export function accessOf(path: string): Access {
  if (path.startsWith('/v1/kv/') || path.startsWith('/debug/')) return 'internal';
  if (path.startsWith('/v1/') || path === '/v1' || path === '/tokenize' || path === '/detokenize') return 'user';
  return 'open';
}

const isLoopback = (ip: string) => ip === '::1' || ip.startsWith('127.') || ip.startsWith('::ffff:127.');

/** Keeps the raw body text a content-type parser read (signatures cover the exact bytes). */
export function keepRawBody(req: FastifyRequest, raw: string | Buffer): void {
  (req as unknown as Record<symbol, string | Buffer>)[rawBody] = raw;
}

/** True when this request carried a valid internal signature (a proxy or peer engine sent it). */
export function isPeerRequest(req: FastifyRequest): boolean {
  return (req as unknown as Record<symbol, boolean>)[peerFlag] === true;
}

export function registerEdgeAuth(app: FastifyInstance, o: EdgeAuthOptions): void {
  const guard = new ApiKeyGuard(o.apiKeys);
  const nonces = new NonceCache();
  const pathOf = (req: FastifyRequest) => req.url.split('?')[0]!;

  // Cheap checks before the body is read: a request that can never pass is refused without reading it.
  app.addHook('onRequest', async (req) => {
    const access = accessOf(pathOf(req));
    if (access === 'open') return;
    const signed = req.headers[AUTH_HEADER] !== undefined;
    if (access === 'internal') {
      if (signed && o.internalKey) return; // verified once the body is in
      if (!o.internalKey && !guard.enabled && isLoopback(req.ip) && pathOf(req).startsWith('/debug/')) return;
      if (guard.admits(req.headers.authorization) && typeof req.headers.authorization === 'string') {
        throw new PdsError('PDS_ERR_FORBIDDEN', 'this endpoint is internal: the API key does not grant access to it');
      }
      throw new PdsError('PDS_ERR_UNAUTHORIZED', o.internalKey ? 'this endpoint needs an internal signature' : 'this endpoint is disabled: no internal secret is configured');
    }
    if (signed && o.internalKey) return;
    if (!guard.admits(req.headers.authorization)) throw new PdsError('PDS_ERR_UNAUTHORIZED', 'Unauthorized: a valid API key is required (Authorization: Bearer KEY)');
  });

  // Signatures cover the body: checked once it has been read, before the handler.
  app.addHook('preHandler', async (req: FastifyRequest, reply: FastifyReply) => {
    const header = req.headers[AUTH_HEADER];
    if (header === undefined || !o.internalKey || accessOf(pathOf(req)) === 'open') return;
    const body = (req as unknown as Record<symbol, string | Buffer | undefined>)[rawBody] ?? '';
    const r = verifyRequest(o.internalKey, req.method, req.url, header, body, nonces);
    if (!r.ok) throw new PdsError('PDS_ERR_UNAUTHORIZED', `internal signature refused: ${r.reason}`);
    (req as unknown as Record<symbol, boolean>)[peerFlag] = true;
    reply.header(AUTH_REPLY_HEADER, r.replyProof);
  });
}
