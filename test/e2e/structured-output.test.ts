// Issue 13 acceptance 1 and 2 with the official openai SDK against `pdserve serve` (pdserve-demo: random
// weights, Qwen3 vocabulary and chat template with tools; the grammar alone makes the output valid):
// tool_choice "required" and a named function return calls whose arguments validate against the
// function's schema, streamed deltas assemble to the same calls, chat.completions.parse with a JSON schema
// returns a valid object, regex and choice constrain completions, n = 2 with a grammar gives each choice
// its own matcher, bad constraints are 400s naming the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { spawnPdserve, type Spawned } from '../helpers/spawn-server.js';
import { Ajv } from 'ajv';
import { checkJsonSchema, checkToolCalls, tools } from '../helpers/structured-checks.js';

const ajv = new Ajv({ strict: false });

async function promptTokensTotal(url: string): Promise<number> {
  const m = /^vllm:prompt_tokens_total\{[^}]*\} (\d+)/m.exec(await (await fetch(`${url}/metrics`)).text());
  assert.ok(m, 'vllm:prompt_tokens_total exported');
  return Number(m[1]);
}

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
    await t.test('n = 2 with a JSON schema and a seed: two valid objects, reproducible, prompt counted once; n = 2 forced tool calls streamed per choice', async () => {
      const schema = {
        type: 'object',
        properties: { name: { type: 'string', maxLength: 10 }, mood: { type: 'string', enum: ['happy', 'sad'] }, age: { type: 'integer', minimum: 0, maximum: 120 } },
        required: ['name', 'mood', 'age'],
        additionalProperties: false,
      };
      const req = {
        model: 'pdserve-demo', messages: [{ role: 'user' as const, content: 'Describe a person.' }], n: 2, seed: 7, temperature: 1, max_tokens: 300,
        response_format: { type: 'json_schema' as const, json_schema: { name: 'person', schema, strict: true } },
      };
      const before = await promptTokensTotal(s.url);
      const a = await client.chat.completions.create(req);
      const mid = await promptTokensTotal(s.url);
      const b = await client.chat.completions.create(req);
      assert.deepEqual(a.choices.map((c) => c.index), [0, 1]);
      const objs = a.choices.map((c) => {
        assert.equal(c.finish_reason, 'stop', JSON.stringify(c));
        const v = JSON.parse(c.message.content!);
        assert.ok(ajv.validate(schema, v), `${c.message.content}: ${ajv.errorsText()}`);
        return v;
      });
      assert.notDeepEqual(objs[0], objs[1], 'each choice has its own sampling stream and matcher');
      assert.deepEqual(b.choices.map((c) => c.message.content), a.choices.map((c) => c.message.content), 'same seed, same objects');
      assert.equal(mid - before, a.usage!.prompt_tokens, 'one prefill: the engine counted the prompt once');
      // streamed: the chunks of each choice assemble to the same objects
      const st = await client.chat.completions.create({ ...req, stream: true });
      const texts = ['', ''];
      for await (const c of st) for (const ch of c.choices) texts[ch.index] += ch.delta.content ?? '';
      assert.deepEqual(texts, a.choices.map((c) => c.message.content));
      // forced tool calls, n = 2, streamed: each choice's deltas carry its index and assemble to a valid call
      const tr = { model: 'pdserve-demo', messages: req.messages, tools, tool_choice: 'required' as const, parallel_tool_calls: false, n: 2, seed: 3, temperature: 1, max_tokens: 200 };
      const whole = await client.chat.completions.create(tr);
      const ts = await client.chat.completions.create({ ...tr, stream: true });
      const calls: Array<{ name: string; arguments: string }> = [];
      for await (const c of ts) {
        for (const ch of c.choices) {
          for (const d of ch.delta.tool_calls ?? []) {
            assert.equal(d.index, 0, 'one call per choice');
            if (d.id) calls[ch.index] = { name: d.function!.name!, arguments: d.function!.arguments ?? '' };
            else calls[ch.index]!.arguments += d.function?.arguments ?? '';
          }
        }
      }
      assert.deepEqual(calls, whole.choices.map((c) => ({ name: (c.message.tool_calls![0] as { function: { name: string } }).function.name, arguments: (c.message.tool_calls![0] as { function: { arguments: string } }).function.arguments })));
    });
    await t.test('strict: true under tool_choice auto: from the <tool_call> marker on, the grammar holds the call to the schema', async () => {
      // logit_bias pushes the random model to open a call (token 151657 = <tool_call>); what follows is the
      // grammar's. The schema has no free strings (inside one, the biased marker would be allowed text).
      const params = { type: 'object', properties: { unit: { type: 'string', enum: ['c', 'f'] }, days: { type: 'integer', minimum: 1, maximum: 7 } }, required: ['unit', 'days'], additionalProperties: false };
      const forecast = (strict: boolean) => ({ type: 'function' as const, function: { name: 'forecast', parameters: params, strict } });
      const req = { model: 'pdserve-demo', messages: [{ role: 'user' as const, content: 'Forecast?' }], max_tokens: 300, temperature: 0.7, seed: 11, logit_bias: { '151657': 100 } };
      const r = await client.chat.completions.create({ ...req, tools: [forecast(true)] });
      const calls = (r.choices[0]!.message.tool_calls ?? []) as Array<{ function: { name: string; arguments: string } }>;
      assert.ok(calls.length >= 1, `a tool call parsed from ${JSON.stringify(r.choices[0]!.message.content)}`);
      const validate = ajv.compile(params);
      for (const c of calls) {
        assert.equal(c.function.name, 'forecast');
        assert.ok(validate(JSON.parse(c.function.arguments)), `${c.function.arguments}: ${ajv.errorsText(validate.errors)}`);
      }
      // without strict the text after the marker is the random model's: no parsable call
      const loose = await client.chat.completions.create({ ...req, tools: [forecast(false)] });
      assert.equal((loose.choices[0]!.message.tool_calls ?? []).length, 0, 'no grammar: no parsable call from random weights');
    });
    await t.test('a grammar is compiled once per spec: pdserve:grammar_compiles_total', async () => {
      const compiles = async () => Number(/^pdserve:grammar_compiles_total\{[^}]*\} (\d+)/m.exec(await (await fetch(`${s.url}/metrics`)).text())?.[1]);
      const before = await compiles();
      assert.ok(before >= 1, 'exported (the warm-up grammar counts)');
      for (let i = 0; i < 3; i++) {
        const r = await client.completions.create({ model: 'pdserve-demo', prompt: 'id:', max_tokens: 20, n: 2, seed: i, structured_outputs: { regex: '[a-f]{3}-q' } } as never);
        for (const c of (r as OpenAI.Completions.Completion).choices) assert.match(c.text, /^[a-f]{3}-q$/);
      }
      assert.equal(await compiles(), before + 1, 'three requests of six sequences, one new spec: one compile');
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
