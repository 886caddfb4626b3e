// POST /v1/kv/release {request_id}: a decoder has copied a request's KV point to point (P2pConnector);
// the prefiller frees the blocks it held for it. 400 on a bad body, 404 when nothing is held under that id
// (released already, or freed by its timeout).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { PdsError } from '../util/errors.js';
import { zodToPdsError } from './http-errors.js';

/** What the route needs of the connector (P2pConnector.releaseHeld). */
export interface KvReleaser {
  releaseHeld(requestId: string): boolean;
}

const bodySchema = z.object({ request_id: z.string().min(1).max(512) }).strict();

export function registerKvRoutes(app: FastifyInstance, releaser: KvReleaser): void {
  app.post('/v1/kv/release', async (req, reply) => {
    const r = bodySchema.safeParse(req.body);
    if (!r.success) throw zodToPdsError(r.error);
    if (!releaser.releaseHeld(r.data.request_id)) throw new PdsError('PDS_ERR_NOT_FOUND', `no KV is held for request ${r.data.request_id}`, 'request_id');
    return reply.send({ released: true, request_id: r.data.request_id });
  });
}
