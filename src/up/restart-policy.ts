// When `up` restarts a dead child: exponential backoff with a cap and jitter; a child that died
// maxRestarts times within windowMs is given up. Pure (time and randomness passed in).
export interface RestartPolicy {
  baseMs: number; // first delay
  capMs: number; // largest delay
  maxRestarts: number; // restarts allowed within windowMs; one more death = given up
  windowMs: number;
}

export const defaultRestartPolicy: RestartPolicy = { baseMs: 500, capMs: 10_000, maxRestarts: 5, windowMs: 60_000 };

export type RestartDecision = { kind: 'restart'; delayMs: number; attempt: number } | { kind: 'give_up'; restarts: number };

/**
 * Decides after a death at `now`. `history` = times of this child's earlier restarts (pruned in
 * place to the window). random() in [0, 1): the delay is base * 2^k capped, times [0.5, 1).
 */
export function decideRestart(p: RestartPolicy, history: number[], now: number, random: () => number = Math.random): RestartDecision {
  while (history.length && now - history[0]! > p.windowMs) history.shift();
  if (history.length >= p.maxRestarts) return { kind: 'give_up', restarts: history.length };
  const k = history.length;
  const raw = Math.min(p.capMs, p.baseMs * 2 ** k);
  history.push(now);
  return { kind: 'restart', delayMs: Math.round(raw * (0.5 + 0.5 * random())), attempt: k + 1 };
}
