#!/usr/bin/env node
// Builds everything `npm install` must produce:
//   build/pdserve.node        the C++ core (CPU backend + Node-API binding), always
//   build/pdserve_cuda.so     the CUDA backend, only when `nvcc` is on PATH (dlopen'ed at run time)
//   dist/                     the TypeScript, compiled by tsc
// Incremental: an object is rebuilt only when its source or a header is newer.
// Env: PDSERVE_SKIP_CUDA=1 skips the CUDA build; PDSERVE_JOBS sets parallel compiles.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = join(root, 'build');
const objDir = join(buildDir, 'obj');
mkdirSync(objDir, { recursive: true });
const jobs = Number(process.env.PDSERVE_JOBS || availableParallelism());

function walk(dir, pred, out = []) {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, pred, out);
    else if (pred(p)) out.push(p);
  }
  return out;
}
const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);
const headers = walk(join(root, 'native'), (p) => /\.(h|hpp|cuh)$/.test(p));
const newestHeader = Math.max(0, ...headers.map(mtime));

function nodeIncludeDirs() {
  const dirs = [];
  const cands = [
    join(dirname(dirname(process.execPath)), 'include', 'node'),
    '/usr/include/node',
    join(root, '.device', 'napi'),
  ];
  for (const c of cands) if (existsSync(join(c, 'node_api.h'))) { dirs.push(c); break; }
  if (!dirs.length) throw new Error('Node-API headers (node_api.h) not found; install Node.js headers');
  dirs.push(join(root, 'node_modules', 'node-addon-api'));
  return dirs;
}

async function runPool(tasks) {
  let i = 0, failed = null;
  async function worker() {
    while (i < tasks.length && !failed) {
      const t = tasks[i++];
      await new Promise((res) => {
        const p = spawn(t.cmd, t.args, { stdio: 'inherit' });
        p.on('exit', (code) => { if (code !== 0) failed = `${t.cmd} failed on ${t.label}`; res(); });
        p.on('error', (e) => { failed = `${t.cmd}: ${e.message}`; res(); });
      });
    }
  }
  await Promise.all(Array.from({ length: jobs }, worker));
  if (failed) throw new Error(failed);
}

// Per-file ISA flags: foo.avx512.cc gets AVX-512, foo.avx512bf16.cc AVX-512 + AVX512-BF16; everything else targets x86-64-v3 (AVX2+FMA+F16C),
// which both this machine and the GPU host have. Kernels dispatch on the CPU at run time.
function isaFlags(src) {
  if (process.arch !== 'x64') return [];
  if (src.includes('.avx512bf16.')) return ['-mavx512bf16', ...isaFlags(src.replace('.avx512bf16.', '.avx512.'))];
  if (src.includes('.avx512.')) return ['-mavx512f', '-mavx512bw', '-mavx512vl', '-mavx512dq', '-mavx2', '-mfma', '-mf16c',
    '-Wno-maybe-uninitialized', '-Wno-uninitialized' /* GCC 12 false positives in avx512fintrin.h */];
  return ['-mavx2', '-mfma', '-mf16c'];
}

async function buildCpu() {
  const srcs = walk(join(root, 'native'), (p) => p.endsWith('.cc') && !p.includes(`${'/'}cuda${'/'}`));
  if (!srcs.length) return;
  const inc = [join(root, 'native', 'include'), ...nodeIncludeDirs()];
  const common = ['-O3', '-std=c++17', '-fPIC', '-pthread', '-fvisibility=hidden', '-Wall', '-Wno-unused-function',
    '-DNAPI_VERSION=8', '-DNODE_ADDON_API_DISABLE_DEPRECATED', '-DNAPI_CPP_EXCEPTIONS',
    '-DNODE_ADDON_API_CPP_EXCEPTIONS_ALL' /* any std::exception escaping a binding becomes a JS Error */, ...inc.map((d) => `-I${d}`)];
  const tasks = [];
  const objs = [];
  for (const s of srcs) {
    const o = join(objDir, relative(join(root, 'native'), s).replace(/[\\/]/g, '__') + '.o');
    objs.push(o);
    if (mtime(o) > Math.max(mtime(s), newestHeader)) continue;
    tasks.push({ cmd: 'g++', args: [...common, ...isaFlags(s), '-c', s, '-o', o], label: relative(root, s) });
  }
  await runPool(tasks);
  const out = join(buildDir, 'pdserve.node');
  if (tasks.length || !existsSync(out) || objs.some((o) => mtime(o) > mtime(out))) {
    execFileSync('g++', ['-shared', '-pthread', '-o', out, ...objs, '-ldl'], { stdio: 'inherit' });
    console.log(`built ${relative(root, out)} (${srcs.length} sources)`);
  }
}

function hasNvcc() {
  try { execFileSync('nvcc', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; }
}

async function buildCuda() {
  const srcs = walk(join(root, 'native', 'cuda'), (p) => (p.endsWith('.cu') || p.endsWith('.cc')) && !p.includes(`${'/'}tests${'/'}`));
  if (!srcs.length) return;
  if (process.env.PDSERVE_SKIP_CUDA === '1') { console.log('CUDA build skipped (PDSERVE_SKIP_CUDA=1)'); return; }
  if (!hasNvcc()) { console.log('nvcc not found: CPU-only build (the CUDA backend is not built)'); return; }
  const arch = (process.env.PDSERVE_CUDA_ARCH || '90').split(',');
  const gencode = arch.flatMap((a) => ['-gencode', `arch=compute_${a},code=sm_${a}`]);
  const common = ['-O3', '-std=c++17', '-Xcompiler', '-fPIC', `-I${join(root, 'native', 'include')}`, ...gencode];
  const tasks = [];
  const objs = [];
  for (const s of srcs) {
    const o = join(objDir, 'cuda__' + relative(join(root, 'native', 'cuda'), s).replace(/[\\/]/g, '__') + '.o');
    objs.push(o);
    if (mtime(o) > Math.max(mtime(s), newestHeader)) continue;
    tasks.push({ cmd: 'nvcc', args: [...common, '-c', s, '-o', o], label: relative(root, s) });
  }
  await runPool(tasks);
  const out = join(buildDir, 'pdserve_cuda.so');
  if (tasks.length || !existsSync(out) || objs.some((o) => mtime(o) > mtime(out))) {
    execFileSync('nvcc', ['-shared', ...gencode, '-cudart', 'static', '-o', out, ...objs, '-ldl', '-lpthread'], { stdio: 'inherit' });
    console.log(`built ${relative(root, out)} (${srcs.length} sources)`);
  }
}

function buildTs() {
  const tsc = join(root, 'node_modules', '.bin', 'tsc');
  if (!existsSync(tsc)) throw new Error('typescript is not installed: run npm install');
  execFileSync(tsc, ['-p', join(root, 'tsconfig.json')], { stdio: 'inherit', cwd: root });
}

const only = process.argv[2];
try {
  if (!only || only === 'native') await buildCpu();
  if (!only || only === 'cuda') await buildCuda();
  if (!only || only === 'ts') buildTs();
} catch (e) {
  console.error(`build failed: ${e.message}`);
  process.exit(1);
}
