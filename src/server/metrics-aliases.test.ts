// The names production-stack's router and dashboards read (issue 11), moving with traffic: the pre-v1
// prefix-cache counters and hit rate, KV usage, per-phase times and per-request token counts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { postJson, startHarness, type Harness } from './testing/harness.js';

function sample(text: string, name: string, labels = '{model_name="served"}'): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  assert.ok(line, `no sample ${name}${labels}`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('engine metric aliases', () => {
  let h: Harness;
  before(async () => { h = await startHarness({ tokenDelayMs: 2 }, { servedModelName: ['served'], maxModelLen: 2048 }); });
  after(async () => { await h.close(); });

  it('exports the router-read names and they equal the v1 ones / move per request', async () => {
    const before = await (await fetch(`${h.base}/metrics`)).text();
    for (const name of [
      'vllm:gpu_prefix_cache_hits_total', 'vllm:gpu_prefix_cache_queries_total', 'vllm:gpu_prefix_cache_hit_rate', 'vllm:gpu_cache_usage_perc',
      'vllm:request_prefill_time_seconds', 'vllm:request_decode_time_seconds', 'vllm:request_queue_time_seconds', 'vllm:time_per_output_token_seconds',
      'vllm:request_prompt_tokens', 'vllm:request_generation_tokens',
    ]) assert.ok(before.includes(`# TYPE ${name} `), `missing ${name}`);
    const n0 = sample(before, 'vllm:request_prompt_tokens_count');
    const prompt = 'z'.repeat(40);
    for (let i = 0; i < 3; i++) assert.equal((await postJson(h.base, '/v1/completions', { prompt, max_tokens: 4 })).status, 200);
    const t = await (await fetch(`${h.base}/metrics`)).text();
    assert.equal(sample(t, 'vllm:gpu_prefix_cache_hits_total'), sample(t, 'vllm:prefix_cache_hits_total'));
    assert.equal(sample(t, 'vllm:gpu_prefix_cache_queries_total'), sample(t, 'vllm:prefix_cache_queries_total'));
    const hits = sample(t, 'vllm:gpu_prefix_cache_hits_total');
    const queries = sample(t, 'vllm:gpu_prefix_cache_queries_total');
    assert.ok(hits > 0, 'repeated prompts hit the prefix cache');
    assert.ok(Math.abs(sample(t, 'vllm:gpu_prefix_cache_hit_rate') - hits / queries) < 1e-9);
    assert.equal(sample(t, 'vllm:request_prompt_tokens_count'), n0 + 3);
    assert.equal(sample(t, 'vllm:request_generation_tokens_count'), n0 + 3);
    assert.equal(sample(t, 'vllm:request_generation_tokens_sum'), sample(before, 'vllm:request_generation_tokens_sum') + 12);
    assert.ok(sample(t, 'vllm:request_prompt_tokens_sum') >= sample(before, 'vllm:request_prompt_tokens_sum') + 3 * 40);
    assert.equal(sample(t, 'vllm:request_prefill_time_seconds_count'), n0 + 3);
    assert.ok(sample(t, 'vllm:request_decode_time_seconds_sum') > 0, 'decode phase of 4 tokens at 2 ms a token takes time');
  });
});
