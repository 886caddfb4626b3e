// A local Hugging Face checkpoint directory -> ResolvedModel (validated: config.json, tokenizer.json, weights).
import { existsSync, readdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { PdsError } from '../util/errors.js';
import { readJsonObject, readOptionalJsonObject } from '../util/json-file.js';
import type { LoadFormat, ResolvedModel } from './types.js';

/** Names of the *.safetensors files directly in dir. */
export function safetensorsFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort();
}

export function resolveLocalDir(dirArg: string, loadFormat: LoadFormat, name?: string): ResolvedModel {
  const dir = resolve(dirArg);
  for (const f of ['config.json', 'tokenizer.json']) {
    if (!existsSync(join(dir, f))) throw new PdsError('PDS_ERR_MODEL_LOAD', `model directory ${dir} has no ${f}`);
  }
  const dummy = loadFormat === 'dummy';
  if (!dummy) {
    const index = join(dir, 'model.safetensors.index.json');
    if (existsSync(index)) {
      const weightMap = (readJsonObject(index).weight_map ?? {}) as Record<string, string>;
      const missing = [...new Set(Object.values(weightMap))].filter((f) => !existsSync(join(dir, f)));
      if (missing.length) throw new PdsError('PDS_ERR_MODEL_LOAD', `model directory ${dir} lacks shards listed in model.safetensors.index.json: ${missing.join(', ')}`);
    } else if (safetensorsFiles(dir).length === 0) {
      throw new PdsError('PDS_ERR_MODEL_LOAD', `model directory ${dir} has no *.safetensors weights (use --load-format dummy for random weights)`);
    }
  }
  const tokenizerConfigPath = join(dir, 'tokenizer_config.json');
  return {
    name: name ?? basename(dir),
    dir,
    config: readJsonObject(join(dir, 'config.json')),
    generationConfig: readOptionalJsonObject(join(dir, 'generation_config.json')),
    tokenizerJsonPath: join(dir, 'tokenizer.json'),
    tokenizerConfigPath: existsSync(tokenizerConfigPath) ? tokenizerConfigPath : null,
    weights: dummy ? 'dummy' : 'safetensors',
    isDemo: false,
  };
}
