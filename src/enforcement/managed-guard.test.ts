/**
 * Least privilege, attacked with real Podman: the enforcer with the managed-set guard refuses a
 * container outside `--label` (TARGET_NOT_MANAGED, HTTP 403 on the action API, nothing stored,
 * nothing done: still reachable, no nft table in its netns), by name, by id prefix, as a dry run
 * and under the wrong namespace; it acts on one inside, also one whose name is an engine name
 * but not a DNS label (`_`, `.`). The guard judges the inspect document the action is carried out
 * with: one engine lookup (and one Podman facts lookup) per action, not one per check.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { ErrorCodes } from '../errors.js';
import { isQuarantined } from '../linux/netns-quarantine.js';
import { buildActionApi } from './action-api.js';
import { LocalEnforcer } from './local-enforcer.js';
import { managedContainerGuard } from './managed-guard.js';
import { PodmanFixture, eventually, httpReachable } from './podman-fixture.test-helper.js';
import type { TestContainer } from './podman-fixture.test-helper.js';
import type { SecurityActionInput } from './security-action.js';

const work = mkdtempSync(join(tmpdir(), 'containment-guard-'));
const TOKEN = 'guard-test-policy-token-0123456789';
const MANAGED = { 'containment.test/managed': `yes-${process.pid}` };
let fixture: PodmanFixture | string | undefined;
let enforcer: LocalEnforcer | undefined;
let app: FastifyInstance | undefined;

before(async () => {
  fixture = await PodmanFixture.create();
  if (!(fixture instanceof PodmanFixture)) return;
  enforcer = new LocalEnforcer({
    engine: fixture.engine,
    dataDir: join(work, 'data'),
    node: 'node-a',
    exportFilesystem: false,
    guard: managedContainerGuard(fixture.engine, MANAGED),
  });
  app = await buildActionApi({
    enforcer,
    tokens: [{ token: TOKEN, name: 'policy', role: 'policy', namespaces: ['local', 'other'] }],
  });
});
after(async () => {
  await app?.close();
  enforcer?.close();
  if (fixture instanceof PodmanFixture) fixture.cleanup();
  rmSync(work, { recursive: true, force: true });
});

function action(
  name: string,
  target: SecurityActionInput['spec']['target'],
  dryRun = false,
): SecurityActionInput {
  return { metadata: { name }, spec: { target, action: 'Quarantine', requestedBy: 'policy/test@1', dryRun } };
}

async function post(
  body: unknown,
  wait = true,
): Promise<{
  status: number;
  json: { error: { code: string; message: string }; status: { phase: string; message?: string } };
}> {
  const res = await app!.inject({
    method: 'POST',
    url: `/v1/actions?wait=${String(wait)}`,
    headers: { authorization: `Bearer ${TOKEN}` },
    payload: body as object,
  });
  return { status: res.statusCode, json: res.json() };
}

async function web(
  fx: PodmanFixture,
  options: Parameters<PodmanFixture['run']>[1] = {},
): Promise<TestContainer> {
  const c = fx.run('exec httpd -f -p 8080 -h /www', options);
  assert.ok(await eventually(() => httpReachable(c.ip, 8080)), 'httpd never answered');
  return c;
}

test('a container outside the managed labels is refused and left alone', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const outside = await web(fx, { labels: { 'containment.test/managed': 'no' } });
  const attempts: [string, SecurityActionInput, boolean][] = [
    ['by name', action('g-out-name', { namespace: 'local', pod: outside.name }), true],
    ['by name, no wait', action('g-out-nowait', { namespace: 'local', pod: outside.name }), false],
    ['by id prefix', action('g-out-id', { namespace: 'local', pod: outside.id.slice(0, 12) }), true],
    ['as a dry run', action('g-out-dry', { namespace: 'local', pod: outside.name }, true), true],
  ];
  for (const [how, body, wait] of attempts) {
    const res = await post(body, wait);
    assert.equal(res.status, 403, `${how}: ${JSON.stringify(res.json)}`);
    assert.equal(res.json.error.code, ErrorCodes.TARGET_NOT_MANAGED, how);
    assert.match(res.json.error.message, /not managed by this enforcer: .*managed labels/, how);
    assert.equal(enforcer!.get(body.metadata.name), undefined, `${how}: a refused request is not stored`);
  }
  // Direct callers of the enforcer get the same refusal, and so does the dry-run preview.
  await assert.rejects(
    enforcer!.submit(action('g-out-direct', { namespace: 'local', pod: outside.name })),
    (e: Error & { code?: string }) => e.code === ErrorCodes.TARGET_NOT_MANAGED,
  );
  await assert.rejects(
    enforcer!.preview(action('g-out-preview', { namespace: 'local', pod: outside.name })),
    (e: Error & { code?: string }) => e.code === ErrorCodes.TARGET_NOT_MANAGED,
  );
  assert.equal(await httpReachable(outside.ip, 8080), true, 'still reachable');
  assert.equal(await isQuarantined({ pid: outside.pid }), false, 'no nft table in its netns');
});

test('a managed container is acted on; one named in another namespace is refused', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  // An engine name, not a DNS label: `_` and `.` must still work in local mode.
  const inside = await web(fx, { labels: MANAGED, suffix: '_web.v2' });
  const wrongNs = await post(action('g-in-ns', { namespace: 'other', pod: inside.name }));
  assert.equal(wrongNs.status, 403, JSON.stringify(wrongNs.json));
  assert.match(wrongNs.json.error.message, /in namespace local, not other/);
  assert.equal(await httpReachable(inside.ip, 8080), true);

  const done = await post(action('g-in', { namespace: 'local', pod: inside.name }));
  assert.equal(done.status, 200, JSON.stringify(done.json));
  assert.equal(done.json.status.phase, 'Succeeded', done.json.status.message);
  assert.equal(await httpReachable(inside.ip, 8080), false, 'quarantined');
  assert.equal(await isQuarantined({ pid: inside.pid }), true);
});

test('one engine lookup per action: the guard judges the document the drivers act with', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const calls: string[] = [];
  // The real engine, with its calls counted.
  const counted = new Proxy(fx.engine, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push(String(key));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  const counting = new LocalEnforcer({
    engine: counted,
    dataDir: join(work, 'data-counted'),
    node: 'node-a',
    exportFilesystem: false,
    guard: managedContainerGuard(counted, MANAGED),
  });
  try {
    const inside = await web(fx, { labels: MANAGED });
    const done = await counting.submit(action('g-once', { namespace: 'local', pod: inside.name }));
    assert.equal(done.status?.phase, 'Succeeded', done.status?.message);
    assert.equal(await isQuarantined({ pid: inside.pid }), true);
    assert.deepEqual(calls, ['inspect', 'workloadFacts']);

    calls.length = 0;
    const outside = await web(fx, { labels: { 'containment.test/managed': 'no' } });
    await assert.rejects(
      counting.submit(action('g-once-out', { namespace: 'local', pod: outside.name })),
      (e: Error & { code?: string }) => e.code === ErrorCodes.TARGET_NOT_MANAGED,
    );
    assert.deepEqual(calls, ['inspect'], 'refused on its labels, before anything else');
    assert.equal(await isQuarantined({ pid: outside.pid }), false);
  } finally {
    counting.close();
  }
});
