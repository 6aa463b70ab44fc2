/**
 * Runtime detections through the scanner API on both engines: stored and aggregated, one
 * `runtime.detected` event per new aggregate in the outbox, namespace scoping like findings, bad
 * input (agent body or Falco payload) a 400 with nothing stored.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { RuntimeDetection } from '../runtime/contracts.js';
import { sharedDataDir } from '../testing/shared-data.js';
import { describeEachBackend, startHarness } from './scanner-harness.test-helper.js';
import type { BackendHarness } from './scanner-harness.test-helper.js';
import type { PostgresScannerStore } from '../storage/scanner/postgres-scanner-store.js';
import { SqliteScannerStore } from '../storage/scanner/sqlite-scanner-store.js';

const osvNpm = join(sharedDataDir, 'osv', 'npm');
const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`../runtime/falco/fixtures/${name}`, import.meta.url), 'utf8'));

function detection(namespace: string, overrides: Partial<RuntimeDetection> = {}): RuntimeDetection {
  return {
    workload: {
      cluster: 'c1',
      namespace,
      pod: `${namespace}-pod`,
      container: 'app',
      node: 'n1',
      image: 'registry.local/app:1',
      containerId: 'a'.repeat(64),
    },
    ruleId: 'reverse_shell',
    kind: 'process',
    severity: 'CRITICAL',
    title: 'A shell whose stdin/stdout is a socket',
    detectedAt: '2025-03-01T12:00:00.000Z',
    process: { pid: 42, uid: 0, name: 'sh', exe: '/bin/sh', argv: ['sh', '-i'] },
    evidence: { stdinSocket: true },
    baseline: { state: 'none' },
    count: 1,
    firstSeen: '2025-03-01T12:00:00.000Z',
    lastSeen: '2025-03-01T12:00:00.000Z',
    fingerprint: `fp-${namespace}`,
    source: 'ebpf',
    ...overrides,
  };
}

async function outboxBodies(h: BackendHarness): Promise<string[]> {
  const sql = 'SELECT body FROM event_outbox ORDER BY created_at';
  if (h.store instanceof SqliteScannerStore)
    return (h.store.db.prepare(sql).all() as { body: string }[]).map((r) => r.body);
  const { rows } = await (h.store as PostgresScannerStore).pool.query<{ body: string }>(sql);
  return rows.map((r) => r.body);
}

describeEachBackend('runtime detections', { skip: !existsSync(osvNpm) }, (backend) => {
  let h: BackendHarness;
  let agent = '';
  const as = (token: string) => ({ authorization: `Bearer ${token}` });
  const post = (payload: unknown, token = agent, url = '/v1/detections') =>
    h.app.inject({ method: 'POST', url, headers: as(token), payload: payload as object });
  const list = async (token: string, query = ''): Promise<RuntimeDetection[]> => {
    const res = await h.app.inject({ method: 'GET', url: `/v1/detections${query}`, headers: as(token) });
    assert.equal(res.statusCode, 200, res.body);
    return (res.json() as { detections: RuntimeDetection[] }).detections;
  };
  const issue = async (role: string, namespaces: string[] | '*'): Promise<string> => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/tokens',
      headers: as(h.adminToken),
      payload: { name: `${role}-${String(namespaces)}`, role, cluster: 'c1', namespaces },
    });
    assert.equal(res.statusCode, 201, res.body);
    return (res.json() as { token: string }).token;
  };

  before(async () => {
    h = await startHarness(osvNpm, { backend: backend.name });
    const cluster = await h.app.inject({
      method: 'POST',
      url: '/v1/clusters',
      headers: as(h.adminToken),
      payload: { name: 'c1' },
    });
    agent = (cluster.json() as { agentToken: string }).agentToken;
    const trigger = await h.app.inject({
      method: 'POST',
      url: '/v1/triggers',
      headers: as(h.adminToken),
      payload: { cluster: 'c1', namespaces: ['payments'], url: 'http://127.0.0.1:9/x', secret: 's' },
    });
    assert.equal(trigger.statusCode, 201, trigger.body);
  });
  after(async () => {
    await h?.close();
  });

  test('stored, aggregated by workload+rule+fingerprint, one event per new aggregate', async () => {
    const first = await post({ detections: [detection('payments'), detection('web')] });
    assert.equal(first.statusCode, 201, first.body);
    // Only payments has a trigger: one event.
    assert.deepEqual(first.json(), { received: 2, created: 2, events: 1 });
    assert.equal(await h.count('event_outbox'), 1);
    // The agent re-sends its growing aggregate (same first-seen): only the growth counts.
    const again = await post({
      detections: [detection('payments', { count: 3, lastSeen: '2025-03-01T12:01:00.000Z' })],
    });
    assert.deepEqual(again.json(), { received: 1, created: 0, events: 0 });
    // Another agent aggregate (restart, Falco) adds its whole count.
    await post({
      detections: [
        detection('payments', {
          count: 2,
          firstSeen: '2025-03-01T13:00:00.000Z',
          lastSeen: '2025-03-01T13:00:05.000Z',
        }),
      ],
    });
    assert.equal(await h.count('event_outbox'), 1, 'repeats are no event storm');
    const [payments] = await list(h.adminToken, '?namespace=payments');
    assert.equal(payments?.count, 5);
    assert.equal(payments?.firstSeen, '2025-03-01T12:00:00.000Z');
    assert.equal(payments?.lastSeen, '2025-03-01T13:00:05.000Z');
    assert.equal(payments?.ruleId, 'reverse_shell');
    const rows = await outboxBodies(h);
    assert.equal(rows.length, 1);
    const body = JSON.parse(rows[0] ?? '{}') as { type: string; subject: string; data: RuntimeDetection };
    assert.equal(body.type, 'dev.containment.runtime.detected');
    assert.equal(body.subject, 'payments/payments-pod/app');
    assert.equal(body.data.ruleId, 'reverse_shell');
    assert.equal(body.data.baseline.state, 'none');
    // The event names the stored aggregate, which GET /v1/detections/{id} returns.
    const { detectionId } = body.data as RuntimeDetection & { detectionId?: number };
    assert.equal(detectionId, (payments as RuntimeDetection & { id: number }).id);
    const one = await h.app.inject({
      method: 'GET',
      url: `/v1/detections/${detectionId}`,
      headers: as(h.adminToken),
    });
    assert.equal(one.statusCode, 200, one.body);
    assert.equal((one.json() as { count: number }).count, 5);
  });

  test('readers see only their namespaces; since filters by last seen', async () => {
    const web = await issue('viewer', ['web']);
    assert.deepEqual(
      (await list(web)).map((d) => d.workload.namespace),
      ['web'],
    );
    assert.deepEqual(await list(web, '?namespace=payments'), []);
    // One by id: another namespace's looks just like a missing one.
    const [payments] = (await list(h.adminToken, '?namespace=payments')) as (RuntimeDetection & {
      id: number;
    })[];
    for (const id of [payments?.id, 999_999]) {
      const res = await h.app.inject({ method: 'GET', url: `/v1/detections/${id}`, headers: as(web) });
      assert.equal(res.statusCode, 404, res.body);
    }
    assert.deepEqual(await list(web, '?cluster=c1&pod=payments-pod'), []);
    const all = await list(h.adminToken, '?since=2025-03-01T12:30:00Z');
    assert.deepEqual(
      all.map((d) => d.workload.namespace),
      ['payments'],
    );
  });

  test('bad input is a 400 and nothing is stored; other namespaces and clusters are refused', async () => {
    const before = await h.count('scanner_detections');
    const bad = await post({ detections: [detection('web'), { ...detection('x'), severity: 'awful' }] });
    assert.equal(bad.statusCode, 400, bad.body);
    assert.match((bad.json() as { error: { message: string } }).error.message, /severity/);
    assert.equal((await post({ detections: [detection('*')] })).statusCode, 400);
    const webAgent = await issue('agent', ['web']);
    const refused = await post(
      { detections: [detection('web', { fingerprint: 'n' }), detection('payments')] },
      webAgent,
    );
    assert.equal(refused.statusCode, 403, refused.body);
    const otherCluster = await post({
      detections: [detection('web', { workload: { ...detection('web').workload, cluster: 'c2' } })],
    });
    assert.equal(otherCluster.statusCode, 403, otherCluster.body);
    assert.equal(await h.count('scanner_detections'), before);
  });

  test('Falco alerts become detections; a malformed payload is a 400 with nothing stored', async () => {
    const before = await h.count('scanner_detections');
    const ok = await post(fixture('falco-http-output.json'), agent, '/v1/falco/alerts');
    assert.equal(ok.statusCode, 202, ok.body);
    assert.equal((ok.json() as { accepted: number }).accepted, 1);
    const [stored] = await list(h.adminToken, '?namespace=shop');
    assert.equal(stored?.ruleId, 'falco:terminal_shell_in_container');
    assert.equal(stored?.workload.cluster, 'c1', 'the cluster comes from the token');
    assert.equal(stored?.source, 'falco');
    const count = await h.count('scanner_detections');
    assert.equal(count, before + 1);
    for (const payload of [{ rule: 'x' }, [{ output: 1 }], { output_fields: 'x' }]) {
      const res = await post(payload, agent, '/v1/falco/alerts');
      assert.equal(res.statusCode, 400, res.body);
      assert.equal((res.json() as { error: { code: string } }).error.code, 'FALCO_ALERT_INVALID');
    }
    const viewer = await issue('viewer', '*');
    assert.equal((await post(fixture('falco-http-output.json'), viewer, '/v1/falco/alerts')).statusCode, 403);
    const webAgent = await issue('agent', ['web']);
    assert.equal(
      (await post(fixture('falco-http-output.json'), webAgent, '/v1/falco/alerts')).statusCode,
      403,
    );
    assert.equal(await h.count('scanner_detections'), count);
  });
});
