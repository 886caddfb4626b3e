// Issue 13 item 3 (/v1/responses, what the Vercel AI SDK's default OpenAI provider calls), with the openai
// SDK's client.responses.create against `pdserve serve` and through `pdserve up` (proxy, P/D), streaming and
// not; and n = 2 through P/D (the prefill leg asks for one sequence, the decoder forks two).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { deviceServeArgs } from '../helpers/fixtures.js';
import { postJson, spawnPdserve } from '../helpers/spawn-server.js';
import { spawnUp } from '../helpers/spawn-up.js';

const M = 'stories260k';

async function checkResponses(baseURL: string): Promise<void> {
  const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
  const r = await client.responses.create({ model: M, input: 'Once upon a time', max_output_tokens: 16, temperature: 0 });
  assert.equal(r.object, 'response');
  assert.equal(r.output[0]!.type, 'message');
  assert.ok(r.output_text.length > 0, 'output_text assembled by the SDK');
  assert.equal(r.status, 'incomplete');
  assert.equal(r.incomplete_details?.reason, 'max_output_tokens');
  assert.equal(r.usage!.output_tokens, 16);
  // the same prompt through chat: the same greedy text
  const chat = await client.chat.completions.create({ model: M, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 16, temperature: 0 });
  assert.equal(r.output_text, chat.choices[0]!.message.content);
  assert.equal(r.usage!.input_tokens, chat.usage!.prompt_tokens);
  // message items and instructions
  const items = await client.responses.create({
    model: M, instructions: 'Tell a story.', max_output_tokens: 8, temperature: 0,
    input: [{ role: 'user', content: [{ type: 'input_text', text: 'Once upon a time' }] }],
  });
  assert.ok(items.output_text.length > 0);
  // streaming: the event types, deltas assemble to the done text and the completed response
  const stream = await client.responses.create({ model: M, input: 'Once upon a time', max_output_tokens: 16, temperature: 0, stream: true });
  const types: string[] = [];
  let deltas = '';
  let doneText = '';
  let final: OpenAI.Responses.Response | undefined;
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'response.output_text.delta') deltas += ev.delta;
    if (ev.type === 'response.output_text.done') doneText = ev.text;
    if (ev.type === 'response.completed' || ev.type === 'response.incomplete') final = ev.response;
  }
  assert.equal(types[0], 'response.created');
  for (const t of ['response.output_text.delta', 'response.output_text.done', 'response.output_item.done']) assert.ok(types.includes(t), t);
  assert.equal(types.at(-1), 'response.incomplete');
  assert.equal(deltas, r.output_text);
  assert.equal(doneText, r.output_text);
  assert.equal(final?.usage?.output_tokens, 16);
  // refused by name, not ignored
  await assert.rejects(client.responses.create({ model: M, input: 'x', tools: [{ type: 'web_search' }] }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && (e.error as { param?: string }).param === 'tools.0.type');
  await assert.rejects(client.responses.create({ model: M, input: 'x', previous_response_id: 'resp_1' }), OpenAI.BadRequestError);
}

test('/v1/responses on serve: text in, output_text out, streamed with the Responses event types', async () => {
  const s = await spawnPdserve(['serve', ...deviceServeArgs()]);
  try {
    await checkResponses(s.url);
    const bad = await postJson(`${s.url}/v1/responses`, { input: [{ type: 'function_call_output', output: 'x' }] });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.param, 'input.0.call_id');
    const unknown = await postJson(`${s.url}/v1/responses`, { input: [{ type: 'reasoning', summary: [] }] });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.json.error.param, 'input.0.type');
  } finally {
    await s.stop();
  }
});

test('through up (P/D): /v1/responses relayed, and n = 2 seeded gives the same two choices as serve', async () => {
  const body = { prompt: 'Once upon a time, there was a little girl named Lily. She loved', n: 2, seed: 4, temperature: 1, max_tokens: 12 };
  const s = await spawnPdserve(['serve']); // on the CPU, as up's engines
  let local: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  try {
    local = (await postJson(`${s.url}/v1/completions`, body)).json;
  } finally {
    await s.stop();
  }
  const up = await spawnUp(['--prefill', '1', '--decode', '1', '--kv-pool-size', '64M']);
  try {
    await checkResponses(up.url);
    const r = await postJson(`${up.url}/v1/completions`, body);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json.choices.map((c: any) => c.text), local.choices.map((c: any) => c.text));
    assert.equal(r.json.usage.prompt_tokens, local.usage.prompt_tokens);
  } finally {
    await up.stop();
  }
});
