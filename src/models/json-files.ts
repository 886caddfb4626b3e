// Reading a checkpoint's JSON files with errors that name the file.
import { existsSync, readFileSync } from 'node:fs';
import { PdsError } from '../util/errors.js';

/** Parsed JSON object; PDS_ERR_MODEL_LOAD naming the file when it is unreadable or not an object. */
export function readJsonObject(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new PdsError('PDS_ERR_MODEL_LOAD', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new PdsError('PDS_ERR_MODEL_LOAD', `cannot parse ${path}: ${(e as Error).message}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new PdsError('PDS_ERR_MODEL_LOAD', `${path} is not a JSON object`);
  return v as Record<string, unknown>;
}

/** {} when the file does not exist. */
export function readOptionalJsonObject(path: string): Record<string, unknown> {
  return existsSync(path) ? readJsonObject(path) : {};
}
