#!/usr/bin/env node
// Stand-in for `pdserve serve` / `pdserve kv-server` in `up` tests (PDSERVE_UP_ENGINE_CMD).
// serve: HTTP on --port with /health and /v1/completions answering "<role>:<port>".
// kv-server: TCP listener on --port; creates --pool-file and leaves it (up must remove it).
// Env: STUB_FAIL_MATCH (substring of argv) -> print 40 lines and exit 3;
//      STUB_IGNORE_TERM_MATCH -> ignore SIGTERM; STUB_NO_LISTEN_MATCH -> never listen; STUB_ARGS_DIR -> write argv to <dir>/<name>.json
//      and the env vars up sets (PDSERVE_INTERNAL_SECRET_FILE, PDSERVE_API_KEY) to <dir>/<name>.env.json.
// Like the real CLI, it watches up's lifeline (fd 3) and stops when up is gone.
import { createServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { watchLifeline } from '../../src/util/lifeline.js';

watchLifeline();

const argv = process.argv.slice(2);
const joined = argv.join(' ');
const cmd = argv[0];
const flag = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const port = Number(flag('--port'));
const ktc = flag('--kv-transfer-config');
const role = cmd === 'kv-server' ? 'kv-server' : ktc ? (JSON.parse(ktc).kv_role as string) : 'colocated';
const name = `${role}-${port}`;
console.log(`stub ${name} starting: ${joined}`);
if (process.env.STUB_ARGS_DIR) {
  writeFileSync(join(process.env.STUB_ARGS_DIR, `${name}.json`), JSON.stringify(argv));
  const env = { secret: process.env.PDSERVE_INTERNAL_SECRET_FILE ?? null, apiKey: process.env.PDSERVE_API_KEY ?? null, vllmKey: process.env.VLLM_API_KEY ?? null };
  writeFileSync(join(process.env.STUB_ARGS_DIR, `${name}.env.json`), JSON.stringify(env));
}
if (process.env.STUB_FAIL_MATCH && joined.includes(process.env.STUB_FAIL_MATCH)) {
  for (let i = 1; i <= 40; i++) console.error(`stub ${name} line ${i}`);
  console.error(`stub ${name}: fatal: failing on purpose`);
  process.exit(3);
}
if (process.env.STUB_IGNORE_TERM_MATCH && joined.includes(process.env.STUB_IGNORE_TERM_MATCH)) {
  process.on('SIGTERM', () => console.log(`stub ${name}: ignoring SIGTERM`));
}
if (process.env.STUB_NO_LISTEN_MATCH && joined.includes(process.env.STUB_NO_LISTEN_MATCH)) {
  console.log(`stub ${name}: loading forever`);
  setInterval(() => undefined, 1000);
} else if (cmd === 'kv-server') {
  const poolFile = flag('--pool-file');
  if (poolFile) writeFileSync(poolFile, Buffer.alloc(4096));
  createTcpServer((s) => s.end()).listen(port, '127.0.0.1');
  // STUB_KEEP_POOL: die on SIGTERM without removing the pool (the real kv-server removes it)
  if (!process.env.STUB_KEEP_POOL) process.on('SIGTERM', () => {
    try {
      if (poolFile) unlinkSync(poolFile);
    } catch {
      /* gone */
    }
    process.exit(0);
  });
} else {
  createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/health') return void res.writeHead(200).end();
      if (req.url === '/v1/models') {
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data: [{ id: 'stub-model', object: 'model' }] }));
      }
      const text = JSON.stringify({ object: 'text_completion', choices: [{ index: 0, text: `${role}:${port}`, finish_reason: 'length' }] });
      res.writeHead(200, { 'content-type': 'application/json' }).end(text);
    });
  }).listen(port, '127.0.0.1', () => console.log(`stub ${name} listening`));
}
