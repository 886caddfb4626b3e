// Checks shared by the structured-output acceptance tests (serve and up), through the official openai SDK:
// tool calls whose arguments validate against the function's schema (ajv), streamed deltas that assemble
// to the same calls, and chat.completions.parse with a JSON schema.
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { Ajv } from 'ajv';

export const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'weather for a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', maxLength: 12 }, unit: { type: 'string', enum: ['c', 'f'] }, days: { type: 'integer', minimum: 1, maximum: 7 } },
      required: ['city', 'unit', 'days'],
      additionalProperties: false,
    },
  },
};
export const timeTool = {
  type: 'function' as const,
  function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string', enum: ['utc', 'local'] } }, required: ['zone'] } },
};
export const tools = [weatherTool, timeTool];
const schemas: Record<string, object> = { get_weather: weatherTool.function.parameters, get_time: timeTool.function.parameters };
const ajv = new Ajv({ strict: false });

type Call = { name: string; arguments: string };

function assertValidCalls(calls: Call[]): void {
  assert.ok(calls.length >= 1);
  for (const c of calls) {
    assert.ok(schemas[c.name], `unknown function ${c.name}`);
    const validate = ajv.compile(schemas[c.name]!);
    assert.ok(validate(JSON.parse(c.arguments)), `${c.name}(${c.arguments}): ${ajv.errorsText(validate.errors)}`);
  }
}

/** The streamed deltas of one choice assembled into calls (OpenAI's accumulation rule). */
async function streamedCalls(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>): Promise<{ calls: Call[]; finish: string | null; ids: string[] }> {
  const calls: Call[] = [];
  const ids: string[] = [];
  let finish: string | null = null;
  for await (const chunk of stream) {
    const ch = chunk.choices[0];
    if (!ch) continue;
    for (const d of ch.delta.tool_calls ?? []) {
      if (d.id) {
        assert.equal(d.type, 'function');
        assert.ok(d.function?.name, 'the first delta of a call names its function');
        ids[d.index] = d.id;
        calls[d.index] = { name: d.function.name, arguments: d.function.arguments ?? '' };
      } else {
        assert.ok(calls[d.index], 'argument fragments come after the header delta');
        calls[d.index]!.arguments += d.function?.arguments ?? '';
      }
    }
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  return { calls, finish, ids };
}

/** Shared by serve and up (structured-up.test.ts). */
export async function checkToolCalls(client: OpenAI, model: string): Promise<void> {
  const messages = [{ role: 'user' as const, content: 'What is the weather in Paris?' }];
  // parallel_tool_calls false: at most one call (random weights would otherwise append calls until max_tokens)
  for (const tool_choice of ['required', { type: 'function', function: { name: 'get_weather' } }] as const) {
    const r = await client.chat.completions.create({ model, messages, tools, tool_choice, parallel_tool_calls: false, temperature: 0, max_tokens: 200 });
    const m = r.choices[0]!;
    assert.equal(m.finish_reason, 'tool_calls', JSON.stringify(m));
    const calls = (m.message.tool_calls ?? []).map((t) => {
      assert.equal(t.type, 'function');
      assert.match(t.id, /^chatcmpl-tool-/);
      return (t as { function: Call }).function;
    });
    assertValidCalls(calls);
    if (typeof tool_choice === 'object') assert.deepEqual(calls.map((c) => c.name), ['get_weather']);
    // streamed (same greedy output): deltas assemble to the same calls
    const s = await streamedCalls(await client.chat.completions.create({ model, messages, tools, tool_choice, parallel_tool_calls: false, temperature: 0, max_tokens: 200, stream: true }));
    assert.equal(s.finish, 'tool_calls');
    assert.deepEqual(s.calls, calls.map((c) => ({ name: c.name, arguments: c.arguments })));
  }
}

export async function checkJsonSchema(client: OpenAI, model: string): Promise<void> {
  const schema = {
    type: 'object',
    properties: { name: { type: 'string', maxLength: 10 }, mood: { type: 'string', enum: ['happy', 'sad'] }, age: { type: 'integer', minimum: 0, maximum: 120 } },
    required: ['name', 'mood', 'age'],
    additionalProperties: false,
  };
  const r = await client.chat.completions.parse({
    model,
    messages: [{ role: 'user', content: 'Describe a person.' }],
    response_format: { type: 'json_schema', json_schema: { name: 'person', schema, strict: true } },
    temperature: 0,
    max_tokens: 300,
  });
  const parsed = r.choices[0]!.message.parsed as Record<string, unknown> | null;
  assert.ok(parsed, JSON.stringify(r.choices[0]));
  assert.ok(ajv.validate(schema, parsed), ajv.errorsText());
}

