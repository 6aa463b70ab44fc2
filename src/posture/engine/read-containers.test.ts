/**
 * Local-container controls against real Podman through its Docker-compatible socket: a hardened
 * container (read-only, limits, user namespace, no added capabilities) has no findings; a risky
 * one (privileged, added capabilities, seccomp off) has each.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { findEngineSocket } from '../../engine/socket.js';
import { requireOrSkip } from '../../testing/shared-data.js';
import { podmanAvailable } from '../../testing/tools.js';
import { evaluateContainer } from '../evaluate-containers.js';
import { runPosture } from '../run-posture.js';
import { readContainers } from './read-containers.js';

const socket = findEngineSocket(undefined, process.env);
const available = socket !== undefined && existsSync('/usr/bin/busybox') && podmanAvailable();
const suffix = randomBytes(4).toString('hex');
const image = `localhost/containment-posture-test:${suffix}`;
const names = {
  hard: `posture-hard-${suffix}`,
  risky: `posture-risky-${suffix}`,
  caps: `posture-caps-${suffix}`,
};
const tmp = mkdtempSync(join(tmpdir(), 'posture-engine-'));

const podman = (args: string[]): string =>
  execFileSync('podman', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

before(() => {
  if (!available) return;
  const root = join(tmp, 'root');
  mkdirSync(join(root, 'bin'), { recursive: true });
  copyFileSync('/usr/bin/busybox', join(root, 'bin', 'busybox'));
  symlinkSync('busybox', join(root, 'bin', 'sleep'));
  execFileSync('tar', ['-C', root, '-cf', join(tmp, 'root.tar'), '.']);
  podman(['import', '--quiet', join(tmp, 'root.tar'), image]);
  podman([
    'run',
    '-d',
    '--name',
    names.hard,
    '--read-only',
    '--memory',
    '64m',
    '--pids-limit',
    '64',
    '--uidmap',
    '0:200000:65536',
    '--cap-drop',
    'ALL',
    image,
    'sleep',
    '600',
  ]);
  podman(['run', '-d', '--name', names.risky, '--privileged', image, 'sleep', '600']);
  podman([
    'run',
    '-d',
    '--name',
    names.caps,
    '--cap-add',
    'NET_ADMIN',
    '--security-opt',
    'seccomp=unconfined',
    image,
    'sleep',
    '600',
  ]);
});
after(() => {
  if (available) {
    try {
      podman(['rm', '-f', '-t', '0', names.hard, names.risky, names.caps]);
      podman(['rmi', '-f', image]);
    } catch {
      // best effort: a failed before() may have created only some
    }
  }
  rmSync(tmp, { recursive: true, force: true });
});

test('engine containers: hardened one clean, risky ones flagged per control', async (t) => {
  if (!requireOrSkip(t, available, 'podman with its API socket and /usr/bin/busybox')) return;
  const read = await readContainers(socket!);
  const byName = (name: string) => {
    const doc = read.containers.find((c) => String(c.Name).replace(/^\//, '') === name);
    assert.ok(doc, `${name} listed by the engine`);
    return evaluateContainer(doc, read.engine)
      .map((f) => f.control)
      .sort();
  };
  assert.deepEqual(byName(names.hard), []);
  const risky = byName(names.risky);
  for (const id of ['CTR-PRIVILEGED', 'CTR-NO-SECCOMP', 'CTR-WRITABLE-ROOTFS', 'CTR-NO-MEMORY-LIMIT'])
    assert.ok(risky.includes(id), `${id} in ${risky.join(', ')}`);
  if (!read.engine.userNamespaceByDefault) assert.ok(risky.includes('CTR-NO-USERNS'));
  const caps = byName(names.caps);
  for (const id of ['CTR-ADDED-CAPABILITIES', 'CTR-NO-SECCOMP'])
    assert.ok(caps.includes(id), `${id} in ${caps.join(', ')}`);
  assert.ok(!caps.includes('CTR-PRIVILEGED'));
});

test('runPosture --engine: local container findings count in the overall score only', async (t) => {
  if (!requireOrSkip(t, available, 'podman with its API socket and /usr/bin/busybox')) return;
  const { report } = await runPosture({ level: 'restricted', engineSocket: socket! });
  const ours = report.findings.filter((f) => Object.values(names).includes(f.object.name));
  assert.ok(
    ours.some(
      (f) => f.control === 'CTR-PRIVILEGED' && f.object.name === names.risky && f.source === 'engine',
    ),
  );
  assert.ok(!ours.some((f) => f.object.name === names.hard));
  assert.deepEqual(report.namespaces, []);
  assert.ok(report.score < 100);
});
