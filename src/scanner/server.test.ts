import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startReceiver } from '../events/receiver.test-helper.js';
import { waitUntil } from '../testing/wait.js';
import type { Receiver } from '../events/receiver.test-helper.js';
import { signedBy } from '../testing/webhooks.js';
import { sharedDataDir } from '../testing/shared-data.js';
import { isCI } from '../testing/shared-data.js';
import { existsSync } from 'node:fs';
import { describeEachBackend, startHarness } from './scanner-harness.test-helper.js';
import type { BackendHarness } from './scanner-harness.test-helper.js';

const osvNpm = join(sharedDataDir, 'osv', 'npm');
const haveData = existsSync(osvNpm);
if (!haveData) {
  const msg = `shared OSV data not found at ${osvNpm}`;
  if (isCI()) throw new Error(msg);
  console.warn(`\n*** SKIPPED: ${msg} ***\n`);
}

type Json = Record<string, unknown>;

let h: BackendHarness;
let receiver: Receiver;
let counter = 0;

function auth(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

async function call(
  token: string | undefined,
  method: 'GET' | 'POST' | 'DELETE',
  url: string,
  payload?: unknown,
): Promise<{ status: number; body: Json; headers: Record<string, unknown> }> {
  const res = await h.app.inject({
    method,
    url,
    headers: token === undefined ? {} : auth(token),
    ...(payload === undefined ? {} : { payload: payload as object }),
  });
  return { status: res.statusCode, body: res.body === '' ? {} : (res.json() as Json), headers: res.headers };
}

function report(
  cluster: string,
  namespace: string,
  pod: string,
  packages: [string, string][],
  extra: { hash?: string; scanTime?: string; reportId?: string; container?: string } = {},
): Json {
  return {
    reportId: extra.reportId ?? `r-${++counter}`,
    workload: {
      cluster,
      namespace,
      pod,
      ...(extra.container ? { container: extra.container } : {}),
      node: 'node-1',
      image: 'registry.local/app:1',
    },
    scanTime: extra.scanTime ?? new Date(Date.UTC(2025, 0, 1, 0, 0, counter)).toISOString(),
    inventory: {
      packages: packages.map(([name, version]) => ({
        name,
        version,
        ecosystem: 'npm',
        location: `/app/node_modules/${name}/package.json`,
        extractor: 'npm',
      })),
      insecureConfigurations: [],
    },
    inventoryHash: extra.hash ?? packages.map((p) => p.join('@')).join(','),
  };
}

async function registerCluster(name: string): Promise<string> {
  const res = await call(h.adminToken, 'POST', '/v1/clusters', { name });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.agentToken as string;
}

async function issue(role: string, cluster: string, namespaces: string[] | '*'): Promise<string> {
  const res = await call(h.adminToken, 'POST', '/v1/tokens', {
    name: `${role}-${++counter}`,
    role,
    cluster,
    namespaces,
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.token as string;
}

function count(table: string): Promise<number> {
  return h.count(table);
}

function ids(findings: unknown): string[] {
  return (findings as { id: string; aliases: string[] }[]).flatMap((f) => [f.id, ...f.aliases]).sort();
}

describeEachBackend('scanner API', { skip: !haveData }, (backend) => {
  before(async () => {
    h = await startHarness(osvNpm, { backend: backend.name });
    receiver = await startReceiver();
  });
  after(async () => {
    await receiver?.close();
    await h?.close();
  });

  test('health needs no token; /v1 needs a valid bearer token', async () => {
    assert.equal((await call(undefined, 'GET', '/healthz')).status, 200);
    assert.deepEqual((await call(undefined, 'GET', '/readyz')).body, { status: 'ready' });
    const missing = await call(undefined, 'GET', '/v1/clusters');
    assert.equal(missing.status, 401);
    assert.equal((missing.body.error as Json).code, 'UNAUTHENTICATED');
    assert.match(String(missing.headers['www-authenticate']), /^Bearer /);
    const forged = await call(`ctm_0123456789abcdef_${'A'.repeat(43)}`, 'GET', '/v1/clusters');
    assert.equal(forged.status, 401);
    assert.equal((await call(h.adminToken, 'GET', '/v1/nope')).status, 404);
  });

  test('register a cluster, report with its agent token, read the findings (real OSV records)', async () => {
    const agent = await registerCluster('prod');
    assert.equal((await call(h.adminToken, 'POST', '/v1/clusters', { name: 'prod' })).status, 409);
    const posted = await call(
      agent,
      'POST',
      '/v1/reports',
      report('prod', 'shop', 'web-1', [['minimist', '1.2.5']]),
    );
    assert.equal(posted.status, 201, JSON.stringify(posted.body));
    assert.equal(posted.body.kind, 'full');

    const findings = await call(h.adminToken, 'GET', '/v1/findings?cluster=prod&namespace=shop&pod=web-1');
    assert.equal(findings.status, 200);
    assert.deepEqual(ids(findings.body.vulnerablePackages), ['CVE-2021-44906', 'GHSA-xvch-5gv4-984h']);
    assert.equal((findings.body.workload as Json).pod, 'web-1');
    assert.deepEqual(findings.body.insecureConfigurations, []);

    // An agent may report but not read.
    assert.equal(
      (await call(agent, 'GET', '/v1/findings?cluster=prod&namespace=shop&pod=web-1')).status,
      403,
    );
    const missing = await call(h.adminToken, 'GET', '/v1/findings?cluster=prod&namespace=shop&pod=nope');
    assert.equal(missing.status, 404);
  });

  test('findings ?at= returns the latest scan at or before that time', async () => {
    const agent = await registerCluster('timeline');
    const early = '2025-02-01T00:00:00.000Z';
    const late = '2025-02-03T00:00:00.000Z';
    await call(
      agent,
      'POST',
      '/v1/reports',
      report('timeline', 'ns', 'p', [['minimist', '1.2.5']], { scanTime: early }),
    );
    await call(
      agent,
      'POST',
      '/v1/reports',
      report('timeline', 'ns', 'p', [['minimist', '1.2.6']], { scanTime: late }),
    );
    const q = '/v1/findings?cluster=timeline&namespace=ns&pod=p';
    assert.deepEqual(
      ids((await call(h.adminToken, 'GET', `${q}&at=2025-02-02T00:00:00Z`)).body.vulnerablePackages),
      ['CVE-2021-44906', 'GHSA-xvch-5gv4-984h'],
    );
    const now = await call(h.adminToken, 'GET', q);
    assert.equal(now.body.scanTime, late);
    assert.deepEqual(now.body.vulnerablePackages, []);
    assert.equal((await call(h.adminToken, 'GET', `${q}&at=2025-01-01T00:00:00Z`)).status, 404);
  });

  test('a report id is idempotent; reusing it for another workload is a conflict', async () => {
    const agent = await registerCluster('idem');
    const body = report('idem', 'ns', 'p', [['minimist', '1.2.5']]);
    const first = await call(agent, 'POST', '/v1/reports', body);
    const second = await call(agent, 'POST', '/v1/reports', body);
    assert.equal(first.status, 201);
    assert.equal(second.status, 200);
    assert.equal(second.body.duplicate, true);
    assert.equal(second.body.scanId, first.body.scanId);
    assert.equal(
      (await call(h.adminToken, 'GET', '/v1/scans?cluster=idem')).body.scans instanceof Array,
      true,
    );
    assert.equal(
      ((await call(h.adminToken, 'GET', '/v1/scans?cluster=idem')).body.scans as unknown[]).length,
      1,
    );
    const other = { ...body, workload: { ...(body.workload as Json), pod: 'q' } };
    const conflict = await call(agent, 'POST', '/v1/reports', other);
    assert.equal(conflict.status, 409);
    assert.equal((conflict.body.error as Json).code, 'REPORT_ID_CONFLICT');
  });

  test('events: first scan and changed findings are delivered, signed; an unchanged hash is only a check-in', async () => {
    const agent = await registerCluster('events');
    const trigger = await call(h.adminToken, 'POST', '/v1/triggers', {
      cluster: 'events',
      url: `${receiver.url}/hook`,
      secret: 'trigger-secret',
    });
    assert.equal(trigger.status, 201, JSON.stringify(trigger.body));
    assert.equal('secret' in trigger.body, false);
    const everyScan = await call(h.adminToken, 'POST', '/v1/triggers', {
      cluster: 'events',
      url: `${receiver.url}/every`,
      secret: 'other-secret',
      options: { everyScan: true },
    });
    assert.equal(everyScan.status, 201);
    const toHook = () => receiver.requests.filter((r) => r.path === '/hook');
    const toEvery = () => receiver.requests.filter((r) => r.path === '/every');

    await call(
      agent,
      'POST',
      '/v1/reports',
      report('events', 'ns', 'p', [['minimist', '1.2.5']], { hash: 'h1' }),
    );
    await waitUntil(() => toHook().length === 1 && toEvery().length === 1, 5000, 'first event');
    const first = toHook()[0]!;
    assert.ok(signedBy(first.body, first.headers, 'trigger-secret'));
    assert.equal(signedBy(first.body, first.headers, 'wrong'), false);
    const event = JSON.parse(first.body) as Json;
    assert.equal(event.type, 'dev.containment.scan.completed');
    assert.equal(event.source, '/containment/events');
    assert.deepEqual((event.data as Json).newFindings, ['CVE-2021-44906']);
    const summary = (event.data as { summary: Record<string, number> }).summary;
    assert.equal(
      Object.values(summary).reduce((a, b) => a + b, 0),
      1,
    );

    // Same hash: a check-in — no new result row, no event for the ordinary trigger.
    const results = await count('scanner_results');
    const outboxBefore = await count('event_outbox');
    const checkIn = await call(
      agent,
      'POST',
      '/v1/reports',
      report('events', 'ns', 'p', [['minimist', '1.2.5']], { hash: 'h1' }),
    );
    assert.equal(checkIn.body.kind, 'check-in');
    assert.equal(await count('scanner_results'), results);
    await waitUntil(() => toEvery().length === 2, 5000, 'every-scan event for the check-in');
    assert.equal(await count('event_outbox'), outboxBefore + 1);
    assert.equal(toHook().length, 1);

    // New hash, same findings: matched again, still no event for the ordinary trigger.
    const same = await call(
      agent,
      'POST',
      '/v1/reports',
      report(
        'events',
        'ns',
        'p',
        [
          ['minimist', '1.2.5'],
          ['left-pad', '1.0.0'],
        ],
        { hash: 'h2' },
      ),
    );
    assert.equal(same.body.kind, 'full');
    await waitUntil(() => toEvery().length === 3, 5000, 'every-scan event');
    assert.equal(toHook().length, 1);

    // Changed findings: delivered, with only the new ids in newFindings.
    await call(
      agent,
      'POST',
      '/v1/reports',
      report(
        'events',
        'ns',
        'p',
        [
          ['minimist', '1.2.5'],
          ['lodash', '4.17.20'],
        ],
        { hash: 'h3' },
      ),
    );
    await waitUntil(() => toHook().length === 2, 5000, 'changed-findings event');
    const changed = JSON.parse(toHook()[1]!.body) as { id: string; data: { newFindings: string[] } };
    assert.deepEqual(changed.data.newFindings, ['CVE-2020-28500', 'CVE-2021-23337']);
    assert.notEqual(changed.id, event.id);
    const scans = (await call(h.adminToken, 'GET', '/v1/scans?cluster=events')).body.scans as {
      kind: string;
    }[];
    assert.deepEqual(
      scans.map((s) => s.kind),
      ['full', 'full', 'check-in', 'full'],
    );
  });

  test("a report without inventory is a check-in only when its hash is the workload's last one", async () => {
    const agent = await registerCluster('hashonly');
    const hashOnly = (pod: string, hash: string, reportId?: string): Json => {
      const { inventory: _omitted, ...rest } = report('hashonly', 'ns', pod, [], {
        hash,
        ...(reportId ? { reportId } : {}),
      });
      return rest;
    };
    const tally = async (): Promise<number[]> =>
      Promise.all(['scanner_workloads', 'scanner_results', 'scanner_scans', 'scanner_reports'].map(count));

    // Nothing known yet: the server cannot check in a workload it never matched.
    const before = await tally();
    const first = await call(agent, 'POST', '/v1/reports', hashOnly('p', 'h1'));
    assert.equal(first.status, 409, JSON.stringify(first.body));
    assert.equal((first.body.error as Json).code, 'INVENTORY_REQUIRED');
    assert.deepEqual(await tally(), before);

    const full = await call(
      agent,
      'POST',
      '/v1/reports',
      report('hashonly', 'ns', 'p', [['minimist', '1.2.5']], { hash: 'h1' }),
    );
    assert.equal(full.body.kind, 'full');
    const [workloads, results, scans, reports] = await tally();

    const checkIn = await call(agent, 'POST', '/v1/reports', hashOnly('p', 'h1', 'hash-only-1'));
    assert.equal(checkIn.status, 201, JSON.stringify(checkIn.body));
    assert.equal(checkIn.body.kind, 'check-in');
    assert.deepEqual(await tally(), [workloads, results, (scans ?? 0) + 1, (reports ?? 0) + 1]);
    // The check-in carries the last result forward: the findings are still there.
    const findings = await call(h.adminToken, 'GET', '/v1/findings?cluster=hashonly&namespace=ns&pod=p');
    assert.equal(findings.body.scanId, checkIn.body.scanId);
    assert.deepEqual(ids(findings.body.vulnerablePackages), ['CVE-2021-44906', 'GHSA-xvch-5gv4-984h']);
    const retried = await call(agent, 'POST', '/v1/reports', hashOnly('p', 'h1', 'hash-only-1'));
    assert.equal(retried.status, 200);
    assert.equal(retried.body.scanId, checkIn.body.scanId);

    // A different hash, or a workload the server has never seen: the inventory is required.
    const afterCheckIn = await tally();
    for (const body of [hashOnly('p', 'h2'), hashOnly('other', 'h1')]) {
      const res = await call(agent, 'POST', '/v1/reports', body);
      assert.equal(res.status, 409, JSON.stringify(body));
      assert.equal((res.body.error as Json).code, 'INVENTORY_REQUIRED');
    }
    assert.deepEqual(await tally(), afterCheckIn);
  });

  test('bad reports get 4xx with a code and store nothing', async () => {
    const agent = await registerCluster('bad');
    const otherAgent = await registerCluster('elsewhere');
    const before = await count('scanner_scans');
    const good = report('bad', 'ns', 'p', [['minimist', '1.2.5']]);
    const cases: [unknown, number, string][] = [
      [{ ...good, workload: { ...(good.workload as Json), namespace: '*' } }, 400, 'REQUEST_INVALID'],
      [{ ...good, scanTime: 'yesterday' }, 400, 'REQUEST_INVALID'],
      [
        { ...good, inventory: { packages: [{ name: 'x' }], insecureConfigurations: [] } },
        400,
        'REQUEST_INVALID',
      ],
      [{ ...good, inventoryHash: undefined }, 400, 'REQUEST_INVALID'],
    ];
    for (const [body, status, code] of cases) {
      const res = await call(agent, 'POST', '/v1/reports', body);
      assert.equal(res.status, status, JSON.stringify(body));
      assert.equal((res.body.error as Json).code, code);
    }
    const notJson = await h.app.inject({
      method: 'POST',
      url: '/v1/reports',
      headers: { ...auth(agent), 'content-type': 'application/json' },
      payload: '{"reportId": ',
    });
    assert.equal(notJson.statusCode, 400);
    assert.equal((notJson.json() as { error: Json }).error.code, 'INVALID_JSON');

    // Another cluster's agent token: forbidden, whether or not the cluster exists.
    const cross = await call(otherAgent, 'POST', '/v1/reports', good);
    assert.equal(cross.status, 403);
    assert.equal((cross.body.error as Json).code, 'FORBIDDEN');
    assert.equal(
      (await call(otherAgent, 'POST', '/v1/reports', report('ghost', 'ns', 'p', [], { hash: 'h' }))).status,
      403,
    );
    const unknown = await call(
      h.adminToken,
      'POST',
      '/v1/reports',
      report('ghost', 'ns', 'p', [], { hash: 'h' }),
    );
    assert.equal(unknown.status, 404);
    assert.equal((unknown.body.error as Json).code, 'CLUSTER_NOT_FOUND');
    assert.equal(await count('scanner_scans'), before);

    // Removing a cluster revokes its agent token.
    assert.equal((await call(h.adminToken, 'DELETE', '/v1/clusters/elsewhere')).status, 204);
    assert.equal(
      (await call(otherAgent, 'POST', '/v1/reports', report('elsewhere', 'ns', 'p', [], { hash: 'h' })))
        .status,
      401,
    );
    assert.equal((await call(h.adminToken, 'DELETE', '/v1/clusters/elsewhere')).status, 404);
  });

  test('oversized reports get 413 and store nothing', async () => {
    const small = await startHarness(osvNpm, { backend: backend.name, bodyLimit: 16 * 1024 });
    try {
      const res = await small.app.inject({
        method: 'POST',
        url: '/v1/clusters',
        headers: auth(small.adminToken),
        payload: { name: 'c' },
      });
      const agent = (res.json() as { agentToken: string }).agentToken;
      const packages: [string, string][] = Array.from({ length: 400 }, (_, i) => [`pkg-${i}`, '1.0.0']);
      const big = await small.app.inject({
        method: 'POST',
        url: '/v1/reports',
        headers: auth(agent),
        payload: report('c', 'ns', 'p', packages),
      });
      assert.equal(big.statusCode, 413);
      assert.equal((big.json() as { error: Json }).error.code, 'PAYLOAD_TOO_LARGE');
      assert.equal(await small.count('scanner_scans'), 0);
    } finally {
      await small.close();
    }
  });

  test('path-shaped workload names in queries are 400, never a lookup', async () => {
    for (const url of [
      '/v1/findings?cluster=prod&namespace=shop&pod=..%2F..%2Fx',
      '/v1/findings?cluster=prod&namespace=..&pod=web-1',
      '/v1/findings?cluster=prod&namespace=shop&pod=web-1&container=a..b',
      '/v1/workloads?pod=%2Fetc',
    ]) {
      const res = await call(h.adminToken, 'GET', url);
      assert.equal(res.status, 400, url);
      assert.equal((res.body.error as Json).code, 'REQUEST_INVALID', url);
    }
  });

  test('trigger URLs are checked against SSRF', async () => {
    await registerCluster('ssrf');
    const before = await count('scanner_triggers');
    for (const url of [
      'http://169.254.169.254/latest/meta-data',
      'http://10.0.0.1/hook',
      'file:///etc/passwd',
    ]) {
      const res = await call(h.adminToken, 'POST', '/v1/triggers', { cluster: 'ssrf', url, secret: 's' });
      assert.equal(res.status, 400, url);
      assert.equal((res.body.error as Json).code, 'TARGET_URL_REFUSED');
    }
    assert.equal(await count('scanner_triggers'), before);
  });

  test('dead letters: listed and replayed by an admin only', async () => {
    const agent = await registerCluster('dead');
    let up = false;
    const flaky = await startReceiver(() => ({ status: up ? 204 : 500 }));
    try {
      await call(h.adminToken, 'POST', '/v1/triggers', { cluster: 'dead', url: flaky.url, secret: 's' });
      await call(agent, 'POST', '/v1/reports', report('dead', 'ns', 'p', [['minimist', '1.2.5']]));
      let dead: Json[] = [];
      await waitUntil(() => h.outcomes.some((o) => o.result === 'dead'), 5000, 'dead letter');
      dead = (await call(h.adminToken, 'GET', '/v1/deadletters')).body.deadLetters as Json[];
      assert.equal(dead.length, 1);
      assert.equal((dead[0]!.event as Json).type, 'dev.containment.scan.completed');
      const viewer = await issue('viewer', 'dead', '*');
      assert.equal((await call(viewer, 'GET', '/v1/deadletters')).status, 403);
      up = true;
      const replay = await call(h.adminToken, 'POST', '/v1/deadletters/replay', {});
      assert.deepEqual(replay.body, { replayed: 1 });
      await waitUntil(() => flaky.requests.length === 3, 5000, 'replayed delivery');
      assert.equal(
        ((await call(h.adminToken, 'GET', '/v1/deadletters')).body.deadLetters as Json[]).length,
        0,
      );
    } finally {
      await flaky.close();
    }
  });

  describe('namespace isolation', () => {
    let viewerA: string;
    let scanB: number;
    const hookA = () => receiver.requests.filter((r) => r.path === '/iso-a');

    before(async () => {
      const agent = await registerCluster('iso');
      await call(h.adminToken, 'POST', '/v1/triggers', {
        cluster: 'iso',
        namespaces: ['a'],
        url: `${receiver.url}/iso-a`,
        secret: 's',
      });
      await call(h.adminToken, 'POST', '/v1/triggers', {
        cluster: 'iso',
        namespaces: ['b'],
        url: `${receiver.url}/iso-b`,
        secret: 's',
      });
      await call(agent, 'POST', '/v1/reports', report('iso', 'a', 'pa', [['minimist', '1.2.5']]));
      scanB = (await call(agent, 'POST', '/v1/reports', report('iso', 'b', 'pb', [['lodash', '4.17.20']])))
        .body.scanId as number;
      viewerA = await issue('viewer', 'iso', ['a']);
    });

    test('findings, workloads, scans and one scan', async () => {
      assert.equal((await call(viewerA, 'GET', '/v1/findings?cluster=iso&namespace=a&pod=pa')).status, 200);
      const b = await call(viewerA, 'GET', '/v1/findings?cluster=iso&namespace=b&pod=pb');
      assert.equal(b.status, 403);
      for (const path of ['/v1/workloads', '/v1/scans']) {
        for (const query of [
          '',
          '?cluster=iso',
          '?namespace=b',
          '?cluster=iso&namespace=b',
          '?cluster=prod',
        ]) {
          const res = await call(viewerA, 'GET', `${path}${query}`);
          assert.equal(res.status, 200);
          const rows = (res.body.workloads ?? res.body.scans) as { workload: Json }[];
          assert.ok(
            rows.every((r) => r.workload.cluster === 'iso' && r.workload.namespace === 'a'),
            `${path}${query}`,
          );
          assert.equal(rows.length, query.includes('b') || query.includes('prod') ? 0 : 1, `${path}${query}`);
        }
      }
      assert.equal((await call(viewerA, 'GET', `/v1/scans/${scanB}`)).status, 404);
      assert.equal((await call(h.adminToken, 'GET', `/v1/scans/${scanB}`)).status, 200);
    });

    test('counts: summary and cluster list', async () => {
      const summary = (await call(viewerA, 'GET', '/v1/summary')).body.namespaces as Json[];
      assert.deepEqual(
        summary.map((s) => [
          s.cluster,
          s.namespace,
          s.workloads,
          s.vulnerableWorkloads,
          s.compliantWorkloads,
        ]),
        [['iso', 'a', 1, 1, 0]],
      );
      assert.deepEqual((await call(viewerA, 'GET', '/v1/summary?namespace=b')).body.namespaces, []);
      const adminSummary = (await call(h.adminToken, 'GET', '/v1/summary?cluster=iso')).body
        .namespaces as Json[];
      assert.deepEqual(
        adminSummary.map((s) => s.namespace),
        ['a', 'b'],
      );
      const clusters = (await call(viewerA, 'GET', '/v1/clusters')).body.clusters as Json[];
      assert.deepEqual(
        clusters.map((c) => [c.name, c.workloads]),
        [['iso', 1]],
      );
    });

    test('triggers: cannot create, see or delete another namespace’s', async () => {
      const analystA = await issue('analyst', 'iso', ['a']);
      const forB = await call(analystA, 'POST', '/v1/triggers', {
        cluster: 'iso',
        namespaces: ['b'],
        url: `${receiver.url}/x`,
        secret: 's',
      });
      assert.equal(forB.status, 403);
      const forAll = await call(analystA, 'POST', '/v1/triggers', {
        cluster: 'iso',
        url: `${receiver.url}/x`,
        secret: 's',
      });
      assert.equal(forAll.status, 403);
      assert.equal(
        (
          await call(viewerA, 'POST', '/v1/triggers', {
            cluster: 'iso',
            namespaces: ['a'],
            url: `${receiver.url}/x`,
            secret: 's',
          })
        ).status,
        403,
      );
      const mine = await call(analystA, 'POST', '/v1/triggers', {
        cluster: 'iso',
        namespaces: ['a'],
        url: `${receiver.url}/x`,
        secret: 's',
      });
      assert.equal(mine.status, 201);
      const visible = (await call(viewerA, 'GET', '/v1/triggers')).body.triggers as Json[];
      assert.ok(visible.length >= 2);
      assert.ok(visible.every((t) => t.cluster === 'iso' && JSON.stringify(t.namespaces) === '["a"]'));
      const all = (await call(h.adminToken, 'GET', '/v1/triggers')).body.triggers as Json[];
      const triggerB = all.find((t) => t.url === `${receiver.url}/iso-b`)!;
      assert.equal((await call(analystA, 'DELETE', `/v1/triggers/${triggerB.id as string}`)).status, 404);
      assert.equal((await call(analystA, 'DELETE', `/v1/triggers/${mine.body.id as string}`)).status, 204);
    });

    test('event deliveries: a namespace’s trigger gets only that namespace’s events', async () => {
      await waitUntil(() => receiver.requests.some((r) => r.path === '/iso-b'), 5000, 'event for b');
      assert.equal(hookA().length, 1);
      const data = (JSON.parse(hookA()[0]!.body) as { data: { workload: Json } }).data;
      assert.equal(data.workload.namespace, 'a');
      assert.ok(
        receiver.requests.filter((r) => r.path === '/iso-b').every((r) => r.body.includes('"namespace":"b"')),
      );
    });

    test('tokens: a namespace admin issues, lists and revokes only inside its scope', async () => {
      const adminA = await issue('admin', 'iso', ['a']);
      assert.equal(
        (
          await call(adminA, 'POST', '/v1/tokens', {
            name: 'x',
            role: 'viewer',
            cluster: 'iso',
            namespaces: ['b'],
          })
        ).status,
        403,
      );
      assert.equal(
        (
          await call(adminA, 'POST', '/v1/tokens', {
            name: 'x',
            role: 'viewer',
            cluster: 'iso',
            namespaces: '*',
          })
        ).status,
        403,
      );
      const ok = await call(adminA, 'POST', '/v1/tokens', {
        name: 'x',
        role: 'viewer',
        cluster: 'iso',
        namespaces: ['a'],
      });
      assert.equal(ok.status, 201);
      const listed = (await call(adminA, 'GET', '/v1/tokens')).body.tokens as { scope: Json }[];
      assert.ok(listed.length >= 2);
      assert.ok(
        listed.every((t) => t.scope.cluster === 'iso' && JSON.stringify(t.scope.namespaces) === '["a"]'),
      );
      assert.ok(listed.every((t) => !('hash' in t)));
      const global = (
        (await call(h.adminToken, 'GET', '/v1/tokens')).body.tokens as { id: string; name: string }[]
      ).find((t) => t.name === 'admin')!;
      assert.equal((await call(adminA, 'DELETE', `/v1/tokens/${global.id}`)).status, 404);
      assert.equal((await call(viewerA, 'GET', '/v1/tokens')).status, 403);
      // Scoped admins cannot touch global things either.
      assert.equal((await call(adminA, 'GET', '/v1/deadletters')).status, 403);
      assert.equal((await call(adminA, 'POST', '/v1/clusters', { name: 'new' })).status, 403);
      assert.equal((await call(adminA, 'DELETE', '/v1/clusters/iso')).status, 403);
      const own = (ok.body.info as { id: string }).id;
      assert.equal((await call(adminA, 'DELETE', `/v1/tokens/${own}`)).status, 204);
      assert.equal((await call(ok.body.token as string, 'GET', '/v1/workloads')).status, 401);
    });
  });
});
