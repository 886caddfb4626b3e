// Issue 3 acceptance 1–3: prefill on one engine, KV through the kv-server, decode on another —
// token for token what one engine gives, for every fixture model; xPyD under concurrency.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fixturesOrSkip, fixtureModels, readReference, comparableSteps, deviceServeArgs, upDeviceArgs } from '../helpers/fixtures.js';

const dev = deviceServeArgs();
// PDSERVE_TEST_KV_TRANSFER=cuda_ipc: the decoder copies the prefiller's KV GPU to GPU (up --kv-transfer);
// on cpu the same flag must fall back to the pool path
const kvTransfer = process.env.PDSERVE_TEST_KV_TRANSFER ?? 'pool';
const engineArgs = [...upDeviceArgs(), '--kv-transfer', kvTransfer, ...(dev.length ? ['--', ...dev] : [])];
import { postJson } from '../helpers/spawn-server.js';
import { spawnUp } from '../helpers/spawn-up.js';

for (const model of fixtureModels) {
  test(`1P1D ${model}: every reference case through proxy + kv-server`, async (t) => {
    const fx = fixturesOrSkip(t);
    if (!fx) return;
    const ref = readReference(fx, model);
    const up = await spawnUp([join(fx, 'models', model), '--prefill', '1', '--decode', '1', '--kv-pool-size', '256M', ...engineArgs]);
    try {
      const res = await Promise.all(
        ref.cases.map((c) =>
          postJson(`${up.url}/v1/completions`, { prompt: c.prompt, max_tokens: c.greedy.length, temperature: 0, ignore_eos: true, return_token_ids: true }),
        ),
      );
      res.forEach((r, i) => {
        const c = ref.cases[i]!;
        assert.equal(r.status, 200, JSON.stringify(r.json));
        const n = comparableSteps(c);
        assert.deepEqual(r.json.choices[0].token_ids.slice(0, n), c.greedy.slice(0, n), `${model} case ${i}`);
        const cached = r.json.usage.prompt_tokens_details.cached_tokens;
        assert.ok(cached >= c.prompt.length - 1, `${model} case ${i}: decoder cached_tokens ${cached} < ${c.prompt.length - 1}`);
      });
      assert.match(up.log('decoder-0'), /Retrieved \d+ out of \d+ required tokens/);
      const dPort = /started decoder-0 \(pid \d+\) on port (\d+)/.exec(up.output())![1];
      const metrics = await (await fetch(`http://127.0.0.1:${dPort}/metrics`)).text();
      const loaded = /^pdserve:kv_connector_events_total\{[^}]*event="(?:loadedTokens|peerLoadedTokens)"[^}]*\} (\d+)/m.exec(metrics);
      assert.ok(loaded && Number(loaded[1]) > 0, 'the decoder exports its loaded KV tokens in /metrics');
      if (kvTransfer === 'cuda_ipc' && process.env.PDSERVE_TEST_DEVICE === 'cuda') {
        assert.match(up.log('decoder-0'), /Retrieved \d+ out of \d+ required tokens .* \(GPU→GPU cuda_ipc\)/);
        assert.doesNotMatch(up.log('prefiller-0'), /Stored \d+ out of total/, 'nothing went through the pool');
      } else assert.match(up.log('prefiller-0'), /Stored \d+ out of total \d+ tokens/);
    } finally {
      assert.equal(await up.stop(), 0);
    }
  });
}

test('pdserve up with stories260K: "Once upon a time" streamed and not streamed', async (t) => {
  const fx = fixturesOrSkip(t);
  if (!fx) return;
  const c = readReference(fx, 'stories260K').cases[0]!;
  const up = await spawnUp([join(fx, 'models', 'stories260K'), ...engineArgs]);
  try {
    const body = { model: join(fx, 'models', 'stories260K'), prompt: 'Once upon a time', max_tokens: c.greedy.length, temperature: 0, ignore_eos: true };
    const r = await postJson(`${up.url}/v1/completions`, body);
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].text, c.greedy_text);
    const s = await fetch(`${up.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, stream: true }) });
    assert.equal(s.status, 200);
    const text = await s.text();
    const pieces = text
      .split('\n\n')
      .filter((l) => l.startsWith('data: ') && !l.includes('[DONE]'))
      .map((l) => JSON.parse(l.slice(6)).choices[0]?.text ?? '');
    assert.ok(pieces.length > 5, 'streamed in several chunks');
    assert.equal(pieces.join(''), c.greedy_text);
  } finally {
    await up.stop();
  }
});

for (const [p, d] of [
  [2, 1],
  [2, 2],
] as const) {
  test(`${p}P${d}D: 50 concurrent mixed requests all correct, every engine used`, async (t) => {
    const fx = fixturesOrSkip(t);
    if (!fx) return;
    const model = 'qwen2-tiny';
    const ref = readReference(fx, model);
    const up = await spawnUp([join(fx, 'models', model), '--prefill', String(p), '--decode', String(d), '--kv-pool-size', '256M', ...engineArgs]);
    try {
      const reqs = Array.from({ length: 50 }, (_, k) => {
        const c = ref.cases[k % ref.cases.length]!;
        const stream = k % 3 === 0;
        return { c, stream, body: { prompt: c.prompt, max_tokens: 8 + (k % 5), temperature: 0, ignore_eos: true, return_token_ids: true, stream } };
      });
      const results = await Promise.all(
        reqs.map(async ({ c, stream, body }) => {
          if (!stream) {
            const r = await postJson(`${up.url}/v1/completions`, body);
            assert.equal(r.status, 200, JSON.stringify(r.json));
            return { c, ids: r.json.choices[0].token_ids as number[], n: body.max_tokens };
          }
          const r = await fetch(`${up.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
          assert.equal(r.status, 200);
          const ids = (await r.text())
            .split('\n\n')
            .filter((l) => l.startsWith('data: ') && !l.includes('[DONE]'))
            .flatMap((l) => JSON.parse(l.slice(6)).choices[0]?.token_ids ?? []);
          return { c, ids, n: body.max_tokens };
        }),
      );
      for (const { c, ids, n } of results) {
        const m = Math.min(n, comparableSteps(c));
        assert.deepEqual(ids.slice(0, m), c.greedy.slice(0, m));
      }
      // every engine served requests: its own request counter moved
      for (const x of up.output().matchAll(/started ((?:prefiller|decoder)-\d+) \(pid \d+\) on port (\d+)/g)) {
        const m = await (await fetch(`http://127.0.0.1:${x[2]}/metrics`)).text();
        const served = [...m.matchAll(/^vllm:request_success_total\{[^}]*\} (\S+)$/gm)].reduce((a, r) => a + Number(r[1]), 0);
        assert.ok(served > 0, `${x[1]} served no request`);
      }
      for (let i = 0; i < d; i++) assert.match(up.log(`decoder-${i}`), /Retrieved/, `decoder-${i} retrieved KV`);
    } finally {
      await up.stop();
    }
  });
}
