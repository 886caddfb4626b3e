// JSON from sockets, bounded: a nesting-depth check over the raw text before JSON.parse, so a deeply
// nested body is a 400 instead of a stack overflow later (JSON.stringify, zod, jinja all recurse).
// The scan is one linear pass over the bytes (strings skipped, escapes honoured); it does not validate.

/** Default max nesting of objects/arrays in a request body (tool schemas and chat_template_kwargs fit easily). */
export const MAX_JSON_DEPTH = 64;

const OPEN_OBJ = 0x7b, OPEN_ARR = 0x5b, CLOSE_OBJ = 0x7d, CLOSE_ARR = 0x5d, QUOTE = 0x22, BACKSLASH = 0x5c;

/** True when `text` nests objects/arrays deeper than maxDepth (outside strings). */
export function jsonTooDeep(text: string | Uint8Array, maxDepth = MAX_JSON_DEPTH): boolean {
  const s = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_OBJ || c === OPEN_ARR) {
      if (++depth > maxDepth) return true;
    } else if (c === CLOSE_OBJ || c === CLOSE_ARR) depth--;
  }
  return false;
}

export class JsonBodyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JsonBodyError';
  }
}

/** Parses a request body: depth-checked first; a JsonBodyError (-> 400) on too deep or invalid JSON. */
export function parseJsonBody(text: string | Buffer, maxDepth = MAX_JSON_DEPTH): unknown {
  if (jsonTooDeep(text, maxDepth)) throw new JsonBodyError(`request body nests deeper than ${maxDepth} levels`);
  try {
    return JSON.parse(typeof text === 'string' ? text : text.toString('utf8'));
  } catch (e) {
    throw new JsonBodyError(`invalid JSON body: ${(e as Error).message}`);
  }
}
