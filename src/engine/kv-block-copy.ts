// Copies the first numTokens of one KV block into other blocks (all layers, K and V): a forked child's
// own copy of the prompt's partial last block, so it need not recompute those tokens. One gather of the
// source into host bytes, one scatter per destination, off the event loop. Null when the model cannot
// move KV (the caller recomputes instead).
import type { ForwardModel } from './model-runner.js';

export interface BlockCopy {
  src: number;
  dsts: number[];
  numTokens: number; // < block size
}

export type KvBlockCopier = (copy: BlockCopy) => Promise<void>;

export function kvBlockCopier(model: ForwardModel): KvBlockCopier | null {
  const { kvGather, kvScatter, kvBytesPerToken } = model;
  if (!kvGather || !kvScatter || !kvBytesPerToken) return null;
  return async ({ src, dsts, numTokens }) => {
    if (numTokens <= 0 || dsts.length === 0) return;
    const buf = new Uint8Array(numTokens * kvBytesPerToken.call(model));
    await kvGather.call(model, Int32Array.of(src), numTokens, buf);
    for (const d of dsts) await kvScatter.call(model, Int32Array.of(d), numTokens, buf);
  };
}
