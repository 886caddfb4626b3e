// Tool-call parsers by vLLM's --tool-call-parser names.
import { hermesParser } from './hermes.js';
import { llama3JsonParser } from './llama3-json.js';
import { mistralParser } from './mistral.js';
import type { ToolParser } from './types.js';

const parsers: Record<string, ToolParser> = {
  hermes: hermesParser,
  llama3_json: llama3JsonParser,
  mistral: mistralParser,
};

export function toolParserNames(): string[] {
  return Object.keys(parsers);
}

export function getToolParser(name: string): ToolParser | null {
  return parsers[name] ?? null;
}
