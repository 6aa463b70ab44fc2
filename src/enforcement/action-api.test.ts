import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createApiTokens } from '../auth/api-tokens.js';
import type { ApiTokens } from '../auth/api-tokens.js';
import { openSqliteTokenStore } from '../storage/tokens/token-store.js';
import Database from 'better-sqlite3';
import { DockerEngine } from '../engine/docker/docker-engine.js';
import { buildActionApi } from './action-api.js';
import { isQuarantined } from '../linux/netns-quarantine.js';
import { LocalEnforcer } from './local-enforcer.js';
import { PodmanFixture, eventually, httpReachable } from './podman-fixture.test-helper.js';
import type { SecurityAction, SecurityActionInput } from './security-action.js';

const work = mkdtempSync(join(tmpdir(), 'containment-action-api-'));
const ADMIN = 'configured-admin-token-0123456789';
const LOCAL_POLICY = 'configured-policy-local-0123456789';
let fixture: PodmanFixture | string | undefined;
let enforcer: LocalEnforcer;
let app: FastifyInstance;
let tokensDb: Database.Database;
let apiTokens: ApiTokens;

before(async () => {
  fixture = await PodmanFixture.create();
  enforcer = new LocalEnforcer({
    // Without podman the auth and validation tests still run: they never reach the engine.
    engine: fixture instanceof PodmanFixture ? fixture.engine : new DockerEngine(join(work, 'none.sock')),
    dataDir: join(work, 'data'),
    node: 'node-a',
    exportFilesystem: false,
  });
  tokensDb = new Database(join(work, 'tokens.sqlite'));
  apiTokens = createApiTokens({ store: openSqliteTokenStore(tokensDb) });
  app = await buildActionApi({
    enforcer,
    tokens: [
      { token: ADMIN, name: 'admin', role: 'admin', namespaces: '*' },
      { token: LOCAL_POLICY, name: 'policy', role: 'policy', namespaces: ['local'] },
    ],
    verifier: apiTokens,
    evidenceDir: join(work, 'data', 'evidence'),
  });
});
after(async () => {
  await app?.close();
  enforcer?.close();
  tokensDb?.close();
  if (fixture instanceof PodmanFixture) fixture.cleanup();
  rmSync(work, { recursive: true, force: true });
});

function action(
  name: string,
  pod: string,
  spec: Partial<SecurityActionInput['spec']> = {},
  namespace = 'local',
): SecurityActionInput {
  return {
    metadata: { name },
    spec: { target: { namespace, pod }, action: 'Quarantine', requestedBy: 'test', ...spec },
  };
}

async function post(
  body: unknown,
  options: { token?: string; wait?: boolean } = {},
): Promise<{ status: number; json: SecurityAction & { error?: { code: string; message: string } } }> {
  const res = await app.inject({
    method: 'POST',
    url: `/v1/actions${options.wait ? '?wait=true' : ''}`,
    headers: { authorization: `Bearer ${options.token ?? LOCAL_POLICY}` },
    payload: body as object,
  });
  return { status: res.statusCode, json: res.json() };
}

/** An action, a list of them, or an error: the tests know which to expect. */
type Answer = SecurityAction & { actions: SecurityAction[]; error?: { code: string; message: string } };

async function get(url: string, token = LOCAL_POLICY): Promise<{ status: number; json: Answer }> {
  const res = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
  return { status: res.statusCode, json: res.json() };
}

test('authentication: missing, unknown and wrong-role tokens are refused; nothing is stored', async () => {
  const noAuth = await app.inject({ method: 'POST', url: '/v1/actions', payload: action('a-none', 'x') });
  assert.equal(noAuth.statusCode, 401);
  assert.equal(noAuth.json().error.code, 'UNAUTHENTICATED');
  assert.equal((await post(action('a-unknown', 'x'), { token: 'not-a-token' })).status, 401);
  assert.equal((await post(action('a-forged', 'x'), { token: 'ctm_forged_token_value' })).status, 401);
  // A real API token, but a viewer: authenticated, not allowed.
  const viewer = await apiTokens.issue({
    name: 'viewer',
    role: 'viewer',
    scope: { cluster: 'local', namespaces: ['local'] },
  });
  const refused = await post(action('a-viewer', 'x'), { token: viewer.token });
  assert.equal(refused.status, 403);
  assert.equal(refused.json.error?.code, 'FORBIDDEN');
  for (const id of ['a-none', 'a-unknown', 'a-forged', 'a-viewer']) assert.equal(enforcer.get(id), undefined);
});

test('bad bodies and queries are 400 with the offending field; nothing is stored', async () => {
  const cases: [unknown, RegExp][] = [
    [
      { metadata: { name: 'b-1' }, spec: { target: { namespace: 'local', pod: 'p' }, action: 'Explode' } },
      /spec\.action/,
    ],
    [action('b-2', 'p', { gracePeriod: 5 } as never), /gracePeriod/],
    [action('../etc', 'p'), /metadata\.name/],
    // A path-shaped pod or container is refused by the contract, never looked up.
    [action('b-7', '../../x'), /spec\.target\.pod/],
    [
      action('b-8', 'p', { target: { namespace: 'local', pod: 'p', container: 'a/b' } }),
      /spec\.target\.container/,
    ],
    [{ ...action('b-4', 'p'), metadata: { name: 'b-4', namespace: 'other' } }, /metadata\.namespace/],
  ];
  for (const [body, message] of cases) {
    const res = await post(body);
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.match(res.json.error?.message ?? '', message);
  }
  const notJson = await app.inject({
    method: 'POST',
    url: '/v1/actions',
    headers: { authorization: `Bearer ${LOCAL_POLICY}`, 'content-type': 'application/json' },
    payload: '{"metadata":',
  });
  assert.equal(notJson.statusCode, 400);
  assert.equal(notJson.json().error.code, 'REQUEST_INVALID');
  const badWait = await app.inject({
    method: 'POST',
    url: '/v1/actions?wait=yes',
    headers: { authorization: `Bearer ${LOCAL_POLICY}` },
    payload: action('b-5', 'p'),
  });
  assert.equal(badWait.statusCode, 400);
  assert.equal((await get('/v1/actions/..%2Fetc')).status, 400);
  for (const id of ['b-1', 'b-2', 'b-4', 'b-5']) assert.equal(enforcer.get(id), undefined);
});

test('a namespace-scoped token cannot act on, read or list another namespace', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const web = fx.run('exec httpd -f -p 8080 -h /www');
  assert.ok(await eventually(() => httpReachable(web.ip, 8080)));
  const attack = await post(action('x-ns', web.name, {}, 'payments'));
  assert.equal(attack.status, 403);
  assert.equal(attack.json.error?.code, 'FORBIDDEN');
  assert.equal(enforcer.get('x-ns'), undefined);
  assert.equal(await isQuarantined({ pid: web.pid }), false);

  // An admin runs a dry run in `payments`; the local policy token can neither see nor list it.
  const other = await post(action('x-admin', web.name, { dryRun: true }, 'payments'), {
    token: ADMIN,
    wait: true,
  });
  assert.equal(other.status, 200);
  assert.equal(other.json.status?.phase, 'Succeeded');
  assert.equal((await get('/v1/actions/x-admin')).status, 404);
  assert.equal((await get('/v1/actions/x-admin', ADMIN)).status, 200);
  const listed = await get('/v1/actions');
  assert.ok(listed.json.actions.every((a: SecurityAction) => a.spec.target.namespace === 'local'));
  assert.equal((await get('/v1/actions?namespace=payments')).json.actions.length, 0);
  const adminList = await get('/v1/actions?namespace=payments', ADMIN);
  assert.deepEqual(
    adminList.json.actions.map((a: SecurityAction) => a.metadata.name),
    ['x-admin'],
  );
  // Reusing the admin's id from the policy token for its own namespace is a conflict, not a takeover.
  const reuse = await post(action('x-admin', web.name, { dryRun: true }));
  assert.equal(reuse.status, 409);
  assert.equal(reuse.json.error?.code, 'CONFLICT');
});

test('POST without wait answers 202 while running, then GET shows the final state; ids are idempotent', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const web = fx.run('exec httpd -f -p 8080 -h /www');
  assert.ok(await eventually(() => httpReachable(web.ip, 8080)));
  const accepted = await post(action('q-api', web.name, { reason: 'remote shell' }));
  assert.equal(accepted.status, 202);
  assert.ok(['Pending', 'Running'].includes(accepted.json.status?.phase ?? ''), accepted.json.status?.phase);
  let final: SecurityAction | undefined;
  assert.ok(
    await eventually(async () => {
      final = (await get('/v1/actions/q-api')).json as SecurityAction;
      return final.status?.phase === 'Succeeded' || final.status?.phase === 'Failed';
    }, 50),
  );
  assert.equal(final?.status?.phase, 'Succeeded', final?.status?.message);
  assert.equal(final?.spec.reason, 'remote shell');
  assert.equal(await isQuarantined({ pid: web.pid }), true);
  assert.equal(await httpReachable(web.ip, 8080), false);

  // The same request again: 200 with the stored final state, the work not repeated.
  const again = await post(action('q-api', web.name, { reason: 'remote shell' }), { wait: true });
  assert.equal(again.status, 200);
  assert.deepEqual(again.json, final);
  // Release with wait: the final phase in the answer, connectivity restored.
  const released = await post(action('r-api', web.name, { action: 'Release' }), { wait: true });
  assert.equal(released.status, 200);
  assert.equal(released.json.status?.phase, 'Succeeded');
  assert.equal(await httpReachable(web.ip, 8080), true);
  const phases = await get('/v1/actions?phase=Succeeded&limit=1000');
  const names = phases.json.actions.map((a: SecurityAction) => a.metadata.name);
  assert.ok(names.includes('q-api') && names.includes('r-api'));
  assert.equal(names.indexOf('r-api') < names.indexOf('q-api'), true, 'newest first');
});

test('dryRun through the API reports the plan and changes nothing', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const web = fx.run('exec httpd -f -p 8080 -h /www');
  assert.ok(await eventually(() => httpReachable(web.ip, 8080)));
  const done = await post(action('dry-api', web.name, { action: 'TerminateGraceful', dryRun: true }), {
    wait: true,
  });
  assert.equal(done.status, 200);
  assert.equal(done.json.status?.phase, 'Succeeded');
  assert.match(done.json.status?.message ?? '', /^dry run: would write an evidence bundle/);
  assert.equal(fx.exists(web.name), true);
  assert.equal(await httpReachable(web.ip, 8080), true);
  assert.equal(existsSync(join(work, 'data', 'evidence', 'dry-api')), false);
});

test('a target that does not exist ends Failed with a clear message', async (t) => {
  if (!PodmanFixture.need(t, fixture)) return;
  const done = await post(action('gone-api', 'containment-no-such-container', { action: 'Terminate' }), {
    wait: true,
  });
  assert.equal(done.status, 200);
  assert.equal(done.json.status?.phase, 'Failed');
  assert.match(done.json.status?.message ?? '', /no such container/);
});

test('GET /v1/audit: the pod’s actions in the caller’s namespaces only, and only when configured', async () => {
  const stored: SecurityAction[] = [
    ['a-web', 'local', 'web'],
    ['a-db', 'local', 'db'],
    ['b-web', 'other', 'web'],
  ].map(([name, namespace, pod]) => ({
    apiVersion: 'containment.dev/v1alpha1',
    kind: 'SecurityAction',
    metadata: { name: name as string },
    spec: {
      target: { namespace: namespace as string, pod: pod as string },
      action: 'Quarantine',
      gracePeriodSeconds: 30,
      reason: '',
      dryRun: false,
    },
  }));
  const auditing = await buildActionApi({
    enforcer: {
      submit: () => Promise.reject(new Error('not in this test')),
      preview: () => Promise.reject(new Error('not in this test')),
      get: () => undefined,
      list: (f) =>
        stored.filter((a) => f.namespaces === '*' || f.namespaces.includes(a.spec.target.namespace)),
    },
    tokens: [
      { token: ADMIN, name: 'admin', role: 'admin', namespaces: '*' },
      { token: LOCAL_POLICY, name: 'policy', role: 'policy', namespaces: ['local'] },
    ],
    audit: async (actions) => actions.map((a) => a.metadata.name),
  });
  try {
    const get = async (query: string, token: string) => {
      const res = await auditing.inject({
        url: `/v1/audit?${query}`,
        headers: { authorization: `Bearer ${token}` },
      });
      return { status: res.statusCode, json: res.json() as { trail?: string[]; error?: { code: string } } };
    };
    assert.deepEqual((await get('namespace=local&pod=web', LOCAL_POLICY)).json.trail, ['a-web']);
    assert.deepEqual((await get('namespace=other&pod=web', ADMIN)).json.trail, ['b-web']);
    // Another namespace reads as one without actions.
    assert.deepEqual((await get('namespace=other&pod=web', LOCAL_POLICY)).json.trail, []);
    const bad = await get('namespace=local', ADMIN);
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error?.code, 'REQUEST_INVALID');
    assert.equal((await get('namespace=local&pod=web', 'nobody')).status, 401);
  } finally {
    await auditing.close();
  }
  const plain = await app.inject({
    url: '/v1/audit?namespace=local&pod=web',
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  assert.equal(plain.statusCode, 404);
});

test('viewers read only their namespace and cannot preview; a preview stores and changes nothing', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const web = fx.run('exec httpd -f -p 8080 -h /www');
  assert.ok(await eventually(() => httpReachable(web.ip, 8080)));
  const viewer = await apiTokens.issue({
    name: 'local viewer',
    role: 'viewer',
    scope: { cluster: 'local', namespaces: ['local'] },
  });
  const done = await post(action('v-1', web.name, { dryRun: true }), { wait: true });
  assert.equal(done.json.status?.phase, 'Succeeded');
  await post(action('v-other', web.name, { dryRun: true }, 'payments'), { token: ADMIN, wait: true });
  assert.equal((await get('/v1/actions/v-1', viewer.token)).status, 200);
  // No requester named: the caller is recorded.
  const unnamed = await post(
    {
      metadata: { name: 'v-2' },
      spec: { target: { namespace: 'local', pod: web.name }, action: 'Snapshot', dryRun: true },
    },
    { wait: true },
  );
  assert.equal(unnamed.json.spec.requestedBy, 'configured:policy');
  assert.equal((await get('/v1/actions/v-other', viewer.token)).status, 404);
  const listed = (await get('/v1/actions', viewer.token)).json.actions;
  assert.ok(listed.length > 0 && listed.every((a: SecurityAction) => a.spec.target.namespace === 'local'));

  const previewOf = (body: unknown, token = LOCAL_POLICY) =>
    app.inject({
      method: 'POST',
      url: '/v1/actions/preview',
      headers: { authorization: `Bearer ${token}` },
      payload: body as object,
    });
  const refused = await previewOf(action('p-viewer', web.name), viewer.token);
  assert.equal(refused.statusCode, 403);
  assert.equal(refused.json().error.code, 'FORBIDDEN');
  assert.equal((await previewOf(action('p-ns', web.name, {}, 'payments'))).statusCode, 403);

  const preview = await previewOf(action('p-1', web.name));
  assert.equal(preview.statusCode, 200, preview.body);
  const body = preview.json<{ plan: string; target: { id: string; running: boolean }; dryRun: boolean }>();
  assert.match(body.plan, /drop all traffic of container/);
  assert.equal(body.target.id, web.id);
  assert.equal(body.dryRun, false);
  assert.equal(enforcer.get('p-1'), undefined, 'a preview stores nothing');
  assert.equal(await isQuarantined({ pid: web.pid }), false, 'and changes nothing');
  const gone = await previewOf(action('p-2', 'no-such-container'));
  assert.equal(gone.statusCode, 400);
  assert.equal(gone.json().error.code, 'CONTAINER_NOT_FOUND');
});

test('evidence files: only those the action lists, from its own bundle, with the recorded digest', async (t) => {
  const fx = PodmanFixture.need(t, fixture);
  if (!fx) return;
  const box = fx.run('exec sleep 3600');
  const snap = await post(action('e-1', box.name, { action: 'Snapshot' }), { wait: true });
  assert.equal(snap.json.status?.phase, 'Succeeded', snap.json.status?.message);
  const item = snap.json.status?.evidence.find((e) => e.uri.endsWith('/inspect.json'));
  assert.ok(item);
  const file = await app.inject({
    url: '/v1/actions/e-1/evidence/inspect.json',
    headers: { authorization: `Bearer ${LOCAL_POLICY}` },
  });
  assert.equal(file.statusCode, 200);
  assert.equal(createHash('sha256').update(file.rawPayload).digest('hex'), item.sha256);
  assert.equal(
    file.headers['repr-digest'],
    `sha-256=:${Buffer.from(item.sha256, 'hex').toString('base64')}:`,
  );
  assert.equal(file.headers['content-type'], 'application/octet-stream');
  assert.match(String(file.headers['content-disposition']), /^attachment; filename="e-1-inspect.json"$/);

  const log = snap.json.status?.evidence.find((e) => e.uri.endsWith('/logs/stdout.log'));
  const logFile = await app.inject({
    url: '/v1/actions/e-1/evidence/logs/stdout.log',
    headers: { authorization: `Bearer ${LOCAL_POLICY}` },
  });
  assert.equal(logFile.statusCode, 200, 'a file in a directory of the bundle');
  assert.equal(createHash('sha256').update(logFile.rawPayload).digest('hex'), log?.sha256);

  // A file dropped into the bundle later is not evidence; nothing outside the bundle is reachable.
  writeFileSync(join(work, 'data', 'evidence', 'e-1', 'planted.txt'), 'x');
  await post(action('e-other', box.name, { action: 'Snapshot' }, 'payments'), { token: ADMIN, wait: true });
  for (const url of [
    '/v1/actions/e-1/evidence/planted.txt',
    '/v1/actions/e-1/evidence/..%2F..%2Fenforcer.sqlite',
    '/v1/actions/e-1/evidence/%2Fetc%2Fpasswd',
    '/v1/actions/e-1/evidence/.',
    '/v1/actions/e-1/evidence/logs/..%2Finspect.json',
    '/v1/actions/e-1/evidence/..%2Fe-other/inspect.json',
    '/v1/actions/e-1/evidence/logs//stdout.log',
    '/v1/actions/e-1/evidence/',
    // Another namespace's evidence looks like a missing action.
    '/v1/actions/e-other/evidence/inspect.json',
  ]) {
    const res = await app.inject({ url, headers: { authorization: `Bearer ${LOCAL_POLICY}` } });
    assert.ok([400, 404].includes(res.statusCode), `${url}: ${res.statusCode}`);
    assert.notEqual(res.headers['content-type'], 'application/octet-stream', url);
  }
});
