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

  static async create(xg: Xgrammar, compiled: CompiledGrammar, vocabSize: number, stopTokenIds: number[]): Promise<RequestMatcher> {
    const m = await xg.GrammarMatcher.createGrammarMatcher(compiled, stopTokenIds.length ? stopTokenIds : undefined, false);
    return new RequestMatcher(m, vocabSize);
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
