/** The agent's small parts: workload identity, process identity, and the writable-layer signature. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { workloadSchema } from '../scanner/schemas.js';
import { layerSignature } from './layer-signature.js';
import { processStartTime } from './process-start.js';
import { apiName, workloadIdentity } from './workload-identity.js';

const ID = 'ed8061c13b41760bf25625bf5fd0cb69b8a0820a07e9bbe5319ed8f1c311230d';
const place = { cluster: 'local', node: 'node-1' };

describe('workload identity (local mode)', () => {
  test('a plain container: namespace local, pod and container are its name', () => {
    const w = workloadIdentity({ id: ID, name: 'web', image: 'localhost/app:1' }, { infra: false }, place);
    assert.deepEqual(w, {
      cluster: 'local',
      namespace: 'local',
      pod: 'web',
      container: 'web',
      node: 'node-1',
      image: 'localhost/app:1',
    });
  });

  test('a Podman pod becomes the namespace; the image digest is kept', () => {
    const w = workloadIdentity(
      { id: ID, name: 'db', image: 'localhost/db:2' },
      { infra: false, podName: 'shop', imageDigest: 'sha256:abc' },
      place,
    );
    assert.equal(w.namespace, 'shop');
    assert.equal(w.pod, 'db');
    assert.equal(w.imageDigest, 'sha256:abc');
  });

  test('engine names the scanner would refuse are made valid, never sent as they are', () => {
    assert.equal(apiName('worker_', 'x'), 'worker');
    assert.equal(apiName('-.a b/c', 'x'), 'a-b-c');
    assert.equal(apiName('___', 'fallback'), 'fallback');
    const w = workloadIdentity({ id: ID, name: '_', image: '' }, { infra: false, podName: '--' }, place);
    assert.equal(w.pod, ID.slice(0, 12));
    assert.equal(w.namespace, 'local');
    assert.ok(workloadSchema.safeParse(w).success, JSON.stringify(w));
  });
});

describe('process identity', () => {
  test('a running process has a start time; once it exited it has none', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    const pid = child.pid as number;
    const started = processStartTime(pid);
    assert.match(started ?? '', /^\d+$/);
    assert.equal(processStartTime(pid), started);
    assert.notEqual(processStartTime(process.pid), started);
    await new Promise((r) => {
      child.on('exit', r);
      child.kill('SIGKILL');
    });
    assert.equal(processStartTime(pid), undefined);
  });
});

describe('writable-layer signature', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'containment-layer-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  const upper = join(tmp, 'upper');
  const host = join(tmp, 'host');
  mkdirSync(join(upper, 'etc'), { recursive: true });
  mkdirSync(host);
  writeFileSync(join(upper, 'etc', 'hostname'), 'c1\n');

  test('changes with a new, rewritten or deleted file, and only then', async () => {
    const first = await layerSignature(upper);
    assert.ok(first);
    assert.equal(await layerSignature(upper), first);

    mkdirSync(join(upper, 'app', 'node_modules', 'minimist'), { recursive: true });
    writeFileSync(join(upper, 'app', 'node_modules', 'minimist', 'package.json'), '{}');
    const added = await layerSignature(upper);
    assert.notEqual(added, first);

    // Rewritten with another size: a forged mtime could not hide it.
    writeFileSync(join(upper, 'app', 'node_modules', 'minimist', 'package.json'), '{"v":1}');
    const rewritten = await layerSignature(upper);
    assert.notEqual(rewritten, added);

    unlinkSync(join(upper, 'etc', 'hostname'));
    assert.notEqual(await layerSignature(upper), rewritten);
  });

  test('a link planted in the layer is not followed to the host', async () => {
    symlinkSync(host, join(upper, 'escape'));
    const before = await layerSignature(upper);
    // Host files behind the link change: the container's layer did not.
    writeFileSync(join(host, 'secret'), 'x'.repeat(100));
    utimesSync(host, new Date(), new Date(Date.now() + 60_000));
    assert.equal(await layerSignature(upper), before);
  });

  test('a layer that is gone has no signature', async () => {
    assert.equal(await layerSignature(join(tmp, 'no-such-dir')), undefined);
  });
});
