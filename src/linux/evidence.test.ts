import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ErrorCodes } from '../errors.js';
import { PodmanFixture, eventually, httpReachable } from '../enforcement/podman-fixture.test-helper.js';
import type { TestContainer } from '../enforcement/podman-fixture.test-helper.js';
import type { EvidenceManifest } from './evidence.js';
import { MANIFEST_FILE, takeSnapshot, verifyBundle } from './evidence.js';
import type { ProcessEntry, SocketEntry } from './proc-inspect.js';

let fixture: PodmanFixture | string | undefined;
let web: TestContainer;
const work = mkdtempSync(join(tmpdir(), 'containment-evidence-'));
const evidenceDir = join(work, 'evidence');

before(async () => {
  fixture = await PodmanFixture.create();
  if (fixture instanceof PodmanFixture) {
    web = fixture.run(
      'echo hello-out; echo hello-err >&2; echo planted > /tmp/dropped; exec httpd -f -p 8080 -h /www',
    );
    assert.ok(await eventually(() => httpReachable(web.ip, 8080)), 'httpd in the container never answered');
  }
});
after(() => {
  if (fixture instanceof PodmanFixture) fixture.cleanup();
  rmSync(work, { recursive: true, force: true });
});

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');
const tarList = (path: string): string[] =>
  execFileSync('tar', ['-tf', path], { encoding: 'utf8' }).split('\n');

test('a snapshot holds inspect, logs, changes, both tars, processes and sockets, each matching the manifest', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const bundle = await takeSnapshot(fx.engine, web.name, { evidenceDir, actionId: 'snap-1' });
  assert.equal(bundle.dir, join(evidenceDir, 'snap-1'));
  const manifest = JSON.parse(readFileSync(join(bundle.dir, MANIFEST_FILE), 'utf8')) as EvidenceManifest;
  assert.equal(sha256(join(bundle.dir, MANIFEST_FILE)), bundle.manifestSha256);
  assert.deepEqual(
    new Set(manifest.files.map((f) => f.kind)),
    new Set(['inspect', 'logs', 'changes', 'filesystem-diff', 'filesystem-export', 'processes', 'sockets']),
  );
  // Every listed file, hashed independently of the code under test; and nothing unlisted.
  for (const f of manifest.files) {
    assert.equal(sha256(join(bundle.dir, f.path)), f.sha256, f.path);
    assert.equal(readFileSync(join(bundle.dir, f.path)).length, f.bytes, f.path);
  }
  const onDisk = readdirSync(bundle.dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(bundle.dir.length + 1))
    .sort();
  assert.deepEqual(onDisk, [...manifest.files.map((f) => f.path), MANIFEST_FILE].sort());
  assert.deepEqual(await verifyBundle(bundle.dir), []);
  assert.deepEqual(readdirSync(evidenceDir), ['snap-1'], 'no temporary directory left behind');

  const read = (p: string): string => readFileSync(join(bundle.dir, p), 'utf8');
  assert.equal((JSON.parse(read('inspect.json')) as { Id: string }).Id, web.id);
  assert.match(read('logs/stdout.log'), /hello-out/);
  assert.match(read('logs/stderr.log'), /hello-err/);
  assert.doesNotMatch(read('logs/stdout.log'), /hello-err/);
  assert.ok((JSON.parse(read('changes.json')) as { path: string }[]).some((c) => c.path === '/tmp/dropped'));
  assert.ok(tarList(join(bundle.dir, 'filesystem-diff.tar')).includes('./tmp/dropped'));
  assert.ok(
    !tarList(join(bundle.dir, 'filesystem-diff.tar')).includes('./bin/busybox'),
    'the diff holds only changes',
  );
  assert.ok(tarList(join(bundle.dir, 'filesystem.tar')).some((p) => /^(\.\/)?bin\/busybox$/.test(p)));

  const processes = JSON.parse(read('processes.json')) as ProcessEntry[];
  const httpd = processes.find((p) => p.pid === web.pid);
  assert.equal(httpd?.comm, 'httpd');
  assert.deepEqual(httpd.cmdline, ['httpd', '-f', '-p', '8080', '-h', '/www']);
  assert.ok(
    processes.every((p) => p.pid !== process.pid),
    'no host process in the list',
  );
  const sockets = JSON.parse(read('sockets.json')) as SocketEntry[];
  const listener = sockets.find((s) => s.state === 'LISTEN' && s.localPort === 8080);
  assert.ok(listener, 'httpd listening socket');
  assert.deepEqual(listener.pids, [web.pid]);
});

test('verifyBundle reports a file altered after the snapshot', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const bundle = await takeSnapshot(fx.engine, web.id, {
    evidenceDir,
    actionId: 'snap-tamper',
    exportFilesystem: false,
  });
  assert.ok(!bundle.manifest.files.some((f) => f.kind === 'filesystem-export'));
  writeFileSync(join(bundle.dir, 'logs', 'stdout.log'), 'nothing to see\n');
  assert.deepEqual(await verifyBundle(bundle.dir), [
    'logs/stdout.log: sha256 mismatch',
    'logs/stdout.log: size 15, manifest says ' +
      bundle.manifest.files.find((f) => f.path === 'logs/stdout.log')?.bytes,
  ]);
});

test('a second snapshot with the same action id is refused and the first is kept', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const first = await takeSnapshot(fx.engine, web.id, {
    evidenceDir,
    actionId: 'snap-once',
    exportFilesystem: false,
  });
  const before = readFileSync(join(first.dir, MANIFEST_FILE));
  await assert.rejects(takeSnapshot(fx.engine, web.id, { evidenceDir, actionId: 'snap-once' }), {
    code: ErrorCodes.EVIDENCE_EXISTS,
  });
  assert.deepEqual(readFileSync(join(first.dir, MANIFEST_FILE)), before);
  assert.ok(!readdirSync(evidenceDir).some((n) => n.startsWith('.partial-')));
});

test('hostile action ids and a planted symlink never lead outside the evidence directory', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const dir = join(work, 'hostile', 'evidence');
  mkdirSync(dir, { recursive: true });
  for (const actionId of ['../x', '..', '.', 'a/b', '/abs', '.hidden', '', 'x'.repeat(129), 'a\0b', 'a b']) {
    await assert.rejects(
      takeSnapshot(fx.engine, web.id, { evidenceDir: dir, actionId }),
      { code: ErrorCodes.ACTION_INVALID },
      actionId,
    );
  }
  assert.deepEqual(readdirSync(join(work, 'hostile')), ['evidence']);
  assert.deepEqual(readdirSync(dir), []);

  const elsewhere = join(work, 'elsewhere');
  mkdirSync(elsewhere);
  symlinkSync(elsewhere, join(dir, 'planted'));
  await assert.rejects(takeSnapshot(fx.engine, web.id, { evidenceDir: dir, actionId: 'planted' }), {
    code: ErrorCodes.EVIDENCE_EXISTS,
  });
  assert.deepEqual(readdirSync(elsewhere), []);
});

test('a container that does not exist gives CONTAINER_NOT_FOUND and leaves nothing behind', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const dir = join(work, 'missing');
  await assert.rejects(
    takeSnapshot(fx.engine, 'containment-enf-no-such', { evidenceDir: dir, actionId: 'gone' }),
    {
      code: ErrorCodes.CONTAINER_NOT_FOUND,
    },
  );
  assert.deepEqual(readdirSync(dir), []);
});
