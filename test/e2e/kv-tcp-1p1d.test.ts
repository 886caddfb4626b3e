// 1P1D with the TcpConnector (pull over the tcp KV transport, no kv-server): a prefiller, a decoder and
// `pdserve proxy`, all real processes on loopback. Greedy tokens equal one engine's on the default model
// (stories260k) and, with fixtures, the reference; the decoder's cached_tokens >= prompt length - 1; the
// decoder logs the (P2P tcp) retrieve line; the prefiller frees every lease (done notifications).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateInternalSecretFile, INTERNAL_SECRET_FILE_ENV } from '../../src/security/internal-secret.js';
import { fixtureModels, fixturesDir, readReference, comparableSteps } from '../helpers/fixtures.js';
import { postJson, spawnPdserve, type Spawned } from '../helpers/spawn-server.js';
import { singleEngineGreedy } from '../helpers/single-engine.js';

const cfg = (role: string) => JSON.stringify({ kv_connector: 'TcpConnector', kv_role: role, kv_connector_extra_config: { connections: 2 } });

describe('1P1D over the tcp KV transport (TcpConnector)', { timeout: 240_000 }, () => {
  let dir = '';
  let env: NodeJS.ProcessEnv = {};
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pds-kv-tcp-1p1d-'));
    const secret = join(dir, 'secret');
    generateInternalSecretFile(secret);
    env = { [INTERNAL_SECRET_FILE_ENV]: secret };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function trio(model: string[]): Promise<{ P: Spawned; D: Spawned; X: Spawned; stop(): Promise<void> }> {
    const up: Spawned[] = [];
    try {
      const P = await spawnPdserve(['serve', ...model, '--kv-transfer-config', cfg('kv_producer')], { env });
      up.push(P);
      const D = await spawnPdserve(['serve', ...model, '--kv-transfer-config', cfg('kv_consumer')], { env });
      up.push(D);
      const X = await spawnPdserve(['proxy', '--prefiller', P.url, '--decoder', D.url], { env });
      up.push(X);
      return { P, D, X, stop: async () => void (await Promise.all(up.reverse().map((s) => s.stop()))) };
    } catch (e) {
      await Promise.all(up.map((s) => s.stop()));
      throw e;
    }
  }

  it('stories260k (default model): the same greedy tokens as one engine, KV pulled over tcp', async () => {
    const prompts = ['Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends.', 'The cat sat on the mat and looked at the'];
    const want = await singleEngineGreedy(prompts, 24, { env });
    const t = await trio([]);
    try {
      for (let i = 0; i < prompts.length; i++) {
        const r = await postJson(`${t.X.url}/v1/completions`, { prompt: prompts[i], max_tokens: 24, temperature: 0, ignore_eos: true, return_token_ids: true });
        assert.equal(r.status, 200, JSON.stringify(r.json));
        assert.deepEqual(r.json.choices[0].token_ids, want[i], `prompt ${i}`);
        const promptLen = r.json.usage.prompt_tokens as number;
        const cached = r.json.usage.prompt_tokens_details?.cached_tokens as number;
        assert.ok(cached >= promptLen - 1, `decoder cached_tokens ${cached} for a ${promptLen}-token prompt`);
      }
      assert.match(t.D.logs(), /Retrieved \d+ out of \d+ required tokens \(from \d+ total tokens\)\. size: [\d.]+ gb, cost [\d.]+ ms, throughput: [\d.]+ GB\/s; \(P2P tcp\)/);
      assert.match(t.P.logs(), /TcpConnector: serving KV blocks on 127\.0\.0\.1:\d+/);
      assert.doesNotMatch(t.P.logs() + t.D.logs(), /KV lease expired/);
    } finally {
      await t.stop();
    }
  });

  it('fixture models: the reference greedy tokens through 1P1D over tcp', async (tc) => {
    const fx = fixturesDir();
    if (!fx) return tc.skip('no fixtures (PDSERVE_FIXTURES)');
    for (const model of fixtureModels) {
      const ref = readReference(fx, model);
      const t = await trio([join(fx, 'models', model)]);
      try {
        for (const [i, c] of ref.cases.entries()) {
          const r = await postJson(`${t.X.url}/v1/completions`, { prompt: c.prompt, max_tokens: c.greedy.length, temperature: 0, ignore_eos: true, return_token_ids: true });
          assert.equal(r.status, 200, JSON.stringify(r.json));
          const n = comparableSteps(c);
          assert.deepEqual(r.json.choices[0].token_ids.slice(0, n), c.greedy.slice(0, n), `${model} case ${i}`);
        }
        assert.match(t.D.logs(), /\(P2P tcp\)/, model);
      } finally {
        await t.stop();
      }
    }
  });
});

describe('pdserve up --kv-transfer tcp', { timeout: 240_000 }, () => {
  it('1P1D with no kv-server: the same greedy tokens as one engine, the (P2P tcp) line on the decoder', async () => {
    const { spawnUp } = await import('../helpers/spawn-up.js');
    const prompt = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.';
    const [want] = await singleEngineGreedy([prompt], 16);
    const up = await spawnUp(['--prefill', '1', '--decode', '1', '--kv-transfer', 'tcp']);
    try {
      const r = await postJson(`${up.url}/v1/completions`, { prompt, max_tokens: 16, temperature: 0, ignore_eos: true, return_token_ids: true });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.deepEqual(r.json.choices[0].token_ids, want);
      assert.ok(r.json.usage.prompt_tokens_details.cached_tokens >= r.json.usage.prompt_tokens - 1);
      assert.match(up.log('decoder-0'), /\(P2P tcp\)/);
      assert.doesNotMatch(up.output(), /started kv-server/);
    } finally {
      assert.equal(await up.stop(), 0);
    }
  });
});
