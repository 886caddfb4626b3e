// Issue 12 container images: deploy/docker/Dockerfile.cpu and Dockerfile.cuda are multi-stage (a builder
// that builds the native core, a runtime that copies only build outputs), run as the chart's non-root uid,
// have a HEALTHCHECK, copy only files that exist in the repo (and are not excluded from the build context),
// and their ENTRYPOINT + CMD is a command line pdserve's own CLI accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { chartDir, repoRoot } from '../../src/deploy/render.js';
import { parsePdserveArgs } from '../../src/deploy/cli-parse.js';
import { execForm, parseCopy, stages, type Stage } from '../helpers/dockerfile.js';

const values = YAML.parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8'));
const runAsUser: number = values.podSecurityContext.runAsUser;
const version: string = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version;
const ignored = readFileSync(join(repoRoot, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
// what the builder stage makes (scripts/build.mjs and npm ci) beside what it copies in
const builtByBuilder = new Set(['dist', 'build', 'node_modules']);

const ops = (s: Stage, op: string) => s.instructions.filter((i) => i.op === op);

for (const [file, flavour] of [['Dockerfile.cpu', 'cpu'], ['Dockerfile.cuda', 'cuda']] as const) {
  test(`${file}: multi-stage, non-root, HEALTHCHECK, every COPY source exists, CMD parses with pdserve's CLI`, async () => {
    const text = readFileSync(join(repoRoot, 'deploy', 'docker', file), 'utf8');
    const st = stages(text);
    const builder = st.find((s) => s.name === 'builder');
    const runtime = st[st.length - 1]!;
    assert.ok(builder, 'a builder stage');
    assert.equal(runtime.name, 'runtime', 'the last stage is the runtime');
    assert.notEqual(builder.image, runtime.image, 'the runtime is not the (fat) builder image');
    assert.ok(ops(builder, 'RUN').some((r) => r.args.includes('node scripts/build.mjs')), 'the builder builds the native core and dist/');
    assert.ok(!ops(runtime, 'RUN').some((r) => /build\.mjs|npm (ci|install)/.test(r.args)), 'the runtime builds and installs nothing');
    if (flavour === 'cuda') assert.ok(ops(runtime, 'COPY').some((c) => c.args.includes('build/pdserve_cuda.so')), 'the CUDA image carries the CUDA backend');
    else assert.ok(ops(builder, 'ENV').some((e) => e.args.includes('PDSERVE_SKIP_CUDA=1')));

    // non-root: the chart's runAsUser, numeric (kubelet can check runAsNonRoot only on a numeric USER)
    const users = ops(runtime, 'USER');
    assert.equal(users.length, 1);
    assert.equal(users[0]!.args, `${runAsUser}:${runAsUser}`);
    assert.notEqual(runAsUser, 0);
    assert.ok(ops(runtime, 'RUN').some((r) => r.args.includes(`--uid ${runAsUser}`)), 'the user exists in /etc/passwd');

    const hc = ops(runtime, 'HEALTHCHECK');
    assert.equal(hc.length, 1);
    assert.match(hc[0]!.args, /CMD \[.*\/health/);

    // COPY sources: from the context (must exist and not be .dockerignore'd) or from the builder's outputs
    const builderDirs = new Set(ops(builder, 'COPY').filter((c) => !parseCopy(c.args).from).flatMap((c) => parseCopy(c.args).sources));
    for (const s of st) {
      for (const c of ops(s, 'COPY')) {
        const cp = parseCopy(c.args);
        if (cp.from === null) {
          for (const src of cp.sources) {
            assert.ok(existsSync(join(repoRoot, src)), `${file}:${c.line}: COPY source ${src} does not exist`);
            assert.ok(!ignored.includes(src.split('/')[0]!), `${file}:${c.line}: COPY source ${src} is excluded by .dockerignore`);
          }
        } else if (cp.from === 'builder') {
          for (const src of cp.sources) {
            assert.match(src, /^\/src\//, `${file}:${c.line}`);
            const top = src.slice('/src/'.length).split('/')[0]!;
            assert.ok(builderDirs.has(top) || builtByBuilder.has(top), `${file}:${c.line}: ${src} is neither copied into nor built by the builder`);
          }
        } else {
          assert.ok(st.some((x) => x.name === cp.from), `${file}:${c.line}: --from=${cp.from} names no stage`);
        }
      }
    }
    assert.ok(!ops(runtime, 'COPY').some((c) => !parseCopy(c.args).from && /node_modules|dist|build/.test(c.args)), 'the runtime takes build outputs from the builder only');

    // the default command is one pdserve accepts; ENTRYPOINT is the `pdserve` the chart's containers call
    const entry = execForm(ops(runtime, 'ENTRYPOINT')[0]!.args);
    const cmd = execForm(ops(runtime, 'CMD')[0]!.args);
    assert.deepEqual(entry, ['pdserve']);
    const p = await parsePdserveArgs(cmd);
    assert.equal(p.command, 'serve');
    if (flavour === 'cuda') assert.equal(p.opts.device, 'cuda');
    assert.match(text, new RegExp(`-t pdserve:${version.replace(/\./g, '\\.')}-${flavour} `), 'the header names the tag the chart expects');
  });
}

test("the chart's default image tag is this version's CPU image", () => {
  assert.equal(values.image.tag, `${version}-cpu`);
  const xpyd = YAML.parse(readFileSync(join(repoRoot, 'examples', 'k8s', 'values-xpyd.yaml'), 'utf8'));
  assert.equal(xpyd.image.tag, `${version}-cuda`);
});

test('the image wrapper runs this package\'s CLI', () => {
  const w = readFileSync(join(repoRoot, 'deploy', 'docker', 'pdserve.sh'), 'utf8');
  assert.match(w, /^#!\/bin\/sh\n/);
  assert.match(w, /exec node \/app\/dist\/src\/cli\/main\.js "\$@"/);
  assert.equal(JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).bin.pdserve, 'dist/src/cli/main.js');
});

test('the Dockerfile reader: continuations, comments, global ARGs in FROM, exec form', () => {
  const st = stages('ARG B=debian:x\n# c\nFROM ${B} AS one\nRUN a \\\n  # inner\n  && b\nFROM one\nCMD ["x", "y"]\n');
  assert.deepEqual(st.map((s) => [s.image, s.name]), [['debian:x', 'one'], ['one', null]]);
  assert.equal(st[0]!.instructions[0]!.args, 'a    && b');
  assert.deepEqual(execForm(st[1]!.instructions[0]!.args), ['x', 'y']);
  assert.throws(() => execForm('x y'));
  assert.deepEqual(parseCopy('--from=builder --chown=1:1 /a /b ./c'), { from: 'builder', sources: ['/a', '/b'], dest: './c' });
});
