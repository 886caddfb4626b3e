// POST /v1/chat/completions: messages rendered with the model's chat template, one engine request.
// Stream: a role delta {role:"assistant",content:""} first, content deltas, the last delta carrying
// finish_reason, a usage chunk when stream_options.include_usage, then [DONE].
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { GenerateRequest } from '../engine/protocol.js';
import { collect } from './engine-run.js';
import { runBatch } from './engine-batch.js';
import { badRequest } from './http-errors.js';
import { chatLogprobs, LogprobText } from './logprobs.js';
import { encodeChatPrompt } from './prompts.js';
import { clientRequestId, disconnectSignal, randomId } from './request-context.js';
import { isPeerRequest } from './edge-auth.js';
import { checkChat, checkStop } from './request-limits.js';
import { checkDecodeLimits } from './decode-limits.js';
import { chatRequestSchema, type ChatRequest } from './request-schemas.js';
import { buildSampling, resolveMaxTokens, withMaxTokens } from './sampling.js';
import { checkModel, nowSeconds, parseBody, servedName, type ServerContext } from './server-context.js';
import { SseWriter, streamError } from './sse.js';
import { StreamUsage, usageOf } from './usage.js';

export async function handleChat(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const body = parseBody(chatRequestSchema, request.body);
  checkModel(ctx, body.model);
  if (body.echo) throw badRequest('echo is not supported for chat completions', 'echo');
  if (body.top_logprobs != null && !body.logprobs) {
    throw badRequest('when using `top_logprobs`, `logprobs` must be set to true.', 'top_logprobs');
  }
  if (body.top_logprobs != null && body.top_logprobs < 0) throw badRequest('`top_logprobs` must be a positive value.', 'top_logprobs');
  const logprobs = body.logprobs ? body.top_logprobs ?? 0 : null;
  checkStop(body.stop, ctx.limits);
  checkChat(body, ctx.maxModelLen, ctx.limits);
  const base = buildSampling(body, logprobs, ctx.maxLogprobs, 'top_logprobs', ctx.samplingDefaults);
  const tok = ctx.engine.tokenizer;
  if (body.continue_final_message && body.add_generation_prompt) {
    throw badRequest('Cannot set both `continue_final_message` and `add_generation_prompt` to True.', 'continue_final_message');
  }
  const prompt = await encodeChatPrompt(body.messages, ctx.encoder, tok, {
    addGenerationPrompt: body.add_generation_prompt ?? !body.continue_final_message,
    continueFinalMessage: body.continue_final_message ?? false,
    addSpecialTokens: body.add_special_tokens ?? false,
    ...(body.chat_template_kwargs ? { chatTemplateKwargs: body.chat_template_kwargs } : {}),
    ...(body.tools?.length ? { tools: body.tools } : {}),
  });
  const maxParam = body.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens';
  const maxTokens = resolveMaxTokens(body.max_completion_tokens ?? body.max_tokens ?? null, ctx.samplingDefaults.maxTokens ?? null,
    prompt.tokenIds.length, ctx.maxModelLen, maxParam, 'messages');
  const sampling = withMaxTokens(base, maxTokens);
  if (body.decode_limits) checkDecodeLimits(body.decode_limits, null, prompt.tokenIds.length, ctx.maxModelLen, 'messages');
  const kvParams = body.kv_transfer_params && isPeerRequest(request) ? body.kv_transfer_params : null;

  const headerId = clientRequestId(request);
  const baseId = headerId ?? randomId();
  const req: GenerateRequest = {
    requestId: ctx.ids.acquire(headerId ?? `chatcmpl-${baseId}`),
    promptTokenIds: prompt.tokenIds,
    sampling,
    ...(kvParams ? { kvTransferParams: { ...kvParams } } : {}),
  };
  reply.header('x-request-id', baseId);
  const signal = disconnectSignal(reply);
  if (body.stream) return streamChat(ctx, body, req, baseId, signal, reply);

  const [c] = await runBatch(ctx, [req], signal, (outputs) => collect(outputs));
  return {
    id: `chatcmpl-${baseId}`,
    object: 'chat.completion',
    created: nowSeconds(),
    model: servedName(ctx),
    choices: [{
      index: 0,
      message: { role: 'assistant', content: c!.text, reasoning_content: null, tool_calls: [] },
      logprobs: logprobs !== null ? chatLogprobs(new LogprobText(tok, prompt.tokenIds, !!body.return_tokens_as_token_ids), c!.logprobs) : null,
      finish_reason: c!.finishReason,
      stop_reason: c!.stopReason,
      ...(body.return_token_ids ? { token_ids: c!.tokenIds } : {}),
    }],
    usage: usageOf([c!]),
    ...(body.return_token_ids ? { prompt_token_ids: c!.promptTokenIds } : {}),
    prompt_logprobs: null,
    kv_transfer_params: c!.kvTransferParams,
  };
}

async function streamChat(
  ctx: ServerContext, body: ChatRequest, req: GenerateRequest, baseId: string, signal: AbortSignal,
  reply: FastifyReply,
): Promise<void> {
  const tok = ctx.engine.tokenizer;
  const head = { id: `chatcmpl-${baseId}`, object: 'chat.completion.chunk', created: nowSeconds(), model: servedName(ctx) };
  let sse: SseWriter | null = null; // opened at the first output, so errors before it get a real status
  const usage = new StreamUsage(1);
  const continuous = !!(body.stream_options?.include_usage && body.stream_options.continuous_usage_stats);
  try {
    const lpText = new LogprobText(tok, req.promptTokenIds, !!body.return_tokens_as_token_ids);
    await runBatch(ctx, [req], signal, async (outputs) => {
      for await (const out of outputs) {
        if (!sse) {
          sse = new SseWriter(reply, { 'x-request-id': baseId });
          await sse.send({
            ...head,
            choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }],
            ...(body.return_token_ids ? { prompt_token_ids: out.promptTokenIds } : {}),
          });
        }
        usage.add(0, out);
        const lps = req.sampling.logprobs !== null ? out.newLogprobs ?? [] : null;
        if (!out.newText && !out.finished && !body.return_token_ids && !lps?.length) continue;
        await sse.send({
          ...head,
          choices: [{
            index: 0,
            delta: out.newText || !out.finished ? { content: out.newText } : {},
            logprobs: lps ? chatLogprobs(lpText, lps) : null,
            finish_reason: out.finished ? out.finishReason ?? 'stop' : null,
            ...(out.finished ? { stop_reason: out.stopReason ?? null } : {}),
            ...(body.return_token_ids ? { token_ids: out.newTokenIds } : {}),
          }],
          ...(continuous ? { usage: usage.of(0) } : {}),
        });
      }
    });
  } catch (e) {
    if (!sse) throw e;
    await streamError(sse, e);
    return;
  }
  const w: SseWriter = sse ?? new SseWriter(reply, { 'x-request-id': baseId });
  if (body.stream_options?.include_usage) await w.send({ ...head, choices: [], usage: usage.total() });
  await w.done();
}
