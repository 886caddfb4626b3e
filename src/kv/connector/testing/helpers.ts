// Shared helpers of the connector tests: a logger that keeps its lines, and a bounded wait.
import type { Logger } from '../../../util/logger.js';

/** A Logger whose info/warn/error lines (and debug ones with `withDebug`) are kept in `lines`. */
export function captureLog(withDebug = false): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push = (m: string) => void lines.push(m);
  return { lines, debug: withDebug ? push : () => {}, info: push, warn: push, error: push };
}

/** Resolves once `f()` is true, polling every `pollMs`; throws after `ms`. */
export async function until(f: () => boolean, ms = 10_000, pollMs = 10): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
