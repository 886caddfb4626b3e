// /v1/responses with function tools through the official openai SDK (serve and up): tool_choice required and
// named give function_call items whose arguments validate against the function's schema; the streamed
// events (output_item.added, function_call_arguments.delta/.done, output_item.done, response.completed)
// assemble to the same calls; function_call_output items fed back are rendered into the prompt; text.format
// json_schema returns a valid object; what is not honoured is a 400 naming it.
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { Ajv } from 'ajv';
import { tools as chatTools } from './structured-checks.js';

const ajv = new Ajv({ strict: false });
export const responseTools = chatTools.map((t) => ({ type: 'function' as const, name: t.function.name, parameters: t.function.parameters, strict: true }));
const schemaOf = (name: string) => responseTools.find((t) => t.name === name)?.parameters;

type Call = { name: string; arguments: string; call_id: string };

function validCalls(output: OpenAI.Responses.ResponseOutputItem[]): Call[] {
  const calls = output.filter((o): o is OpenAI.Responses.ResponseFunctionToolCall => o.type === 'function_call');
  assert.ok(calls.length >= 1, JSON.stringify(output));
  for (const c of calls) {
    assert.match(c.call_id, /^call_/);
    assert.match(c.id!, /^fc_/);
    assert.equal(c.status, 'completed');
    const schema = schemaOf(c.name);
    assert.ok(schema, `unknown function ${c.name}`);
    assert.ok(ajv.validate(schema, JSON.parse(c.arguments)), `${c.name}(${c.arguments}): ${ajv.errorsText()}`);
  }
  return calls.map((c) => ({ name: c.name, arguments: c.arguments, call_id: c.call_id }));
}

export async function checkResponsesTools(client: OpenAI, model: string): Promise<void> {
  const input = 'What is the weather in Paris?';
  for (const tool_choice of ['required', { type: 'function', name: 'get_weather' }] as const) {
    const base = { model, input, tools: responseTools, tool_choice, parallel_tool_calls: false, temperature: 0, max_output_tokens: 200 };
    const r = await client.responses.create(base);
    assert.equal(r.status, 'completed');
    const calls = validCalls(r.output);
    if (typeof tool_choice === 'object') assert.deepEqual(calls.map((c) => c.name), ['get_weather']);
    assert.equal(r.output_text, '', 'no message text besides the forced call');

    // streamed, same greedy output: the events assemble to the same call
    const stream = await client.responses.create({ ...base, stream: true });
    const types: string[] = [];
    const args = new Map<string, string>();
    const done = new Map<string, { name: string; arguments: string }>();
    let final: OpenAI.Responses.Response | undefined;
    let seq = -1;
    for await (const ev of stream) {
      types.push(ev.type);
      assert.equal(ev.sequence_number, seq + 1, 'sequence numbers count up');
      seq = ev.sequence_number;
      if (ev.type === 'response.output_item.added' && ev.item.type === 'function_call') {
        assert.equal(ev.item.arguments, '');
        assert.ok(ev.item.name, 'the added item names its function');
        args.set(ev.item.id!, '');
      }
      if (ev.type === 'response.function_call_arguments.delta') {
        assert.ok(args.has(ev.item_id), 'argument deltas follow their item');
        args.set(ev.item_id, args.get(ev.item_id)! + ev.delta);
      }
      if (ev.type === 'response.function_call_arguments.done') done.set(ev.item_id, { name: ev.name, arguments: ev.arguments });
      if (ev.type === 'response.completed') final = ev.response;
    }
    assert.equal(types[0], 'response.created');
    assert.equal(types.at(-1), 'response.completed');
    assert.ok(types.filter((t) => t === 'response.function_call_arguments.delta').length >= 2, 'arguments arrive in pieces');
    for (const [id, a] of args) assert.equal(done.get(id)?.arguments, a, 'deltas assemble to the done arguments');
    assert.ok(final?.usage && final.usage.output_tokens > 0);
    const streamed = validCalls(final!.output);
    assert.deepEqual(streamed.map(({ name, arguments: a }) => ({ name, arguments: a })), calls.map(({ name, arguments: a }) => ({ name, arguments: a })));
    assert.deepEqual([...done.values()], streamed.map(({ name, arguments: a }) => ({ name, arguments: a })));

    // the call and its output fed back: both rendered into the prompt, and the model answers in text
    const c = calls[0]!;
    const short = await client.responses.create({
      model, tools: responseTools, tool_choice: 'none', max_output_tokens: 4, temperature: 0,
      input: [{ role: 'user', content: input }, { type: 'function_call', call_id: c.call_id, name: c.name, arguments: c.arguments }, { type: 'function_call_output', call_id: c.call_id, output: 'ok' }],
    });
    const long = await client.responses.create({
      model, tools: responseTools, tool_choice: 'none', max_output_tokens: 4, temperature: 0,
      input: [{ role: 'user', content: input }, { type: 'function_call', call_id: c.call_id, name: c.name, arguments: c.arguments }, { type: 'function_call_output', call_id: c.call_id, output: 'sunny and 21 degrees all week long' }],
    });
    assert.equal(short.output[0]!.type, 'message');
    assert.ok(long.usage!.input_tokens > short.usage!.input_tokens, 'the tool output is in the prompt');
    const noCall = await client.responses.create({ model, tools: responseTools, tool_choice: 'none', max_output_tokens: 4, temperature: 0, input });
    assert.ok(short.usage!.input_tokens > noCall.usage!.input_tokens, 'the call is in the prompt');
  }

  // text.format json_schema: the grammar engine
  const schema = { type: 'object', properties: { name: { type: 'string', maxLength: 10 }, age: { type: 'integer', minimum: 0, maximum: 99 } }, required: ['name', 'age'], additionalProperties: false };
  const j = await client.responses.create({ model, input: 'Describe a person.', temperature: 0, max_output_tokens: 200, text: { format: { type: 'json_schema', name: 'person', schema, strict: true } } });
  assert.ok(ajv.validate(schema, JSON.parse(j.output_text)), j.output_text);

  // refused by name
  const refusals: Array<[Record<string, unknown>, string]> = [
    [{ tools: [{ type: 'web_search' }] }, 'tools.0.type'],
    [{ tools: responseTools, tool_choice: { type: 'file_search' } }, 'tool_choice'],
    [{ tools: responseTools, tool_choice: { type: 'function', name: 'nope' } }, 'tool_choice'],
    [{ tools: responseTools, tool_choice: 'required', text: { format: { type: 'json_object' } } }, 'text.format'],
    [{ text: { format: { type: 'xml' } } }, 'text.format.type'],
    [{ max_tool_calls: 1 }, 'max_tool_calls'],
  ];
  for (const [extra, param] of refusals) {
    await assert.rejects(client.responses.create({ model, input: 'x', max_output_tokens: 4, ...extra } as never),
      (e: unknown) => e instanceof OpenAI.BadRequestError && (e.error as { param?: string })?.param === param, JSON.stringify(extra));
  }
}
