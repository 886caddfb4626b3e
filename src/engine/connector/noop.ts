// The connector that connects nothing: no external KV, nothing saved. The engine's default.
import type { ConnectorMetadata, KvConnector, KvRole, MatchResult } from './base.js';

export class NoopConnector implements KvConnector {
  constructor(readonly role: KvRole = 'kv_both') {}
  getNumNewMatchedTokens(): MatchResult {
    return { count: 0 };
  }
  updateStateAfterAlloc(): void {}
  buildConnectorMeta(): ConnectorMetadata {
    return { loads: [], saves: [] };
  }
  requestFinished() {
    return { delayFree: false };
  }
  registerKvCache(): void {}
  startLoadKv(): void {}
  async waitForSave(): Promise<void> {}
  getFinished() {
    return { doneSending: new Set<string>(), doneRecving: new Set<string>() };
  }
  getBlockIdsWithLoadErrors(): Set<number> {
    return new Set();
  }
  async shutdown(): Promise<void> {}
}
