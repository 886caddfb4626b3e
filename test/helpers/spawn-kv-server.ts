// A real `pdserve kv-server` on loopback for e2e tests: 32 MiB pool, no prefault; resolves once it listens.
// secretFile null = a kv-server without the internal secret (an impostor); the env var is cleared either way
// so only the flag decides.
import { spawn, type ChildProcess } from 'node:child_process';
import { cliPath } from './fixtures.js';

export interface SpawnedKvServer {
  proc: ChildProcess;
  out: () => string; // stdout + stderr so far
}

export async function spawnKvServer(port: number, secretFile: string | null): Promise<SpawnedKvServer> {
  const args = [cliPath, 'kv-server', '--port', String(port), '--pool-size', '32M', '--no-prefault', ...(secretFile ? ['--internal-secret-file', secretFile] : [])];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PDSERVE_INTERNAL_SECRET_FILE: '' } });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const end = Date.now() + 20_000;
  while (!/listening on 127\.0\.0\.1/.test(out)) {
    if (Date.now() > end || proc.exitCode !== null) throw new Error(`kv-server did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { proc, out: () => out };
}
