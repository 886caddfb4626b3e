// CPU kernels (binding.ops) vs naive JS references.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNative, type DType } from './binding.js';

const ops = loadNative().ops as unknown as {
  rmsnorm(x: Float32Array, w: Float32Array, rows: number, dim: number, eps: number): Float32Array;
  rope(x: Float32Array, rows: number, heads: number, hd: number, pos: Int32Array, rope: Record<string, unknown>): Float32Array;
  siluAndMul(gu: Float32Array, rows: number, I: number): Float32Array;
  matmul(x: Float32Array, M: number, K: number, w: Float32Array, N: number, dtype: DType, kernel?: 'auto' | 'exact' | 'dpbf16' | 'dpbf16-round'): Float32Array;
  bf16Dot(): boolean;
  castRound(x: Float32Array, dtype: DType): Float32Array;
  embedding(ids: Int32Array, table: Float32Array, vocab: number, H: number): Float32Array;
  attention(o: Record<string, unknown>): Float32Array;
};

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}
function rand(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * 2 * scale);
}
function close(a: Float32Array, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++)
    assert.ok(Math.abs(a[i] - b[i]) <= tol * (1 + Math.abs(b[i])), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

test('rmsnorm', () => {
  const rows = 3, dim = 37;
  const x = rand(rows * dim, 1), w = rand(dim, 2);
  const ref: number[] = [];
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let d = 0; d < dim; d++) ss += x[r * dim + d] ** 2;
    const inv = 1 / Math.sqrt(ss / dim + 1e-5);
    for (let d = 0; d < dim; d++) ref.push(x[r * dim + d] * inv * w[d]);
  }
  close(ops.rmsnorm(x, w, rows, dim, 1e-5), ref, 1e-5, 'rmsnorm');
});

function invFreq(hd: number, theta: number, l3?: { factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPos: number }): number[] {
  const f = Array.from({ length: hd / 2 }, (_, i) => 1 / theta ** ((2 * i) / hd));
  if (!l3) return f;
  const lowW = l3.originalMaxPos / l3.lowFreqFactor, highW = l3.originalMaxPos / l3.highFreqFactor;
  return f.map((v) => {
    const wl = (2 * Math.PI) / v;
    if (wl > lowW) return v / l3.factor;
    if (wl < highW) return v;
    const s = (l3.originalMaxPos / wl - l3.lowFreqFactor) / (l3.highFreqFactor - l3.lowFreqFactor);
    return ((1 - s) * v) / l3.factor + s * v;
  });
}

for (const variant of ['default', 'llama3'] as const) {
  test(`rope ${variant}`, () => {
    const rows = 4, heads = 3, hd = 16;
    const x = rand(rows * heads * hd, 3);
    const pos = Int32Array.from([0, 5, 77, 1000]);
    const l3 = { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPos: 64 };
    const cfg = variant === 'llama3' ? { theta: 500000, type: 'llama3', ...l3 } : { theta: 10000 };
    const f = invFreq(hd, cfg.theta, variant === 'llama3' ? l3 : undefined);
    const ref = Array.from(x);
    for (let r = 0; r < rows; r++)
      for (let h = 0; h < heads; h++)
        for (let i = 0; i < hd / 2; i++) {
          const o = (r * heads + h) * hd, a = x[o + i], b = x[o + i + hd / 2], ang = pos[r] * f[i];
          ref[o + i] = a * Math.cos(ang) - b * Math.sin(ang);
          ref[o + i + hd / 2] = b * Math.cos(ang) + a * Math.sin(ang);
        }
    close(ops.rope(x, rows, heads, hd, pos, cfg), ref, 2e-4, `rope ${variant}`);
  });
}

test('siluAndMul', () => {
  const rows = 2, I = 21;
  const gu = rand(rows * 2 * I, 4, 8);
  const ref: number[] = [];
  for (let r = 0; r < rows; r++)
    for (let i = 0; i < I; i++) {
      const g = gu[r * 2 * I + i], u = gu[r * 2 * I + I + i];
      ref.push((g / (1 + Math.exp(-g))) * u);
    }
  close(ops.siluAndMul(gu, rows, I), ref, 1e-5, 'siluAndMul');
});

// x[M,K] · wq[N,K]^T in f64.
function matmulRef(x: ArrayLike<number>, wq: ArrayLike<number>, M: number, K: number, N: number): number[] {
  const ref: number[] = [];
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[m * K + k] * wq[n * K + k];
      ref.push(s);
    }
  return ref;
}

// 'auto' is the engine's kernel (bf16 weights on an AVX512-BF16 CPU: vdpbf16ps on x split hi + lo, f32-level
// results; PDSERVE_CPU_BF16_DOT=round: x rounded to bf16); 'exact' forces the f32-activation kernels.
const dpbf16 = ops.bf16Dot();
const autoRoundsX = dpbf16 && process.env.PDSERVE_CPU_BF16_DOT === 'round';
for (const dtype of ['f32', 'bf16', 'f16'] as DType[]) {
  for (const [M, K, N] of [[1, 37, 5], [3, 64, 33], [8, 129, 70], [9, 50, 65], [21, 172, 64], [64, 16, 3]]) {
    test(`matmul ${dtype} M=${M} K=${K} N=${N}`, () => {
      const x = rand(M * K, M + K, 1), w = rand(N * K, N + 7, 0.5);
      const wq = ops.castRound(w, dtype);
      const xAuto = dtype === 'bf16' && autoRoundsX ? ops.castRound(x, 'bf16') : x;
      close(ops.matmul(x, M, K, w, N, dtype), matmulRef(xAuto, wq, M, K, N), 1e-4, `matmul ${dtype}`);
      close(ops.matmul(x, M, K, w, N, dtype, 'exact'), matmulRef(x, wq, M, K, N), 1e-4, `matmul ${dtype} exact`);
    });
  }
}

// AVX512-BF16 kernel: decode tiles (M <= 8) and the packed GEMM (M > 8, K panels of 512, 64-column panels),
// odd sizes: K not a multiple of 32 (and odd: a half pair), N not a multiple of 16, M not a multiple of 12.
for (const [M, K, N] of [[1, 31, 17], [2, 33, 15], [5, 95, 47], [8, 1024, 130], [9, 7, 1], [12, 513, 64], [13, 1100, 97], [40, 1025, 200], [100, 64, 33]]) {
  test(`matmul dpbf16 M=${M} K=${K} N=${N}: split x at f32 level, rounded x vs bf16-rounded x`, { skip: !dpbf16 && 'no AVX512-BF16 on this CPU' }, () => {
    const x = rand(M * K, 3 * M + K, 1), w = rand(N * K, N + 11, 0.5);
    const wq = ops.castRound(w, 'bf16');
    // split (hi + lo bf16) carries x to ~2^-17: as close to the exact f32 reference as the f32 kernels are
    close(ops.matmul(x, M, K, w, N, 'bf16', 'dpbf16'), matmulRef(x, wq, M, K, N), 1e-5 * Math.sqrt(K), 'dpbf16 split');
    close(ops.matmul(x, M, K, w, N, 'bf16', 'dpbf16-round'), matmulRef(ops.castRound(x, 'bf16'), wq, M, K, N), 1e-5 * Math.sqrt(K), 'dpbf16 round');
  });
}

test('matmul kernel choice is checked', () => {
  const x = rand(4, 1), w = rand(8, 2);
  assert.throws(() => ops.matmul(x, 1, 4, w, 2, 'f32', 'nope' as 'auto'), /kernel must be/);
  if (dpbf16) assert.throws(() => ops.matmul(x, 1, 4, w, 2, 'f32', 'dpbf16'), /needs bf16 weights/);
});

test('embedding bounds-checks ids', () => {
  const table = rand(10 * 4, 5);
  const out = ops.embedding(Int32Array.from([3, 9]), table, 10, 4);
  close(out, [...table.slice(12, 16), ...table.slice(36, 40)], 0, 'embedding');
  assert.throws(() => ops.embedding(Int32Array.from([10]), table, 10, 4), RangeError);
  assert.throws(() => ops.embedding(Int32Array.from([-1]), table, 10, 4), RangeError);
});

// Naive paged attention: seqs with (new rows n, context ctx), block table per seq.
function attnRef(q: Float32Array, k: Float32Array, v: Float32Array, nH: number, kvh: number, hd: number, bs: number,
  qsl: number[], ctx: number[], bt: number[], mb: number): Float32Array {
  const T = qsl[qsl.length - 1];
  const out = new Float32Array(T * nH * hd);
  const G = nH / kvh;
  for (let s = 0; s < ctx.length; s++) {
    const n = qsl[s + 1] - qsl[s];
    for (let i = 0; i < n; i++) {
      const row = qsl[s] + i, pos = ctx[s] - n + i;
      for (let h = 0; h < nH; h++) {
        const kh = Math.floor(h / G);
        const sc: number[] = [];
        for (let j = 0; j <= pos; j++) {
          const slot = bt[s * mb + Math.floor(j / bs)] * bs + (j % bs);
          let d0 = 0;
          for (let d = 0; d < hd; d++) d0 += q[row * nH * hd + h * hd + d] * k[(slot * kvh + kh) * hd + d];
          sc.push(d0 / Math.sqrt(hd));
        }
        const mx = Math.max(...sc);
        const p = sc.map((x) => Math.exp(x - mx));
        const sum = p.reduce((a, b) => a + b, 0);
        for (let j = 0; j <= pos; j++) {
          const slot = bt[s * mb + Math.floor(j / bs)] * bs + (j % bs);
          for (let d = 0; d < hd; d++) out[row * nH * hd + h * hd + d] += (p[j] / sum) * v[(slot * kvh + kh) * hd + d];
        }
      }
    }
  }
  return out;
}

for (const kvDtype of ['f32', 'bf16', 'f16'] as DType[]) {
  for (const [nH, kvh, hd] of [[4, 2, 8], [8, 2, 32], [6, 6, 20], [16, 8, 128]]) {
    test(`paged attention ${kvDtype} heads ${nH}/${kvh} hd ${hd}`, () => {
      const bs = 4, numBlocks = 24, mb = 8;
      // seq 0: 5 new of ctx 19 (chunked prefill); seq 1: 1 new of ctx 7 (decode); seq 2: 13 new of 13 (prefill)
      const qsl = [0, 5, 6, 19], ctx = [19, 7, 13];
      const bt: number[] = [];
      const perm = [17, 3, 9, 0, 22, 5, 11, 2, 1, 4, 6, 7, 8, 10, 12, 13, 14, 15, 16, 18, 19, 20, 21, 23];
      for (let s = 0; s < 3; s++) for (let b = 0; b < mb; b++) bt.push(perm[s * mb + b]);
      const T = qsl[3];
      const q = rand(T * nH * hd, 11, 2);
      const k = ops.castRound(rand(numBlocks * bs * kvh * hd, 12, 2), kvDtype);
      const v = ops.castRound(rand(numBlocks * bs * kvh * hd, 13), kvDtype);
      const got = ops.attention({ q, kCache: k, vCache: v, kvDtype, numHeads: nH, numKvHeads: kvh, headDim: hd, blockSize: bs,
        numBlocks, queryStartLoc: Int32Array.from(qsl), contextLens: Int32Array.from(ctx), blockTables: Int32Array.from(bt), maxBlocksPerSeq: mb });
      close(got, attnRef(q, k, v, nH, kvh, hd, bs, qsl, ctx, bt, mb), 1e-4, 'attention');
    });
  }
}

test('attention rejects a block table entry outside the cache', () => {
  assert.throws(() => ops.attention({ q: new Float32Array(8), kCache: new Float32Array(64), vCache: new Float32Array(64), kvDtype: 'f32',
    numHeads: 1, numKvHeads: 1, headDim: 8, blockSize: 4, numBlocks: 2, queryStartLoc: Int32Array.from([0, 1]),
    contextLens: Int32Array.from([3]), blockTables: Int32Array.from([5]), maxBlocksPerSeq: 1 }), RangeError);
});

test('f32 -> bf16 rounds to nearest even, keeps NaN/Inf (vector and scalar paths agree)', () => {
  const bits = new Uint32Array(4099);
  let s = 12345;
  for (let i = 0; i < bits.length; i++) bits[i] = s = (Math.imul(s, 1103515245) + 12345) >>> 0;
  bits.set([0x7fc00000, 0x7f800000, 0xff800000, 0, 0x80000000, 0x3f808000, 0x3f818000, 0x7f7fffff, 0x7f800001]);
  const x = new Float32Array(bits.buffer);
  const got = new Uint32Array(ops.castRound(x, 'bf16').buffer);
  for (let i = 0; i < bits.length; i++) {
    const v = bits[i];
    const r = (v & 0x7fffffff) > 0x7f800000 ? ((v >>> 16) | 0x40) & 0xffff : ((v + 0x7fff + ((v >>> 16) & 1)) >>> 16) & 0xffff;
    assert.equal(got[i], (r << 16) >>> 0, `element ${i} (0x${v.toString(16)})`);
  }
});
