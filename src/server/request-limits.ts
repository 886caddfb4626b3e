// Cheap limits checked on the parsed body before any tokenization or template rendering, so a request's
// cost on the event loop is bounded by its size and these counts (vLLM has none of them; these are ours).
//
// Prompt bytes: a text prompt (or all chat message text together) longer than
// max_model_len × maxPromptBytesPerToken UTF-8 bytes is refused with a context-length 400. Real text
// runs 3–5 bytes a token; 32 leaves room for long runs of whitespace or symbols, so a prompt over the
// bound would need almost all of its tokens to be 32+ byte vocabulary entries to fit (the longest entry
// in the Qwen3 and Llama 3 vocabularies is 128 bytes; 99.9 % are under 64).
import { PdsError } from '../util/errors.js';
import { badRequest } from './http-errors.js';

export interface RequestLimits {
  maxPromptBytesPerToken: number;
  maxPromptsPerRequest: number; // a completions prompt list
  maxStopStrings: number;
  maxStopStringBytes: number; // each
  maxChatMessages: number;
  maxTools: number;
}

export const defaultRequestLimits: RequestLimits = {
  maxPromptBytesPerToken: 32,
  maxPromptsPerRequest: 256,
  maxStopStrings: 64,
  maxStopStringBytes: 1024,
  maxChatMessages: 4096,
  maxTools: 256,
};

/** The body size an engine accepts by default: room for its longest prompt as escaped JSON, plus 4 MiB. */
export function defaultBodyLimit(maxModelLen: number, l: RequestLimits = defaultRequestLimits): number {
  return maxModelLen * l.maxPromptBytesPerToken * 2 + 4 * 1024 * 1024;
}

function checkPromptBytes(bytes: number, maxModelLen: number, l: RequestLimits, param: string): void {
  const max = maxModelLen * l.maxPromptBytesPerToken;
  if (bytes > max) {
    throw new PdsError('PDS_ERR_CONTEXT_LENGTH',
      `This model's maximum context length is ${maxModelLen} tokens. However, your prompt is ${bytes} bytes long, more than ` +
      `${max} bytes (${l.maxPromptBytesPerToken} bytes per token) could ever fit; it was refused before tokenization. ` +
      'Please reduce the length of the input.', param);
  }
}

export function checkStop(stop: string | string[] | null | undefined, l: RequestLimits): void {
  if (stop == null) return;
  const list = typeof stop === 'string' ? [stop] : stop;
  if (list.length > l.maxStopStrings) throw badRequest(`at most ${l.maxStopStrings} stop strings are allowed, got ${list.length}`, 'stop');
  for (const s of list) {
    if (Buffer.byteLength(s, 'utf8') > l.maxStopStringBytes) throw badRequest(`a stop string may be at most ${l.maxStopStringBytes} bytes long`, 'stop');
  }
}

/** Completions: prompt count and each text prompt's size. */
export function checkCompletionPrompts(prompt: string | number[] | string[] | number[][], maxModelLen: number, l: RequestLimits): void {
  if (typeof prompt === 'string') return checkPromptBytes(Buffer.byteLength(prompt, 'utf8'), maxModelLen, l, 'prompt');
  if (prompt.length > 0 && typeof prompt[0] !== 'number') {
    if (prompt.length > l.maxPromptsPerRequest) {
      throw badRequest(`at most ${l.maxPromptsPerRequest} prompts are allowed in one request, got ${prompt.length}`, 'prompt');
    }
    for (const p of prompt as Array<string | number[]>) {
      if (typeof p === 'string') checkPromptBytes(Buffer.byteLength(p, 'utf8'), maxModelLen, l, 'prompt');
      else if (p.length >= maxModelLen) checkTokenCount(p.length, maxModelLen);
    }
  } else if (prompt.length >= maxModelLen) checkTokenCount(prompt.length, maxModelLen);
}

function checkTokenCount(n: number, maxModelLen: number): void {
  throw new PdsError('PDS_ERR_CONTEXT_LENGTH',
    `This model's maximum context length is ${maxModelLen} tokens. However, your request has ${n} input tokens. ` +
    'Please reduce the length of the input messages.', 'prompt');
}

interface ChatShape {
  messages: Array<{ content?: string | Array<{ text?: string | undefined }> | null | undefined }>;
  tools?: unknown[] | null | undefined;
}

/** Chat: message count, tool count, and all message text together against the prompt-bytes bound. */
export function checkChat(body: ChatShape, maxModelLen: number, l: RequestLimits): void {
  if (body.messages.length > l.maxChatMessages) {
    throw badRequest(`at most ${l.maxChatMessages} messages are allowed in one request, got ${body.messages.length}`, 'messages');
  }
  if (body.tools && body.tools.length > l.maxTools) throw badRequest(`at most ${l.maxTools} tools are allowed, got ${body.tools.length}`, 'tools');
  let bytes = 0;
  for (const m of body.messages) {
    if (typeof m.content === 'string') bytes += Buffer.byteLength(m.content, 'utf8');
    else if (Array.isArray(m.content)) for (const p of m.content) if (typeof p.text === 'string') bytes += Buffer.byteLength(p.text, 'utf8');
  }
  checkPromptBytes(bytes, maxModelLen, l, 'messages');
}
