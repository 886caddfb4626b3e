// One conformance suite for every registered parser: plain text stays content; one and two calls in the
// parser's format parse to names + arguments JSON; a malformed call is returned as content, not dropped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getToolParser, toolParserNames } from './registry.js';

const args1 = { city: 'Paris', days: 2 };
const args2 = { q: 'a;b "c"' };
const formats: Record<string, { one: string; two: string; bad: string; prefixed?: string }> = {
  hermes: {
    one: `<tool_call>\n${JSON.stringify({ name: 'weather', arguments: args1 })}\n</tool_call>`,
    two: `<tool_call>\n${JSON.stringify({ name: 'weather', arguments: args1 })}\n</tool_call>\n<tool_call>\n${JSON.stringify({ name: 'search', arguments: args2 })}\n</tool_call>`,
    bad: '<tool_call>\n{"name": "weather", "arguments": {"city": </tool_call>',
    prefixed: `Let me check.\n<tool_call>\n${JSON.stringify({ name: 'weather', arguments: args1 })}\n</tool_call>`,
  },
  llama3_json: {
    one: JSON.stringify({ name: 'weather', parameters: args1 }),
    two: `<|python_tag|>${JSON.stringify({ name: 'weather', parameters: args1 })}; ${JSON.stringify({ name: 'search', parameters: args2 })}`,
    bad: '{"name": "weather", "parameters": {"city": ',
  },
  mistral: {
    one: `[TOOL_CALLS]${JSON.stringify([{ name: 'weather', arguments: args1 }])}`,
    two: `[TOOL_CALLS]${JSON.stringify([{ name: 'weather', arguments: args1 }, { name: 'search', arguments: args2 }])}`,
    bad: '[TOOL_CALLS][{"name": "weather", "arguments": {',
    prefixed: `Let me check.[TOOL_CALLS]${JSON.stringify([{ name: 'weather', arguments: args1 }])}`,
  },
};

test('every registered parser has a conformance case', () => {
  assert.deepEqual(toolParserNames().sort(), Object.keys(formats).sort());
});

for (const name of toolParserNames()) {
  test(`tool parser ${name}: text, one call, two calls, malformed, text before calls`, () => {
    const p = getToolParser(name)!;
    const f = formats[name]!;
    assert.deepEqual(p.parse('Just words.'), { content: 'Just words.', calls: [] });
    const one = p.parse(f.one);
    assert.equal(one.content, null);
    assert.deepEqual(one.calls.map((c) => [c.name, JSON.parse(c.arguments)]), [['weather', args1]]);
    const two = p.parse(f.two);
    assert.deepEqual(two.calls.map((c) => [c.name, JSON.parse(c.arguments)]), [['weather', args1], ['search', args2]]);
    assert.deepEqual(p.parse(f.bad), { content: f.bad, calls: [] });
    if (f.prefixed) {
      const r = p.parse(f.prefixed);
      assert.equal(r.content, 'Let me check.');
      assert.equal(r.calls.length, 1);
    }
  });
}
