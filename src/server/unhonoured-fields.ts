// OpenAI request fields that the schemas do not know (zod drops unknown fields, as vLLM ignores them)
// but that a client sets expecting an effect: refused by name (400) instead of silently ignored.
import { badRequest } from './http-errors.js';

const CHAT: Record<string, string> = {
  functions: 'functions (the deprecated form of tools) is not supported; send tools',
  function_call: 'function_call (the deprecated form of tool_choice) is not supported; send tool_choice',
  audio: 'audio output is not supported',
  prediction: 'predicted outputs are not supported',
  web_search_options: 'web search is not supported',
  reasoning_effort: 'reasoning_effort is not supported by this server',
};

/** Throws a 400 naming the first field of the raw chat body that is set and not honoured. */
export function refuseUnhonouredChatFields(raw: unknown): void {
  if (!raw || typeof raw !== 'object') return;
  const b = raw as Record<string, unknown>;
  for (const [k, why] of Object.entries(CHAT)) if (b[k] != null) throw badRequest(why, k);
  const m = b.modalities;
  if (Array.isArray(m) && m.some((x) => x !== 'text')) throw badRequest('only the text modality is supported', 'modalities');
}
