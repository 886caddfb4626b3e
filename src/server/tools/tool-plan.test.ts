// toolPlanOf's strict handling under tool_choice auto: a hermes structural tag (triggered at <tool_call>,
// strict functions' arguments held to their schema, the others' to any object), a 400 naming the field for
// parsers without a call tag, and no grammar at all when no function is strict.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toolPlanOf } from './tool-plan.js';
import { PdsError } from '../../util/errors.js';

const params = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
const fn = (name: string, strict?: unknown) => ({ type: 'function', function: { name, parameters: params, ...(strict !== undefined ? { strict } : {}) } });
const hermes = { enableAutoToolChoice: true, toolCallParser: 'hermes' };

test('auto with a strict function (hermes): triggered tags, one per function', () => {
  const plan = toolPlanOf({ tools: [fn('get_weather', true), fn('get_time')] }, hermes)!;
  assert.equal(plan.mode, 'auto');
  assert.equal(plan.constraint!.spec.kind, 'structural_tag');
  const tag = JSON.parse((plan.constraint!.spec as { tag: string }).tag);
  assert.deepEqual(tag.format.triggers, ['<tool_call>']);
  assert.deepEqual(tag.format.tags, [
    { type: 'tag', begin: '<tool_call>\n{"name": "get_weather", "arguments": ', end: '}\n</tool_call>', content: { type: 'json_schema', json_schema: params } },
    { type: 'tag', begin: '<tool_call>\n{"name": "get_time", "arguments": ', end: '}\n</tool_call>', content: { type: 'json_schema', json_schema: { type: 'object' } } },
  ]);
  // the shape the grammar forces parses back into the call
  const text = `${tag.format.tags[0].begin}{"city": "Oslo"}${tag.format.tags[0].end}`;
  assert.deepEqual(plan.parser!.parse(text).calls, [{ name: 'get_weather', arguments: '{"city":"Oslo"}' }]);
});

test('auto without strict functions: no grammar; strict false is the same', () => {
  assert.equal(toolPlanOf({ tools: [fn('a'), fn('b', false)] }, hermes)!.constraint, null);
});

test('strict under auto with a parser without a call tag is a 400 naming the field; bad strict values too', () => {
  const err = (f: () => unknown, param: string) => assert.throws(f, (e: unknown) => e instanceof PdsError && e.param === param && e.httpStatus === 400);
  err(() => toolPlanOf({ tools: [fn('a'), fn('b', true)] }, { enableAutoToolChoice: true, toolCallParser: 'llama3_json' }), 'tools.1.function.strict');
  err(() => toolPlanOf({ tools: [fn('a', true)], tool_choice: 'auto' }, { enableAutoToolChoice: true, toolCallParser: 'mistral' }), 'tools.0.function.strict');
  err(() => toolPlanOf({ tools: [fn('a', 'yes')] }, hermes), 'tools.0.function.strict');
  // required / named already hold arguments to the schema: strict changes nothing there
  assert.equal(toolPlanOf({ tools: [fn('a', true)], tool_choice: 'required' }, { enableAutoToolChoice: true, toolCallParser: 'llama3_json' })!.mode, 'required');
});
