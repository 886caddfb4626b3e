// Chat-template rendering the way transformers' apply_chat_template does it (jinja with trim_blocks and
// lstrip_blocks, special tokens as strings, chat_template_kwargs merged into the context;
// @huggingface/jinja provides the raise_exception and strftime_now globals), with vLLM's message
// preprocessing for its text-only "string" content format.
import { Template } from '@huggingface/jinja';
import { PdsError } from '../util/errors.js';
import type { ChatMessage, ChatTemplateOptions } from './types.js';

export interface ChatTemplateContext {
  /** Special tokens as strings (bos_token, eos_token, unk_token, pad_token) when the tokenizer has them. */
  specialTokens: Record<string, string>;
}

/** A compiled chat template; render() never mutates the caller's messages. */
export class ChatTemplate {
  private readonly template: Template;

  constructor(source: string) {
    try {
      this.template = new Template(source);
    } catch (e) {
      throw new PdsError('PDS_ERR_MODEL_LOAD', `cannot parse the chat template: ${(e as Error).message}`);
    }
  }

  render(messages: ChatMessage[], opts: ChatTemplateOptions, ctx: ChatTemplateContext): string {
    const vars: Record<string, unknown> = {
      ...ctx.specialTokens,
      ...(opts.chatTemplateKwargs ?? {}),
      messages: messages.map(normalizeMessage),
      add_generation_prompt: opts.addGenerationPrompt ?? true,
    };
    if (opts.tools && opts.tools.length > 0) vars.tools = opts.tools;
    let text: string;
    try {
      text = this.template.render(vars);
    } catch (e) {
      if (e instanceof PdsError) throw e;
      throw new PdsError('PDS_ERR_BAD_REQUEST', `chat template error: ${(e as Error).message}`);
    }
    return opts.continueFinalMessage ? cutAfterFinalMessage(text, vars.messages as ChatMessage[]) : text;
  }
}

/**
 * transformers' continue_final_message: the rendered text ends right after the final message's content
 * (its end-of-turn tokens removed), so the model continues that message. The content (or, as transformers
 * allows, its trimmed form) must appear in the rendered text.
 */
function cutAfterFinalMessage(text: string, messages: ChatMessage[]): string {
  const final = String(messages.at(-1)?.content ?? '');
  for (const needle of [final, final.trim()]) {
    if (!needle) continue;
    const at = text.lastIndexOf(needle);
    if (at >= 0) return text.slice(0, at + needle.length);
  }
  throw new PdsError('PDS_ERR_BAD_REQUEST', 'continue_final_message: the final message content was not found in the rendered chat template', 'messages');
}

/**
 * vLLM "string" content format: a list of text parts becomes their texts joined by "\n"; null content
 * becomes ""; tool-call arguments given as JSON strings are parsed into objects (vLLM does the same so
 * templates can `| tojson` them).
 */
export function normalizeMessage(m: ChatMessage): ChatMessage {
  const out: ChatMessage = { ...m, content: flattenContent(m.content, m.role) };
  if (Array.isArray(m.tool_calls)) {
    out.tool_calls = m.tool_calls.map((tc: unknown) => parseToolCallArguments(tc));
  }
  return out;
}

function flattenContent(content: ChatMessage['content'], role: string): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) {
    throw new PdsError('PDS_ERR_BAD_REQUEST', `message content for role '${role}' must be a string or a list of parts`, 'messages');
  }
  const texts: string[] = [];
  for (const part of content) {
    if (part && part.type === 'text' && typeof part.text === 'string') texts.push(part.text);
    else throw new PdsError('PDS_ERR_BAD_REQUEST', `unsupported content part type '${part?.type}': only 'text' parts are supported`, 'messages');
  }
  return texts.join('\n');
}

function parseToolCallArguments(tc: unknown): unknown {
  if (!tc || typeof tc !== 'object') return tc;
  const call = tc as { function?: { arguments?: unknown } };
  const args = call.function?.arguments;
  if (typeof args !== 'string') return tc;
  try {
    const parsed = JSON.parse(args);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
      return { ...call, function: { ...call.function, arguments: parsed } };
    }
  } catch {
    // not JSON: templates that accept string arguments render it as-is
  }
  return tc;
}
