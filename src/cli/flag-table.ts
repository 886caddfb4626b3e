// Flag tables: one entry per field of a config input type, so the compiler rejects a table that forgets a
// field (FlagTable maps every key, optional ones included) and serve-flags.test.ts rejects a command option
// that no table claims. An entry is the field's flag (commander flags, help, coercer, flag value -> field
// value) or the reason it has none. Defaults are never written in a table: addFlags takes them from the
// config's own defaults (for the engine, its zod schema), so each exists once.
import { Option, type Command } from 'commander';

export interface FlagSpec {
  /** commander flags, e.g. '--block-size <n>' */
  flags: string;
  help: string;
  /** commander coercer: (value, previous) -> parsed; its errors name the flag */
  parse?: (v: string, prev: any) => unknown;
  /** parsed flag value -> config field value (default: the parsed value as it is) */
  toField?: (v: any) => unknown;
  /** boolean flags: help of the --no- form, registered right after */
  negate?: string;
  /** commander's start value of an accumulating flag (a repeatable list: []); not a config default */
  initial?: unknown;
}

export interface NoFlag {
  /** why the field has no flag (set in code, tests or a file) */
  noFlag: string;
}

export type FlagEntry = FlagSpec | NoFlag;
export type FlagTable<T> = { readonly [K in keyof T]-?: FlagEntry };

export const hasFlag = (e: FlagEntry): e is FlagSpec => 'flags' in e;

/** The key commander stores the flag's value under (`--max-num-seqs` -> maxNumSeqs). */
export const attributeOf = (spec: FlagSpec): string => new Option(spec.flags).attributeName();

/** Registers the table's flags, in table order; a flag's default is defaults[field] when that is defined. */
export function addFlags<T>(cmd: Command, table: FlagTable<T>, defaults: Partial<Record<keyof T, unknown>>): Command {
  for (const [field, e] of Object.entries(table) as [keyof T, FlagEntry][]) {
    if (!hasFlag(e)) continue;
    const opt = new Option(e.flags, e.help);
    if (e.parse) opt.argParser(e.parse);
    const d = e.initial !== undefined ? e.initial : defaults[field];
    if (d !== undefined) opt.default(d);
    cmd.addOption(opt);
    if (e.negate) cmd.addOption(new Option(`--no-${opt.long!.slice(2)}`, e.negate));
  }
  return cmd;
}

/** The fields the table's flags set in parsed options `opts` (a flag neither given nor defaulted: absent). */
export function fieldsFrom<T>(table: FlagTable<T>, opts: Record<string, unknown>): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [field, e] of Object.entries(table) as [string, FlagEntry][]) {
    if (!hasFlag(e)) continue;
    const v = opts[attributeOf(e)];
    if (v !== undefined) out[field] = e.toField ? e.toField(v) : v;
  }
  return out as Partial<T>;
}
