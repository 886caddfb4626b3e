// What a worker-side connector owes the engine each step (vLLM's get_finished and
// get_block_ids_with_load_errors): ids gathered since the last take, handed over once, then cleared.
export interface FinishedIds {
  doneSending: Set<string>; // requests whose blocks the engine may free now (held for a save or a remote reader)
  doneRecving: Set<string>; // requests whose KV load finished (ok or not)
}

export class FinishedReport {
  private sending = new Set<string>();
  private recving = new Set<string>();
  private errors = new Set<number>();
  private failed = new Map<string, string>();

  sent(requestId: string): void {
    this.sending.add(requestId);
  }

  received(requestId: string): void {
    this.recving.add(requestId);
  }

  loadError(blockId: number): void {
    this.errors.add(blockId);
  }

  /** kv_load_failure_policy fail: the request ends with kv_load_failed (report it with received()). */
  loadFailed(requestId: string, reason: string): void {
    this.failed.set(requestId, reason);
  }

  takeFailedLoads(): Map<string, string> {
    const out = this.failed;
    this.failed = new Map();
    return out;
  }

  takeFinished(): FinishedIds {
    const out = { doneSending: this.sending, doneRecving: this.recving };
    this.sending = new Set();
    this.recving = new Set();
    return out;
  }

  takeLoadErrors(): Set<number> {
    const out = this.errors;
    this.errors = new Set();
    return out;
  }
}
