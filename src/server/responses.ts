// POST /v1/responses for text: `input` (a string, or message items with input_text / output_text parts)
// and `instructions` become chat messages rendered with the model's template; one engine request.
// Non-streaming: {id, object:'response', status, output:[{type:'message', role:'assistant',
// content:[{type:'output_text', text, annotations:[]}]}], usage:{input_tokens, output_tokens, ...}}.
// Streaming (SSE, `event:` + `data:`): response.created, response.in_progress, response.output_item.added,
// response.content_part.added, response.output_text.delta..., response.output_text.done,
// response.content_part.done, response.output_item.done, response.completed (each with sequence_number).
// Tools, previous_response_id, reasoning, non-text formats, background, store: true and the like are
// refused by name (400): nothing here stores responses or parses tool calls yet.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { GenerateRequest } from '../engine/protocol.js';
import type { WireChatMessage } from './request-schemas.js';
import { ClientGone, collect } from './engine-run.js';
import { runBatch } from './engine-batch.js';
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

function refuseUnsupported(b: ResponsesRequest): void {
  if (b.tools?.length) throw badRequest('tools are not supported on /v1/responses yet (use /v1/chat/completions)', 'tools');
  if (b.tool_choice != null && b.tool_choice !== 'none' && b.tool_choice !== 'auto') throw badRequest('tool_choice is not supported on /v1/responses yet', 'tool_choice');
  if (b.previous_response_id) throw badRequest('previous_response_id is not supported: responses are not stored', 'previous_response_id');
  if (b.store) throw badRequest('store=true is not supported: responses are not stored (send store: false)', 'store');
  if (b.reasoning != null) throw badRequest('reasoning is not supported', 'reasoning');
  if (b.text?.format && b.text.format.type !== 'text') throw badRequest(`text.format type '${b.text.format.type}' is not supported`, 'text');
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
    if (item.type !== undefined && item.type !== 'message') throw badRequest(`input item type '${item.type}' is not supported (only messages)`, `input.${i}.type`);
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

export async function handleResponses(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const body = parseBody(responsesRequestSchema, request.body);
  checkModel(ctx, body.model);
  refuseUnsupported(body);
  const messages = responsesMessages(body);
  checkChat({ messages }, ctx.maxModelLen, ctx.limits);
  const base = buildSampling({ temperature: body.temperature, top_p: body.top_p, stream: body.stream, max_tokens: body.max_output_tokens },
    null, ctx.maxLogprobs, 'logprobs', ctx.samplingDefaults);
  const tok = ctx.engine.tokenizer;
  const prompt = await encodeChatPrompt(messages, ctx.encoder, tok, { addGenerationPrompt: true, addSpecialTokens: false });
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
  reply.header('x-request-id', baseId);
  const signal = disconnectSignal(reply);
  const shell = responseShell(ctx, body, `resp_${baseId}`, maxTokens);
  const itemId = `msg_${baseId}`;
  if (body.stream) return streamResponse(ctx, req, shell, itemId, signal, reply, baseId);
  const [c] = await runBatch(ctx, [req], signal, (outputs) => collect(outputs));
  return {
    ...finished(shell, itemId, c!.text, c!.finishReason, c!.promptTokenIds.length, c!.tokenIds.length, c!.numCachedTokens),
    kv_transfer_params: c!.kvTransferParams,
  };
}

type Shell = Record<string, unknown>;

function responseShell(ctx: ServerContext, b: ResponsesRequest, id: string, maxTokens: number): Shell {
  return {
    id, object: 'response', created_at: nowSeconds(), status: 'in_progress', error: null, incomplete_details: null,
    instructions: b.instructions ?? null, max_output_tokens: b.max_output_tokens ?? maxTokens, model: servedName(ctx),
    output: [], parallel_tool_calls: b.parallel_tool_calls ?? true, previous_response_id: null, reasoning: { effort: null, summary: null },
    store: false, temperature: b.temperature ?? null, text: { format: { type: 'text' } }, tool_choice: b.tool_choice ?? 'auto', tools: [],
    top_p: b.top_p ?? null, truncation: 'disabled', usage: null, user: b.user ?? null, metadata: b.metadata ?? {},
  };
}

const message = (itemId: string, text: string, status: string) => ({
  type: 'message', id: itemId, status, role: 'assistant', content: [{ type: 'output_text', text, annotations: [] }],
});

function finished(shell: Shell, itemId: string, text: string, reason: string, inTok: number, outTok: number, cached: number): Shell {
  const incomplete = reason === 'length';
  return {
    ...shell,
    status: incomplete ? 'incomplete' : 'completed',
    incomplete_details: incomplete ? { reason: 'max_output_tokens' } : null,
    output: [message(itemId, text, incomplete ? 'incomplete' : 'completed')],
    usage: {
      input_tokens: inTok, input_tokens_details: { cached_tokens: cached },
      output_tokens: outTok, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: inTok + outTok,
    },
  };
}

async function streamResponse(
  ctx: ServerContext, req: GenerateRequest, shell: Shell, itemId: string, signal: AbortSignal, reply: FastifyReply, baseId: string,
): Promise<void> {
  let sse: SseWriter | null = null;
  let seq = 0;
  const send = (type: string, data: Record<string, unknown>) => sse!.sendEvent(type, { type, sequence_number: seq++, ...data });
  let text = '';
  try {
    await runBatch(ctx, [req], signal, async (outputs) => {
      let outTok = 0;
      for await (const out of outputs) {
        if (!sse) {
          sse = new SseWriter(reply, { 'x-request-id': baseId });
          await send('response.created', { response: shell });
          await send('response.in_progress', { response: shell });
          await send('response.output_item.added', { output_index: 0, item: { ...message(itemId, '', 'in_progress'), content: [] } });
          await send('response.content_part.added', { item_id: itemId, output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } });
        }
        outTok += out.newTokenIds.length;
        if (out.newText) {
          text += out.newText;
          await send('response.output_text.delta', { item_id: itemId, output_index: 0, content_index: 0, delta: out.newText, logprobs: [] });
        }
        if (out.finished) {
          const done = finished(shell, itemId, text, out.finishReason ?? 'stop', out.promptTokenIds.length, outTok, out.numCachedTokens);
          await send('response.output_text.done', { item_id: itemId, output_index: 0, content_index: 0, text, logprobs: [] });
          await send('response.content_part.done', { item_id: itemId, output_index: 0, content_index: 0, part: { type: 'output_text', text, annotations: [] } });
          await send('response.output_item.done', { output_index: 0, item: (done.output as unknown[])[0] });
          await send(done.status === 'completed' ? 'response.completed' : 'response.incomplete', { response: done });
        }
      }
    });
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
