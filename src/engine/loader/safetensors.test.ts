// safetensors header parsing: valid files, corrupt headers (clear errors naming the file), sharded index.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listCheckpointTensors, readSafetensorsHeader } from './safetensors.js';

function st(header: unknown, dataBytes: number, rawHeader?: string, lenOverride?: bigint): Buffer {
  const h = Buffer.from(rawHeader ?? JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lenOverride ?? BigInt(h.length));
  return Buffer.concat([len, h, Buffer.alloc(dataBytes)]);
}

const dir = mkdtempSync(join(tmpdir(), 'pds-st-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('parses tensors with absolute offsets', async () => {
  const f = join(dir, 'ok.safetensors');
  const header = { __metadata__: { format: 'pt' }, a: { dtype: 'BF16', shape: [2, 3], data_offsets: [0, 12] }, b: { dtype: 'F32', shape: [1], data_offsets: [12, 16] } };
  const buf = st(header, 16);
  writeFileSync(f, buf);
  const t = await readSafetensorsHeader(f);
  const hlen = Number(buf.readBigUInt64LE(0));
  assert.deepEqual(t.map((x) => [x.name, x.dtype, x.offset, x.nbytes]), [['a', 'BF16', 8 + hlen, 12], ['b', 'F32', 8 + hlen + 12, 4]]);
});

const corrupt: Array<[string, Buffer, RegExp]> = [
  ['tiny.safetensors', Buffer.alloc(4), /too short/],
  ['hugelen.safetensors', st({}, 0, undefined, 1n << 40n), /header length/],
  ['json.safetensors', st(null, 0, '{"a": [1,'), /not valid JSON/],
  ['dtype.safetensors', st({ a: { dtype: 'Q4', shape: [1], data_offsets: [0, 1] } }, 1), /unknown dtype/],
  ['past.safetensors', st({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8), /past the end/],
  ['size.safetensors', st({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, 16), /needs 12/],
  ['shape.safetensors', st({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), /invalid shape/],
];
for (const [name, buf, re] of corrupt) {
  test(`corrupt header gives a clear error: ${name}`, async () => {
    const f = join(dir, name);
    writeFileSync(f, buf);
    await assert.rejects(readSafetensorsHeader(f), (e: Error) => e.message.includes(f) && re.test(e.message));
  });
}

test('sharded checkpoint via model.safetensors.index.json', async () => {
  const d = mkdtempSync(join(dir, 'sharded-'));
  writeFileSync(join(d, 's1.safetensors'), st({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 4));
  writeFileSync(join(d, 's2.safetensors'), st({ y: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } }, 4));
  writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { x: 's1.safetensors', y: 's2.safetensors' } }));
  const t = await listCheckpointTensors(d);
  assert.deepEqual(t.map((x) => x.name).sort(), ['x', 'y']);
  writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { x: 's1.safetensors', z: 'gone.safetensors' } }));
  await assert.rejects(listCheckpointTensors(d), /gone\.safetensors is missing/);
});

test('a directory without weights is an error', async () => {
  const d = mkdtempSync(join(dir, 'empty-'));
  await assert.rejects(listCheckpointTensors(d), /no \.safetensors weights/);
});
