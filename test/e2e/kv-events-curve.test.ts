// KV events between processes are CurveZMQ when the deployment has an internal secret: a pdserve engine
// with --internal-secret-file publishes, a kvaware router with the same secret indexes its blocks, a
// router without the secret (plaintext SUB) gets no batch at all — the events carry prompt token ids.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateInternalSecretFile } from '../../src/security/internal-secret.js';
import { freePort, postJson, spawnPdserve, type Spawned } from '../helpers/spawn-server.js';

type EngineRow = { url: string; kv_events: { batches: number; blocks: number; malformed: number } | null };

test('KV events: CurveZMQ keyed from the internal secret; a router without it receives nothing', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pds-kv-curve-'));
  const secretPath = join(dir, 'internal.secret');
  generateInternalSecretFile(secretPath);
  const procs: Spawned[] = [];
  try {
    const ep = `tcp://127.0.0.1:${await freePort()}`;
    const E = await spawnPdserve(['serve', '--threads', '1', '--internal-secret-file', secretPath,
      '--kv-events-config', JSON.stringify({ enable_kv_cache_events: true, publisher: 'zmq', endpoint: ep })]);
    procs.push(E);
    assert.match(E.logs(), /CurveZMQ, subscribers must hold the internal secret/);
    const common = ['--static-backends', E.url, '--routing-logic', 'kvaware', '--kv-events-endpoints', ep, '--engine-stats-interval', '1', '--health-check-interval', '1'];
    const withSecret = await spawnPdserve(['router', ...common, '--internal-secret-file', secretPath]);
    procs.push(withSecret);
    const without = await spawnPdserve(['router', ...common]);
    procs.push(without);
    await new Promise((r) => setTimeout(r, 500)); // SUB sockets join before the first event
    const prompt = 'Once upon a time there was a little girl who lived in a small house near the woods. '.repeat(4);
    for (let i = 0; i < 3; i++) {
      const r = await postJson(`${withSecret.url}/v1/completions`, { model: 'stories260k', prompt: prompt + i, max_tokens: 2, temperature: 0 });
      assert.equal(r.status, 200, JSON.stringify(r.json));
    }
    let a: EngineRow[] = [];
    for (let i = 0; i < 50; i++) {
      a = (await (await fetch(`${withSecret.url}/engines`)).json()) as EngineRow[];
      if ((a[0]?.kv_events?.blocks ?? 0) > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok((a[0]?.kv_events?.batches ?? 0) > 0 && (a[0]?.kv_events?.blocks ?? 0) > 0, `router with the secret indexed the engine's blocks: ${JSON.stringify(a)}`);
    const b = (await (await fetch(`${without.url}/engines`)).json()) as EngineRow[];
    assert.equal(b[0]?.kv_events?.batches ?? 0, 0, `router without the secret received nothing: ${JSON.stringify(b)}`);
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
});
