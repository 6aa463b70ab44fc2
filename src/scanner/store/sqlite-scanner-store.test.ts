import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { EventTypes, createEvent } from '../../events/cloud-event.js';
import type { WorkloadIdentity } from '../../events/cloud-event.js';
import type { ScanContent } from './scanner-store.js';
import { SqliteScannerStore } from './sqlite-scanner-store.js';

let dir: string;
let store: SqliteScannerStore;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'containment-scanner-store-'));
  store = SqliteScannerStore.open(join(dir, 'scanner.sqlite'));
  await store.createCluster('c');
});
after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const zero = { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 };
const content = (keys: string[]): ScanContent => ({
  inventory: { packages: [], insecureConfigurations: [] },
  vulnerabilities: [],
  insecureConfigurations: [],
  summary: {
    counts: zero,
    configurationCounts: zero,
    riskScore: 0,
    compliance: { passed: true, thresholds: { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0 }, violations: [] },
  },
  findingKeys: keys,
});
const workload = (pod: string): WorkloadIdentity => ({
  cluster: 'c',
  namespace: 'ns',
  pod,
  node: 'n',
  image: 'i',
});
const rows = (table: string): number =>
  (store.db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;

test('a scan and its events commit together: a failing event plan leaves nothing behind', async () => {
  const before = [
    rows('scanner_scans'),
    rows('scanner_workloads'),
    rows('scanner_reports'),
    rows('event_outbox'),
  ];
  await assert.rejects(
    store.recordScan({
      reportId: 'r-fail',
      workload: workload('p1'),
      scanTime: new Date(),
      inventoryHash: 'h',
      content: content(['a']),
      events: () => {
        throw new Error('boom');
      },
    }),
    /boom/,
  );
  assert.deepEqual(
    [rows('scanner_scans'), rows('scanner_workloads'), rows('scanner_reports'), rows('event_outbox')],
    before,
  );
  const ok = await store.recordScan({
    reportId: 'r-ok',
    workload: workload('p1'),
    scanTime: new Date(),
    inventoryHash: 'h',
    content: content(['a']),
    events: ({ previousKeys }) => {
      assert.equal(previousKeys, undefined);
      return [
        {
          event: createEvent(EventTypes.SCAN_COMPLETED, 'c', {
            workload: workload('p1'),
            scanTime: new Date().toISOString(),
            summary: zero,
            newFindings: [],
            insecureConfigurations: [],
          }),
          triggerIds: ['t1', 't2'],
        },
      ];
    },
  });
  assert.equal(ok.status, 'recorded');
  assert.equal(rows('event_outbox'), before[3]! + 1);
  assert.equal(rows('event_deliveries'), 2);
});

test('a check-in needs the last hash; the previous keys reach the event plan', async () => {
  const stale = await store.recordScan({
    reportId: 'r-stale',
    workload: workload('p1'),
    scanTime: new Date(),
    inventoryHash: 'other',
    events: () => [],
  });
  assert.deepEqual(stale, { status: 'hash-changed' });
  assert.equal(await store.findReport('c', 'r-stale'), undefined);
  let seen: readonly string[] | undefined;
  const checkIn = await store.recordScan({
    reportId: 'r-check',
    workload: workload('p1'),
    scanTime: new Date(),
    inventoryHash: 'h',
    events: (ctx) => {
      seen = ctx.previousKeys;
      assert.equal(ctx.checkIn, true);
      assert.deepEqual(ctx.content.findingKeys, ['a']);
      return [];
    },
  });
  assert.equal(checkIn.status === 'recorded' && checkIn.kind, 'check-in');
  assert.deepEqual(seen, ['a']);
  assert.equal(rows('scanner_results'), 1);
  assert.equal((await store.findReport('c', 'r-check'))?.kind, 'check-in');
});

test('deleting a cluster removes its workloads, scans, reports and triggers', async () => {
  await store.createCluster('gone');
  await store.createTrigger({
    cluster: 'gone',
    namespaces: '*',
    url: 'http://x/',
    kind: 'cloudevents',
    secret: 's',
    everyScan: false,
  });
  await store.recordScan({
    reportId: 'r',
    workload: { ...workload('p'), cluster: 'gone' },
    scanTime: new Date(),
    inventoryHash: 'h',
    content: content([]),
    events: () => [],
  });
  const before = rows('scanner_scans');
  assert.equal(await store.deleteCluster('gone'), true);
  assert.equal(rows('scanner_scans'), before - 1);
  assert.equal(await store.findReport('gone', 'r'), undefined);
  assert.equal(
    (await store.listTriggers()).some((t) => t.cluster === 'gone'),
    false,
  );
  await assert.rejects(
    store.recordScan({
      reportId: 'r2',
      workload: { ...workload('p'), cluster: 'gone' },
      scanTime: new Date(),
      inventoryHash: 'h',
      content: content([]),
      events: () => [],
    }),
    { code: 'CLUSTER_NOT_FOUND' },
  );
});
