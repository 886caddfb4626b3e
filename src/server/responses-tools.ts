// /v1/responses tool fields -> the chat path's (server/tools/tool-plan.ts), and back:
//   tools        [{type: "function", name, parameters, strict?, description?}] -> [{type, function: {...}}]
//   tool_choice  "none" | "auto" | "required" | {type: "function", name} -> the chat form
//   input items  {type: "function_call", call_id, name, arguments} -> an assistant message with tool_calls
//                {type: "function_call_output", call_id, output} -> a {role: "tool", tool_call_id} message
//   output       parsed calls -> {type: "function_call", id: "fc_...", call_id: "call_...", name, arguments, status}
// Non-function tools (web_search, file_search, mcp, ...) and other tool_choice shapes are 400s naming them.
import { randomBytes } from 'node:crypto';
import { badRequest } from './http-errors.js';
import type { ToolFields } from './tools/tool-plan.js';
import type { WireChatMessage } from './request-schemas.js';

export const callId = () => `call_${randomBytes(12).toString('hex')}`;
export const functionItemId = () => `fc_${randomBytes(12).toString('hex')}`;

/** The Responses tools and tool_choice in the chat request's shape (tool-plan.ts validates the rest). */
export function chatToolFields(tools: unknown[] | null | undefined, toolChoice: unknown, parallel: boolean | null | undefined): ToolFields {
  const out: ToolFields = {};
  if (tools?.length) {
    out.tools = tools.map((t, i) => {
      const o = t as { type?: unknown; name?: unknown; parameters?: unknown; description?: unknown; strict?: unknown };
      if (!o || typeof o !== 'object') throw badRequest(`tools[${i}] must be an object`, `tools.${i}`);
      if (o.type !== 'function') throw badRequest(`tools[${i}]: tool type '${String(o.type)}' is not supported (only 'function')`, `tools.${i}.type`);
      if (o.strict != null && typeof o.strict !== 'boolean') throw badRequest(`tools[${i}].strict must be a boolean`, `tools.${i}.strict`);
      return {
        type: 'function',
        function: { name: o.name, ...(o.description != null ? { description: o.description } : {}), ...(o.parameters != null ? { parameters: o.parameters } : {}), ...(o.strict != null ? { strict: o.strict } : {}) },
      };
    });
  }
  if (toolChoice != null) {
    if (toolChoice === 'none' || toolChoice === 'auto' || toolChoice === 'required') out.tool_choice = toolChoice;
    else {
      const c = toolChoice as { type?: unknown; name?: unknown };
      if (c && typeof c === 'object' && c.type === 'function' && typeof c.name === 'string') out.tool_choice = { type: 'function', function: { name: c.name } };
      else throw badRequest('tool_choice must be "none", "auto", "required" or {"type": "function", "name": ...}', 'tool_choice');
    }
  }
  if (parallel != null) out.parallel_tool_calls = parallel;
  return out;
}

type Item = { type?: string; call_id?: unknown; name?: unknown; arguments?: unknown; output?: unknown };

/** A function_call input item appended to `out` (merged into a preceding assistant message). */
export function pushFunctionCall(out: WireChatMessage[], item: Item, i: number): void {
  if (typeof item.call_id !== 'string' || !item.call_id) throw badRequest('function_call items need a call_id', `input.${i}.call_id`);
  if (typeof item.name !== 'string' || !item.name) throw badRequest('function_call items need a name', `input.${i}.name`);
  if (typeof item.arguments !== 'string') throw badRequest('function_call arguments must be a JSON string', `input.${i}.arguments`);
  let args: unknown;
  try {
    args = JSON.parse(item.arguments);
  } catch {
    throw badRequest('function_call arguments are not valid JSON', `input.${i}.arguments`);
  }
  // templates render arguments as an object (Qwen, Llama, Hermes print `arguments | tojson`)
  const call = { id: item.call_id, type: 'function', function: { name: item.name, arguments: args } };
  const last = out.at(-1) as (WireChatMessage & { tool_calls?: unknown[] }) | undefined;
  if (last && last.role === 'assistant') (last.tool_calls ??= []).push(call);
  else out.push({ role: 'assistant', content: '', tool_calls: [call] } as WireChatMessage);
}

/** A function_call_output input item -> a tool message. */
export function toolResultMessage(item: Item, i: number): WireChatMessage {
  if (typeof item.call_id !== 'string' || !item.call_id) throw badRequest('function_call_output items need a call_id', `input.${i}.call_id`);
  let content: string;
  if (typeof item.output === 'string') content = item.output;
  else if (Array.isArray(item.output)) {
    content = item.output.map((p: { type?: unknown; text?: unknown }, j: number) => {
      if (p?.type !== 'input_text' || typeof p.text !== 'string') throw badRequest(`function_call_output part type '${String(p?.type)}' is not supported (only input_text)`, `input.${i}.output.${j}`);
      return p.text;
    }).join('\n');
  } else throw badRequest('function_call_output output must be a string or input_text parts', `input.${i}.output`);
  return { role: 'tool', content, tool_call_id: item.call_id } as WireChatMessage;
}

export interface FunctionCallItem {
  type: 'function_call';
  id: string;
  call_id: string;
  name: string;
  arguments: string;
  status: 'in_progress' | 'completed' | 'incomplete';
}

export function functionCallItem(name: string, args: string, status: FunctionCallItem['status'], id = functionItemId(), call = callId()): FunctionCallItem {
  return { type: 'function_call', id, call_id: call, name, arguments: args, status };
}
