// OpenAI usage block summed over the choices of one response; cached_tokens counts prompt tokens whose
// KV was reused (prefix cache) or loaded (KV connector).
export interface UsageSource {
  promptTokenIds: { length: number };
  tokenIds: { length: number };
  numCachedTokens: number;
}

export function usageOf(choices: UsageSource[]) {
  let prompt = 0;
  let completion = 0;
  let cached = 0;
  for (const c of choices) {
    prompt += c.promptTokenIds.length;
    completion += c.tokenIds.length;
    cached += c.numCachedTokens;
  }
  return {
    prompt_tokens: prompt,
    total_tokens: prompt + completion,
    completion_tokens: completion,
    prompt_tokens_details: { cached_tokens: cached },
  };
}
