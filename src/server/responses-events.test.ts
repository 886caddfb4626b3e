// Chat-shaped deltas -> Responses events: text then two calls (auto tool choice), the event order the openai
// SDK expects, output indexes in order, and output items whose text / arguments are the deltas' sums.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResponseOutputBuilder } from './responses-events.js';
import { chatToolFields } from './responses-tools.js';

test('responses events: a message, then function calls, each opened, filled and closed in turn', () => {
  const b = new ResponseOutputBuilder((n) => `msg_${n}`);
  const evs = [
    ...b.push({ content: 'Let me ' }),
    ...b.push({ content: 'check.' }),
    ...b.push({ tool_calls: [{ index: 0, id: 'x', type: 'function', function: { name: 'weather', arguments: '' } }] }),
    ...b.push({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
    ...b.push({ tool_calls: [{ index: 0, function: { arguments: '"Oslo"}' } }] }),
    ...b.push({ tool_calls: [{ index: 1, id: 'y', type: 'function', function: { name: 'time', arguments: '' } }] }),
    ...b.push({ tool_calls: [{ index: 1, function: { arguments: '{}' } }] }),
    ...b.finish('completed'),
  ];
  assert.deepEqual(evs.map(([t, d]) => `${t}@${d.output_index}`), [
    'response.output_item.added@0', 'response.content_part.added@0', 'response.output_text.delta@0', 'response.output_text.delta@0',
    'response.output_text.done@0', 'response.content_part.done@0', 'response.output_item.done@0',
    'response.output_item.added@1', 'response.function_call_arguments.delta@1', 'response.function_call_arguments.delta@1',
    'response.function_call_arguments.done@1', 'response.output_item.done@1',
    'response.output_item.added@2', 'response.function_call_arguments.delta@2', 'response.function_call_arguments.done@2', 'response.output_item.done@2',
  ]);
  const [msg, c1, c2] = b.output as any[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  assert.deepEqual(msg, { type: 'message', id: 'msg_0', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'Let me check.', annotations: [] }] });
  assert.deepEqual([c1.name, c1.arguments, c1.status, c2.name, c2.arguments], ['weather', '{"city":"Oslo"}', 'completed', 'time', '{}']);
  assert.match(c1.call_id, /^call_[0-9a-f]{24}$/);
  assert.notEqual(c1.id, c2.id);
  const added = evs.find(([t, d]) => t === 'response.output_item.added' && d.output_index === 1)![1].item as { arguments: string; status: string };
  assert.deepEqual([added.arguments, added.status], ['', 'in_progress'], 'the added item is the empty call');
  const done = evs.find(([t, d]) => t === 'response.function_call_arguments.done' && d.output_index === 1)![1];
  assert.deepEqual([done.name, done.arguments, done.item_id], ['weather', '{"city":"Oslo"}', c1.id]);
});

test('responses events: a cut output leaves its open item incomplete', () => {
  const b = new ResponseOutputBuilder((n) => `msg_${n}`);
  b.push({ tool_calls: [{ index: 0, id: 'x', type: 'function', function: { name: 'weather', arguments: '' } }] });
  b.push({ tool_calls: [{ index: 0, function: { arguments: '{"ci' } }] });
  b.finish('incomplete');
  assert.equal(b.output[0]!.status, 'incomplete');
});

test('responses tools -> chat tool fields; other tool types and tool_choice shapes are 400s naming them', () => {
  const f = chatToolFields([{ type: 'function', name: 'f', parameters: { type: 'object' }, strict: true, description: 'd' }], { type: 'function', name: 'f' }, false);
  assert.deepEqual(f, {
    tools: [{ type: 'function', function: { name: 'f', description: 'd', parameters: { type: 'object' }, strict: true } }], // strict passes through (enforced under auto)
    tool_choice: { type: 'function', function: { name: 'f' } },
    parallel_tool_calls: false,
  });
  assert.throws(() => chatToolFields([{ type: 'web_search' }], null, null), (e: any) => e.param === 'tools.0.type'); // eslint-disable-line @typescript-eslint/no-explicit-any
  assert.throws(() => chatToolFields([], { type: 'mcp' }, null), (e: any) => e.param === 'tool_choice'); // eslint-disable-line @typescript-eslint/no-explicit-any
});
