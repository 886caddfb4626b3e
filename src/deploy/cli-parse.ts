// Parses a pdserve command line with pdserve's own commander program, without running it: every command's
// action is replaced by one that records the parsed options, and errors throw instead of exiting. So a
// chart (or any launcher) can be checked against the real flags: an unknown flag or a bad value fails here.
import { Command, CommanderError } from 'commander';
import { registerServe } from '../cli/serve.js';
import { registerProxy } from '../cli/proxy.js';
import { registerKvServer } from '../cli/kv-server.js';

export interface ParsedCommand {
  command: string;
  args: string[]; // positional arguments
  opts: Record<string, unknown>;
}

type Register = (p: Command) => void;

/** `pdserve router` is registered when src/cli/router.ts exists (issue 11); null when it does not yet. */
async function routerRegister(): Promise<Register | null> {
  try {
    const spec = '../cli/router.js';
    const m = (await import(spec)) as Record<string, unknown>;
    const fn = Object.entries(m).find(([k, v]) => k.startsWith('register') && typeof v === 'function');
    return fn ? (fn[1] as Register) : null;
  } catch {
    return null;
  }
}

export async function pdserveProgram(): Promise<{ program: Command; commands: string[]; last: () => ParsedCommand | null }> {
  const program = new Command('pdserve');
  const registers: Register[] = [registerServe, registerProxy, registerKvServer];
  const router = await routerRegister();
  if (router) registers.push(router);
  for (const r of registers) r(program);
  let last: ParsedCommand | null = null;
  program.exitOverride();
  program.configureOutput({ writeOut: () => {}, writeErr: () => {} });
  for (const sub of program.commands) {
    sub.exitOverride();
    sub.configureOutput({ writeOut: () => {}, writeErr: () => {} });
    sub.action(function (this: Command) {
      last = { command: sub.name(), args: [...this.args], opts: this.opts() };
    });
  }
  return { program, commands: program.commands.map((c) => c.name()), last: () => last };
}

/** argv without the leading "pdserve": ["serve", "MODEL", "--port", "8000", ...]. Throws on a bad line. */
export async function parsePdserveArgs(argv: string[]): Promise<ParsedCommand> {
  const { program, last } = await pdserveProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) throw new Error(`pdserve ${argv.join(' ')}: ${e.message}`);
    throw e;
  }
  const p = last();
  if (!p) throw new Error(`pdserve ${argv.join(' ')}: no command ran`);
  return p;
}
