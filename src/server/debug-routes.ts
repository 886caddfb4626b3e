// GET /debug/integrity: the engine's block accounting checked now (tests and operators).
import type { FastifyInstance } from 'fastify';
import type { EngineClient } from '../engine/protocol.js';

export function registerDebugRoutes(app: FastifyInstance, engine: EngineClient): void {
  app.get('/debug/integrity', async (_req, reply) => {
    const st = engine.stats();
    const body = {
      blocks_total: st.numBlocksTotal,
      blocks_free: st.numBlocksFree,
      num_requests_running: st.numRequestsRunning,
      num_requests_waiting: st.numRequestsWaiting,
    };
    try {
      engine.checkIntegrity();
      return reply.send({ ok: true, ...body });
    } catch (e) {
      return reply.code(500).send({ ok: false, error: (e as Error).message, ...body });
    }
  });
}
