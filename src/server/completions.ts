// POST /v1/completions: one engine request per prompt (a list yields one choice per prompt, index =
// position); non-streaming JSON or SSE chunks {choices:[{index,text,logprobs,finish_reason,stop_reason}]},
// then a usage chunk when stream_options.include_usage, then [DONE].
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { GenerateRequest, RequestOutput } from '../engine/protocol.js';
import { collect } from './engine-run.js';
import { runBatch } from './engine-batch.js';
import { badRequest } from './http-errors.js';
import { completionLogprobs, LogprobText, logprobsTextLength } from './logprobs.js';
import { encodeCompletionPrompts, type EncodedPrompt } from './prompts.js';
import { clientRequestId, disconnectSignal, randomId } from './request-context.js';
import { isPeerRequest } from './edge-auth.js';
import { checkCompletionPrompts, checkStop } from './request-limits.js';
import { checkDecodeLimits } from './decode-limits.js';
import { completionRequestSchema, type CompletionRequest } from './request-schemas.js';
import { buildSampling, resolveMaxTokens, withMaxTokens } from './sampling.js';
import { checkModel, nowSeconds, parseBody, servedName, type ServerContext } from './server-context.js';
import { SseWriter, streamError } from './sse.js';
import { StreamUsage, usageOf } from './usage.js';

const DEFAULT_MAX_TOKENS = 16;

export async function handleCompletion(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const body = parseBody(completionRequestSchema, request.body);
  checkModel(ctx, body.model);
  if (body.suffix) throw badRequest('suffix is not supported', 'suffix');
  if (body.echo && body.logprobs != null) throw badRequest('echo together with logprobs is not supported', 'echo');
  const tok = ctx.engine.tokenizer;
  checkStop(body.stop, ctx.limits);
  checkCompletionPrompts(body.prompt, ctx.maxModelLen, ctx.limits);
  const base = buildSampling(body, body.logprobs ?? null, ctx.maxLogprobs, 'logprobs', ctx.samplingDefaults);
  const prompts = await encodeCompletionPrompts(body.prompt, ctx.encoder, tok.vocabSize, body.add_special_tokens ?? true);
  const samplings = prompts.map((p) => withMaxTokens(base,
    resolveMaxTokens(body.max_tokens ?? null, ctx.samplingDefaults.maxTokens ?? DEFAULT_MAX_TOKENS, p.tokenIds.length, ctx.maxModelLen, 'max_tokens', 'prompt')));
  if (body.decode_limits) for (const p of prompts) checkDecodeLimits(body.decode_limits, ctx.samplingDefaults.maxTokens ?? DEFAULT_MAX_TOKENS, p.tokenIds.length, ctx.maxModelLen, 'prompt');
  // peer-only: a client's kv_transfer_params would make this engine contact a host of its choosing
  const kvParams = body.kv_transfer_params && isPeerRequest(request) ? body.kv_transfer_params : null;

  const headerId = clientRequestId(request);
  const baseId = headerId ?? randomId();
  const list = prompts.length > 1 || (Array.isArray(body.prompt) && body.prompt.length > 0 && typeof body.prompt[0] !== 'number');
  const reqs: GenerateRequest[] = prompts.map((p, i) => ({
    requestId: ctx.ids.acquire(headerId ? (list ? `${headerId}-${i}` : headerId) : `cmpl-${baseId}-${i}`),
    promptTokenIds: p.tokenIds,
    sampling: samplings[i]!,
    ...(kvParams ? { kvTransferParams: { ...kvParams } } : {}),
  }));
  reply.header('x-request-id', baseId);
  const head = { id: `cmpl-${baseId}`, object: 'text_completion', created: nowSeconds(), model: servedName(ctx) };
  const signal = disconnectSignal(reply);
  if (body.stream) return streamCompletion(ctx, body, prompts, reqs, head, signal, reply, baseId);

  const results = await runBatch(ctx, reqs, signal, (outputs) => collect(outputs));
  return {
    ...head,
    choices: results.map((c, i) => ({
      index: i,
      text: (body.echo ? echoText(ctx, prompts[i]!) : '') + c.text,
      logprobs: body.logprobs != null ? completionLogprobs(new LogprobText(tok, prompts[i]!.tokenIds, !!body.return_tokens_as_token_ids), c.logprobs, 0) : null,
      finish_reason: c.finishReason,
      stop_reason: c.stopReason,
      ...(body.return_token_ids ? { prompt_token_ids: c.promptTokenIds, token_ids: c.tokenIds } : {}),
    })),
    usage: usageOf(results),
    ...(body.return_token_ids && results.length === 1 ? { prompt_token_ids: results[0]!.promptTokenIds } : {}),
    kv_transfer_params: results.find((c) => c.kvTransferParams)?.kvTransferParams ?? null,
  };
}

function echoText(ctx: ServerContext, p: EncodedPrompt): string {
  return p.text ?? ctx.engine.tokenizer.decode(p.tokenIds, { skipSpecialTokens: false });
}

async function streamCompletion(
  ctx: ServerContext, body: CompletionRequest, prompts: EncodedPrompt[], reqs: GenerateRequest[],
  head: Record<string, unknown>, signal: AbortSignal, reply: FastifyReply, responseId: string,
): Promise<void> {
  const tok = ctx.engine.tokenizer;
  let sse: SseWriter | null = null; // opened at the first output, so errors before it get a real status
  const open = () => (sse ??= new SseWriter(reply, { 'x-request-id': responseId }));
  const usage = new StreamUsage(prompts.length);
  const continuous = !!(body.stream_options?.include_usage && body.stream_options.continuous_usage_stats);
  try {
    await runBatch(ctx, reqs, signal, async (outputs: AsyncIterable<RequestOutput>, i) => {
      let first = true;
      let offset = 0;
      const lpText = new LogprobText(tok, prompts[i]!.tokenIds, !!body.return_tokens_as_token_ids);
      for await (const out of outputs) {
        usage.add(i, out);
        const lps = body.logprobs != null ? completionLogprobs(lpText, out.newLogprobs ?? [], offset) : null;
        const text = (first && body.echo ? echoText(ctx, prompts[i]!) : '') + out.newText;
        if (!text && !out.finished && !body.return_token_ids && !lps?.tokens.length) continue;
        await open().send({
          ...head,
          choices: [{
            index: i,
            text,
            logprobs: lps,
            finish_reason: out.finished ? out.finishReason ?? 'stop' : null,
            stop_reason: out.finished ? out.stopReason ?? null : null,
            ...(body.return_token_ids ? { token_ids: out.newTokenIds, ...(first ? { prompt_token_ids: out.promptTokenIds } : {}) } : {}),
          }],
          ...(continuous ? { usage: usage.of(i) } : {}),
        });
        if (lps) offset += logprobsTextLength(lps);
        first = false;
      }
    });
  } catch (e) {
    if (!sse) throw e; // nothing sent yet: the error handler answers with its status
    await streamError(sse, e);
    return;
  }
  const w = open();
  if (body.stream_options?.include_usage) await w.send({ ...head, choices: [], usage: usage.total() });
  await w.done();
}
