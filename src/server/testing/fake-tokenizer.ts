// A byte-level Tokenizer for tests: ids 0..255 are UTF-8 bytes, 256 = <s> (BOS), 257 = </s> (EOS),
// 258..vocabSize-1 = <extra_N> specials. The chat template renders `<|role|>content\n` per message and
// `<|assistant|>` as the generation prompt; chat_template_kwargs.enable_thinking === false appends `<no_think>`.
import { NoChatTemplateError, type ChatMessage, type ChatTemplateOptions, type Tokenizer } from '../../tokenizer/types.js';

export const FAKE_BOS = 256;
export const FAKE_EOS = 257;

export class FakeTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosTokenId = FAKE_BOS;
  readonly eosTokenIds = [FAKE_EOS];
  hasChatTemplate: boolean;

  constructor(opts: { vocabSize?: number; hasChatTemplate?: boolean } = {}) {
    this.vocabSize = opts.vocabSize ?? 300;
    this.hasChatTemplate = opts.hasChatTemplate ?? true;
  }

  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    const bytes = [...Buffer.from(text, 'utf8')];
    return (opts.addSpecialTokens ?? true) ? [FAKE_BOS, ...bytes] : bytes;
  }

  decode(ids: ArrayLike<number>, opts: { skipSpecialTokens?: boolean } = {}): string {
    const skip = opts.skipSpecialTokens ?? true;
    let out = '';
    let bytes: number[] = [];
    const flush = () => {
      if (bytes.length) out += Buffer.from(bytes).toString('utf8');
      bytes = [];
    };
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id < 256) bytes.push(id);
      else if (!skip) {
        flush();
        out += this.idToToken(id) ?? '';
      }
    }
    flush();
    return out;
  }

  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
    if (!this.hasChatTemplate) throw new NoChatTemplateError();
    let s = '';
    for (const m of messages) {
      const content = typeof m.content === 'string' ? m.content : (m.content ?? []).map((p) => p.text ?? '').join('');
      s += `<|${m.role}|>${content}\n`;
    }
    if (opts.addGenerationPrompt ?? true) s += '<|assistant|>';
    if (opts.chatTemplateKwargs?.['enable_thinking'] === false) s += '<no_think>';
    return s;
  }

  idToToken(id: number): string | undefined {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) return undefined;
    if (id < 256) return String.fromCharCode(id);
    if (id === FAKE_BOS) return '<s>';
    if (id === FAKE_EOS) return '</s>';
    return `<extra_${id}>`;
  }

  isSpecial(id: number): boolean {
    return id >= 256;
  }
}
