// Model argument -> ResolvedModel: nothing = the default model (stories260k, real weights shipped in the
// package); an existing directory = a local checkpoint; a built-in card name (or, with --load-format dummy,
// a hub id that has a card) = that card; "org/name" = a hub checkpoint (cache, else download).
// The served name is the argument as given (vLLM's rule), or the card's name when there is none.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PdsError } from '../util/errors.js';
import { getLogger } from '../util/logger.js';
import { packagedTokenizerPaths, type PackagedTokenizer } from '../tokenizer/packaged.js';
import { DEFAULT_CARD, findCard, listCards, type Card } from './cards.js';
import { isHubRepoId, resolveHubModel } from './hub.js';
import { readJsonObject, readOptionalJsonObject } from '../util/json-file.js';
import { resolveLocalDir } from './local-dir.js';
import type { LoadFormat, ResolvedModel } from './types.js';

const log = getLogger('models');

export interface ResolveOptions {
  loadFormat: LoadFormat;
  /** Overrides HF_HOME for hub downloads and the cache. */
  hfHome?: string;
}

export async function resolveModel(arg: string | undefined, opts: ResolveOptions): Promise<ResolvedModel> {
  if (arg === undefined || arg.trim() === '') return resolveCard(findCard(DEFAULT_CARD)!, opts.loadFormat, DEFAULT_CARD);
  if (existsSync(arg)) {
    if (!statSync(arg).isDirectory()) throw new PdsError('PDS_ERR_MODEL_LOAD', `model path ${arg} is not a directory (expected a Hugging Face checkpoint directory)`);
    return resolveLocalDir(arg, opts.loadFormat, arg);
  }
  const card = findCard(arg);
  if (card) return resolveCard(card, opts.loadFormat, arg);
  if (opts.loadFormat === 'dummy') {
    const byHub = findCard(arg, true);
    if (byHub) {
      log.info(`Using built-in card ${byHub.name} for ${arg} (--load-format dummy: no download)`);
      return resolveCard(byHub, 'dummy', arg);
    }
  }
  if (isHubRepoId(arg)) return resolveHubModel(arg, opts);
  const names = listCards().map((c) => c.name).join(', ');
  throw new PdsError('PDS_ERR_MODEL_LOAD', `model '${arg}' is not a directory, a built-in card (${names}) or a Hugging Face repo id (org/name)`);
}

function resolveCard(card: Card, loadFormat: LoadFormat, name: string): ResolvedModel {
  if (card.weights) return { ...resolveLocalDir(card.dir, loadFormat, name), description: card.description };
  if (card.demo) {
    if (loadFormat === 'safetensors') throw new PdsError('PDS_ERR_MODEL_LOAD', `the demo model ${card.name} has random weights; --load-format safetensors needs a checkpoint`);
  } else if (loadFormat !== 'dummy') {
    throw new PdsError('PDS_ERR_MODEL_LOAD', `built-in card ${card.name} has no weights; use --load-format dummy`);
  }
  return {
    name,
    dir: card.dir,
    config: readJsonObject(join(card.dir, 'config.json')),
    generationConfig: readOptionalJsonObject(join(card.dir, 'generation_config.json')),
    ...packagedTokenizerPaths(card.tokenizer as PackagedTokenizer),
    weights: 'dummy',
    isDemo: card.demo,
    description: card.description,
  };
}
