// /v1/models, /health, /version, /tokenize, /detokenize, /metrics.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FAKE_BOS } from './testing/fake-tokenizer.js';
import { assertOpenAiError, postJson, startHarness, type Harness } from './testing/harness.js';

/** Value of one sample line `name{labels} value` in Prometheus text (labels matched as given). */
function sample(text: string, name: string, labels = '{model_name="served"}'): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  assert.ok(line, `no sample ${name}${labels}`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('info routes', () => {
  let h: Harness;
  before(async () => { h = await startHarness({ tokenDelayMs: 2 }, { servedModelName: ['served', 'alias'], maxModelLen: 2048 }); });
  after(async () => { await h.close(); });

  it('GET /v1/models lists the served names with max_model_len and root', async () => {
    const j = await (await fetch(`${h.base}/v1/models`)).json();
    assert.equal(j.object, 'list');
    assert.deepEqual(j.data.map((m: any) => m.id), ['served', 'alias']);
    const m = j.data[0];
    assert.equal(m.object, 'model');
    assert.equal(m.owned_by, 'pdserve');
    assert.equal(m.root, 'served'); // the served name, never a disk path
    assert.equal(m.max_model_len, 2048);
    assert.equal(m.dummy_weights, false);
    assert.match(m.description, /fake engine/);
  });

  it('GET /v1/models/{id} retrieves one served name (slashes allowed), 404 otherwise', async () => {
    const r = await fetch(`${h.base}/v1/models/alias`);
    assert.equal(r.status, 200);
    const j = await r.json();
    assert.equal(j.id, 'alias');
    assert.equal(j.object, 'model');
    assert.equal(j.max_model_len, 2048);
    const missing = await fetch(`${h.base}/v1/models/org/nope`);
    assert.equal(missing.status, 404);
    const e = await missing.json();
    assert.equal(e.error.type, 'NotFoundError');
    assert.match(e.error.message, /org\/nope/);
  });

  it('accepts any served name and reports the first', async () => {
    const r = await postJson(h.base, '/v1/completions', { model: 'alias', prompt: 'a', max_tokens: 1 });
    assert.equal(r.json.model, 'served');
    assertOpenAiError(await postJson(h.base, '/v1/completions', { model: 'fake-model', prompt: 'a' }), 404, 'model');
  });

  it('GET /health follows engine.isHealthy()', async () => {
    assert.equal((await fetch(`${h.base}/health`)).status, 200);
    h.engine.healthy = false;
    const r = await fetch(`${h.base}/health`);
    assert.equal(r.status, 503);
    assert.equal((await r.json()).error.code, 503);
    assert.equal((await fetch(`${h.base}/ping`)).status, 503);
    h.engine.healthy = true;
  });

  it('GET /version answers the package version', async () => {
    const j = await (await fetch(`${h.base}/version`)).json();
    assert.match(j.version, /^\d+\.\d+\.\d+/);
  });

  it('POST /tokenize encodes prompts and chat messages; /detokenize decodes', async () => {
    const t = await postJson(h.base, '/tokenize', { prompt: 'hé', return_token_strs: true });
    assert.deepEqual(t.json, { count: 4, max_model_len: 2048, tokens: [FAKE_BOS, 104, 0xc3, 0xa9], token_strs: ['<s>', 'h', '\uFFFD', '\uFFFD'] });
    const plain = await postJson(h.base, '/tokenize', { prompt: 'hé', add_special_tokens: false });
    assert.deepEqual(plain.json.tokens, [104, 0xc3, 0xa9]);
    const chat = await postJson(h.base, '/tokenize', { messages: [{ role: 'user', content: 'x' }] });
    assert.equal(Buffer.from(chat.json.tokens).toString(), '<|user|>x\n<|assistant|>');
    const d = await postJson(h.base, '/detokenize', { tokens: [FAKE_BOS, 104, 0xc3, 0xa9] });
    assert.deepEqual(d.json, { prompt: '<s>hé' });
  });

  it('GET /metrics exposes vLLM names whose values move with traffic', async () => {
    const before = await (await fetch(`${h.base}/metrics`)).text();
    for (const name of [
      'vllm:num_requests_running', 'vllm:num_requests_waiting', 'vllm:kv_cache_usage_perc', 'vllm:prefix_cache_queries_total',
      'vllm:prefix_cache_hits_total', 'vllm:prompt_tokens_total', 'vllm:generation_tokens_total', 'vllm:request_success_total',
      'vllm:time_to_first_token_seconds', 'vllm:inter_token_latency_seconds', 'vllm:time_per_output_token_seconds',
      'vllm:e2e_request_latency_seconds',
    ]) assert.ok(before.includes(`# TYPE ${name} `), `missing ${name}`);
    const gen0 = sample(before, 'vllm:generation_tokens_total');
    const prompt0 = sample(before, 'vllm:prompt_tokens_total');
    const ttft0 = sample(before, 'vllm:time_to_first_token_seconds_count');
    const queries0 = sample(before, 'vllm:prefix_cache_queries_total');

    // While a stream runs, the running gauge and KV usage are live.
    const ac = new AbortController();
    const res = await fetch(`${h.base}/v1/completions`, {
      method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'x'.repeat(40), max_tokens: 1000, stream: true }),
    });
    await res.body!.getReader().read();
    const during = await (await fetch(`${h.base}/metrics`)).text();
    assert.equal(sample(during, 'vllm:num_requests_running'), 1);
    assert.ok(sample(during, 'vllm:kv_cache_usage_perc') > 0);
    ac.abort();

    const prompt = 'y'.repeat(40);
    for (let i = 0; i < 2; i++) await postJson(h.base, '/v1/completions', { prompt, max_tokens: 5 });
    const after = await (await fetch(`${h.base}/metrics`)).text();
    assert.ok(sample(after, 'vllm:generation_tokens_total') >= gen0 + 10);
    assert.ok(sample(after, 'vllm:prompt_tokens_total') >= prompt0 + 82);
    assert.ok(sample(after, 'vllm:time_to_first_token_seconds_count') >= ttft0 + 2);
    assert.ok(sample(after, 'vllm:prefix_cache_queries_total') >= queries0 + 82);
    assert.ok(sample(after, 'vllm:prefix_cache_hits_total') >= 32);
    assert.ok(sample(after, 'vllm:request_success_total', '{model_name="served",finished_reason="length"}') >= 2);
    assert.ok(sample(after, 'vllm:e2e_request_latency_seconds_bucket', '{le="0.3",model_name="served"}') >= 2);
  });
});

describe('dummy weights', () => {
  it('says so in /v1/models', async () => {
    const h = await startHarness({ dummyWeights: true });
    try {
      const j = await (await fetch(`${h.base}/v1/models`)).json();
      assert.equal(j.data[0].dummy_weights, true);
      assert.match(j.data[0].description, /random dummy weights/);
    } finally {
      await h.close();
    }
  });
});

describe('two servers in one process', () => {
  it('keep separate metric registries', async () => {
    const a = await startHarness();
    const b = await startHarness();
    try {
      await postJson(a.base, '/v1/completions', { prompt: 'a', max_tokens: 3 });
      const ta = await (await fetch(`${a.base}/metrics`)).text();
      const tb = await (await fetch(`${b.base}/metrics`)).text();
      const fake = '{model_name="fake-model"}';
      assert.equal(sample(ta, 'vllm:generation_tokens_total', fake), 3);
      assert.equal(sample(tb, 'vllm:generation_tokens_total', fake), 0);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
