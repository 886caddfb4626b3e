// The bench's one seam to tokenizer loading: `--tokenizer` (or `--model`) -> Tokenizer.
// A model directory, a built-in card name (qwen3-0.6b, llama-3.1-8b, ...) or an HF repo id, resolved
// as `pdserve serve` resolves it (weights are never needed, hence the dummy load format).
import { resolveModel } from '../models/resolve.js';
import { loadTokenizer } from '../tokenizer/load.js';
import type { Tokenizer } from '../tokenizer/types.js';

export async function loadBenchTokenizer(arg: string): Promise<Tokenizer> {
  const r = await resolveModel(arg, { loadFormat: 'dummy' });
  return loadTokenizer({ tokenizerJsonPath: r.tokenizerJsonPath, tokenizerConfigPath: r.tokenizerConfigPath, generationConfig: r.generationConfig });
}
