import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { startReceiver } from '../events/receiver.test-helper.js';
import { waitUntil } from '../testing/wait.js';
import type { Receiver } from '../events/receiver.test-helper.js';
import { TargetGuard } from '../events/ssrf.js';
import type { Package } from '../inventory/types.js';
import { evaluateInventory } from '../scan/scan.js';
import type { AdvisoryStore } from '../vulndb/advisory-store.js';
import type { OsvRecord } from '../vulndb/osv.js';
import { openSqliteAdvisoryStore } from '../vulndb/sqlite-store.js';
import { sharedDataOrSkip } from '../testing/shared-data.js';
import { Rematcher, rematchAdvisories } from './rematch.js';
import { startHarness } from './scanner-harness.test-helper.js';
import type { Harness } from './scanner-harness.test-helper.js';
import { buildScannerApp } from './server.js';

type Json = Record<string, unknown>;

/** A made-up advisory (clearly not a real one) affecting lodash 4.17.21. */
const FIXTURE_ID = 'TEST-REMATCH-LODASH-0001';
function fixtureRecord(modified: string, packageName = 'lodash'): OsvRecord {
  return {
    schema_version: '1.6.0',
    id: FIXTURE_ID,
    modified,
    summary: 'Test fixture: made-up advisory for the re-match tests',
    affected: [
      {
        package: { ecosystem: 'npm', name: packageName },
        ranges: [{ type: 'SEMVER', events: [{ introduced: '4.17.0' }, { fixed: '4.17.99' }] }],
      },
    ],
  } as OsvRecord;
}

let shared: string | undefined;
let h: Harness;
let receiver: Receiver;
let rematcher: Rematcher;
let agent: string;
let counter = 0;
/** B's first scan time. */
let firstScanOfB = '';

function skipWithoutData(t: TestContext): boolean {
  shared ??= sharedDataOrSkip(t);
  return shared === undefined;
}

async function call(token: string, method: 'GET' | 'POST', url: string, payload?: unknown) {
  const res = await h.app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${token}` },
    ...(payload === undefined ? {} : { payload: payload as object }),
  });
  return { status: res.statusCode, body: res.json() as Json };
}

function npm(name: string, version: string): Package {
  return {
    name,
    version,
    ecosystem: 'npm',
    location: `/app/node_modules/${name}/package.json`,
    extractor: 'npm',
  };
}

async function postReport(pod: string, packages: Package[]): Promise<Json> {
  const res = await call(agent, 'POST', '/v1/reports', {
    reportId: `r-${++counter}`,
    workload: { cluster: 'c1', namespace: 'ns', pod, node: 'node-1', image: 'registry.local/app:1' },
    scanTime: new Date(Date.UTC(2025, 0, 1, 0, 0, counter)).toISOString(),
    inventory: { packages, insecureConfigurations: [] },
    inventoryHash: packages.map((p) => `${p.name}@${p.version}`).join(','),
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

async function findings(pod: string): Promise<Json> {
  const res = await call(h.adminToken, 'GET', `/v1/findings?cluster=c1&namespace=ns&pod=${pod}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

function findingIds(body: Json): string[] {
  return (body.vulnerablePackages as { id: string; aliases: string[] }[])
    .flatMap((f) => [f.id, ...f.aliases])
    .sort();
}

function scanKinds(pod: string): string[] {
  return h.store.db
    .prepare(
      `SELECT s.kind FROM scanner_scans s JOIN scanner_workloads w ON w.id = s.workload_id
         WHERE w.pod = ? ORDER BY s.id`,
    )
    .pluck()
    .all(pod) as string[];
}

/** CloudEvents the receiver got, by type: the subject (workload) of each. */
function received(type: string): string[] {
  return receiver.requests
    .map((r) => JSON.parse(r.body) as { type: string; subject: string })
    .filter((e) => e.type === type)
    .map((e) => e.subject);
}

function receivedData(type: string): Json[] {
  return receiver.requests
    .map((r) => JSON.parse(r.body) as { type: string; data: Json })
    .filter((e) => e.type === type)
    .map((e) => e.data);
}

async function importRecords(store: AdvisoryStore, records: unknown[]) {
  return store.importRecords(records.map((record, i) => ({ record, origin: `test[${i}]` })));
}

/** The rematch result must equal what a full scan of the stored inventory gives now. */
async function assertSameAsFullScan(pod: string): Promise<void> {
  const [scan] = await h.store.latestScans(
    'c1',
    { cluster: '*', namespaces: '*' },
    { pod },
    new Date(8.64e15),
  );
  assert.ok(scan);
  const full = await evaluateInventory(
    { kind: 'container', ref: pod },
    { completeness: 'complete', gaps: [], ...scan.inventory, notes: [] },
    h.advisories,
    { scanTime: scan.scanTime },
  );
  assert.deepEqual(scan.vulnerabilities, full.vulnerabilities);
  assert.deepEqual(scan.summary, full.summary);
}

const FINDINGS_CHANGED = 'dev.containment.findings.changed';

describe('re-match when the advisories change', () => {
  after(async () => {
    await rematcher?.stop();
    await receiver?.close();
    await h?.close();
  });

  test('setup: workloads A (minimist 1.2.5), B (lodash 4.17.21), C (unrelated), a trigger', async (t) => {
    if (skipWithoutData(t)) return;
    h = await startHarness(join(shared as string, 'osv', 'npm'));
    receiver = await startReceiver();
    const cluster = await call(h.adminToken, 'POST', '/v1/clusters', { name: 'c1' });
    agent = cluster.body.agentToken as string;
    const trigger = await call(h.adminToken, 'POST', '/v1/triggers', {
      cluster: 'c1',
      url: receiver.url,
      secret: 's3cret',
    });
    assert.equal(trigger.status, 201, JSON.stringify(trigger.body));
    await postReport('a', [npm('minimist', '1.2.5'), npm('left-pad', '1.3.0')]);
    await postReport('b', [npm('lodash', '4.17.21'), npm('minimist', '1.2.8')]);
    await postReport('c', [npm('left-pad', '1.3.0')]);
    await waitUntil(() => received('dev.containment.scan.completed').length === 3, 10_000, 'first scans');
    assert.deepEqual(findingIds(await findings('a')), ['CVE-2021-44906', 'GHSA-xvch-5gv4-984h']);
    const b = await findings('b');
    assert.deepEqual(findingIds(b), []);
    firstScanOfB = b.scanTime as string;

    rematcher = new Rematcher({
      store: h.store,
      advisories: h.advisories,
      onEvents: () => h.deliverer.notify(),
      pollIntervalMs: 0,
    });
    const baseline = await rematcher.check();
    assert.equal(baseline.sinceImportId, undefined);
    assert.equal(baseline.advisories, 0);
    assert.equal(await h.store.rematchCursor(), baseline.importId);
  });

  test('a new advisory affecting lodash 4.17.21: only B is re-matched, with one event', async (t) => {
    if (skipWithoutData(t)) return;
    const imported = await importRecords(h.advisories, [fixtureRecord('2025-06-01T00:00:00Z')]);
    assert.deepEqual(imported.addedIds, [FIXTURE_ID]);
    const check = await rematcher.check();
    assert.equal(check.importId, imported.importId);
    assert.deepEqual([check.advisories, check.candidates, check.rematched, check.events], [1, 1, 1, 1]);

    await waitUntil(() => received(FINDINGS_CHANGED).length === 1, 10_000, 'findings.changed');
    assert.deepEqual(received(FINDINGS_CHANGED), ['ns/b']);
    const [data] = receivedData(FINDINGS_CHANGED);
    assert.equal(data?.reason, 'feed-update');
    assert.deepEqual(data?.newFindings, [FIXTURE_ID]);
    assert.equal((data?.workload as Json).pod, 'b');

    const b = await findings('b');
    assert.deepEqual(findingIds(b), [FIXTURE_ID]);
    assert.deepEqual(scanKinds('b'), ['full', 'rematch']);
    assert.deepEqual(scanKinds('a'), ['full']);
    assert.deepEqual(scanKinds('c'), ['full']);
    await assertSameAsFullScan('b');
    // History kept: the findings before the re-match are still there at the first scan's time.
    const before = await call(
      h.adminToken,
      'GET',
      `/v1/findings?cluster=c1&namespace=ns&pod=b&at=${encodeURIComponent(firstScanOfB)}`,
    );
    assert.equal(before.status, 200);
    assert.deepEqual(findingIds(before.body), []);
  });

  test('an unchanged check-in after a re-match keeps the re-matched findings and sends nothing', async (t) => {
    if (skipWithoutData(t)) return;
    const sent = receiver.requests.length;
    const res = await call(agent, 'POST', '/v1/reports', {
      reportId: `r-${++counter}`,
      workload: { cluster: 'c1', namespace: 'ns', pod: 'b', node: 'node-1', image: 'registry.local/app:1' },
      scanTime: new Date(Date.UTC(2025, 0, 2)).toISOString(),
      inventory: { packages: [], insecureConfigurations: [] },
      inventoryHash: 'lodash@4.17.21,minimist@1.2.8',
    });
    assert.equal(res.body.kind, 'check-in');
    assert.deepEqual(findingIds(await findings('b')), [FIXTURE_ID]);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(receiver.requests.length, sent);
  });

  test('a withdrawn update of the record A was found with: A changes, event for A only', async (t) => {
    if (skipWithoutData(t)) return;
    const real = JSON.parse(
      readFileSync(join(shared as string, 'osv', 'npm', 'GHSA-xvch-5gv4-984h.json'), 'utf8'),
    ) as OsvRecord;
    const imported = await importRecords(h.advisories, [
      { ...real, modified: '2025-06-02T00:00:00Z', withdrawn: '2025-06-02T00:00:00Z' },
    ]);
    assert.deepEqual(imported.withdrawnIds, ['GHSA-xvch-5gv4-984h']);
    const check = await rematcher.check();
    // B has minimist too, at a version the record never affected: read again, not changed.
    assert.deepEqual([check.candidates, check.rematched, check.events], [2, 1, 1]);
    await waitUntil(() => received(FINDINGS_CHANGED).length === 2, 10_000, 'second findings.changed');
    assert.deepEqual(received(FINDINGS_CHANGED), ['ns/b', 'ns/a']);
    const data = receivedData(FINDINGS_CHANGED)[1];
    assert.deepEqual(data?.newFindings, []);
    assert.deepEqual(findingIds(await findings('a')), []);
    assert.deepEqual(scanKinds('a'), ['full', 'rematch']);
    assert.deepEqual(scanKinds('b'), ['full', 'rematch', 'check-in']);
    await assertSameAsFullScan('a');
  });

  test('an unchanged re-import, and a changed record that changes no finding: no scans, no events', async (t) => {
    if (skipWithoutData(t)) return;
    const sent = receiver.requests.length;
    const scans = scanKinds('a').length + scanKinds('b').length + scanKinds('c').length;
    const again = await importRecords(h.advisories, [fixtureRecord('2025-06-01T00:00:00Z')]);
    assert.equal(again.unchanged, 1);
    const quiet = await rematcher.check();
    assert.deepEqual([quiet.advisories, quiet.candidates, quiet.rematched, quiet.events], [0, 0, 0, 0]);

    // A real lodash record, modified, still not affecting 4.17.21: B is read, nothing recorded.
    const real = JSON.parse(
      readFileSync(join(shared as string, 'osv', 'npm', 'GHSA-p6mc-m468-83gw.json'), 'utf8'),
    ) as OsvRecord;
    await importRecords(h.advisories, [{ ...real, modified: '2025-06-03T00:00:00Z' }]);
    const read = await rematcher.check();
    assert.deepEqual([read.advisories, read.candidates, read.rematched, read.events], [1, 1, 0, 0]);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(receiver.requests.length, sent);
    assert.equal(scanKinds('a').length + scanKinds('b').length + scanKinds('c').length, scans);
  });

  test('a record that stops naming a package still reaches the workloads it was found in', async (t) => {
    if (skipWithoutData(t)) return;
    // The fixture now names another package: B's index has no key for it, only the cited id.
    await importRecords(h.advisories, [fixtureRecord('2025-06-04T00:00:00Z', 'lodash-es')]);
    const check = await rematcher.check();
    assert.deepEqual([check.candidates, check.rematched], [1, 1]);
    assert.deepEqual(findingIds(await findings('b')), []);
    await assertSameAsFullScan('b');
    await waitUntil(() => received(FINDINGS_CHANGED).length === 3, 10_000, 'third findings.changed');
    assert.deepEqual(received(FINDINGS_CHANGED).at(-1), 'ns/b');
  });

  test('an import by another connection is noticed by the poller within its interval', async (t) => {
    if (skipWithoutData(t)) return;
    const poller = new Rematcher({
      store: h.store,
      advisories: h.advisories,
      onEvents: () => h.deliverer.notify(),
      pollIntervalMs: 50,
    });
    poller.start();
    try {
      const other = openSqliteAdvisoryStore(join(h.dir, 'vulndb.sqlite'));
      try {
        await importRecords(other, [
          {
            schema_version: '1.6.0',
            id: 'TEST-REMATCH-LEFTPAD-0001',
            modified: '2025-06-05T00:00:00Z',
            summary: 'Test fixture: made-up advisory for left-pad',
            affected: [
              {
                package: { ecosystem: 'npm', name: 'left-pad' },
                ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '1.3.1' }] }],
              },
            ],
          },
        ]);
      } finally {
        other.close();
      }
      await waitUntil(() => received(FINDINGS_CHANGED).length === 5, 10_000, 'events for a and c');
      assert.deepEqual(received(FINDINGS_CHANGED).slice(3).sort(), ['ns/a', 'ns/c']);
      assert.deepEqual(findingIds(await findings('c')), ['TEST-REMATCH-LEFTPAD-0001']);
      await assertSameAsFullScan('a');
    } finally {
      await poller.stop();
    }
  });

  test('a re-match based on a scan that is no longer the latest is not written', async (t) => {
    if (skipWithoutData(t)) return;
    const [id] = await h.store.rematchCandidates(['p|npm|left-pad']);
    assert.ok(id !== undefined);
    const [target] = await h.store.rematchTargets([id]);
    assert.ok(target);
    const scans = scanKinds(target.workload.pod);
    const outcome = await h.store.recordRematch({
      workloadId: target.workloadId,
      basedOnScanId: target.scanId - 1,
      scanTime: new Date(),
      content: {
        inventory: target.inventory,
        vulnerabilities: [],
        insecureConfigurations: [],
        summary: (await findings(target.workload.pod)).summary as never,
        findingKeys: [],
      },
      events: () => assert.fail('no events for a stale re-match'),
    });
    assert.deepEqual(outcome, { status: 'stale' });
    assert.deepEqual(scanKinds(target.workload.pod), scans);
    assert.deepEqual((await h.store.rematchTargets([id]))[0]?.scanId, target.scanId);
  });

  test('POST /v1/admin/rematch runs a check now, for admins of every cluster only', async (t) => {
    if (skipWithoutData(t)) return;
    const app = await buildScannerApp({
      store: h.store,
      advisories: h.advisories,
      tokens: h.tokens,
      deliverer: h.deliverer,
      guard: new TargetGuard({ allow: ['127.0.0.0/8'] }),
      rematch: rematcher,
    });
    try {
      const post = async (token: string) =>
        app.inject({
          method: 'POST',
          url: '/v1/admin/rematch',
          headers: { authorization: `Bearer ${token}` },
        });
      const clusterAdmin = await h.tokens.issue({
        name: 'c1 admin',
        role: 'admin',
        scope: { cluster: 'c1', namespaces: '*' },
      });
      const viewer = await h.tokens.issue({
        name: 'viewer',
        role: 'viewer',
        scope: { cluster: '*', namespaces: '*' },
      });
      assert.equal((await post(clusterAdmin.token)).statusCode, 403);
      assert.equal((await post(viewer.token)).statusCode, 403);

      await importRecords(h.advisories, [fixtureRecord('2025-06-06T00:00:00Z')]);
      const res = await post(h.adminToken);
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json() as Json;
      assert.equal(body.rematched, 1);
      assert.deepEqual(findingIds(await findings('b')), [FIXTURE_ID]);
    } finally {
      await app.close();
    }
  });

  test('rematchAdvisories on ids nobody is affected by reads nothing', async (t) => {
    if (skipWithoutData(t)) return;
    const report = await rematchAdvisories(
      { store: h.store, advisories: h.advisories, onEvents: () => assert.fail('no events') },
      ['GHSA-unknown-id-0000'],
    );
    assert.deepEqual(report, { advisories: 1, candidates: 0, rematched: 0, events: 0 });
  });
});
