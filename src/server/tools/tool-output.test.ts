// Tool output assembly: whole messages per mode, and streaming deltas that, accumulated as OpenAI clients
// do, equal the whole message's calls — whatever the text's chunking.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toolPlanOf, type ToolPlan } from './tool-plan.js';
import { ToolDeltaStream, toolMessage, type ChatDelta } from './tool-output.js';

const tools = [
  { type: 'function', function: { name: 'weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } },
  { type: 'function', function: { name: 'time', parameters: { type: 'object', properties: {} } } },
];
const settings = { enableAutoToolChoice: true, toolCallParser: 'hermes' };
const plan = (tool_choice: unknown): ToolPlan => toolPlanOf({ tools, tool_choice }, settings)!;

function assemble(deltas: ChatDelta[]): { content: string; calls: Array<{ name: string; arguments: string }> } {
  let content = '';
  const calls: Array<{ name: string; arguments: string }> = [];
  for (const d of deltas) {
    if ('content' in d) content += d.content;
    if ('tool_calls' in d) for (const t of d.tool_calls) {
      if (t.id) calls[t.index] = { name: t.function.name!, arguments: t.function.arguments };
      else calls[t.index]!.arguments += t.function.arguments;
    }
  }
  return { content, calls };
}

/** Streams `text` in pieces of `size` characters. */
function streamed(p: ToolPlan, text: string, size: number): { deltas: ChatDelta[]; finish: string } {
  const s = new ToolDeltaStream(p);
  const deltas: ChatDelta[] = [];
  for (let i = 0; i < text.length; i += size) deltas.push(...s.push(text.slice(i, i + size)));
  const end = s.end('stop');
  return { deltas: [...deltas, ...end.deltas], finish: end.finishReason };
}

const cases: Array<[string, unknown, string]> = [
  ['required, two calls', 'required', '[{"name":"weather","parameters":{"city":"a \\"}] b"}},{"name":"time","parameters":{}}]'],
  ['named', { type: 'function', function: { name: 'weather' } }, '{"city":"Paris {x}"}'],
  ['auto (hermes), text then a call', 'auto', 'Sure.\n<tool_call>\n{"name": "weather", "arguments": {"city": "Oslo"}}\n</tool_call>'],
];

for (const [name, choice, text] of cases) {
  test(`tool output: ${name}: whole message and streamed deltas agree (any chunking)`, () => {
    const p = plan(choice);
    const whole = toolMessage(p, text, 'stop');
    assert.equal(whole.finishReason, 'tool_calls');
    assert.ok(whole.message.tool_calls.length >= 1);
    for (const t of whole.message.tool_calls) assert.match(t.id, /^chatcmpl-tool-[0-9a-f]{32}$/);
    const want = whole.message.tool_calls.map((t) => ({ name: t.function.name, arguments: t.function.arguments }));
    for (const size of [1, 3, 7, 1000]) {
      const { deltas, finish } = streamed(p, text, size);
      assert.equal(finish, 'tool_calls');
      const got = assemble(deltas);
      assert.deepEqual(got.calls.map((c) => ({ name: c.name, arguments: JSON.stringify(JSON.parse(c.arguments)) })), want, `chunk size ${size}`);
      if (name.startsWith('auto')) assert.equal(got.content.trim(), 'Sure.');
    }
  });
}

test('tool output: a call cut by max_tokens stays text with finish_reason length; auto text without calls streams as content', () => {
  const cut = toolMessage(plan('required'), '[{"name":"weather","parameters":{"ci', 'length');
  assert.deepEqual(cut.message.tool_calls, []);
  assert.equal(cut.message.content, '[{"name":"weather","parameters":{"ci');
  assert.equal(cut.finishReason, 'length');
  const { deltas, finish } = streamed(plan('auto'), 'No tools needed <tool_ here.', 2);
  assert.equal(finish, 'stop');
  assert.equal(assemble(deltas).content, 'No tools needed <tool_ here.');
});

test('tool plan: default choice, parallel_tool_calls false caps required at one call', () => {
  assert.equal(toolPlanOf({ tools }, { enableAutoToolChoice: false, toolCallParser: null }), null);
  assert.equal(toolPlanOf({ tools }, settings)!.mode, 'auto');
  const p = toolPlanOf({ tools, tool_choice: 'required', parallel_tool_calls: false }, settings)!;
  const schema = JSON.parse((p.constraint!.spec as { schema: string }).schema);
  assert.equal(schema.maxItems, 1);
  assert.equal(schema.minItems, 1);
  assert.deepEqual(schema.items.anyOf.map((a: any) => a.properties.name.enum[0]), ['weather', 'time']);
});

test('tool output: auto streams a call while it is written (header, then argument fragments), equal to the whole message', () => {
  for (const [parser, text] of [
    ['hermes', 'Let me look.\n<tool_call>\n{"name": "weather", "arguments": {"city": "Oslo", "days": [1, 2]}}\n</tool_call>'],
    ['llama3_json', '{"name": "weather", "parameters": {"city": "Oslo", "days": [1, 2]}}'],
  ] as const) {
    const p = toolPlanOf({ tools, tool_choice: 'auto' }, { enableAutoToolChoice: true, toolCallParser: parser })!;
    const s = new ToolDeltaStream(p);
    const deltas: ChatDelta[] = [];
    let headerAt = -1;
    let fragmentsBeforeEnd = 0;
    for (let i = 0; i < text.length; i++) {
      for (const d of s.push(text[i]!)) {
        deltas.push(d);
        if ('tool_calls' in d && d.tool_calls[0]!.id && headerAt < 0) headerAt = i;
        if ('tool_calls' in d && !d.tool_calls[0]!.id) fragmentsBeforeEnd++;
        if ('content' in d) assert.doesNotMatch(d.content, /<|\{/, 'no markup in content');
      }
    }
    const end = s.end('stop');
    assert.equal(end.finishReason, 'tool_calls');
    assert.ok(headerAt >= 0 && headerAt < text.indexOf('Oslo'), `${parser}: header sent when the name is complete`);
    assert.ok(fragmentsBeforeEnd > 5, `${parser}: arguments in fragments`);
    const got = assemble([...deltas, ...end.deltas]);
    const whole = toolMessage(p, text, 'stop');
    assert.deepEqual(got.calls, whole.message.tool_calls.map((t) => ({ name: t.function.name, arguments: t.function.arguments })), parser);
    assert.equal(got.content.trim(), whole.message.content ?? '');
  }
});
