// `pdserve kv-server` as a real process: start line, a client moving bytes through the shared pool,
// SIGTERM removes the pool file and exits 0.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/fixtures.js';
import { PoolTier } from '../../src/kv/tiers/pool-tier.js';

it('pdserve kv-server serves a same-host client through shared memory and cleans up on SIGTERM', async () => {
  const poolFile = `/dev/shm/pdserve-e2e-pool-${randomBytes(4).toString('hex')}`;
  const main = join(repoRoot, 'dist/src/cli/main.js');
  const child = spawn(process.execPath, [main, 'kv-server', '--host', '127.0.0.1', '--port', '0', '--pool-size', '16M', '--pool-file', poolFile, '--no-prefault'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PDSERVE_LOG_LEVEL: 'INFO' } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const t = setInterval(() => {
        const m = /listening on 127\.0\.0\.1:(\d+), pool size 0\.02 GiB \(16777216 bytes\), pool file (\S+)/.exec(out);
        if (m) {
          clearInterval(t);
          assert.equal(m[2], poolFile + ',');
          resolve(Number(m[1]));
        }
      }, 20);
      void exited.then(() => (clearInterval(t), reject(new Error(`kv-server exited early: ${out}`))));
      setTimeout(() => (clearInterval(t), reject(new Error(`no start line in 20 s: ${out}`))), 20_000).unref();
    });
    assert.ok(existsSync(poolFile));
    const tier = new PoolTier({ host: '127.0.0.1', port, transport: 'auto', timeoutMs: 2000, backoffMs: 50 });
    const key = createHash('sha256').update('e2e').digest('hex');
    const data = randomBytes(1 << 20);
    assert.equal(await tier.put(key, data), true);
    assert.equal(tier.mode, 'shm');
    const h = (await tier.get(key))!;
    assert.ok(Buffer.from(h.bytes).equals(data));
    h.release();
    await tier.close();
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0);
  assert.equal(existsSync(poolFile), false, 'pool file removed on SIGTERM');
  assert.match(out, /SIGTERM: shutting down/);
});
