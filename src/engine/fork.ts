// Parallel sampling (n > 1): a parent sequence prefills the prompt once; when it samples its first token,
// n - 1 children fork from it. A child shares the parent's full prompt blocks (ref count + 1 each, the
// block manager's retain) and gets a fresh block for the prompt's partial last block (fewer than
// block_size tokens), into which the engine copies the parent's KV of those tokens (kv-block-copy.ts) — or,
// when the model cannot copy KV or no block is free, the child recomputes those few tokens on its next
// step. Either way no block is ever written by two sequences. Each child samples its first token from the
// parent's logits row of that step, with its own generator: seed + i when the request is seeded (vLLM's rule).
import type { BlockManager } from './block-manager.js';
import { Sequence } from './sequence.js';
import { Rng } from '../util/rng.js';

/** Id of child `index` of `parentId` (engine-internal; never a client-visible request id). */
export function forkChildId(parentId: string, index: number): string {
  return `${parentId}\u0000n${index}`;
}

/**
 * Child `index` of `parent`, which has just computed its whole prompt (numComputedTokens = prompt length)
 * and has not sampled yet. The child holds its share of the parent's full blocks on return; it has no
 * token of its own yet (the caller samples it). With `canCopy`, the child also gets its own block for the
 * partial last block and `copy` says what to copy into it (before the child's next forward).
 */
export function forkChild(parent: Sequence, index: number, bm: BlockManager, canCopy: boolean): { child: Sequence; copy: { src: number; dst: number; numTokens: number } | null } {
  const child = new Sequence(forkChildId(parent.requestId, index), parent.promptTokenIds, parent.sampling);
  child.groupId = parent.groupId;
  child.index = index;
  child.isForkChild = true;
  child.promptLogprobs = null; // the parent's output carries them
  if (parent.sampling.seed !== null) child.rng = new Rng(parent.sampling.seed + index);
  const full = Math.min(Math.floor(parent.numComputedTokens / bm.blockSize), parent.blockTable.length);
  child.blockTable = parent.blockTable.slice(0, full);
  bm.retain(child.blockTable);
  child.blockHashes = parent.blockHashes.slice(0, full);
  child.numComputedTokens = full * bm.blockSize;
  child.numCachedTokens = parent.numCachedTokens;
  child.numExternalTokens = 0;
  const rest = parent.numComputedTokens - full * bm.blockSize;
  if (canCopy && rest > 0 && parent.blockTable.length > full && bm.grow(child.blockTable, parent.numComputedTokens)) {
    child.numComputedTokens = parent.numComputedTokens;
    return { child, copy: { src: parent.blockTable[full]!, dst: child.blockTable[full]!, numTokens: rest } };
  }
  return { child, copy: null };
}
