// A tool-call parser turns a model's text in its family's tool-call format into OpenAI tool calls
// (vLLM's --tool-call-parser). One implementation per file, a registry by name (./registry.ts), one
// shared conformance suite (./parsers.test.ts).
import type { ToolCallStream } from './call-stream.js';

/** A parsed call: the function's name and its arguments as JSON text. */
export interface ParsedToolCall {
  name: string;
  arguments: string; // JSON text of an object
}

export interface ToolParseResult {
  content: string | null; // text outside the calls (null when only calls)
  calls: ParsedToolCall[];
}

export interface ToolParser {
  readonly name: string;
  /** Text that starts a call in this format: streaming holds text back from here on. */
  readonly startMarker: string;
  /** Whole output -> content + calls; text whose calls do not parse is returned as content. */
  parse(text: string): ToolParseResult;
  /** The same, incrementally (streaming): for well-formed output its events assemble to parse()'s result. */
  stream(): ToolCallStream;
  /**
   * The text around one call's arguments object in this format, `begin` starting with startMarker (strict
   * tools under tool_choice auto: after the marker, a grammar holds the call to this shape and the
   * arguments to the function's schema). Absent: the format has no such grammar here (strict is a 400).
   */
  callTag?(name: string): { begin: string; end: string };
}

/** Parses JSON text that must be an object with a string `name` and object `arguments` / `parameters`. */
export function callFromJson(v: unknown): ParsedToolCall | null {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  const args = o.arguments ?? o.parameters ?? {};
  if (typeof o.name !== 'string' || !o.name) return null;
  if (typeof args === 'string') return { name: o.name, arguments: args };
  if (!args || typeof args !== 'object' || Array.isArray(args)) return null;
  return { name: o.name, arguments: JSON.stringify(args) };
}

export function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
