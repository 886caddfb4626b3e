// POST /v1/chat/completions: messages rendered with the model's chat template, one engine request (n or
// best_of sequences forked over one prefill). Stream: per choice a role delta {role:"assistant",content:""}
// first (then the echoed final assistant message when echo), content deltas, the last delta carrying
// finish_reason, a usage chunk when stream_options.include_usage, then [DONE].
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { GenerateRequest } from '../engine/protocol.js';
import { collectChoices } from './engine-run.js';
import { bestIndices, choiceCounts, parseLogitBias } from './parallel-sampling.js';
import { chatEchoText } from './chat-echo.js';
import { refuseUnhonouredChatFields } from './unhonoured-fields.js';
import { promptLogprobsK, vllmPromptLogprobs } from './prompt-logprobs.js';
import { runBatch } from './engine-batch.js';
import { timingIdOf } from './kv-timing.js';
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
import { attachConstraints, structuredSpecOf } from './structured-fields.js';
import { toolPlanOf, type ToolPlan } from './tools/tool-plan.js';
import { sendToolDeltas, toolMessage, ToolDeltaStream } from './tools/tool-output.js';

export async function handleChat(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const body = parseBody(chatRequestSchema, request.body);
  checkModel(ctx, body.model);
  refuseUnhonouredChatFields(request.body);
  if (body.top_logprobs != null && !body.logprobs) {
    throw badRequest('when using `top_logprobs`, `logprobs` must be set to true.', 'top_logprobs');
  }
  if (body.top_logprobs != null && body.top_logprobs < 0) throw badRequest('`top_logprobs` must be a positive value.', 'top_logprobs');
  const logprobs = body.logprobs ? body.top_logprobs ?? 0 : null;
  checkStop(body.stop, ctx.limits);
  checkChat(body, ctx.maxModelLen, ctx.limits);
  const base = buildSampling(body, logprobs, ctx.maxLogprobs, 'top_logprobs', ctx.samplingDefaults);
  const toolPlan = toolPlanOf(body, ctx.tools);
  const structured = structuredSpecOf(body);
  if (toolPlan && body.stream && logprobs !== null) throw badRequest('logprobs are not supported on streamed tool-using requests', 'logprobs');
  if (toolPlan?.constraint && structured) throw badRequest(`tool_choice "${toolPlan.mode}" cannot be combined with ${structured.param}`, structured.param);
  const tok = ctx.engine.tokenizer;
  const logitBias = parseLogitBias(body.logit_bias, tok.vocabSize);
  if (logitBias) base.logitBias = logitBias;
  const { n, bestOf } = choiceCounts(body, 1, ctx.limits);
  if (bestOf > n && base.logprobs === null) base.logprobs = 0; // ranking needs the chosen tokens' logprobs
  const echo = body.echo ? chatEchoText(body.messages) : '';
  const promptK = promptLogprobsK(body, ctx.maxLogprobs);
  if (promptK !== null) base.promptLogprobs = promptK;
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
    ...(bestOf > 1 ? { n: bestOf } : {}),
    ...(kvParams ? { kvTransferParams: { ...kvParams } } : {}),
  };
  await attachConstraints(ctx, structured ?? toolPlan?.constraint ?? null, [req]);
  reply.header('x-request-id', baseId);
  const signal = disconnectSignal(reply);
  if (body.stream) return streamChat(ctx, body, req, n, echo, baseId, signal, reply, toolPlan);

  const [group] = await runBatch(ctx, [req], signal, (outputs) => collectChoices(outputs, bestOf), timingIdOf(request));
  const results = bestOf > n ? bestIndices(group!, n).map((j) => group![j]!) : group!;
  const c0 = results[0]!;
  return {
    id: `chatcmpl-${baseId}`,
    object: 'chat.completion',
    created: nowSeconds(),
    model: servedName(ctx),
    choices: results.map((c, index) => {
      const msg = toolPlan ? toolMessage(toolPlan, c.text, c.finishReason) : null;
      return {
        index,
        message: msg?.message ?? { role: 'assistant', content: echo + c.text, reasoning_content: null, tool_calls: [] },
        logprobs: logprobs !== null ? chatLogprobs(new LogprobText(tok, prompt.tokenIds, !!body.return_tokens_as_token_ids), c.logprobs) : null,
        finish_reason: msg?.finishReason ?? c.finishReason,
        stop_reason: c.stopReason,
        ...(body.return_token_ids ? { token_ids: c.tokenIds } : {}),
      };
    }),
    usage: usageOf(results, n),
    ...(body.return_token_ids ? { prompt_token_ids: c0.promptTokenIds } : {}),
    prompt_logprobs: promptK !== null ? vllmPromptLogprobs(tok, c0.promptLogprobs ?? [], promptK) : null,
    kv_transfer_params: c0.kvTransferParams,
  };
}

async function streamChat(
  ctx: ServerContext, body: ChatRequest, req: GenerateRequest, n: number, echo: string, baseId: string, signal: AbortSignal,
  reply: FastifyReply, toolPlan: ToolPlan | null,
): Promise<void> {
  const tok = ctx.engine.tokenizer;
  const tools = toolPlan ? Array.from({ length: n }, () => new ToolDeltaStream(toolPlan)) : null; // one per choice
  const head = { id: `chatcmpl-${baseId}`, object: 'chat.completion.chunk', created: nowSeconds(), model: servedName(ctx) };
  let sse: SseWriter | null = null; // opened at the first output, so errors before it get a real status
  const usage = new StreamUsage(n, n);
  const continuous = !!(body.stream_options?.include_usage && body.stream_options.continuous_usage_stats);
  try {
    // token texts are decoded in each sequence's own context
    const lpTexts = Array.from({ length: n }, () => new LogprobText(tok, req.promptTokenIds, !!body.return_tokens_as_token_ids));
    await runBatch(ctx, [req], signal, async (outputs) => {
      for await (const out of outputs) {
        if (!sse) {
          sse = new SseWriter(reply, { 'x-request-id': baseId });
          for (let index = 0; index < n; index++) {
            await sse.send({
              ...head,
              choices: [{ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }],
              ...(body.return_token_ids ? { prompt_token_ids: out.promptTokenIds } : {}),
            });
            if (echo) await sse.send({ ...head, choices: [{ index, delta: { content: echo }, logprobs: null, finish_reason: null }] });
          }
        }
        const index = out.index ?? 0;
        usage.add(index, out);
        if (tools) {
          await sendToolDeltas(sse, head, tools[index]!, index, out, continuous ? usage.of(index) : null);
          continue;
        }
        const lps = req.sampling.logprobs !== null ? out.newLogprobs ?? [] : null;
        if (!out.newText && !out.finished && !body.return_token_ids && !lps?.length) continue;
        await sse.send({
          ...head,
          choices: [{
            index,
            delta: out.newText || !out.finished ? { content: out.newText } : {},
            logprobs: lps ? chatLogprobs(lpTexts[index]!, lps) : null,
            finish_reason: out.finished ? out.finishReason ?? 'stop' : null,
            ...(out.finished ? { stop_reason: out.stopReason ?? null } : {}),
            ...(body.return_token_ids ? { token_ids: out.newTokenIds } : {}),
          }],
          ...(continuous ? { usage: usage.of(index) } : {}),
        });
      }
    }, timingIdOf(reply.request));
  } catch (e) {
    if (!sse) throw e;
    await streamError(sse, e);
    return;
  }
  const w: SseWriter = sse ?? new SseWriter(reply, { 'x-request-id': baseId });
  if (body.stream_options?.include_usage) await w.send({ ...head, choices: [], usage: usage.total() });
  await w.done();
}
