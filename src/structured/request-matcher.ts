// One request's grammar state: the next-token bitmask before each sampling step, then the sampled token.
// Lives on the engine's Sequence (the engine loop runs on the main thread, like the matcher's WASM
// instance); the engine awaits prepare() before a step that samples the sequence, applies mask to its
// logits row, and accept()s the sampled token. EOS ids are allowed by the mask only where the grammar may
// end; after accepting one, isTerminated() is true.
import type { CompiledGrammar, GrammarMatcher } from '@mlc-ai/web-xgrammar';
import type { Xgrammar } from './xgrammar-loader.js';

export class RequestMatcher {
  /** the mask for the next token; valid when !stale */
  mask: Int32Array;
  private stale = true;
  private disposed = false;

  private constructor(private readonly m: GrammarMatcher, vocabSize: number) {
    this.mask = new Int32Array(Math.ceil(vocabSize / 32));
  }

  /** Stop tokens come from the TokenizerInfo (the model's EOS ids, see GrammarService). */
  static async create(xg: Xgrammar, compiled: CompiledGrammar, vocabSize: number): Promise<RequestMatcher> {
    const binding = xg.__binding?.();
    if (binding) {
      // what createGrammarMatcher does, minus its leaked TokenizerInfo handle (the matcher's class is
      // private only in the .d.ts; its constructor takes (handle, vocabSize))
      const Ctor = xg.GrammarMatcher as unknown as new (handle: unknown, vocabSize: number) => GrammarMatcher;
      return new RequestMatcher(new Ctor(new binding.GrammarMatcher((compiled as unknown as { handle: unknown }).handle, undefined, false, -1), vocabSize), vocabSize);
    }
    return new RequestMatcher(await xg.GrammarMatcher.createGrammarMatcher(compiled, undefined, false), vocabSize);
  }

  /** Computes the mask for the next token if the last accept made it stale. */
  async prepare(): Promise<void> {
    if (!this.stale || this.disposed) return;
    const bm = await this.m.getNextTokenBitmask();
    this.mask.set(bm.subarray(0, this.mask.length));
    if (bm.length < this.mask.length) this.mask.fill(0, bm.length);
    this.stale = false;
  }

  get ready(): boolean {
    return !this.stale;
  }

  /** false when the grammar rejects the token (the matcher's state is then unchanged). */
  accept(tokenId: number): boolean {
    if (this.disposed) return false;
    const ok = this.m.acceptToken(tokenId);
    if (ok) this.stale = true;
    return ok;
  }

  isTerminated(): boolean {
    return !this.disposed && this.m.isTerminated();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.m.dispose();
  }
}
