// OpenAI usage block summed over the choices of one response; cached_tokens counts prompt tokens whose
// KV was reused (prefix cache) or loaded (KV connector). With n choices per prompt (choices ordered by
// prompt, then by sequence), each prompt counts once, as vLLM does.
export interface UsageSource {
  promptTokenIds: { length: number };
  tokenIds: { length: number };
  numCachedTokens: number;
}

export function usageOf(choices: UsageSource[], choicesPerPrompt = 1) {
  let prompt = 0;
  let completion = 0;
  let cached = 0;
  choices.forEach((c, i) => {
    if (i % choicesPerPrompt === 0) {
      prompt += c.promptTokenIds.length;
      cached += c.numCachedTokens;
    }
    completion += c.tokenIds.length;
  });
  return {
    prompt_tokens: prompt,
    total_tokens: prompt + completion,
    completion_tokens: completion,
    prompt_tokens_details: { cached_tokens: cached },
  };
}

/** Running token counts per choice while a response streams. */
export class StreamUsage {
  private readonly choices: UsageSource[];

  constructor(numChoices: number, private readonly choicesPerPrompt = 1) {
    this.choices = Array.from({ length: numChoices }, () => ({ promptTokenIds: { length: 0 }, tokenIds: { length: 0 }, numCachedTokens: 0 }));
  }

  add(index: number, out: { promptTokenIds: { length: number }; newTokenIds: { length: number }; numCachedTokens: number }): void {
    const c = this.choices[index]!;
    c.promptTokenIds = { length: out.promptTokenIds.length };
    c.tokenIds = { length: c.tokenIds.length + out.newTokenIds.length };
    c.numCachedTokens = out.numCachedTokens;
  }

  /** Usage of one choice so far (for stream_options.continuous_usage_stats). */
  of(index: number) {
    return usageOf([this.choices[index]!]);
  }

  total() {
    return usageOf(this.choices, this.choicesPerPrompt);
  }
}
