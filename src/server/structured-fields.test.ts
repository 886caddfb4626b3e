// Wire fields -> GrammarSpec: each OpenAI / vLLM spelling maps to the same spec; conflicts are 400s.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { structuredSpecOf } from './structured-fields.js';
import { PdsError } from '../util/errors.js';

const schema = { type: 'object', properties: { a: { type: 'integer' } } };

test('structured fields: every spelling of a constraint gives one spec, naming its field', () => {
  assert.equal(structuredSpecOf({}), null);
  assert.equal(structuredSpecOf({ response_format: { type: 'text' } }), null);
  assert.deepEqual(structuredSpecOf({ response_format: { type: 'json_object' } })!.spec, { kind: 'json_object' });
  const want = { kind: 'json_schema', schema: JSON.stringify(schema), anyWhitespace: true };
  assert.deepEqual(structuredSpecOf({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema, strict: true } } }), { spec: want, param: 'response_format.json_schema.schema' });
  assert.deepEqual(structuredSpecOf({ structured_outputs: { json: schema } })!.spec, want);
  assert.deepEqual(structuredSpecOf({ guided_json: JSON.stringify(schema) })!.spec, want);
  assert.deepEqual(structuredSpecOf({ structured_outputs: { json: schema, disable_any_whitespace: true } })!.spec, { ...want, anyWhitespace: false });
  assert.deepEqual(structuredSpecOf({ guided_regex: 'a+' }), { spec: { kind: 'regex', pattern: 'a+' }, param: 'guided_regex' });
  assert.deepEqual(structuredSpecOf({ structured_outputs: { choice: ['x', 'y'] } })!.spec, { kind: 'choice', choices: ['x', 'y'] });
  assert.deepEqual(structuredSpecOf({ guided_grammar: 'root ::= "a"' })!.spec, { kind: 'grammar', ebnf: 'root ::= "a"' });
  assert.equal(structuredSpecOf({ guided_decoding_backend: 'xgrammar', guided_regex: 'a' })!.param, 'guided_regex');
});

test('structured fields: conflicts and bad shapes are 400s naming the field', () => {
  const bad: Array<[Record<string, unknown>, string]> = [
    [{ response_format: { type: 'json_object' }, guided_regex: 'a' }, 'guided_regex'],
    [{ structured_outputs: { json: schema, regex: 'a' } }, 'structured_outputs'],
    [{ guided_json: [1] }, 'guided_json'],
    [{ guided_choice: ['a', 3] }, 'guided_choice'],
    [{ guided_decoding_backend: 'outlines', guided_regex: 'a' }, 'guided_decoding_backend'],
    [{ response_format: { type: 'json_schema', json_schema: 'x' } }, 'response_format.json_schema'],
  ];
  for (const [f, param] of bad) {
    assert.throws(() => structuredSpecOf(f as never), (e: unknown) => e instanceof PdsError && e.httpStatus === 400 && e.param === param, JSON.stringify(f));
  }
});
