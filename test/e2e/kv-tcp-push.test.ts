// 1P1D with the TcpConnector in push mode (`proxy --kv-mode push`, issue 10 acceptance 1 and faults for push):
// a prefiller, a decoder and the proxy, real processes on loopback, both legs sent at once. Greedy tokens
// equal one engine's on the default model and, with fixtures, the reference; decoder cached_tokens >=
// prompt length - 1; the decoder's (P2P tcp) line and the prefiller's push line; no kv-server. Faults:
// a dead prefiller (the proxy goes decode-only), a failed load under kv_load_failure_policy fail (503
// kv_load_failed, push and pull, legs sent signed as the proxy would), the prefiller
// killed mid-push, the decoder killed mid-push, the client aborting during the transfer in both modes;
// blocks all free after each; POST /v1/kv/push-target refuses unsigned callers.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateInternalSecretFile, INTERNAL_SECRET_FILE_ENV, loadInternalSecret } from '../../src/security/internal-secret.js';
import { signRequest } from '../../src/security/request-signing.js';
import { fixtureModels, fixturesDir, readReference, comparableSteps } from '../helpers/fixtures.js';
import { freePort, postJson, spawnPdserve, type Spawned } from '../helpers/spawn-server.js';
import { singleEngineGreedy } from '../helpers/single-engine.js';

const cfg = (role: string, extra: Record<string, unknown> = {}) => JSON.stringify({ kv_connector: 'TcpConnector', kv_role: role, kv_connector_extra_config: { connections: 2, ...extra } });
const LILY = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends.';
const LONG = Array.from({ length: 12 }, (_, i) => `Day ${i}: Lily went to the park and played with her dog, and the sun was warm.`).join(' ');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('1P1D over the tcp KV transport in push mode', { timeout: 300_000 }, () => {
  let dir = '';
  let secretFile = '';
  let env: NodeJS.ProcessEnv = {};
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pds-kv-tcp-push-'));
    secretFile = join(dir, 'secret');
    generateInternalSecretFile(secretFile);
    env = { [INTERNAL_SECRET_FILE_ENV]: secretFile };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Every block of the engine free again (within ms) and its accounting consistent. */
  async function clean(s: Spawned, ms = 15_000): Promise<void> {
    const key = loadInternalSecret(secretFile).key;
    const end = Date.now() + ms;
    for (;;) {
      const r = await fetch(`${s.url}/debug/integrity`, { headers: signRequest(key, 'GET', '/debug/integrity', null) });
      const j = (await r.json()) as { ok: boolean; blocks_free: number; blocks_total: number };
      assert.equal(r.status, 200, JSON.stringify(j));
      assert.equal(j.ok, true);
      if (j.blocks_free === j.blocks_total) return;
      if (Date.now() > end) assert.fail(`${s.url}: ${j.blocks_total - j.blocks_free} blocks still held after ${ms} ms`);
      await sleep(100);
    }
  }

  async function trio(model: string[], o: { mode?: 'pull' | 'push'; p?: string[]; d?: string[]; prefillerUrl?: string } = {}) {
    const up: Spawned[] = [];
    try {
      const P = o.prefillerUrl ? null : await spawnPdserve(['serve', ...model, '--kv-transfer-config', cfg('kv_producer'), ...(o.p ?? [])], { env });
      if (P) up.push(P);
      const D = await spawnPdserve(['serve', ...model, ...(o.d ?? ['--kv-transfer-config', cfg('kv_consumer')])], { env });
      up.push(D);
      const X = await spawnPdserve(['proxy', '--prefiller', o.prefillerUrl ?? P!.url, '--decoder', D.url, '--kv-mode', o.mode ?? 'push', '--health-interval', '0'], { env });
      up.push(X);
      return { P, D, X, stop: async () => void (await Promise.all(up.reverse().map((s) => s.stop()))) };
    } catch (e) {
      await Promise.all(up.map((s) => s.stop()));
      throw e;
    }
  }

  const complete = (url: string, prompt: string | number[], maxTokens = 24) => postJson(`${url}/v1/completions`, { prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true, return_token_ids: true });

  const reference = (prompts: string[], maxTokens = 24) => singleEngineGreedy(prompts, maxTokens, { env });

  it('stories260k (default model), chunked prefill on the prefiller: the same greedy tokens as one engine, KV pushed chunk by chunk', async () => {
    const prompts = [LILY, LONG, 'The cat sat on the mat and looked at the'];
    const want = await reference(prompts);
    const t = await trio([], { p: ['--max-num-batched-tokens', '32'] });
    try {
      for (let i = 0; i < prompts.length; i++) {
        const r = await complete(t.X.url, prompts[i]!);
        assert.equal(r.status, 200, JSON.stringify(r.json));
        assert.deepEqual(r.json.choices[0].token_ids, want[i], `prompt ${i}`);
        const promptLen = r.json.usage.prompt_tokens as number;
        const cached = r.json.usage.prompt_tokens_details?.cached_tokens as number;
        assert.ok(cached >= promptLen - 1, `decoder cached_tokens ${cached} for a ${promptLen}-token prompt`);
      }
      // the first prompt again: the decoder's prefix cache holds its full blocks, only the rest is pushed
      const again = await complete(t.X.url, prompts[0]!);
      assert.equal(again.status, 200, JSON.stringify(again.json));
      assert.deepEqual(again.json.choices[0].token_ids, want[0], 'repeated prompt');
      assert.ok(again.json.usage.prompt_tokens_details.cached_tokens >= again.json.usage.prompt_tokens - 1);
      assert.match(t.D.logs(), /Inference Engine computed tokens: [1-9]\d*, LMCache hit tokens: \d+, need to load: \d+/, 'the repeat started from a local prefix hit');
      assert.equal((t.D.logs().match(/Retrieved \d+ out of \d+ required tokens \(from \d+ total tokens\)\. size: [\d.]+ gb, cost [\d.]+ ms, throughput: [\d.]+ GB\/s; \(P2P tcp\)/g) ?? []).length, 4, t.D.logs().slice(-3000));
      assert.equal((t.P!.logs().match(/KV push [\w-]+: \d+ blocks written to 127\.0\.0\.1:\d+ \(P2P tcp push\)/g) ?? []).length, 4, t.P!.logs().slice(-3000));
      assert.doesNotMatch(t.P!.logs() + t.D.logs(), /dropped|expired|failed/);
      await clean(t.P!);
      await clean(t.D);
    } finally {
      await t.stop();
    }
  });

  it('fixture models: the reference greedy tokens through 1P1D with tcp push', async (tc) => {
    const fx = fixturesDir();
    if (!fx) return tc.skip('no fixtures (PDSERVE_FIXTURES)');
    for (const model of fixtureModels) {
      const ref = readReference(fx, model);
      const t = await trio([join(fx, 'models', model)]);
      try {
        for (const [i, c] of ref.cases.entries()) {
          const r = await complete(t.X.url, c.prompt, c.greedy.length);
          assert.equal(r.status, 200, JSON.stringify(r.json));
          const n = comparableSteps(c);
          assert.deepEqual(r.json.choices[0].token_ids.slice(0, n), c.greedy.slice(0, n), `${model} case ${i}`);
          assert.ok(r.json.usage.prompt_tokens_details.cached_tokens >= r.json.usage.prompt_tokens - 1, `${model} case ${i}: cached_tokens`);
        }
        assert.match(t.D.logs(), /\(P2P tcp\)/, model);
        assert.match(t.P!.logs(), /\(P2P tcp push\)/, model);
        await clean(t.P!);
        await clean(t.D);
      } finally {
        await t.stop();
      }
    }
  });

  it('a dead prefiller: the proxy sends the decode leg decode-only, same tokens; nothing held', async () => {
    const [want] = await reference([LILY]);
    const dead = `http://127.0.0.1:${await freePort()}`;
    const t = await trio([], { prefillerUrl: dead });
    try {
      const r = await complete(t.X.url, LILY);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.deepEqual(r.json.choices[0].token_ids, want);
      assert.match(t.X.logs(), /push prefill leg of request .* ended fallback; the decoder prefills it locally/);
      await clean(t.D);
    } finally {
      await t.stop();
    }
  });

  it('kv_load_failure_policy fail: a KV load that fails answers 503 kv_load_failed (push and pull), recompute serves the prompt', async () => {
    const key = loadInternalSecret(secretFile).key;
    const signed = (s: Spawned, body: Record<string, unknown>) => {
      const raw = JSON.stringify(body);
      return postJson(`${s.url}/v1/completions`, raw, signRequest(key, 'POST', '/v1/completions', raw));
    };
    const D = await spawnPdserve(['serve', '--kv-transfer-config', cfg('kv_consumer', { kv_load_failure_policy: 'fail', load_timeout_secs: 5 })], { env });
    const R = await spawnPdserve(['serve', '--kv-transfer-config', cfg('kv_consumer', { load_timeout_secs: 5 })], { env });
    const P = await spawnPdserve(['serve', '--kv-transfer-config', cfg('kv_producer')], { env });
    try {
      // push: the decode leg names a prefiller API where nobody listens
      const push = { do_remote_prefill: true, kv_mode: 'push', push_id: 'p-dead', remote_host: '127.0.0.1', remote_port: await freePort(), remote_transport: 'tcp' };
      const body = { prompt: LILY, max_tokens: 8, temperature: 0, ignore_eos: true, return_token_ids: true };
      const r = await signed(D, { ...body, kv_transfer_params: push });
      assert.equal(r.status, 503, JSON.stringify(r.json));
      assert.equal(r.json.error.code, 'kv_load_failed');
      assert.equal(r.json.error.type, 'ServiceUnavailableError');
      assert.match(r.json.error.message, /could not be loaded .*kv_load_failure_policy is fail/);
      const ok = await signed(R, { ...body, kv_transfer_params: { ...push, push_id: 'p-dead-2' } });
      assert.equal(ok.status, 200, JSON.stringify(ok.json));
      // pull: the prefiller answered the prefill leg, then died
      const pre = await signed(P, { prompt: `${LILY} Again.`, max_tokens: 1, temperature: 0, kv_transfer_params: { do_remote_decode: true } });
      assert.equal(pre.status, 200, JSON.stringify(pre.json));
      await P.stop('SIGKILL');
      const pulled = await signed(D, { ...body, prompt: `${LILY} Again.`, kv_transfer_params: pre.json.kv_transfer_params });
      assert.equal(pulled.status, 503, JSON.stringify(pulled.json));
      assert.equal(pulled.json.error.code, 'kv_load_failed');
      await clean(D);
      await clean(R);
      assert.equal((await postJson(`${D.url}/v1/completions`, { prompt: 'The cat', max_tokens: 2, temperature: 0 })).status, 200, 'the decoder still serves');
    } finally {
      await Promise.all([D.stop(), R.stop(), P.stop()]);
    }
  });

  it('the prefiller killed mid-push: the decoder recomputes within its heartbeat, same tokens, nothing held', async () => {
    const [want] = await reference([LONG]);
    // a slow prefill (one token per step) so the kill lands while chunks are being pushed
    const t = await trio([], { p: ['--max-num-batched-tokens', '1'], d: ['--kv-transfer-config', cfg('kv_consumer', { heartbeat_secs: 0.2, load_timeout_secs: 60 })] });
    try {
      const pending = complete(t.X.url, LONG);
      const end = Date.now() + 20_000;
      while (!/KV push .* blocks|Reqid: .*need to load/.test(t.D.logs()) && Date.now() < end) await sleep(5);
      await t.P!.stop('SIGKILL');
      const t0 = Date.now();
      const r = await pending;
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.deepEqual(r.json.choices[0].token_ids, want);
      assert.ok(Date.now() - t0 < 15_000, `${Date.now() - t0} ms after the kill`);
      // the decoder either saw the prefiller go (heartbeat) or the proxy re-sent the leg decode-only
      assert.match(t.D.logs() + t.X.logs(), /KV push over tcp .* failed|the decoder prefills it locally/);
      await clean(t.D);
    } finally {
      await t.stop();
    }
  });

  it('the decoder killed mid-push: the prefiller drops the push and frees every block; push-target refuses unsigned callers', async () => {
    const t = await trio([], { p: ['--max-num-batched-tokens', '1'] });
    try {
      const unsigned = await postJson(`${t.P!.url}/v1/kv/push-target`, { push_id: 'x', first_block: 0, block_ids: [0], num_tokens: 10, host: '127.0.0.1', port: 1, engine_id: 'e' });
      assert.ok(unsigned.status === 401 || unsigned.status === 403, `unsigned push-target answered ${unsigned.status}`);
      const pending = complete(t.X.url, LONG).catch(() => null);
      const end = Date.now() + 20_000;
      while (!/need to load/.test(t.D.logs()) && Date.now() < end) await sleep(5);
      await sleep(50);
      await t.D.stop('SIGKILL');
      await pending;
      await clean(t.P!, 30_000);
      assert.match(t.P!.logs(), /KV push [\w-]+ dropped: /);
    } finally {
      await t.stop();
    }
  });

  for (const mode of ['push', 'pull'] as const) {
    it(`${mode}: the client aborts during the transfer: both sides free everything and still serve`, async () => {
      const t = await trio([], { mode, p: ['--max-num-batched-tokens', '2'], ...(mode === 'pull' ? { d: ['--kv-transfer-config', cfg('kv_consumer')] } : {}) });
      try {
        for (let i = 0; i < 3; i++) {
          const ac = new AbortController();
          const pending = fetch(`${t.X.url}/v1/completions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ prompt: `${LONG} ${i}`, max_tokens: 64, temperature: 0, ignore_eos: true, stream: true }),
            signal: ac.signal,
          }).then((r) => r.text());
          const seen = (t.P!.logs().match(/Reqid:/g) ?? []).length + (t.D.logs().match(/Reqid:/g) ?? []).length;
          const end = Date.now() + 10_000;
          while ((t.P!.logs().match(/Reqid:/g) ?? []).length + (t.D.logs().match(/Reqid:/g) ?? []).length === seen && Date.now() < end) await sleep(2);
          await sleep(i * 15);
          ac.abort();
          await pending.catch(() => undefined);
        }
        await clean(t.P!);
        await clean(t.D);
        const r = await complete(t.X.url, LILY, 4);
        assert.equal(r.status, 200, JSON.stringify(r.json));
        await clean(t.P!);
        await clean(t.D);
      } finally {
        await t.stop();
      }
    });
  }

  it('pdserve up --kv-transfer tcp --kv-mode push: same tokens as one engine, (P2P tcp), no kv-server', async () => {
    const { spawnUp } = await import('../helpers/spawn-up.js');
    const [want] = await reference([LILY], 16);
    const up = await spawnUp(['--prefill', '1', '--decode', '1', '--kv-transfer', 'tcp', '--kv-mode', 'push']);
    try {
      const r = await complete(up.url, LILY, 16);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.deepEqual(r.json.choices[0].token_ids, want);
      assert.ok(r.json.usage.prompt_tokens_details.cached_tokens >= r.json.usage.prompt_tokens - 1);
      assert.match(up.log('decoder-0'), /\(P2P tcp\)/);
      assert.match(up.log('prefiller-0'), /\(P2P tcp push\)/);
      assert.doesNotMatch(up.output(), /started kv-server/);
    } finally {
      assert.equal(await up.stop(), 0);
    }
  });
});
