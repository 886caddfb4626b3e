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

/** Feeds `text` to the parser's stream split at `cuts`; assembles calls and content as a client would. */
function streamed(name: string, text: string, cuts: number[]): { content: string; calls: Array<{ name: string; arguments: string }>; firstNameAt: number[] } {
  const s = getToolParser(name)!.stream();
  const calls: Array<{ name: string; arguments: string }> = [];
  const firstNameAt: number[] = [];
  let content = '';
  let at = 0;
  const take = (evs: ReturnType<typeof s.push>, fed: number) => {
    for (const e of evs) {
      if (e.kind === 'content') content += e.text;
      else if (e.kind === 'call') {
        assert.equal(e.index, calls.length, 'calls are numbered in order');
        calls.push({ name: e.name, arguments: '' });
        firstNameAt.push(fed);
      } else {
        assert.ok(calls[e.index], 'arguments follow their call');
        calls[e.index]!.arguments += e.text;
      }
    }
  };
  for (const c of [...cuts, text.length]) {
    take(s.push(text.slice(at, c)), c);
    at = c;
  }
  take(s.end(), text.length);
  return { content, calls, firstNameAt };
}

for (const name of toolParserNames()) {
  test(`tool parser ${name}: streamed at every split point (and char by char) assembles to parse()`, () => {
    const f = formats[name]!;
    const cutAfterMarker = `Text ${getToolParser(name)!.startMarker === '{' ? '' : getToolParser(name)!.startMarker}`;
    for (const text of [f.one, f.two, f.prefixed, 'Just words. <tool', 'No { call } here.', cutAfterMarker].filter((t): t is string => !!t)) {
      const whole = getToolParser(name)!.parse(text);
      const want = whole.calls.map((c) => ({ name: c.name, arguments: c.arguments }));
      const cases = [...Array.from({ length: text.length + 1 }, (_, i) => [i]), Array.from({ length: text.length }, (_, i) => i + 1)];
      for (const cuts of cases) {
        const got = streamed(name, text, cuts);
        assert.deepEqual(got.calls, want, `${JSON.stringify(text)} cut at ${cuts.length > 1 ? 'every char' : cuts[0]}`);
        if (want.length) assert.equal(got.content.trim(), whole.content ?? '');
        else assert.equal(got.content, text, 'text without calls streams unchanged');
      }
      // incremental: fed char by char, a call's name goes out before its arguments are complete
      if (want.length) {
        const got = streamed(name, text, Array.from({ length: text.length }, (_, i) => i + 1));
        assert.ok(got.firstNameAt[0]! < text.indexOf(JSON.stringify(args1).slice(-3)), 'the first call is announced before its arguments end');
      }
    }
  });
}

for (const name of toolParserNames()) {
  test(`tool parser ${name}: a call that breaks after its name was streamed ends the calls, markup stays out`, () => {
    const f = formats[name]!;
    for (const cuts of [[0], Array.from({ length: f.bad.length }, (_, i) => i + 1)]) {
      const got = streamed(name, f.bad, cuts);
      assert.deepEqual(got.calls.map((c) => c.name), ['weather']);
      assert.ok('{"city":'.startsWith(got.calls[0]!.arguments), got.calls[0]!.arguments);
      assert.equal(got.content, '');
    }
  });
}

test('tool call stream: hermes markup never reaches content; keys in any order; string arguments decoded', () => {
  const text = 'Hi <b>there</b>\n\n<tool_call>\n{"arguments": {"a": [1, {"b": "}"}]}, "name": "f"}\n</tool_call>\n<tool_call>{"name": "g", "arguments": "{\\"x\\": 1}"}</tool_call> trailing';
  const got = streamed('hermes', text, Array.from({ length: text.length }, (_, i) => i + 1));
  assert.equal(got.content, 'Hi <b>there</b>');
  assert.deepEqual(got.calls, [{ name: 'f', arguments: '{"a":[1,{"b":"}"}]}' }, { name: 'g', arguments: '{"x": 1}' }]);
  assert.deepEqual(got.calls, getToolParser('hermes')!.parse(text).calls);
});
