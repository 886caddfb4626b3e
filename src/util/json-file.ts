// Reading a JSON-object file (a checkpoint's config.json, tokenizer files, index, card.json) with errors
// that name the file: PDS_ERR_MODEL_LOAD when it is unreadable, not JSON, or not an object. The one helper
// for these; sync and async read the same way.
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { PdsError } from './errors.js';

function unreadable(path: string, e: unknown): PdsError {
  return new PdsError('PDS_ERR_MODEL_LOAD', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
}

function parseObject(path: string, text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new PdsError('PDS_ERR_MODEL_LOAD', `cannot parse ${path}: ${(e as Error).message}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new PdsError('PDS_ERR_MODEL_LOAD', `${path} is not a JSON object`);
  return v as Record<string, unknown>;
}

/** The parsed JSON object of `path`. */
export function readJsonObject(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw unreadable(path, e);
  }
  return parseObject(path, text);
}

/** readJsonObject without blocking the event loop (large files: tokenizer.json). */
export async function readJsonObjectAsync(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw unreadable(path, e);
  }
  return parseObject(path, text);
}

/** {} when the file does not exist. */
export function readOptionalJsonObject(path: string): Record<string, unknown> {
  return existsSync(path) ? readJsonObject(path) : {};
}
