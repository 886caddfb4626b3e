// A small Dockerfile reader for tests: instructions (continuations joined, comments dropped), grouped in
// stages by FROM, with global ARG defaults substituted into FROM lines. Exec-form (JSON array) arguments
// are parsed; shell form is kept as one string.
export interface Instruction {
  op: string; // upper case: FROM, COPY, RUN, ...
  args: string; // the raw rest of the line
  line: number; // 1-based line of the instruction's start
}

export interface Stage {
  image: string;
  name: string | null;
  instructions: Instruction[];
}

export function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  let buf = '';
  let start = 0;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    if (!buf && /^\s*(#.*)?$/.test(raw)) continue;
    if (buf && /^\s*#/.test(raw)) continue; // comment inside a continuation
    if (!buf) start = i + 1;
    if (/\\\s*$/.test(raw)) {
      buf += raw.replace(/\\\s*$/, ' ');
      continue;
    }
    buf += raw;
    const m = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(buf);
    if (!m) throw new Error(`Dockerfile line ${start}: cannot parse ${JSON.stringify(buf)}`);
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start });
    buf = '';
  }
  if (buf) throw new Error('Dockerfile ends inside a continuation');
  return out;
}

export function stages(text: string): Stage[] {
  const globals: Record<string, string> = {};
  const out: Stage[] = [];
  for (const ins of instructions(text)) {
    if (ins.op === 'ARG' && !out.length) {
      const [k, v] = ins.args.split('=');
      globals[k!] = v ?? '';
      continue;
    }
    if (ins.op === 'FROM') {
      const subst = ins.args.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => globals[a ?? b] ?? '');
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(subst);
      if (!m) throw new Error(`Dockerfile line ${ins.line}: FROM ${ins.args}`);
      out.push({ image: m[1]!, name: m[2] ?? null, instructions: [] });
      continue;
    }
    if (!out.length) throw new Error(`Dockerfile line ${ins.line}: ${ins.op} before FROM`);
    out[out.length - 1]!.instructions.push(ins);
  }
  return out;
}

/** ["a", "b"] exec form -> string[]; throws on shell form. */
export function execForm(args: string): string[] {
  const v = JSON.parse(args) as unknown;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new Error(`not exec form: ${args}`);
  return v;
}

export interface Copy {
  from: string | null;
  sources: string[];
  dest: string;
}

export function parseCopy(args: string): Copy {
  const words = args.split(/\s+/);
  let from: string | null = null;
  const rest: string[] = [];
  for (const w of words) {
    if (w.startsWith('--from=')) from = w.slice('--from='.length);
    else if (!w.startsWith('--')) rest.push(w);
  }
  if (rest.length < 2) throw new Error(`COPY needs a source and a destination: ${args}`);
  return { from, sources: rest.slice(0, -1), dest: rest[rest.length - 1]! };
}
