// Mounts the routes a KV connector serves (KvConnector.attachServer, e.g. P2pConnector's POST
// /v1/kv/release) on the API server. Each is a POST under /v1/kv/ (internal: signed requests only, see
// edge-auth.ts); a ZodError or PdsError from its handler becomes the OpenAI-style 4xx the error handler sends.
import type { FastifyInstance } from 'fastify';
import type { ConnectorRoute } from '../engine/protocol.js';
import { accessOf } from './edge-auth.js';

export function registerConnectorRoutes(app: FastifyInstance, routes: readonly ConnectorRoute[]): void {
  for (const r of routes) {
    if (accessOf(r.path) !== 'internal') throw new Error(`connector route ${r.path} must be under /v1/kv/ (internal)`);
    app.post(r.path, async (req, reply) => reply.send(await r.handle(req.body)));
  }
}
