// Loading a tokenizer from tokenizer.json (+ tokenizer_config.json, generation_config eos ids).
import { existsSync } from 'node:fs';
import { readJsonObjectAsync } from '../util/json-file.js';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PdsError } from '../util/errors.js';
import { HfTokenizer } from './hf-tokenizer.js';
import type { Tokenizer } from './types.js';

export interface LoadTokenizerOptions {
  tokenizerJsonPath: string;
  tokenizerConfigPath: string | null;
  generationConfig?: Record<string, unknown>;
}

/** Reads the files and builds the tokenizer; a chat_template.jinja beside tokenizer.json is used when
 * tokenizer_config.json has no chat_template. Errors are PDS_ERR_MODEL_LOAD naming the file. */
export async function loadTokenizer(opts: LoadTokenizerOptions): Promise<Tokenizer> {
  const tokenizerJson = await readJsonObjectAsync(opts.tokenizerJsonPath);
  const tokenizerConfig = opts.tokenizerConfigPath ? await readJsonObjectAsync(opts.tokenizerConfigPath) : {};
  const jinjaPath = join(dirname(opts.tokenizerConfigPath ?? opts.tokenizerJsonPath), 'chat_template.jinja');
  const chatTemplateFile = existsSync(jinjaPath) ? await readFile(jinjaPath, 'utf8') : null;
  try {
    return new HfTokenizer({ tokenizerJson, tokenizerConfig, generationConfig: opts.generationConfig, chatTemplateFile });
  } catch (e) {
    if (e instanceof PdsError) throw e;
    throw new PdsError('PDS_ERR_MODEL_LOAD', `cannot build the tokenizer from ${opts.tokenizerJsonPath}: ${(e as Error).message}`);
  }
}

/** A Hugging Face checkpoint dir: tokenizer.json required; tokenizer_config.json, generation_config.json optional. */
export async function loadTokenizerFromDir(dir: string): Promise<Tokenizer> {
  const cfgPath = join(dir, 'tokenizer_config.json');
  const genPath = join(dir, 'generation_config.json');
  return loadTokenizer({
    tokenizerJsonPath: join(dir, 'tokenizer.json'),
    tokenizerConfigPath: existsSync(cfgPath) ? cfgPath : null,
    generationConfig: existsSync(genPath) ? await readJsonObjectAsync(genPath) : {},
  });
}
