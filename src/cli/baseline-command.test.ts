/**
 * `containment baseline show|lock|reset` against a real scanner (SQLite, loopback), in process:
 * what it prints, and its one-line errors with stable codes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { StoredBaseline } from '../runtime/contracts.js';
import { startTestScanner } from '../testing/scanner.js';
import type { TestScanner } from '../testing/scanner.js';
import { runMain } from './run-main.test-helper.js';

const WEB = 'sha256:' + '0a'.repeat(32);
const DB = 'sha256:' + '0b'.repeat(32);

describe('containment baseline', () => {
  let scanner: TestScanner<'prod'>;
  let api: string[];
  let viewer: string;

  const learned = (image: string, executables: string[]) => ({
    image,
    state: 'learning' as const,
    learningStartedAt: Date.parse('2026-01-01T00:00:00Z'),
    eventsLearned: 3,
    executables,
    listeners: ['tcp:8080'],
    outbound: [],
  });

  before(async () => {
    scanner = await startTestScanner({ cluster: 'prod' });
    const { admin, adminToken } = scanner;
    viewer = (await admin.createToken({ name: 'v', role: 'viewer', cluster: 'prod', namespaces: '*' })).token;
    await scanner.agent.syncBaselines('prod', [
      {
        baseline: learned(WEB, ['/usr/sbin/nginx', '/bin/sh']),
        generation: 0,
        imageRef: 'registry.local/web:1.4',
      },
      { baseline: learned(DB, ['/usr/bin/postgres']), generation: 0 },
    ]);
    api = ['--server', scanner.url, '--token', adminToken, '--cluster', 'prod'];
  });
  after(async () => {
    await scanner?.close();
  });

  test('show: every image as a table, one image item by item, or JSON', async () => {
    const all = await runMain(['baseline', 'show', ...api]);
    assert.equal(all.status, 0, all.stderr);
    const lines = all.stdout.trim().split('\n');
    assert.match(lines[0] ?? '', /^IMAGE\s+STATE\s+EXECUTABLES\s+LISTENERS\s+OUTBOUND$/);
    assert.match(all.stdout, /registry\.local\/web:1\.4\s+learning\s+2\s+1\s+0/);
    assert.match(all.stdout, new RegExp(`${DB}\\s+learning\\s+1\\s+1\\s+0`));

    const one = await runMain(['baseline', 'show', 'registry.local/web:1.4', ...api]);
    assert.equal(one.status, 0, one.stderr);
    assert.match(one.stdout, new RegExp(`^image:\\s+${WEB} \\(registry\\.local/web:1\\.4\\)$`, 'm'));
    assert.match(one.stdout, /^state:\s+learning since 2026-01-01T00:00:00\.000Z$/m);
    assert.match(one.stdout, /^executables \(2\):\n {2}\/usr\/sbin\/nginx\n {2}\/bin\/sh$/m);

    const json = await runMain(['baseline', 'show', DB, '--format', 'json', ...api]);
    assert.deepEqual(
      (JSON.parse(json.stdout) as StoredBaseline[]).map((b) => b.executables),
      [['/usr/bin/postgres']],
    );
    const none = await runMain(['baseline', 'show', 'unknown:1', ...api]);
    assert.equal(none.status, 1);
    assert.equal(none.stderr, 'no baseline of unknown:1 (nothing learned yet)\n');
  });

  test('lock (protect, or --monitor) and reset print the new state', async () => {
    const locked = await runMain(['baseline', 'lock', 'registry.local/web:1.4', ...api]);
    assert.equal(locked.status, 0, locked.stderr);
    assert.match(locked.stdout, /^state:\s+protect$/m);
    const monitor = await runMain(['baseline', 'lock', WEB, '--monitor', '--format', 'json', ...api]);
    assert.equal((JSON.parse(monitor.stdout) as StoredBaseline).state, 'monitor');
    const reset = await runMain(['baseline', 'reset', WEB, ...api]);
    assert.equal(reset.status, 0, reset.stderr);
    assert.match(reset.stdout, /^executables \(0\):$/m);
    assert.match(reset.stdout, /^learned:\s+0 events; generation 3/m);
  });

  test('errors are one line with a stable code: unknown image, a viewer, no cluster for a global token', async () => {
    const unknown = await runMain(['baseline', 'lock', 'unknown:1', ...api]);
    assert.equal(unknown.status, 2);
    assert.equal(
      unknown.stderr,
      'error[BASELINE_NOT_FOUND]: no baseline of unknown:1 in cluster prod (nothing learned yet)\n',
    );
    const denied = await runMain(['baseline', 'reset', DB, '--server', scanner.url, '--token', viewer]);
    assert.equal(denied.status, 2);
    assert.equal(denied.stderr, 'error[FORBIDDEN]: role viewer may not baselines:write\n');
    const noCluster = await runMain(['baseline', 'show', ...api.slice(0, 4)]);
    assert.equal(noCluster.status, 2);
    assert.match(noCluster.stderr, /^error\[REQUEST_INVALID\]: cluster: required/);
  });
});
