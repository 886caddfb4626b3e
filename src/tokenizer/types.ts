// The tokenizer contract the engine, server and bench use. Implementation: ./hf-tokenizer.ts, built by
// ./load.ts loadTokenizer / loadTokenizerFromDir. Streaming text: ./incremental-detokenizer.ts, ./stop-strings.ts.
export interface ChatMessage {
  role: string;
  content: string | Array<{ type: string; text?: string }> | null;
  name?: string;
  [k: string]: unknown;
}

export interface ChatTemplateOptions {
  addGenerationPrompt?: boolean; // default true
  /** transformers' continue_final_message: the prompt ends inside the last message, which the model continues */
  continueFinalMessage?: boolean;
  tools?: unknown[];
  chatTemplateKwargs?: Record<string, unknown>; // vLLM's chat_template_kwargs, e.g. {enable_thinking:false}
}

export interface Tokenizer {
  readonly vocabSize: number; // including added tokens
  readonly bosTokenId: number | null;
  readonly eosTokenIds: number[]; // from tokenizer_config + generation_config
  readonly hasChatTemplate: boolean;
  /** add_special_tokens defaults to true (adds BOS where the tokenizer's post-processor does). */
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  /**
   * Ids outside the vocabulary decode to nothing. cleanUpTokenizationSpaces defaults to tokenizer_config's
   * clean_up_tokenization_spaces (HF decode); IncrementalDetokenizer passes false, like vLLM's streaming.
   */
  decode(ids: ArrayLike<number>, opts?: { skipSpecialTokens?: boolean; cleanUpTokenizationSpaces?: boolean }): string;
  /** Throws NoChatTemplateError when the model has none. */
  applyChatTemplate(messages: ChatMessage[], opts?: ChatTemplateOptions): string;
  idToToken(id: number): string | undefined;
  isSpecial(id: number): boolean;
}

export class NoChatTemplateError extends Error {
  constructor() {
    super('this model has no chat template (tokenizer_config.json has no chat_template); use /v1/completions');
  }
}
