// Turns request prompts into token id lists: completions' string | ids | string[] | ids[] and chat
// messages (rendered with the model's chat template). Checks emptiness and vocabulary range.
import type { ChatMessage, Tokenizer } from '../tokenizer/types.js';
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
export function encodeCompletionPrompts(prompt: CompletionPrompt, tok: Tokenizer, addSpecialTokens: boolean): EncodedPrompt[] {
  const items: Array<string | number[]> =
    typeof prompt === 'string' ? [prompt]
      : prompt.length === 0 || typeof prompt[0] === 'number' ? [prompt as number[]]
        : (prompt as Array<string | number[]>);
  return items.map((p) => {
    const e: EncodedPrompt = typeof p === 'string'
      ? { tokenIds: tok.encode(p, { addSpecialTokens }), text: p }
      : { tokenIds: [...p], text: null };
    checkTokenIds(e.tokenIds, tok.vocabSize, 'prompt');
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

export function encodeChatPrompt(messages: WireChatMessage[], tok: Tokenizer, o: ChatPromptOptions): EncodedPrompt {
  if (!tok.hasChatTemplate) throw badRequest(new NoChatTemplateError().message, 'messages');
  let text: string;
  try {
    text = tok.applyChatTemplate(toChatMessages(messages), {
      addGenerationPrompt: o.addGenerationPrompt,
      ...(o.continueFinalMessage ? { continueFinalMessage: true } : {}),
      ...(o.chatTemplateKwargs ? { chatTemplateKwargs: o.chatTemplateKwargs } : {}),
      ...(o.tools ? { tools: o.tools } : {}),
    });
  } catch (e) {
    if (e instanceof NoChatTemplateError) throw badRequest(e.message, 'messages');
    if ((e as { name?: string }).name === 'PdsError') throw e;
    throw badRequest(`failed to apply the chat template: ${(e as Error).message}`, 'messages');
  }
  const tokenIds = tok.encode(text, { addSpecialTokens: o.addSpecialTokens });
  checkTokenIds(tokenIds, tok.vocabSize, 'messages');
  return { tokenIds, text };
}
