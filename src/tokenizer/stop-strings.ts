// Stop strings over streamed text. Pure functions: the caller keeps the accumulated output text and
// the count of chars already sent, and asks (1) did a stop string appear, (2) how much may be sent now.

export interface StopMatch {
  /** Index in `text` where the earliest stop string starts (the output is text.slice(0, index)). */
  index: number;
  /** The stop string that matched there (the longest, when several start at the same index). */
  stop: string;
}

/**
 * Earliest occurrence of any stop string in text, searching only from `fromIndex - (longest stop - 1)`
 * so repeated calls over growing text stay linear. null when none occurs. Empty stop strings are ignored.
 */
export function findStop(text: string, stops: readonly string[], fromIndex = 0): StopMatch | null {
  let best: StopMatch | null = null;
  for (const stop of stops) {
    if (stop.length === 0) continue;
    const start = Math.max(0, fromIndex - stop.length + 1);
    const i = text.indexOf(stop, start);
    if (i < 0) continue;
    if (!best || i < best.index || (i === best.index && stop.length > best.stop.length)) best = { index: i, stop };
  }
  return best;
}

/**
 * Number of trailing chars of text that must be held back because they are a proper prefix of some
 * stop string (so they may yet become one). 0 when no stop string could start in the tail.
 */
export function holdBackLength(text: string, stops: readonly string[]): number {
  let hold = 0;
  for (const stop of stops) {
    const max = Math.min(stop.length - 1, text.length);
    for (let k = max; k > hold; k--) {
      if (text.endsWith(stop.slice(0, k))) {
        hold = k;
        break;
      }
    }
  }
  return hold;
}

export interface StopCheck {
  /** Text that may be sent now: text.slice(sentChars, sendEnd). */
  sendEnd: number;
  /** Set when a stop string matched: the final text is text.slice(0, match.index) (+ the stop when included). */
  match: StopMatch | null;
}

/**
 * One streaming step: given the accumulated text, the number of chars already sent and the length of
 * text at the previous check (the search window for new matches), say how far output may go.
 * includeStopStr mirrors vLLM's include_stop_str_in_output.
 */
export function checkStop(
  text: string,
  stops: readonly string[],
  prevLength: number,
  includeStopStr = false,
): StopCheck {
  if (stops.length === 0) return { sendEnd: text.length, match: null };
  const match = findStop(text, stops, prevLength);
  if (match) return { sendEnd: includeStopStr ? match.index + match.stop.length : match.index, match };
  return { sendEnd: text.length - holdBackLength(text, stops), match: null };
}
