// Issue 11 acceptance 1: the seed's vllm_router command line, as `pdserve router`, in front of a pdserve
// prefiller, decoder and kv-server (started by `pdserve up`): reference tokens for every fixture case
// (and a default-model case that needs no fixtures), decoder cached_tokens >= prompt length - 1,
// /engines lists both with their labels, --log-stats prints. The seed's intervals (10 s) are cut to
// 1 s so the print comes within the test's time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fixturesOrSkip, fixtureModels, readReference, comparableSteps } from '../helpers/fixtures.js';
import { postJson, spawnPdserve, type Spawned } from '../helpers/spawn-server.js';
import { spawnUp, type UpRun } from '../helpers/spawn-up.js';

const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';

function enginePort(up: UpRun, name: string): number {
  const m = new RegExp(`started ${name} \\(pid \\d+\\) on port (\\d+)`).exec(up.output());
  assert.ok(m, `up started ${name}`);
  return Number(m[1]);
}

async function seedRouter(up: UpRun): Promise<Spawned> {
  const p = enginePort(up, 'prefiller-0');
  const d = enginePort(up, 'decoder-0');
  return spawnPdserve([
    'router', '--service-discovery', 'static',
    '--static-backends', `http://localhost:${p},http://localhost:${d}`,
    '--static-models', `${MODEL},${MODEL}`,
    '--static-model-labels', 'llama-prefill,llama-decode', '--log-stats', '--log-stats-interval', '1',
    '--engine-stats-interval', '1', '--request-stats-window', '10', '--routing-logic', 'disaggregated_prefill',
    '--prefill-model-labels', 'llama-prefill', '--decode-model-labels', 'llama-decode',
    '--internal-secret-file', join(up.runDir, 'internal-secret'),
  ]);
}

async function checkEnginesAndStats(router: Spawned, up: UpRun): Promise<void> {
  const engines = (await (await fetch(`${router.url}/engines`)).json()) as { url: string; role: string; model_label: string; model_names: string[]; healthy: boolean }[];
  assert.deepEqual(
    engines.map((e) => [e.url, e.role, e.model_label, e.model_names]),
    [
      [`http://localhost:${enginePort(up, 'prefiller-0')}`, 'prefill', 'llama-prefill', [MODEL]],
      [`http://localhost:${enginePort(up, 'decoder-0')}`, 'decode', 'llama-decode', [MODEL]],
    ],
  );
  for (let i = 0; i < 100 && !/Request Stats: QPS/.test(router.logs()); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(router.logs(), /Server: http:\/\/localhost:\d+ \(prefill, label llama-prefill/);
  assert.match(router.logs(), /Server: http:\/\/localhost:\d+ \(decode, label llama-decode/);
  assert.match(router.logs(), /Request Stats: QPS: /);
}

test('seed router (default model): the decoder reuses the prefilled KV, same tokens as one engine', async () => {
  const up = await spawnUp(['--prefill', '1', '--decode', '1', '--kv-pool-size', '64M', '--', '--served-model-name', MODEL]);
  let router: Spawned | null = null;
  try {
    router = await seedRouter(up);
    const body = { model: MODEL, prompt: 'Once upon a time, there was a little girl who loved to play outside', max_tokens: 12, temperature: 0, ignore_eos: true, return_token_ids: true };
    const direct = await postJson(`http://127.0.0.1:${enginePort(up, 'prefiller-0')}/v1/completions`, body);
    assert.equal(direct.status, 200, JSON.stringify(direct.json));
    const r = await postJson(`${router.url}/v1/completions`, body);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json.choices[0].token_ids, direct.json.choices[0].token_ids);
    const n = r.json.usage.prompt_tokens;
    assert.ok(r.json.usage.prompt_tokens_details.cached_tokens >= n - 1, `decoder cached_tokens ${r.json.usage.prompt_tokens_details.cached_tokens} < ${n - 1}`);
    const s = await fetch(`${router.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, stream: true }) });
    assert.match(s.headers.get('content-type')!, /^text\/event-stream/);
    assert.match(await s.text(), /data: \[DONE\]/);
    await checkEnginesAndStats(router, up);
    const m = await (await fetch(`${router.url}/metrics`)).text();
    assert.match(m, /^vllm:healthy_pods_total 2$/m);
  } finally {
    await router?.stop();
    await up.stop();
  }
});

for (const model of fixtureModels) {
  test(`seed router ${model}: every reference case through prefiller + kv-server + decoder`, async (t) => {
    const fx = fixturesOrSkip(t);
    if (!fx) return;
    const ref = readReference(fx, model);
    const up = await spawnUp([join(fx, 'models', model), '--prefill', '1', '--decode', '1', '--kv-pool-size', '256M', '--', '--served-model-name', MODEL]);
    let router: Spawned | null = null;
    try {
      router = await seedRouter(up);
      for (const [i, c] of ref.cases.entries()) {
        const r = await postJson(`${router.url}/v1/completions`, { model: MODEL, prompt: c.prompt, max_tokens: c.greedy.length, temperature: 0, ignore_eos: true, return_token_ids: true });
        assert.equal(r.status, 200, JSON.stringify(r.json));
        const k = comparableSteps(c);
        assert.deepEqual(r.json.choices[0].token_ids.slice(0, k), c.greedy.slice(0, k), `${model} case ${i}`);
        const cached = r.json.usage.prompt_tokens_details.cached_tokens;
        assert.ok(cached >= c.prompt.length - 1, `${model} case ${i}: decoder cached_tokens ${cached} < ${c.prompt.length - 1}`);
      }
      await checkEnginesAndStats(router, up);
    } finally {
      await router?.stop();
      await up.stop();
    }
  });
}

test('pdserve up --router disaggregated_prefill: the router fronts up\'s engines (default model)', async () => {
  const up = await spawnUp(['--prefill', '1', '--decode', '1', '--kv-pool-size', '64M', '--router', 'disaggregated_prefill']);
  try {
    const r = await postJson(`${up.url}/v1/completions`, { prompt: 'Once upon a time, there was a little girl who loved to play outside', max_tokens: 4, temperature: 0 });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.ok(r.json.usage.prompt_tokens_details.cached_tokens >= r.json.usage.prompt_tokens - 1, 'the decoder loaded the prefilled KV');
    const engines = (await (await fetch(`${up.url}/engines`)).json()) as { role: string; model_label: string }[];
    assert.deepEqual(engines.map((e) => [e.role, e.model_label]), [['prefill', 'prefill'], ['decode', 'decode']]);
  } finally {
    await up.stop();
  }
});
