// Issue 2 acceptance 5: bad input gets an OpenAI-style 400 (or 404), the server keeps serving,
// and after a storm of bad and aborted requests no KV block is leaked (integrity check clean).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { abortMidStream } from '../helpers/http-abort.js';
import { fixturesOrSkip } from '../helpers/fixtures.js';
import { spawnPdserve, postJson } from '../helpers/spawn-server.js';

function assertErrorBody(json: any, what: string) {
  assert.equal(typeof json?.error?.message, 'string', `${what}: error.message`);
  assert.ok(json.error.message.length > 0);
  assert.equal(typeof json.error.type, 'string', `${what}: error.type`);
  assert.ok('param' in json.error, `${what}: error.param`);
  assert.ok('code' in json.error, `${what}: error.code`);
}


test('bad input: clear 4xx errors, server keeps serving, no leaked blocks', async (t) => {
  const fx = fixturesOrSkip(t);
  if (!fx) return;
  const s = await spawnPdserve(['serve', join(fx, 'models', 'qwen3-tiny'), '--max-model-len', '1024', '--served-model-name', 'qwen3-tiny']);
  try {
    const ok = { model: 'qwen3-tiny', prompt: [5, 6, 7], max_tokens: 4, temperature: 0 };
    const cases: Array<[string, unknown, number, string | null]> = [
      ['malformed JSON', '{"prompt": [1, 2', 400, null],
      ['unknown model', { ...ok, model: 'no-such-model' }, 404, null],
      ['context too long', { ...ok, prompt: Array(1000).fill(5), max_tokens: 100 }, 400, null],
      ['token id out of vocab', { ...ok, prompt: [1, 99999] }, 400, null],
      ['negative temperature', { ...ok, temperature: -1 }, 400, 'temperature'],
      ['NaN-ish top_p', { ...ok, top_p: 'nan' }, 400, 'top_p'],
      ['top_p out of range', { ...ok, top_p: 1.5 }, 400, 'top_p'],
      ['negative max_tokens', { ...ok, max_tokens: -3 }, 400, 'max_tokens'],
      ['negative presence_penalty', { ...ok, presence_penalty: -5 }, 400, 'presence_penalty'],
      ['empty prompt', { ...ok, prompt: '' }, 400, null],
    ];
    for (const [what, body, status, param] of cases) {
      const r = await postJson(`${s.url}/v1/completions`, body);
      assert.equal(r.status, status, `${what}: status ${r.status} ${JSON.stringify(r.json)}`);
      assertErrorBody(r.json, what);
      if (param) assert.equal(r.json.error.param, param, `${what}: param`);
      const again = await postJson(`${s.url}/v1/completions`, ok);
      assert.equal(again.status, 200, `server still answers after ${what}`);
    }
    // chat to a model without a chat template: the tiny fixtures have one, so use stories260K below
    // aborted streams
    await Promise.all(Array.from({ length: 8 }, () => abortMidStream(s.url, { ...ok, max_tokens: 200, ignore_eos: true, stream: true })));
    await new Promise((r) => setTimeout(r, 500));
    const integ = await fetch(`${s.url}/debug/integrity`);
    const j = (await integ.json()) as any;
    assert.equal(integ.status, 200, JSON.stringify(j));
    assert.equal(j.ok, true);
    assert.equal(j.blocks_free, j.blocks_total, 'every block back in the pool');
    assert.equal(j.num_requests_running + j.num_requests_waiting, 0);
  } finally {
    await s.stop();
  }
  // a model without a chat template
  const st = await spawnPdserve(['serve', join(fx, 'models', 'stories260K')]);
  try {
    const r = await postJson(`${st.url}/v1/chat/completions`, { model: join(fx, 'models', 'stories260K'), messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 400);
    assertErrorBody(r.json, 'no chat template');
    assert.match(r.json.error.message, /chat template/);
  } finally {
    await st.stop();
  }
});
