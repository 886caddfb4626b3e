// How the API server turns request text into token ids: PromptEncoder. Two implementations with one
// contract: InlineEncoder (on the event loop, the tokenizer the engine holds) and TokenizerPool
// (./worker-pool.ts: worker threads, a bounded queue and a per-job deadline). Errors are the tokenizer's
// own (NoChatTemplateError, PdsError) so handlers map them the same way whichever runs.
import type { ChatMessage, ChatTemplateOptions, Tokenizer } from './types.js';

export interface ChatEncoded {
  text: string; // the rendered template
  tokenIds: number[];
}

export interface PromptEncoder {
  /** One id list per text, in order. */
  encode(texts: string[], addSpecialTokens: boolean): Promise<number[][]>;
  /** Renders the chat template and encodes the result. */
  encodeChat(messages: ChatMessage[], opts: ChatTemplateOptions, addSpecialTokens: boolean): Promise<ChatEncoded>;
  close(): Promise<void>;
}

export class InlineEncoder implements PromptEncoder {
  constructor(private readonly tok: Tokenizer) {}
  async encode(texts: string[], addSpecialTokens: boolean): Promise<number[][]> {
    return texts.map((t) => this.tok.encode(t, { addSpecialTokens }));
  }
  async encodeChat(messages: ChatMessage[], opts: ChatTemplateOptions, addSpecialTokens: boolean): Promise<ChatEncoded> {
    const text = this.tok.applyChatTemplate(messages, opts);
    return { text, tokenIds: this.tok.encode(text, { addSpecialTokens }) };
  }
  async close(): Promise<void> {}
}
