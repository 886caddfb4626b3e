// The Tokenizer contract over @lenml/tokenizers (a transformers.js fork: byte-level BPE, SentencePiece BPE
// with byte fallback, added/special tokens, post-processors) plus our own chat-template renderer.
import { TokenizerLoader } from '@lenml/tokenizers';
import { ChatTemplate } from './chat-template.js';
import { NoChatTemplateError, type ChatMessage, type ChatTemplateOptions, type Tokenizer } from './types.js';

/** What @lenml/tokenizers' PreTrainedTokenizer exposes that we use (its .d.ts is loose). */
interface LenmlTokenizer {
  encode(text: string, opts: { add_special_tokens: boolean }): number[];
  decode_single(ids: number[], opts: { skip_special_tokens: boolean; clean_up_tokenization_spaces: boolean | null }): string;
  model: { vocab: string[]; tokens_to_ids: Map<string, number> };
  all_special_ids: number[];
}

export interface HfTokenizerInit {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  generationConfig?: Record<string, unknown>;
  /** chat_template.jinja contents, used when tokenizer_config has no chat_template. */
  chatTemplateFile?: string | null;
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
  /**
   * Apply tokenizer_config's clean_up_tokenization_spaces (" ." -> "."), as HF decode does. Default: the
   * config's value. Incremental detokenization passes false (like vLLM), since the clean-up is not
   * prefix-stable.
   */
  cleanUpTokenizationSpaces?: boolean;
}

const KNOWN_CLASSES = new Set(['LlamaTokenizer', 'Qwen2Tokenizer', 'GPT2Tokenizer', 'GemmaTokenizer', 'PreTrainedTokenizer']);

export class HfTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: number[];
  readonly hasChatTemplate: boolean;
  private readonly tok: LenmlTokenizer;
  private readonly special: Set<number>;
  private readonly chatTemplate: ChatTemplate | null;
  private readonly specialTokenStrings: Record<string, string>;

  constructor(init: HfTokenizerInit) {
    const cfg = { ...init.tokenizerConfig };
    // transformers 5 writes classes the fork does not know (e.g. TokenizersBackend): use the generic class
    // instead of letting the fork warn on stderr; the tokenizer.json pipeline is what matters.
    const cls = typeof cfg.tokenizer_class === 'string' ? cfg.tokenizer_class.replace(/Fast$/, '') : 'PreTrainedTokenizer';
    cfg.tokenizer_class = KNOWN_CLASSES.has(cls) ? cls : 'PreTrainedTokenizer';
    // The fork parses chat_template itself with an older jinja; we render it ourselves.
    delete cfg.chat_template;
    this.tok = TokenizerLoader.fromPreTrained({ tokenizerJSON: init.tokenizerJson as never, tokenizerConfig: cfg as never }) as unknown as LenmlTokenizer;

    this.vocabSize = this.tok.model.vocab.length;
    this.special = new Set(this.tok.all_special_ids);
    this.specialTokenStrings = {};
    for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
      const s = tokenString(init.tokenizerConfig[key]);
      if (s !== null) this.specialTokenStrings[key] = s;
    }
    const bos = this.specialTokenStrings.bos_token;
    this.bosTokenId = bos !== undefined ? (this.tok.model.tokens_to_ids.get(bos) ?? null) : null;
    this.eosTokenIds = this.collectEos(init.tokenizerConfig, init.generationConfig ?? {});

    const source = pickTemplate(init.tokenizerConfig.chat_template) ?? init.chatTemplateFile ?? null;
    this.chatTemplate = source !== null ? new ChatTemplate(source) : null;
    this.hasChatTemplate = this.chatTemplate !== null;
  }

  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[] {
    if (text.length === 0 && !(opts?.addSpecialTokens ?? true)) return [];
    return this.tok.encode(text, { add_special_tokens: opts?.addSpecialTokens ?? true });
  }

  /** Ids outside the vocabulary (a model's padded embedding rows) decode to nothing, as in HF. */
  decode(ids: ArrayLike<number>, opts?: DecodeOptions): string {
    const valid: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (Number.isInteger(id) && id >= 0 && id < this.vocabSize && this.tok.model.vocab[id] !== undefined) valid.push(id);
    }
    if (valid.length === 0) return '';
    return this.tok.decode_single(valid, {
      skip_special_tokens: opts?.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: opts?.cleanUpTokenizationSpaces ?? null,
    });
  }

  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
    if (!this.chatTemplate) throw new NoChatTemplateError();
    return this.chatTemplate.render(messages, opts, { specialTokens: this.specialTokenStrings });
  }

  idToToken(id: number): string | undefined {
    return Number.isInteger(id) && id >= 0 ? this.tok.model.vocab[id] : undefined;
  }

  isSpecial(id: number): boolean {
    return this.special.has(id);
  }

  /** Union of tokenizer_config eos_token and generation_config eos_token_id (number or list), in that order. */
  private collectEos(tcfg: Record<string, unknown>, gcfg: Record<string, unknown>): number[] {
    const out: number[] = [];
    const add = (id: unknown) => {
      if (typeof id === 'number' && Number.isInteger(id) && !out.includes(id)) out.push(id);
    };
    const eos = tokenString(tcfg.eos_token);
    if (eos !== null) add(this.tok.model.tokens_to_ids.get(eos));
    const g = gcfg.eos_token_id;
    if (Array.isArray(g)) g.forEach(add);
    else add(g);
    return out;
  }
}

/** tokenizer_config stores special tokens as a string or an AddedToken object {content}. */
function tokenString(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return null;
}

/** chat_template is a string, or a list of {name, template} (HF picks "default"). */
function pickTemplate(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const named = v as Array<{ name?: string; template?: string }>;
    const def = named.find((t) => t.name === 'default') ?? null;
    return typeof def?.template === 'string' ? def.template : null;
  }
  return null;
}
