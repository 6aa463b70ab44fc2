import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { ErrorCodes } from '../errors.js';
import type { ActionCompletedData } from '../events/cloud-event.js';
import { ActionStore } from './action-store.js';
import { verifyBundle } from '../linux/evidence.js';
import { isQuarantined, release } from '../linux/netns-quarantine.js';
import { LocalEnforcer } from './local-enforcer.js';
import {
  PodmanFixture,
  eventually,
  httpReachable,
  reachableFromNetns,
} from './podman-fixture.test-helper.js';
import type { TestContainer } from './podman-fixture.test-helper.js';
import type { SecurityActionInput } from './security-action.js';

let fixture: PodmanFixture | string | undefined;
const work = mkdtempSync(join(tmpdir(), 'containment-enforcer-'));
const completed: ActionCompletedData[] = [];
let enforcer: LocalEnforcer;

before(async () => {
  fixture = await PodmanFixture.create();
  if (fixture instanceof PodmanFixture) enforcer = open(fixture);
});
after(() => {
  enforcer?.close();
  if (fixture instanceof PodmanFixture) fixture.cleanup();
  rmSync(work, { recursive: true, force: true });
});

function open(fx: PodmanFixture): LocalEnforcer {
  return new LocalEnforcer({
    engine: fx.engine,
    dataDir: join(work, 'data'),
    node: 'node-a',
    exportFilesystem: false,
    onCompleted: (d) => void completed.push(d),
  });
}

function action(
  name: string,
  pod: string,
  spec: Partial<SecurityActionInput['spec']> = {},
): SecurityActionInput {
  return {
    metadata: { name },
    spec: {
      target: { namespace: 'local', pod },
      action: 'Quarantine',
      requestedBy: 'policy/test@1',
      ...spec,
    },
  };
}

async function startWeb(fx: PodmanFixture): Promise<TestContainer> {
  const web = fx.run('exec httpd -f -p 8080 -h /www');
  assert.ok(await eventually(() => httpReachable(web.ip, 8080)), 'httpd in the container never answered');
  return web;
}

test('Quarantine and Release through the enforcer: real connectivity, statuses, one event each', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const web = await startWeb(fx);
  const q = await enforcer.submit(
    action('q-1', web.name, { target: { namespace: 'local', pod: web.name, uid: web.id.slice(0, 12) } }),
  );
  assert.equal(q.status?.phase, 'Succeeded', q.status?.message);
  assert.equal(q.status.node, 'node-a');
  assert.ok(q.status.startedAt && q.status.completedAt && q.status.startedAt <= q.status.completedAt);
  assert.equal(q.status.conditions.find((c) => c.type === 'Quarantined')?.status, 'True');
  assert.equal(await httpReachable(web.ip, 8080), false, 'host → container');
  assert.equal(await reachableFromNetns(web.pid, web.gateway), false, 'container → host');
  assert.equal(fx.describe(web.name).pid, web.pid, 'still running, same process');

  const r = await enforcer.submit(action('r-1', web.name, { action: 'Release' }));
  assert.equal(r.status?.phase, 'Succeeded', r.status?.message);
  assert.equal(await httpReachable(web.ip, 8080), true);
  assert.equal(await reachableFromNetns(web.pid, web.gateway), true);
  const events = completed.filter((e) => e.name === 'q-1' || e.name === 'r-1');
  assert.deepEqual(
    events.map((e) => [e.name, e.phase, e.action, e.requestedBy]),
    [
      ['q-1', 'Succeeded', 'Quarantine', 'policy/test@1'],
      ['r-1', 'Succeeded', 'Release', 'policy/test@1'],
    ],
  );
});

test('the same action id is carried out once; reused for another request it is refused', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const web = await startWeb(fx);
  const request = action('q-once', web.name);
  const [a, b] = await Promise.all([enforcer.submit(request), enforcer.submit(request)]);
  assert.deepEqual(a, b);
  assert.equal(a.status?.phase, 'Succeeded');
  // Lift the quarantine behind the enforcer's back: a repeat must not apply it again.
  await release({ pid: web.pid });
  const again = await enforcer.submit(request);
  assert.deepEqual(again, a);
  assert.equal(await isQuarantined({ pid: web.pid }), false);
  assert.equal(completed.filter((e) => e.name === 'q-once').length, 1);
  await assert.rejects(enforcer.submit(action('q-once', web.name, { action: 'Terminate' })), {
    code: ErrorCodes.ACTION_INVALID,
  });
});

test('dryRun reports the plan and changes nothing', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const web = await startWeb(fx);
  for (const kind of ['Quarantine', 'Snapshot', 'TerminateGraceful', 'Terminate'] as const) {
    const done = await enforcer.submit(action(`dry-${kind}`, web.name, { action: kind, dryRun: true }));
    assert.equal(done.status?.phase, 'Succeeded', kind);
    assert.match(done.status.message ?? '', /^dry run: would .*nothing was changed$/, kind);
    assert.deepEqual(done.status.evidence, []);
  }
  assert.equal(await isQuarantined({ pid: web.pid }), false);
  assert.equal(await httpReachable(web.ip, 8080), true);
  assert.equal(fx.describe(web.name).pid, web.pid);
  assert.equal(existsSync(join(work, 'data', 'evidence', 'dry-Snapshot')), false);
});

test('Snapshot: evidence listed in the status matches the files', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const web = await startWeb(fx);
  const done = await enforcer.submit(action('snap-e', web.name, { action: 'Snapshot' }));
  assert.equal(done.status?.phase, 'Succeeded', done.status?.message);
  const [manifest, ...files] = done.status.evidence;
  assert.equal(manifest?.kind, 'manifest');
  const bundle = join(work, 'data', 'evidence', 'snap-e');
  assert.equal(fileURLToPath(manifest.uri), join(bundle, 'manifest.json'));
  assert.ok(files.length >= 5);
  for (const item of done.status.evidence) {
    const bytes = readFileSync(fileURLToPath(item.uri));
    assert.equal(createHash('sha256').update(bytes).digest('hex'), item.sha256, item.uri);
    assert.equal(bytes.length, item.bytes);
  }
  assert.deepEqual(await verifyBundle(bundle), []);
});

test('TerminateGraceful: SIGTERM honoured by a trapping container; SIGKILL after the grace period otherwise', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const out = fx.hostDir('graceful-out');
  const polite = fx.run('trap "echo got-term > /out/term; exit 0" TERM; sleep 300 & wait', {
    volume: `${out}:/out`,
  });
  const stubborn = fx.run('trap "" TERM; sleep 300 & wait');

  const p = await enforcer.submit(
    action('tg-polite', polite.name, { action: 'TerminateGraceful', gracePeriodSeconds: 20 }),
  );
  assert.equal(p.status?.phase, 'Succeeded', p.status?.message);
  assert.equal(readFileSync(join(out, 'term'), 'utf8'), 'got-term\n', 'the container received SIGTERM');
  assert.equal(p.status.conditions.find((c) => c.type === 'Terminated')?.reason, 'Graceful');
  assert.match(p.status.message ?? '', /exit code 0/);
  assert.equal(fx.exists(polite.name), false, 'removed');
  assert.deepEqual(await verifyBundle(join(work, 'data', 'evidence', 'tg-polite')), []);

  const grace = 2;
  const started = Date.now();
  const s = await enforcer.submit(
    action('tg-stubborn', stubborn.name, { action: 'TerminateGraceful', gracePeriodSeconds: grace }),
  );
  assert.ok(Date.now() - started >= grace * 1000, 'the grace period was waited out');
  assert.equal(s.status?.phase, 'Succeeded', s.status?.message);
  assert.equal(s.status.conditions.find((c) => c.type === 'Terminated')?.reason, 'Killed');
  assert.match(s.status.message ?? '', /exit code 137/);
  assert.equal(fx.exists(stubborn.name), false, 'removed');
  assert.ok(existsSync(join(work, 'data', 'evidence', 'tg-stubborn', 'manifest.json')), 'evidence kept');
});

test('Terminate kills and removes; a target that is gone, missing or stopped fails clearly', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const victim = fx.run('exec sleep 300');
  const k = await enforcer.submit(action('kill-1', victim.name, { action: 'Terminate' }));
  assert.equal(k.status?.phase, 'Succeeded', k.status?.message);
  assert.equal(fx.exists(victim.name), false);

  const gone = await enforcer.submit(action('kill-2', victim.name, { action: 'Terminate' }));
  assert.equal(gone.status?.phase, 'Failed');
  assert.match(
    gone.status.message ?? '',
    new RegExp(`target local/${victim.name}: no such container on node node-a`),
  );
  assert.deepEqual(completed.find((e) => e.name === 'kill-2')?.phase, 'Failed');

  const exited = fx.run('exit 3');
  assert.ok(await eventually(async () => !fx.describe(exited.name).pid));
  const q = await enforcer.submit(action('q-exited', exited.name));
  assert.equal(q.status?.phase, 'Failed');
  assert.match(q.status.message ?? '', /is not running \(exit code 3\)/);

  const web = fx.run('exec sleep 300');
  const wrongUid = await enforcer.submit(
    action('q-uid', web.name, { target: { namespace: 'local', pod: web.name, uid: 'ffffffffffff' } }),
  );
  assert.equal(wrongUid.status?.phase, 'Failed');
  assert.match(wrongUid.status.message ?? '', /not the requested uid/);
  assert.equal(await isQuarantined({ pid: web.pid }), false);
});

test('bad input is refused with ACTION_INVALID and nothing is stored', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const bad: unknown[] = [
    action('../escape', 'web'),
    { metadata: { name: 'x1' }, spec: { target: { namespace: 'local', pod: 'web' }, action: 'Explode' } },
    {
      metadata: { name: 'x2' },
      spec: { target: { namespace: 'local', pod: 'web' }, action: 'TerminateGraceful', gracePeriod: 5 },
    },
    { metadata: { name: 'x3' }, spec: { target: { namespace: 'local' }, action: 'Terminate' } },
    'not an object',
  ];
  for (const input of bad) {
    await assert.rejects(enforcer.submit(input), (e: Error & { code?: string }) => {
      assert.equal(e.code, ErrorCodes.ACTION_INVALID);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
  }
  for (const id of ['x1', 'x2', 'x3']) assert.equal(enforcer.get(id), undefined);
});

test('after a restart, finished actions are remembered and unfinished ones end as Failed', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const web = fx.run('exec sleep 300');
  const done = await enforcer.submit(action('remember-me', web.name, { action: 'Snapshot' }));
  enforcer.close();
  // An action the previous process had started when it stopped.
  const store = new ActionStore(join(work, 'data', 'enforcer.sqlite'));
  store.claim(
    {
      apiVersion: 'containment.dev/v1alpha1',
      kind: 'SecurityAction',
      metadata: { name: 'was-running' },
      spec: {
        target: { namespace: 'local', pod: web.name },
        action: 'Quarantine',
        gracePeriodSeconds: 30,
        reason: '',
        dryRun: false,
      },
      status: { phase: 'Running', evidence: [], conditions: [] },
    },
    new Date(),
  );
  store.close();
  enforcer = open(fx);
  assert.deepEqual(enforcer.get('remember-me'), done);
  assert.deepEqual(await enforcer.submit(action('remember-me', web.name, { action: 'Snapshot' })), done);
  const interrupted = enforcer.get('was-running');
  assert.equal(interrupted?.status?.phase, 'Failed');
  assert.match(interrupted.status.message ?? '', /^interrupted/);
  assert.equal(await isQuarantined({ pid: web.pid }), false, 'an interrupted action is not resumed silently');
});
