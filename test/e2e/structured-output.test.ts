// Issue 13 acceptance 1 and 2 with the official openai SDK against `pdserve serve` (pdserve-demo: random
// weights, Qwen3 vocabulary and chat template with tools; the grammar alone makes the output valid):
// tool_choice "required" and a named function return calls whose arguments validate against the
// function's schema, streamed deltas assemble to the same calls, chat.completions.parse with a JSON schema
// returns a valid object, regex and choice constrain completions, bad constraints are 400s naming the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { spawnPdserve, type Spawned } from '../helpers/spawn-server.js';
import { checkJsonSchema, checkToolCalls, tools } from '../helpers/structured-checks.js';

let s: Spawned;
test('serve pdserve-demo --enable-auto-tool-choice --tool-call-parser hermes: tool calls, JSON schema, regex, choice via the openai SDK', async (t) => {
  s = await spawnPdserve(['serve', 'pdserve-demo', '--enable-auto-tool-choice', '--tool-call-parser', 'hermes', '--max-model-len', '2048']);
  const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'none', maxRetries: 0, timeout: 120_000 });
  try {
    await t.test('tool_choice required and named', () => checkToolCalls(client, 'pdserve-demo'));
    await t.test('chat.completions.parse with a JSON schema', () => checkJsonSchema(client, 'pdserve-demo'));
    await t.test('regex and choice constrain the output (completions, chat; vLLM and older field names)', async () => {
      for (const extra of [{ structured_outputs: { regex: '[a-z]{2,8}-[0-9]{3}' } }, { guided_regex: '[a-z]{2,8}-[0-9]{3}' }]) {
        const r = await client.completions.create({ model: 'pdserve-demo', prompt: 'code:', max_tokens: 40, temperature: 0.8, seed: 3, ...extra } as never);
        assert.match((r as OpenAI.Completions.Completion).choices[0]!.text, /^[a-z]{2,8}-[0-9]{3}$/);
      }
      const choices = ['red', 'green', 'blue'];
      for (const extra of [{ structured_outputs: { choice: choices } }, { guided_choice: choices }]) {
        const r = await client.chat.completions.create({ model: 'pdserve-demo', messages: [{ role: 'user', content: 'a colour?' }], max_tokens: 20, ...extra } as never);
        const m = (r as OpenAI.Chat.Completions.ChatCompletion).choices[0]!;
        assert.ok(choices.includes(m.message.content!), m.message.content!);
        assert.equal(m.finish_reason, 'stop');
      }
      // streaming honours it too
      const st = await client.completions.create({ model: 'pdserve-demo', prompt: 'x', max_tokens: 20, stream: true, guided_choice: choices } as never);
      let text = '';
      for await (const c of st as unknown as AsyncIterable<OpenAI.Completions.Completion>) text += c.choices[0]?.text ?? '';
      assert.ok(choices.includes(text), text);
    });
    await t.test('bad constraints are 400s naming the field', async () => {
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ guided_regex: '[a-z' }, 'guided_regex'],
        [{ structured_outputs: { grammar: 'root ::= ' } }, 'structured_outputs.grammar'],
        [{ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'objekt' } } } }, 'response_format.json_schema.schema'],
        [{ guided_choice: [] }, 'guided_choice'],
        [{ guided_regex: 'a', guided_choice: ['a'] }, 'guided_choice'],
      ];
      for (const [extra, param] of cases) {
        await assert.rejects(
          client.chat.completions.create({ model: 'pdserve-demo', messages: [{ role: 'user', content: 'x' }], max_tokens: 5, ...extra } as never),
          (e: unknown) => e instanceof OpenAI.BadRequestError && (e.error as { param?: string })?.param === param,
          JSON.stringify(extra),
        );
      }
      await assert.rejects(
        client.chat.completions.create({ model: 'pdserve-demo', messages: [{ role: 'user', content: 'x' }], tools, tool_choice: { type: 'function', function: { name: 'nope' } } }),
        (e: unknown) => e instanceof OpenAI.BadRequestError && /nope/.test((e as Error).message),
      );
      // the server still serves constrained requests after the bad ones
      await checkJsonSchema(client, 'pdserve-demo');
    });
  } finally {
    await s.stop();
  }
});
