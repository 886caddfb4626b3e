// Datasets read from files: ShareGPT JSON and custom JSONL (vLLM's ShareGPTDataset / CustomDataset).
import { readFileSync } from 'node:fs';
import { Rng } from '../../util/rng.js';
import type { SampleRequest } from '../types.js';
import type { Tokenizer } from '../../tokenizer/types.js';

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${what} dataset ${path}: ${(e as Error).message}`);
  }
}

/** vLLM's is_valid_sequence with its defaults (min 4, prompt <= 1024, prompt + output <= 2048). */
export function isValidSequence(promptLen: number, outputLen: number, skipMinOutput: boolean): boolean {
  return !(promptLen < 4 || (!skipMinOutput && outputLen < 4) || promptLen > 1024 || promptLen + outputLen > 2048);
}

/** Fill up to n by drawing (with replacement) from what was sampled, like maybe_oversample_requests. */
export function oversample(reqs: SampleRequest[], n: number, rng: Rng): SampleRequest[] {
  if (!reqs.length || reqs.length >= n) return reqs;
  const base = reqs.length;
  while (reqs.length < n) reqs.push({ ...reqs[rng.integers(0, base)]! });
  return reqs;
}

export interface FileDatasetOptions {
  path: string;
  numRequests: number;
  seed: number;
  shuffle: boolean;
  /** --sharegpt-output-len / --custom-output-len (custom: a row's output_tokens wins). */
  outputLen: number | null;
}

/** ShareGPT: [{conversations: [{from: 'human', value}, {from: 'gpt', value}, ...]}, ...]. */
export function sampleShareGpt(tok: Tokenizer, o: FileDatasetOptions): SampleRequest[] {
  let data: unknown;
  try {
    data = JSON.parse(readText(o.path, 'sharegpt'));
  } catch (e) {
    throw new Error(`sharegpt dataset ${o.path} is not valid JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(data)) throw new Error(`sharegpt dataset ${o.path} must be a JSON array of {conversations: [...]}`);
  const entries = data.filter((e) => Array.isArray(e?.conversations) && e.conversations.length >= 2 &&
    typeof e.conversations[0]?.value === 'string' && typeof e.conversations[1]?.value === 'string');
  const rng = new Rng(o.seed);
  if (o.shuffle) rng.shuffle(entries);
  const out: SampleRequest[] = [];
  for (const e of entries) {
    if (out.length >= o.numRequests) break;
    const prompt: string = e.conversations[0].value;
    const promptLen = tok.encode(prompt).length;
    const outputLen = o.outputLen ?? tok.encode(e.conversations[1].value).length;
    if (!isValidSequence(promptLen, outputLen, o.outputLen !== null)) continue;
    out.push({ prompt, promptLen, expectedOutputLen: outputLen });
  }
  if (!out.length) throw new Error(`sharegpt dataset ${o.path} has no usable conversations`);
  return oversample(out, o.numRequests, rng);
}

/** Custom JSONL: one {"prompt": string, "output_tokens"?: int} per line. */
export function sampleCustom(tok: Tokenizer, o: FileDatasetOptions & { applyChatTemplate: boolean }): SampleRequest[] {
  const rows: Array<{ prompt: string; output_tokens?: number }> = [];
  readText(o.path, 'custom').split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let row: { prompt?: unknown; output_tokens?: unknown };
    try {
      row = JSON.parse(line);
    } catch {
      throw new Error(`custom dataset ${o.path} line ${i + 1}: not JSON`);
    }
    if (typeof row.prompt !== 'string') throw new Error(`custom dataset ${o.path} line ${i + 1}: needs a string "prompt"`);
    if (row.output_tokens !== undefined && !(Number.isInteger(row.output_tokens) && (row.output_tokens as number) > 0)) {
      throw new Error(`custom dataset ${o.path} line ${i + 1}: "output_tokens" must be a positive integer`);
    }
    rows.push(row as { prompt: string; output_tokens?: number });
  });
  if (!rows.length) throw new Error(`custom dataset ${o.path} is empty`);
  const rng = new Rng(o.seed);
  if (o.shuffle) rng.shuffle(rows);
  const n = o.numRequests > 0 ? o.numRequests : rows.length;
  const out: SampleRequest[] = [];
  for (const row of rows.slice(0, n)) {
    const prompt = o.applyChatTemplate && tok.hasChatTemplate
      ? tok.applyChatTemplate([{ role: 'user', content: row.prompt }], { addGenerationPrompt: true })
      : row.prompt;
    out.push({ prompt, promptLen: tok.encode(prompt).length, expectedOutputLen: row.output_tokens ?? o.outputLen ?? 256 });
  }
  return oversample(out, n, rng);
}
