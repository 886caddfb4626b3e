// Turns a scheduler step into one native forward: token ids, positions, slot mappings, block tables.
// The only place where block tables become memory addresses (slot = block_id * block_size + offset).
import type { ForwardBatch, RowSamplingArrays } from '../native/binding.js';
import type { ScheduledSeq } from './scheduler.js';
import type { Sequence } from './sequence.js';

/** The part of NativeModel the runner needs (a fake in scheduler tests). */
export interface ForwardModel {
  forward(batch: ForwardBatch): Promise<Float32Array>;
  /** Token choice in the backend (native models); without it every row is sampled from host logits. */
  forwardSample?(batch: ForwardBatch, sampling: RowSamplingArrays, wantLogits: boolean): Promise<{ tokens: Int32Array; logits: Float32Array | null }>;
  /** KV of blocks to and from host bytes (NativeModel's; kv-block-copy.ts copies a forked prompt's partial block with them). */
  kvBytesPerToken?(): number;
  kvGather?(blockIds: Int32Array, numTokens: number, dst: Uint8Array): Promise<void>;
  kvScatter?(blockIds: Int32Array, numTokens: number, src: Uint8Array): Promise<void>;
}

/** Decided by the engine once the sampled rows are known: backend sampling for every row, logits if some row needs them. */
export interface SamplingPlan {
  arrays: RowSamplingArrays;
  /** rows sampled on the host from the logits (their backend choice is ignored) */
  hostRows: readonly boolean[];
  wantLogits: boolean;
}

export interface RunResult {
  logits: Float32Array | null; // [rows, vocab]; null when the plan did not want them
  tokens: Int32Array | null; // [rows] the backend's choices, when a plan was given
  plan: SamplingPlan | null;
  /** sequences that get a sampled token this step, in logits row order */
  sampled: Sequence[];
  /**
   * Prompt-logprobs rows, after the sampled rows (logits row sampled.length + j): the logits at `position`
   * of `seq`, which score its prompt token position + 1.
   */
  promptRows: PromptRow[];
}

export interface PromptRow {
  seq: Sequence;
  position: number;
}

export class ModelRunner {
  constructor(
    private readonly model: ForwardModel,
    private readonly blockSize: number,
    readonly vocabSize: number,
  ) {}

  buildBatch(scheduled: readonly ScheduledSeq[]): { batch: ForwardBatch; sampled: Sequence[]; promptRows: PromptRow[] } {
    const T = scheduled.reduce((a, s) => a + s.numNewTokens, 0);
    const S = scheduled.length;
    const tokenIds = new Int32Array(T);
    const positions = new Int32Array(T);
    const slotMapping = new Int32Array(T);
    const queryStartLoc = new Int32Array(S + 1);
    const contextLens = new Int32Array(S);
    let maxBlocks = 1;
    for (const { seq } of scheduled) maxBlocks = Math.max(maxBlocks, seq.blockTable.length);
    const blockTables = new Int32Array(S * maxBlocks);
    const logitRows: number[] = [];
    const sampled: Sequence[] = [];
    const promptRows: PromptRow[] = [];
    const promptIdx: number[] = [];
    let t = 0;
    scheduled.forEach(({ seq, numNewTokens }, s) => {
      queryStartLoc[s] = t;
      const start = seq.numComputedTokens;
      const end = start + numNewTokens;
      const table = seq.blockTable;
      // prompt logprobs: rows for the prompt positions whose next token is not scored yet (not after a preemption)
      const pl = seq.promptLogprobs;
      for (let p = start; p < end; p++, t++) {
        tokenIds[t] = seq.tokenIds[p]!;
        positions[t] = p;
        slotMapping[t] = table[Math.floor(p / this.blockSize)]! * this.blockSize + (p % this.blockSize);
        if (pl && p >= pl.length - 1 && p + 1 < seq.numPromptTokens) {
          promptRows.push({ seq, position: p });
          promptIdx.push(t);
        }
      }
      contextLens[s] = end;
      blockTables.set(table, s * maxBlocks);
      if (end === seq.numTokens) {
        logitRows.push(t - 1);
        sampled.push(seq);
      }
    });
    queryStartLoc[S] = t;
    return {
      batch: {
        tokenIds, positions, slotMapping, queryStartLoc, contextLens, blockTables, maxBlocksPerSeq: maxBlocks,
        logitsIndices: Int32Array.from([...logitRows, ...promptIdx]),
      },
      sampled,
      promptRows,
    };
  }

  async run(scheduled: readonly ScheduledSeq[], plan?: (sampled: Sequence[]) => SamplingPlan | null): Promise<RunResult> {
    const { batch, sampled, promptRows } = this.buildBatch(scheduled);
    // prompt-logprobs rows need plain logits: the whole step is sampled on the host then
    const p = plan && this.model.forwardSample && sampled.length && !promptRows.length ? plan(sampled) : null;
    let logits: Float32Array | null;
    let tokens: Int32Array | null = null;
    if (p) ({ logits, tokens } = await this.model.forwardSample!(batch, p.arrays, p.wantLogits));
    else logits = await this.model.forward(batch);
    const rows = sampled.length + promptRows.length;
    if (logits && logits.length !== rows * this.vocabSize)
      throw new Error(`model returned ${logits.length} logits, expected ${rows} x ${this.vocabSize}`);
    return { logits, tokens, plan: p, sampled, promptRows };
  }
}
