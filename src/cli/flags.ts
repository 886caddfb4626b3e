// Flag value parsers shared by the commands: an error names the flag and the bad value.
import { InvalidArgumentError } from 'commander';

/** An integer >= min. */
export function intFlag(flag: string, v: string, min = Number.MIN_SAFE_INTEGER): number {
  const n = Number(v);
  if (!/^\s*-?\d+\s*$/.test(v) || !Number.isInteger(n) || n < min)
    throw new Error(`${flag} must be an integer${min > Number.MIN_SAFE_INTEGER ? ` >= ${min}` : ''}, got '${v}'`);
  return n;
}

/** A finite number >= min. */
export function numFlag(flag: string, v: string, min = -Infinity): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`${flag} must be a number${min > -Infinity ? ` >= ${min}` : ''}, got '${v}'`);
  return n;
}

/** Commander coercers built on the parsers above (commander prints the error and exits 1). */
const coerce = (parse: (v: string) => number) => (v: string) => {
  try {
    return parse(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
};
export const intOption = (flag: string, min?: number) => coerce((v) => intFlag(flag, v, min));
export const numOption = (flag: string, min?: number) => coerce((v) => numFlag(flag, v, min));
