// POST /v1/completions: one engine request per prompt, each with n (or best_of) sequences forked over one
// prefill; choice index = prompt position × n + sequence. Non-streaming JSON or SSE chunks {choices:[{index,text,logprobs,finish_reason,stop_reason}]},
// then a usage chunk when stream_options.include_usage, then [DONE].
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { GenerateRequest, RequestOutput, TokenLogprob } from '../engine/protocol.js';
import { collectChoices } from './engine-run.js';
import { runBatch } from './engine-batch.js';
import { timingIdOf } from './kv-timing.js';
import { badRequest } from './http-errors.js';
import { completionLogprobs, LogprobText } from './logprobs.js';
import { encodeCompletionPrompts, type EncodedPrompt } from './prompts.js';
import { clientRequestId, disconnectSignal, randomId } from './request-context.js';
import { isPeerRequest } from './edge-auth.js';
import { checkCompletionPrompts, checkStop } from './request-limits.js';
import { checkDecodeLimits } from './decode-limits.js';
import { completionRequestSchema, type CompletionRequest } from './request-schemas.js';
import { buildSampling, resolveMaxTokens, withMaxTokens } from './sampling.js';
import { bestIndices, choiceCounts, parseLogitBias } from './parallel-sampling.js';
import { echoPromptLogprobs, joinLogprobs, promptLogprobsK, vllmPromptLogprobs } from './prompt-logprobs.js';
import type { PromptLogprob } from '../engine/protocol.js';
import { checkModel, nowSeconds, parseBody, servedName, type ServerContext } from './server-context.js';
import { SseWriter, streamError } from './sse.js';
import { StreamUsage, usageOf } from './usage.js';
import { attachConstraints, structuredSpecOf } from './structured-fields.js';

const DEFAULT_MAX_TOKENS = 16;

export async function handleCompletion(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const body = parseBody(completionRequestSchema, request.body);
  checkModel(ctx, body.model);
  if (body.suffix) throw badRequest('suffix is not supported', 'suffix');
  const tok = ctx.engine.tokenizer;
  checkStop(body.stop, ctx.limits);
  checkCompletionPrompts(body.prompt, ctx.maxModelLen, ctx.limits);
  const base = buildSampling(body, body.logprobs ?? null, ctx.maxLogprobs, 'logprobs', ctx.samplingDefaults);
  const structured = structuredSpecOf(body);
  const logitBias = parseLogitBias(body.logit_bias, tok.vocabSize);
  if (logitBias) base.logitBias = logitBias;
  const { n, bestOf } = choiceCounts(body, Array.isArray(body.prompt) && typeof body.prompt[0] !== 'number' ? body.prompt.length : 1, ctx.limits);
  if (bestOf > n && base.logprobs === null) base.logprobs = 0; // ranking needs the chosen tokens' logprobs
  // prompt logprobs: for prompt_logprobs, and for echo with logprobs (the echoed tokens' logprobs)
  const promptK = promptLogprobsK(body, ctx.maxLogprobs);
  const echoLogprobs = !!body.echo && body.logprobs != null;
  const engineK = Math.max(promptK ?? -1, echoLogprobs ? body.logprobs! : -1);
  if (engineK >= 0) base.promptLogprobs = engineK;
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
    ...(bestOf > 1 ? { n: bestOf } : {}),
    ...(kvParams ? { kvTransferParams: { ...kvParams } } : {}),
  }));
  await attachConstraints(ctx, structured, reqs);
  reply.header('x-request-id', baseId);
  const head = { id: `cmpl-${baseId}`, object: 'text_completion', created: nowSeconds(), model: servedName(ctx) };
  const signal = disconnectSignal(reply);
  if (body.stream) return streamCompletion(ctx, body, prompts, reqs, n, head, signal, reply, baseId);

  const groups = await runBatch(ctx, reqs, signal, (outputs) => collectChoices(outputs, bestOf), timingIdOf(request));
  const results = groups.flatMap((g) => (bestOf > n ? bestIndices(g, n).map((j) => g[j]!) : g));
  return {
    ...head,
    choices: results.map((c, k) => ({
      index: k,
      text: (body.echo ? echoText(ctx, prompts[Math.floor(k / n)]!) : '') + c.text,
      logprobs: body.logprobs != null ? choiceLogprobs(ctx, body, prompts[Math.floor(k / n)]!, c.promptLogprobs, c.logprobs) : null,
      ...(promptK !== null ? { prompt_logprobs: vllmPromptLogprobs(tok, c.promptLogprobs ?? [], promptK) } : {}),
      finish_reason: c.finishReason,
      stop_reason: c.stopReason,
      ...(body.return_token_ids ? { prompt_token_ids: c.promptTokenIds, token_ids: c.tokenIds } : {}),
    })),
    usage: usageOf(results, n),
    ...(body.return_token_ids && results.length === 1 ? { prompt_token_ids: results[0]!.promptTokenIds } : {}),
    kv_transfer_params: results.find((c) => c.kvTransferParams)?.kvTransferParams ?? null,
  };
}

function echoText(ctx: ServerContext, p: EncodedPrompt): string {
  return p.text ?? ctx.engine.tokenizer.decode(p.tokenIds, { skipSpecialTokens: false });
}

/**
 * A choice's (or a stream chunk's) completion logprobs; with echo, led by the prompt's tokens (pass
 * `promptLogprobs` only where the echoed text is sent). `offset` = text offset of the first generated token.
 */
function choiceLogprobs(
  ctx: ServerContext, body: CompletionRequest, p: EncodedPrompt, promptLogprobs: Array<PromptLogprob | null> | null,
  lps: TokenLogprob[], offset = 0, lpText?: LogprobText,
) {
  const tok = ctx.engine.tokenizer;
  const asIds = !!body.return_tokens_as_token_ids;
  const gen = (at: number) => completionLogprobs(lpText ?? new LogprobText(tok, p.tokenIds, asIds), lps, at);
  if (!body.echo || !promptLogprobs) return gen(offset);
  const echo = echoText(ctx, p);
  return joinLogprobs(echoPromptLogprobs(tok, p.tokenIds, promptLogprobs, body.logprobs ?? 0, echo, asIds), gen(offset + echo.length));
}

async function streamCompletion(
  ctx: ServerContext, body: CompletionRequest, prompts: EncodedPrompt[], reqs: GenerateRequest[], n: number,
  head: Record<string, unknown>, signal: AbortSignal, reply: FastifyReply, responseId: string,
): Promise<void> {
  const tok = ctx.engine.tokenizer;
  let sse: SseWriter | null = null; // opened at the first output, so errors before it get a real status
  const open = () => (sse ??= new SseWriter(reply, { 'x-request-id': responseId }));
  const usage = new StreamUsage(prompts.length * n, n);
  const continuous = !!(body.stream_options?.include_usage && body.stream_options.continuous_usage_stats);
  try {
    await runBatch(ctx, reqs, signal, async (outputs: AsyncIterable<RequestOutput>, i) => {
      const first = new Array<boolean>(n).fill(true);
      const offset = new Array<number>(n).fill(0);
      // token texts are decoded in each sequence's own context
      const lpTexts = Array.from({ length: n }, () => new LogprobText(tok, prompts[i]!.tokenIds, !!body.return_tokens_as_token_ids));
      let promptLps: Array<PromptLogprob | null> | null = null; // sequence 0 brings them; the others echo them too
      for await (const out of outputs) {
        const j = out.index ?? 0;
        const index = i * n + j;
        usage.add(index, out);
        const echo = first[j] && body.echo ? echoText(ctx, prompts[i]!) : '';
        const lps = body.logprobs != null
          ? choiceLogprobs(ctx, body, prompts[i]!, echo ? out.promptLogprobs ?? promptLps : null, out.newLogprobs ?? [], offset[j]!, lpTexts[j]) : null;
        if (out.promptLogprobs) promptLps = out.promptLogprobs;
        const text = echo + out.newText;
        if (!text && !out.finished && !body.return_token_ids && !lps?.tokens.length) continue;
        await open().send({
          ...head,
          choices: [{
            index,
            text,
            logprobs: lps,
            finish_reason: out.finished ? out.finishReason ?? 'stop' : null,
            stop_reason: out.finished ? out.stopReason ?? null : null,
            ...(body.return_token_ids ? { token_ids: out.newTokenIds, ...(first[j] ? { prompt_token_ids: out.promptTokenIds } : {}) } : {}),
          }],
          ...(continuous ? { usage: usage.of(index) } : {}),
        });
        if (lps) {
          // the echoed prompt spans its text; generated tokens span their own text
          const skip = lps.tokens.length - (out.newLogprobs?.length ?? 0);
          offset[j]! += (skip > 0 ? echo.length : 0) + lps.tokens.slice(skip).reduce((a, t) => a + t.length, 0);
        }
        first[j] = false;
      }
    }, timingIdOf(reply.request));
  } catch (e) {
    if (!sse) throw e; // nothing sent yet: the error handler answers with its status
    await streamError(sse, e);
    return;
  }
  const w = open();
  if (body.stream_options?.include_usage) await w.send({ ...head, choices: [], usage: usage.total() });
  await w.done();
}
