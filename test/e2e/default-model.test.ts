// Issue 13 items 4, 5, 6, 8: the first run answers in words (stories260k shipped as the default model), the
// model argument as given is the served name, several --served-model-name values, and generation_config.json
// sampling defaults (vLLM's --generation-config). Needs no fixtures: the default card ships its weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/fixtures.js';
import { postJson, spawnPdserve } from '../helpers/spawn-server.js';
import { spawnUp } from '../helpers/spawn-up.js';

// The README's first curl, as a user copies it.
const readmeBody = { model: 'stories260k', prompt: 'Once upon a time', max_tokens: 32 };

const common = new Set(['the', 'a', 'was', 'to', 'and', 'she', 'he', 'it', 'named', 'there', 'in', 'of', 'with', 'her', 'his', 'they', 'day', 'one', 'play', 'little', 'saw', 'said', 'big', 'is', 'loved', 'time']);
/** Readable English, roughly: mostly alphabetic words, and several of the commonest ones. */
function assertReadable(text: string): void {
  const words = text.toLowerCase().split(/\s+/).map((w) => w.replace(/[.,!?;:"'()]/g, '')).filter(Boolean);
  assert.ok(words.length >= 5, `too few words: ${JSON.stringify(text)}`);
  const alpha = words.filter((w) => /^[a-z]+$/.test(w)).length;
  assert.ok(alpha / words.length >= 0.8, `not words: ${JSON.stringify(text)}`);
  assert.ok(words.filter((w) => common.has(w)).length >= 3, `not English: ${JSON.stringify(text)}`);
}

test('serve with no model: stories260k answers in words (completions and chat), named as a tiny story model; its logprobs index the text', async () => {
  const s = await spawnPdserve(['serve']);
  try {
    const models = (await (await fetch(`${s.url}/v1/models`)).json()) as any;
    assert.deepEqual(models.data.map((m: any) => m.id), ['stories260k']);
    assert.match(models.data[0].description, /tiny story model/);
    assert.equal(models.data[0].dummy_weights, false);
    const r = await postJson(`${s.url}/v1/completions`, readmeBody);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assertReadable(r.json.choices[0].text);
    const c = await postJson(`${s.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 32, temperature: 0 });
    assert.equal(c.status, 200, JSON.stringify(c.json));
    assertReadable(c.json.choices[0].message.content);
    // the chat prompt is BOS + the text: the same greedy answer as the completion of that text
    const g = await postJson(`${s.url}/v1/completions`, { prompt: 'Once upon a time', max_tokens: 32, temperature: 0 });
    assert.equal(c.json.choices[0].message.content, g.json.choices[0].text);
    // completion logprobs of a SentencePiece model: the tokens concatenate to the text, offsets index it
    const lp = await postJson(`${s.url}/v1/completions`, { prompt: 'Once upon a time', max_tokens: 32, temperature: 0, logprobs: 5 });
    const { tokens, text_offset, top_logprobs } = lp.json.choices[0].logprobs;
    assert.equal(tokens.join(''), lp.json.choices[0].text);
    text_offset.forEach((o: number, i: number) => assert.equal(lp.json.choices[0].text.slice(o, o + tokens[i].length), tokens[i]));
    for (const d of top_logprobs) assert.ok(Object.keys(d).length >= 5, JSON.stringify(d));
    const streamed = await fetch(`${s.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 32, temperature: 0, logprobs: 5, stream: true }),
    });
    const chunks = (await streamed.text()).split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)).choices[0]);
    assert.deepEqual(chunks.flatMap((c: any) => c.logprobs?.tokens ?? []), tokens);
    assert.deepEqual(chunks.flatMap((c: any) => c.logprobs?.text_offset ?? []), text_offset);
    assert.match(s.logs(), /tiny story model/);
    assert.doesNotMatch(s.logs(), /RANDOM weights/);
  } finally {
    await s.stop();
  }
});

test('the model argument as given is the served name; several --served-model-name values; generation_config defaults', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'pds-gen-')), 'my-stories');
  cpSync(join(repoRoot, 'models', 'cards', 'stories260k'), dir, { recursive: true });
  const gen = JSON.parse(readFileSync(join(dir, 'generation_config.json'), 'utf8'));
  writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ ...gen, top_k: 1 }));
  const prompt = 'Once upon a time';
  const s = await spawnPdserve(['serve', dir]);
  try {
    const models = (await (await fetch(`${s.url}/v1/models`)).json()) as any;
    assert.deepEqual(models.data.map((m: any) => m.id), [dir]);
    assert.match(s.logs(), /overridden by the model's generation config: \{top_k=1\}/);
    const greedy = await postJson(`${s.url}/v1/completions`, { model: dir, prompt, max_tokens: 24, temperature: 0 });
    assert.equal(greedy.status, 200, JSON.stringify(greedy.json));
    // the request says nothing about sampling: top_k 1 from generation_config.json = greedy, whatever the seed
    for (const seed of [1, 2, 3]) {
      const r = await postJson(`${s.url}/v1/completions`, { model: dir, prompt, max_tokens: 24, seed });
      assert.equal(r.json.choices[0].text, greedy.json.choices[0].text, `seed ${seed}`);
    }
    assert.equal((await postJson(`${s.url}/v1/completions`, { model: 'my-stories', prompt })).status, 404);
  } finally {
    await s.stop();
  }
  const v = await spawnPdserve(['serve', dir, '--generation-config', 'vllm', '--served-model-name', 'story', 'tiny']);
  try {
    const models = (await (await fetch(`${v.url}/v1/models`)).json()) as any;
    assert.deepEqual(models.data.map((m: any) => m.id), ['story', 'tiny']);
    const texts = new Set<string>();
    for (const model of ['story', 'tiny', 'story']) {
      const r = await postJson(`${v.url}/v1/completions`, { model, prompt, max_tokens: 24, seed: texts.size + 10 });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.model, 'story'); // the first name is reported
      texts.add(r.json.choices[0].text);
    }
    assert.ok(texts.size > 1, '--generation-config vllm: temperature 1 sampling, different seeds differ');
  } finally {
    await v.stop();
  }
});

test('pdserve up with no model, then the README curl through the proxy: readable English', async () => {
  const up = await spawnUp(['--prefill', '1', '--decode', '1', '--kv-pool-size', '64M']);
  try {
    const r = await postJson(`${up.url}/v1/completions`, readmeBody);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assertReadable(r.json.choices[0].text);
  } finally {
    await up.stop();
  }
});
