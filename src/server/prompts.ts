// Turns request prompts into token id lists: completions' string | ids | string[] | ids[] and chat
// messages (rendered with the model's chat template). Checks emptiness and vocabulary range. Text goes
// through the server's PromptEncoder (a worker pool by default), never the event loop's tokenizer.
import type { PromptEncoder } from '../tokenizer/prompt-encoder.js';
import type { ChatMessage } from '../tokenizer/types.js';
import { NoChatTemplateError } from '../tokenizer/types.js';
import { badRequest } from './http-errors.js';
import type { WireChatMessage } from './request-schemas.js';

export type CompletionPrompt = string | number[] | string[] | number[][];

export interface EncodedPrompt {
  tokenIds: number[];
  text: string | null; // the prompt text when it was given as text (for echo)
}

export function checkTokenIds(ids: number[], vocabSize: number, param: string): void {
  if (ids.length === 0) throw badRequest('The decoder prompt cannot be empty', param);
  for (const id of ids) {
    if (id < 0 || id >= vocabSize) throw badRequest(`Token id ${id} is out of vocabulary`, param);
  }
}

/** One EncodedPrompt per prompt; a list yields one per element, in order. */
export async function encodeCompletionPrompts(
  prompt: CompletionPrompt, enc: PromptEncoder, vocabSize: number, addSpecialTokens: boolean,
): Promise<EncodedPrompt[]> {
  const items: Array<string | number[]> =
    typeof prompt === 'string' ? [prompt]
      : prompt.length === 0 || typeof prompt[0] === 'number' ? [prompt as number[]]
        : (prompt as Array<string | number[]>);
  const texts = items.filter((p): p is string => typeof p === 'string');
  const encoded = texts.length ? await enc.encode(texts, addSpecialTokens) : [];
  let t = 0;
  return items.map((p) => {
    const e: EncodedPrompt = typeof p === 'string'
      ? { tokenIds: encoded[t++]!, text: p }
      : { tokenIds: [...p], text: null };
    checkTokenIds(e.tokenIds, vocabSize, 'prompt');
    return e;
  });
}

/** Flattens OpenAI content parts to a string; only text parts are supported. */
export function toChatMessages(messages: WireChatMessage[]): ChatMessage[] {
  return messages.map((m, i) => {
    let content: string | null = null;
    if (typeof m.content === 'string') content = m.content;
    else if (Array.isArray(m.content)) {
      const texts: string[] = [];
      for (const part of m.content) {
        if (part.type !== 'text' || typeof part.text !== 'string') {
          throw badRequest(`content part type '${part.type}' is not supported (only 'text')`, `messages.${i}.content`);
        }
        texts.push(part.text);
      }
      content = texts.join('\n');
    }
    return { ...m, content };
  });
}

export interface ChatPromptOptions {
  addGenerationPrompt: boolean;
  continueFinalMessage?: boolean;
  addSpecialTokens: boolean; // vLLM's chat default: false (the template carries BOS)
  chatTemplateKwargs?: Record<string, unknown>;
  tools?: unknown[]; // rendered by templates that support tools; no tool-call parsing happens
}

export async function encodeChatPrompt(
  messages: WireChatMessage[], enc: PromptEncoder, tok: { hasChatTemplate: boolean; vocabSize: number }, o: ChatPromptOptions,
): Promise<EncodedPrompt> {
  if (!tok.hasChatTemplate) throw badRequest(new NoChatTemplateError().message, 'messages');
  let r;
  try {
    r = await enc.encodeChat(toChatMessages(messages), {
      addGenerationPrompt: o.addGenerationPrompt,
      ...(o.continueFinalMessage ? { continueFinalMessage: true } : {}),
      ...(o.chatTemplateKwargs ? { chatTemplateKwargs: o.chatTemplateKwargs } : {}),
      ...(o.tools ? { tools: o.tools } : {}),
    }, o.addSpecialTokens);
  } catch (e) {
    if (e instanceof NoChatTemplateError) throw badRequest(e.message, 'messages');
    if ((e as { name?: string }).name === 'PdsError') throw e;
    throw badRequest(`failed to apply the chat template: ${(e as Error).message}`, 'messages');
  }
  checkTokenIds(r.tokenIds, tok.vocabSize, 'messages');
  return { tokenIds: r.tokenIds, text: r.text };
}
