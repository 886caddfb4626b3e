// A GrammarService for a loaded model: its tokenizer.json's vocabulary, the logits row length, its EOS ids.
import { readFile } from 'node:fs/promises';
import { GrammarService, type GrammarServiceOptions } from './grammar-service.js';
import { grammarVocabFromTokenizerJson } from './vocab.js';

export async function createGrammarService(
  tokenizerJsonPath: string, vocabSize: number, eosTokenIds: number[], opts: GrammarServiceOptions = {},
): Promise<GrammarService> {
  const tj = JSON.parse(await readFile(tokenizerJsonPath, 'utf8')) as Record<string, unknown>;
  const v = grammarVocabFromTokenizerJson(tj);
  return new GrammarService({ ...v, vocabSize: Math.max(vocabSize, v.encodedVocab.length), stopTokenIds: eosTokenIds }, opts);
}
