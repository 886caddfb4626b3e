// Wire shape of POST /v1/responses (OpenAI's Responses API, what the Vercel AI SDK's default OpenAI
// provider calls), text, function tools and text.format. Unknown fields are ignored, as elsewhere; fields we know and do not
// honour are refused by name in responses.ts.
import { z } from 'zod';
import { kvTransferParamsSchema } from '../engine/protocol.js';

const textPart = z.looseObject({ type: z.string(), text: z.string().optional() });
const inputItem = z.looseObject({
  type: z.string().optional(), // 'message' (or absent: an easy input message), 'function_call', 'function_call_output'
  role: z.string().optional(),
  content: z.union([z.string(), z.array(textPart)]).optional(),
  // function_call: call_id, name, arguments (JSON text); function_call_output: call_id, output (responses-tools.ts)
  call_id: z.string().optional(),
  name: z.string().optional(),
  arguments: z.string().optional(),
  output: z.union([z.string(), z.array(textPart)]).optional(),
});

export const responsesRequestSchema = z.object({
  model: z.string().nullish(),
  input: z.union([z.string(), z.array(inputItem)]),
  instructions: z.string().nullish(),
  max_output_tokens: z.number().int().nullish(),
  temperature: z.number().nullish(),
  top_p: z.number().nullish(),
  stream: z.boolean().nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  user: z.string().nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  store: z.boolean().nullish(),
  tools: z.array(z.unknown()).nullish(), // function tools only (responses-tools.ts)
  tool_choice: z.unknown().optional(),
  // text.format: text | json_object | json_schema {name, schema, strict} (the grammar engine)
  text: z.looseObject({ format: z.looseObject({ type: z.string() }).optional() }).nullish(),
  // known and not honoured: a request that sets them gets a 400 naming them
  previous_response_id: z.string().nullish(),
  reasoning: z.unknown().optional(),
  background: z.boolean().nullish(),
  include: z.array(z.string()).nullish(),
  truncation: z.string().nullish(),
  top_logprobs: z.number().int().nullish(),
  max_tool_calls: z.number().int().nullish(),
  // pdserve's proxy (prefill leg of P/D): honoured on signed peer requests only, as on the other routes
  kv_transfer_params: kvTransferParamsSchema.nullish(),
  decode_limits: z.object({ max_tokens: z.number().int().nullish(), min_tokens: z.number().int().nullish(), max_model_len: z.number().int().positive().nullish() }).strict().nullish(),
});
export type ResponsesRequest = z.infer<typeof responsesRequestSchema>;
