// Connector routes mount only under the internal /v1/kv/ prefix and answer with their handler's JSON.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { registerConnectorRoutes } from './kv-routes.js';

test('a connector route outside /v1/kv/ is refused at mount time', () => {
  const app = Fastify();
  assert.throws(() => registerConnectorRoutes(app, [{ path: '/v1/completions', handle: () => ({}) }]), /must be under \/v1\/kv\//);
  assert.throws(() => registerConnectorRoutes(app, [{ path: '/health', handle: () => ({}) }]), /internal/);
});

test('a mounted route gets the parsed body and sends its reply', async () => {
  const app = Fastify();
  const seen: unknown[] = [];
  registerConnectorRoutes(app, [{ path: '/v1/kv/echo', handle: (b) => (seen.push(b), { ok: true }) }]);
  const r = await app.inject({ method: 'POST', url: '/v1/kv/echo', payload: { a: 1 } });
  assert.equal(r.statusCode, 200);
  assert.deepEqual(r.json(), { ok: true });
  assert.deepEqual(seen, [{ a: 1 }]);
  await app.close();
});
