// POST /v1/responses: `input` (a string, or items: messages with input_text / output_text parts,
// function_call and function_call_output) and `instructions` become chat messages rendered with the model's
// template; one engine request. Function tools and tool_choice go through the chat path's tool plan
// (required / named enforced by the grammar, auto parsed by --tool-call-parser); text.format json_object /
// json_schema through the grammar engine.
// Non-streaming: {id, object:'response', status, output: [message {content:[{type:'output_text', text}]} |
// function_call {id, call_id, name, arguments, status}...], usage:{input_tokens, output_tokens, ...}}.
// Streaming (SSE, `event:` + `data:`, each with sequence_number): response.created, response.in_progress,
// per item the events of responses-events.ts, then response.completed (or response.incomplete).
// previous_response_id, reasoning, background, store: true, include, top_logprobs, max_tool_calls and
// non-function tools are refused by name (400): nothing here stores responses.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { GenerateRequest } from '../engine/protocol.js';
import type { WireChatMessage } from './request-schemas.js';
import { ClientGone, collect } from './engine-run.js';
import { runBatch } from './engine-batch.js';
import { timingIdOf } from './kv-timing.js';
import { badRequest, toHttpError } from './http-errors.js';
import { encodeChatPrompt } from './prompts.js';
import { clientRequestId, disconnectSignal, randomId } from './request-context.js';
import { isPeerRequest } from './edge-auth.js';
import { checkChat } from './request-limits.js';
import { checkDecodeLimits } from './decode-limits.js';
import { responsesRequestSchema, type ResponsesRequest } from './responses-schema.js';
import { buildSampling, resolveMaxTokens, withMaxTokens } from './sampling.js';
import { checkModel, nowSeconds, parseBody, servedName, type ServerContext } from './server-context.js';
import { SseWriter } from './sse.js';
import { attachConstraints, structuredSpecOf, type StructuredRequest } from './structured-fields.js';
import { toolPlanOf, type ToolPlan } from './tools/tool-plan.js';
import { parseToolOutput, ToolDeltaStream, type ChatDelta } from './tools/tool-output.js';
import { chatToolFields, functionCallItem, pushFunctionCall, toolResultMessage } from './responses-tools.js';
import { messageItem, ResponseOutputBuilder, type OutputItem } from './responses-events.js';

function refuseUnsupported(b: ResponsesRequest): void {
  if (b.previous_response_id) throw badRequest('previous_response_id is not supported: responses are not stored', 'previous_response_id');
  if (b.store) throw badRequest('store=true is not supported: responses are not stored (send store: false)', 'store');
  if (b.reasoning != null) throw badRequest('reasoning is not supported', 'reasoning');
  if (b.background) throw badRequest('background responses are not supported', 'background');
  if (b.include?.length) throw badRequest('include is not supported', 'include');
  if (b.truncation != null && b.truncation !== 'disabled') throw badRequest(`truncation '${b.truncation}' is not supported`, 'truncation');
  if (b.top_logprobs != null) throw badRequest('top_logprobs is not supported on /v1/responses', 'top_logprobs');
  if (b.max_tool_calls != null) throw badRequest('max_tool_calls is not supported', 'max_tool_calls');
}

/** instructions + input -> chat messages (system first). */
export function responsesMessages(b: ResponsesRequest): WireChatMessage[] {
  const out: WireChatMessage[] = [];
  if (b.instructions) out.push({ role: 'system', content: b.instructions });
  if (typeof b.input === 'string') {
    out.push({ role: 'user', content: b.input });
    return out;
  }
  b.input.forEach((item, i) => {
    if (item.type === 'function_call') return pushFunctionCall(out, item, i);
    if (item.type === 'function_call_output') return void out.push(toolResultMessage(item, i));
    if (item.type !== undefined && item.type !== 'message') {
      throw badRequest(`input item type '${item.type}' is not supported (message, function_call, function_call_output)`, `input.${i}.type`);
    }
    const role = item.role ?? 'user';
    if (!['user', 'assistant', 'system', 'developer'].includes(role)) throw badRequest(`input role '${role}' is not supported`, `input.${i}.role`);
    let content = '';
    if (typeof item.content === 'string') content = item.content;
    else if (Array.isArray(item.content)) {
      content = item.content.map((p, j) => {
        if (!['input_text', 'output_text', 'text'].includes(p.type) || typeof p.text !== 'string') {
          throw badRequest(`content part type '${p.type}' is not supported (only text)`, `input.${i}.content.${j}`);
        }
        return p.text;
      }).join('\n');
    }
    out.push({ role: role === 'developer' ? 'system' : role, content });
  });
  if (!out.some((m) => m.role !== 'system')) throw badRequest('input must contain at least one message', 'input');
  return out;
}

/** text.format -> a structured-output constraint (null for plain text). */
function textFormatSpec(b: ResponsesRequest): StructuredRequest | null {
  const f = b.text?.format;
  if (!f || f.type === 'text') return null;
  if (f.type === 'json_object') return structuredSpecOf({ response_format: { type: 'json_object' } });
  if (f.type === 'json_schema') {
    if (f.schema === undefined) throw badRequest('text.format json_schema needs a schema', 'text.format.schema');
    const r = structuredSpecOf({ response_format: { type: 'json_schema', json_schema: { name: f.name, schema: f.schema, strict: f.strict } } });
    return r && { ...r, param: 'text.format.schema' };
  }
  throw badRequest(`text.format type '${f.type}' is not supported (text, json_object, json_schema)`, 'text.format.type');
}

export async function handleResponses(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const body = parseBody(responsesRequestSchema, request.body);
  checkModel(ctx, body.model);
  refuseUnsupported(body);
  const toolFields = chatToolFields(body.tools, body.tool_choice, body.parallel_tool_calls);
  const toolPlan = toolPlanOf(toolFields, ctx.tools);
  const structured = textFormatSpec(body);
  if (toolPlan?.constraint && structured) throw badRequest(`tool_choice "${toolPlan.mode}" cannot be combined with text.format ${body.text!.format!.type}`, 'text.format');
  const messages = responsesMessages(body);
  checkChat({ messages }, ctx.maxModelLen, ctx.limits);
  const base = buildSampling({ temperature: body.temperature, top_p: body.top_p, stream: body.stream, max_tokens: body.max_output_tokens },
    null, ctx.maxLogprobs, 'logprobs', ctx.samplingDefaults);
  const tok = ctx.engine.tokenizer;
  const prompt = await encodeChatPrompt(messages, ctx.encoder, tok, {
    addGenerationPrompt: true, addSpecialTokens: false, ...(toolFields.tools?.length ? { tools: toolFields.tools } : {}),
  });
  const maxTokens = resolveMaxTokens(body.max_output_tokens ?? null, ctx.samplingDefaults.maxTokens ?? null, prompt.tokenIds.length, ctx.maxModelLen, 'max_tokens', 'messages');
  if (body.decode_limits) checkDecodeLimits(body.decode_limits, null, prompt.tokenIds.length, ctx.maxModelLen, 'messages');
  const kvParams = body.kv_transfer_params && isPeerRequest(request) ? body.kv_transfer_params : null;
  const headerId = clientRequestId(request);
  const baseId = headerId ?? randomId();
  const req: GenerateRequest = {
    requestId: ctx.ids.acquire(headerId ?? `resp-${baseId}`),
    promptTokenIds: prompt.tokenIds,
    sampling: withMaxTokens(base, maxTokens),
    ...(kvParams ? { kvTransferParams: { ...kvParams } } : {}),
  };
  await attachConstraints(ctx, structured ?? toolPlan?.constraint ?? null, [req]);
  reply.header('x-request-id', baseId);
  const signal = disconnectSignal(reply);
  const shell = responseShell(ctx, body, `resp_${baseId}`, maxTokens);
  const msgId = (n: number) => (n === 0 ? `msg_${baseId}` : `msg_${baseId}_${n}`);
  if (body.stream) return streamResponse(ctx, req, shell, msgId, toolPlan, signal, reply, baseId);
  const [c] = await runBatch(ctx, [req], signal, (outputs) => collect(outputs), timingIdOf(request));
  const incomplete = c!.finishReason === 'length';
  return {
    ...finished(shell, outputItems(toolPlan, c!.text, msgId(0), incomplete), incomplete, c!.promptTokenIds.length, c!.tokenIds.length, c!.numCachedTokens),
    kv_transfer_params: c!.kvTransferParams,
  };
}

/** The whole text -> output items: a message for text outside calls (always one when there are no calls),
 * then one function_call per parsed call. */
function outputItems(plan: ToolPlan | null, text: string, msgId: string, incomplete: boolean): OutputItem[] {
  const status = incomplete ? 'incomplete' : 'completed';
  if (!plan) return [messageItem(msgId, text, status)];
  const { content, calls } = parseToolOutput(plan, text);
  if (!calls.length) return [messageItem(msgId, text, status)];
  return [...(content ? [messageItem(msgId, content, 'completed')] : []), ...calls.map((c) => functionCallItem(c.name, c.arguments, 'completed'))];
}

type Shell = Record<string, unknown>;

function responseShell(ctx: ServerContext, b: ResponsesRequest, id: string, maxTokens: number): Shell {
  const tools = (b.tools ?? []).map((t) => {
    const o = t as { name?: unknown; description?: unknown; parameters?: unknown; strict?: unknown };
    return { type: 'function', name: o.name, description: o.description ?? null, parameters: o.parameters ?? null, strict: o.strict ?? null };
  });
  return {
    id, object: 'response', created_at: nowSeconds(), status: 'in_progress', error: null, incomplete_details: null,
    instructions: b.instructions ?? null, max_output_tokens: b.max_output_tokens ?? maxTokens, model: servedName(ctx),
    output: [], parallel_tool_calls: b.parallel_tool_calls ?? true, previous_response_id: null, reasoning: { effort: null, summary: null },
    store: false, temperature: b.temperature ?? null, text: { format: b.text?.format ?? { type: 'text' } }, tool_choice: b.tool_choice ?? 'auto', tools,
    top_p: b.top_p ?? null, truncation: 'disabled', usage: null, user: b.user ?? null, metadata: b.metadata ?? {},
  };
}

function finished(shell: Shell, output: OutputItem[], incomplete: boolean, inTok: number, outTok: number, cached: number): Shell {
  // cut by max_output_tokens: an item (the text, or a call's arguments) was left incomplete
  const cut = incomplete && output.some((o) => o.status === 'incomplete');
  return {
    ...shell,
    status: cut ? 'incomplete' : 'completed',
    incomplete_details: cut ? { reason: 'max_output_tokens' } : null,
    output,
    usage: {
      input_tokens: inTok, input_tokens_details: { cached_tokens: cached },
      output_tokens: outTok, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: inTok + outTok,
    },
  };
}

async function streamResponse(
  ctx: ServerContext, req: GenerateRequest, shell: Shell, msgId: (n: number) => string, plan: ToolPlan | null,
  signal: AbortSignal, reply: FastifyReply, baseId: string,
): Promise<void> {
  let sse: SseWriter | null = null;
  let seq = 0;
  const send = (type: string, data: Record<string, unknown>) => sse!.sendEvent(type, { type, sequence_number: seq++, ...data });
  const sendAll = async (evs: Array<[string, Record<string, unknown>]>) => {
    for (const [t, d] of evs) await send(t, d);
  };
  const items = new ResponseOutputBuilder(msgId);
  const tools = plan ? new ToolDeltaStream(plan) : null;
  try {
    await runBatch(ctx, [req], signal, async (outputs) => {
      let outTok = 0;
      for await (const out of outputs) {
        if (!sse) {
          sse = new SseWriter(reply, { 'x-request-id': baseId });
          await send('response.created', { response: shell });
          await send('response.in_progress', { response: shell });
          if (!tools) await sendAll(items.startMessage()); // text only: the message item opens at once
        }
        outTok += out.newTokenIds.length;
        const deltas: ChatDelta[] = tools ? tools.push(out.newText) : out.newText ? [{ content: out.newText }] : [];
        if (out.finished && tools) deltas.push(...tools.end(out.finishReason ?? 'stop').deltas);
        for (const d of deltas) await sendAll(items.push(d));
        if (out.finished) {
          const incomplete = (out.finishReason ?? 'stop') === 'length';
          await sendAll(items.finish(incomplete ? 'incomplete' : 'completed'));
          if (!items.output.length) await sendAll([...items.startMessage(), ...items.finish(incomplete ? 'incomplete' : 'completed')]);
          const done = finished(shell, items.output, incomplete, out.promptTokenIds.length, outTok, out.numCachedTokens);
          await send(done.status === 'completed' ? 'response.completed' : 'response.incomplete', { response: done });
        }
      }
    }, timingIdOf(reply.request));
  } catch (e) {
    if (!sse) throw e;
    const w = sse as SseWriter;
    if (e instanceof ClientGone) return w.end();
    const { body } = toHttpError(e);
    await send('error', { code: String(body.error.code), message: body.error.message, param: body.error.param ?? null });
    return w.end();
  }
  (sse as SseWriter | null)?.end();
}
