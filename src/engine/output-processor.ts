// Engine outputs -> RequestOutput increments: incremental detokenization and stop strings.
// A stop string ends the request (the engine is told) and is cut from the text (unless
// include_stop_str_in_output); while streaming, the tail that could still start a stop string is
// held back so no emitted text is ever retracted.
import type { RequestOutput, SamplingParams } from './protocol.js';

export interface Detokenizer {
  push(ids: number[]): string;
  flush(): string;
}

export class RequestOutputState {
  private text = ''; // all detokenized text so far
  private sent = 0; // chars of `text` already emitted
  private readonly maxStopLen: number;
  stoppedBy: string | null = null;

  constructor(
    readonly requestId: string,
    readonly promptTokenIds: number[],
    private readonly sampling: SamplingParams,
    private readonly detok: Detokenizer,
  ) {
    this.maxStopLen = sampling.stop.reduce((m, s) => Math.max(m, s.length), 0);
  }

  /** Builds the next increment. Sets stoppedBy when a stop string was found (the caller ends the request). */
  next(args: { newTokenIds: number[]; finished: boolean; base: Omit<RequestOutput, 'newText' | 'newTokenIds' | 'requestId' | 'promptTokenIds'> }): RequestOutput {
    const before = this.text.length;
    this.text += this.detok.push(args.newTokenIds);
    let finished = args.finished;
    let finishReason = args.base.finishReason;
    let stopReason = args.base.stopReason;
    let end = this.text.length;
    if (this.maxStopLen > 0) {
      const from = Math.max(0, before - this.maxStopLen + 1);
      let hit = -1;
      let which = '';
      for (const s of this.sampling.stop) {
        if (!s) continue;
        const i = this.text.indexOf(s, from);
        if (i >= 0 && (hit < 0 || i < hit)) {
          hit = i;
          which = s;
        }
      }
      if (hit >= 0) {
        end = this.sampling.includeStopStrInOutput ? hit + which.length : hit;
        this.text = this.text.slice(0, end);
        this.stoppedBy = which;
        finished = true;
        finishReason = 'stop';
        stopReason = which;
      } else if (!finished) end = Math.max(this.sent, this.text.length - (this.maxStopLen - 1));
    }
    if (finished && !this.stoppedBy) {
      this.text += this.detok.flush();
      end = this.text.length;
    }
    const newText = this.text.slice(this.sent, end);
    this.sent = Math.max(this.sent, end);
    return {
      ...args.base,
      requestId: this.requestId,
      promptTokenIds: this.promptTokenIds,
      newTokenIds: args.newTokenIds,
      newText,
      finished,
      finishReason,
      stopReason,
    };
  }
}
