/** The `ScannerStore` contract, run against every backend (SQLite, and PostgreSQL when reachable). */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { EventTypes, createEvent } from '../../events/cloud-event.js';
import type { WorkloadIdentity } from '../../events/cloud-event.js';
import type { Package } from '../../inventory/types.js';
import { findingKeys, packageView } from '../../scanner/finding-sets.js';
import { advisoryKey, inventoryPackageKey } from '../../scanner/rematch-index.js';
import { describeEachBackend, openBackendStores } from '../../scanner/scanner-harness.test-helper.js';
import type { BackendStores } from '../../scanner/scanner-harness.test-helper.js';
import type {
  PlannedEvent,
  RecordScanOutcome,
  ScanContent,
  ScanEventContext,
  ScannerStore,
} from '../../scanner/scanner-store.js';

const zero = { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 };
const dep: Package = { name: 'dep', version: '1.0.0', ecosystem: 'npm', location: '/app', extractor: 'npm' };
/** Findings with these advisory ids, on the first package (`dep` when none is given). */
const content = (ids: string[], given: Package[] = []): ScanContent => {
  const packages = given.length === 0 && ids.length > 0 ? [dep] : given;
  const vulnerabilities = ids.map((id) => ({
    id,
    aliases: [],
    package: packageView(packages[0] as Package),
    severity: 'HIGH' as const,
  }));
  return {
    inventory: { packages, insecureConfigurations: [] },
    vulnerabilities,
    insecureConfigurations: [],
    summary: {
      counts: zero,
      configurationCounts: zero,
      riskScore: 0,
      compliance: { passed: true, thresholds: { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0 }, violations: [] },
    },
    findingKeys: findingKeys(vulnerabilities, []),
  };
};
/** The finding key of advisory `id` on `dep`. */
const key = (id: string): string => `vuln|${id}|npm|dep|1.0.0`;
const workload = (pod: string): WorkloadIdentity => ({
  cluster: 'c',
  namespace: 'ns',
  pod,
  node: 'n',
  image: 'i',
});

describeEachBackend('scanner store', {}, (backend) => {
  let stores: BackendStores;
  let store: ScannerStore;
  const rows = (table: string): Promise<number> => stores.count(table);

  before(async () => {
    stores = await openBackendStores(backend.name);
    store = stores.store;
    await store.createCluster('c');
  });
  after(async () => {
    await stores?.close();
  });

  test('a scan and its events commit together: a failing event plan leaves nothing behind', async () => {
    const before = [
      await rows('scanner_scans'),
      await rows('scanner_workloads'),
      await rows('scanner_reports'),
      await rows('event_outbox'),
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
      [
        await rows('scanner_scans'),
        await rows('scanner_workloads'),
        await rows('scanner_reports'),
        await rows('event_outbox'),
      ],
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
    assert.equal(await rows('event_outbox'), before[3]! + 1);
    assert.equal(await rows('event_deliveries'), 2);
  });

  test('a write issued while a scan is being recorded is not rolled back with it', async () => {
    // A duplicate report rolls its transaction back; on SQLite's one connection, a cluster
    // created in the meantime must not be inside that transaction.
    for (const ticks of [1, 3, 6, 10, 20]) {
      const name = `between-${ticks}`;
      const duplicate = store.recordScan({
        reportId: 'r-ok',
        workload: workload('p1'),
        scanTime: new Date(),
        inventoryHash: 'h',
        content: content(['a']),
        events: () => [],
      });
      const created = (async () => {
        for (let i = 0; i < ticks; i++) await null;
        return store.createCluster(name);
      })();
      assert.equal((await duplicate).status, 'duplicate');
      await created;
      assert.equal((await store.getCluster(name))?.name, name, `created ${ticks} ticks in`);
      assert.equal(await store.deleteCluster(name), true);
    }
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
        assert.deepEqual(ctx.content.findingKeys, [key('a')]);
        return [];
      },
    });
    assert.equal(checkIn.status === 'recorded' && checkIn.kind, 'check-in');
    assert.deepEqual(seen, [key('a')]);
    assert.equal(await rows('scanner_results'), 1);
    assert.equal((await store.findReport('c', 'r-check'))?.kind, 'check-in');
  });

  test('check-ins at once: each report id recorded once, in one chain; an every-scan trigger still gets its event', async () => {
    const w = workload('ci');
    const first = await store.recordScan({
      reportId: 'ci-0',
      workload: w,
      scanTime: new Date(),
      inventoryHash: 'h-ci',
      content: content(['a']),
      events: () => [],
    });
    assert.equal(first.status, 'recorded');
    const [scans, results] = [await rows('scanner_scans'), await rows('scanner_results')];
    // The quiet plan of a check-in without triggers that want every scan (as planScanEvents).
    const plan = (ctx: ScanEventContext): PlannedEvent[] => {
      const every = ctx.triggers.filter((t) => t.everyScan).map((t) => t.id);
      if (ctx.checkIn && every.length === 0) return [];
      const data = {
        workload: w,
        scanTime: new Date().toISOString(),
        summary: zero,
        newFindings: [],
        insecureConfigurations: [],
      };
      return [{ event: createEvent(EventTypes.SCAN_COMPLETED, 'c', data), triggerIds: every }];
    };
    const ids = ['ci-1', 'ci-2', 'ci-3', 'ci-dup', 'ci-dup', 'ci-dup'];
    const outcomes = await Promise.all(
      ids.map((reportId, i) =>
        store.recordScan({
          reportId,
          workload: { ...w, node: `n${i}` },
          scanTime: new Date(),
          inventoryHash: 'h-ci',
          events: plan,
        }),
      ),
    );
    const recorded = outcomes.filter((o) => o.status === 'recorded');
    assert.deepEqual(
      recorded.map((o) => o.status === 'recorded' && [o.kind, o.events]),
      Array.from({ length: 4 }, () => ['check-in', 0]),
    );
    // The duplicates name the scan of the one that won, sent from its node.
    const won = outcomes.findIndex((o, i) => ids[i] === 'ci-dup' && o.status === 'recorded');
    const dupScan = (await store.findReport('c', 'ci-dup'))?.scanId;
    for (const o of outcomes.filter((o) => o.status !== 'recorded'))
      assert.deepEqual(o, {
        status: 'duplicate',
        scanId: dupScan,
        kind: 'check-in',
        workload: { ...w, node: `n${won}` },
      });
    // Four scans, no new result: each check-in reuses the first report's.
    assert.deepEqual([await rows('scanner_scans'), await rows('scanner_results')], [scans + 4, results]);
    const [listed] = await store.listWorkloads(
      { cluster: 'c', namespaces: '*' },
      { pod: 'ci' },
      { limit: 9, offset: 0 },
    );
    const latest = Math.max(...recorded.map((o) => (o.status === 'recorded' ? o.scanId : 0)));
    assert.equal(listed?.lastScan?.id, latest);
    assert.equal(listed.lastScan.kind, 'check-in');
    assert.equal(
      listed.workload.node,
      (await store.getScan(latest, { cluster: 'c', namespaces: '*' }))?.workload.node,
    );
    assert.deepEqual(
      (await store.getScan(latest, { cluster: 'c', namespaces: '*' }))?.vulnerabilities.map((v) => v.id),
      ['a'],
    );

    // Another hash: nothing written. An unknown cluster: its error, as for a full report.
    const stale = {
      reportId: 'ci-stale',
      workload: w,
      scanTime: new Date(),
      inventoryHash: 'h-other',
      events: plan,
    };
    assert.deepEqual(await store.recordScan(stale), { status: 'hash-changed' });
    await assert.rejects(store.recordScan({ ...stale, workload: { ...w, cluster: 'nowhere' } }), {
      code: 'CLUSTER_NOT_FOUND',
    });
    assert.equal(await rows('scanner_scans'), scans + 4);

    // An every-scan trigger of another namespace changes nothing; one covering this one gets its event.
    const trigger = (namespaces: string[]) =>
      store.createTrigger({
        cluster: 'c',
        namespaces,
        url: 'http://x/',
        kind: 'cloudevents',
        secret: 's',
        everyScan: true,
      });
    const elsewhere = await trigger(['other']);
    const again = { workload: w, scanTime: new Date(), inventoryHash: 'h-ci', events: plan };
    assert.deepEqual(
      [await store.recordScan({ ...again, reportId: 'ci-4' })].map(
        (o) => o.status === 'recorded' && o.events,
      ),
      [0],
    );
    const here = await trigger(['ns']);
    const outbox = await rows('event_outbox');
    const loud = await store.recordScan({ ...again, reportId: 'ci-5' });
    assert.equal(loud.status === 'recorded' && loud.events, 1);
    assert.equal(await rows('event_outbox'), outbox + 1);
    for (const t of [elsewhere, here]) assert.equal(await store.deleteTrigger(t.id), true);
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
    const before = await rows('scanner_scans');
    assert.equal(await store.deleteCluster('gone'), true);
    assert.equal(await rows('scanner_scans'), before - 1);
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

  test('one report id sent several times at once is stored once', async () => {
    const scansBefore = await rows('scanner_scans');
    const outcomes = await Promise.all(
      Array.from({ length: 6 }, () =>
        store.recordScan({
          reportId: 'r-same',
          workload: workload('same'),
          scanTime: new Date(),
          inventoryHash: 'h',
          content: content(['x']),
          events: () => [],
        }),
      ),
    );
    const recorded = outcomes.filter((o) => o.status === 'recorded');
    assert.equal(recorded.length, 1);
    const scanId = (recorded[0] as Extract<RecordScanOutcome, { status: 'recorded' }>).scanId;
    for (const o of outcomes.filter((o) => o.status !== 'recorded'))
      assert.deepEqual(o, { status: 'duplicate', scanId, kind: 'full', workload: workload('same') });
    assert.equal(await rows('scanner_scans'), scansBefore + 1);
  });

  test('one report id claimed by two workloads at once: one wins, the other learns whose it is', async () => {
    const [a, b] = await Promise.all(
      ['claim-a', 'claim-b'].map((pod) =>
        store.recordScan({
          reportId: 'r-claimed',
          workload: workload(pod),
          scanTime: new Date(),
          inventoryHash: 'h',
          content: content([]),
          events: () => [],
        }),
      ),
    );
    const outcomes = [a, b] as RecordScanOutcome[];
    const winner = outcomes.find((o) => o.status === 'recorded');
    const loser = outcomes.find((o) => o.status === 'duplicate');
    assert.ok(winner && loser?.status === 'duplicate', JSON.stringify(outcomes));
    assert.equal(loser.scanId, winner.status === 'recorded' ? winner.scanId : -1);
    const ref = await store.findReport('c', 'r-claimed');
    assert.deepEqual(ref?.workload, loser.workload);
    // The loser's workload got no scan: its transaction was rolled back whole.
    const pods = (await store.listWorkloads({ cluster: 'c', namespaces: '*' }, {}, { limit: 100, offset: 0 }))
      .filter((w) => w.workload.pod.startsWith('claim-'))
      .map((w) => w.workload.pod);
    assert.deepEqual(pods, [loser.workload.pod]);
  });

  test('concurrent reports for one workload each diff against the scan before them', async () => {
    const n = 8;
    const seen: { own: string; previous: string | undefined }[] = [];
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        store.recordScan({
          reportId: `r-chain-${i}`,
          workload: workload('chain'),
          scanTime: new Date(Date.UTC(2025, 0, 1, 0, 0, i)),
          inventoryHash: `h${i}`,
          content: content([`k${i}`]),
          events: (ctx) => {
            seen.push({ own: key(`k${i}`), previous: ctx.previousKeys?.[0] });
            return [];
          },
        }),
      ),
    );
    // Serialised per workload: the scans form one chain, each previous key being the prior scan's.
    assert.equal(seen.length, n);
    for (let i = 1; i < n; i++) assert.equal(seen[i]!.previous, seen[i - 1]!.own);
    assert.equal(seen[0]!.previous, undefined);
    assert.equal(
      await store.lastInventoryHash(workload('chain')),
      `h${/\|k(\d+)\|/.exec(seen.at(-1)!.own)![1]}`,
    );
  });

  test('re-match: the index finds the workload by package and by cited advisory; a re-match is written only on the latest scan', async () => {
    const lodash: Package = {
      name: 'lodash',
      version: '4.17.20',
      ecosystem: 'npm',
      location: '/app/node_modules/lodash/package.json',
      extractor: 'npm',
    };
    const first = await store.recordScan({
      reportId: 'r-rematch',
      workload: workload('rm'),
      scanTime: new Date(Date.UTC(2025, 1, 1)),
      inventoryHash: 'h-rm',
      content: content([], [lodash]),
      events: () => [],
    });
    assert.equal(first.status, 'recorded');
    const [workloadId] = await store.rematchCandidates([inventoryPackageKey(lodash), 'p|npm|unrelated']);
    assert.ok(workloadId !== undefined);
    assert.deepEqual(await store.rematchCandidates(['p|npm|unrelated']), []);
    const [target] = await store.rematchTargets([workloadId]);
    assert.equal(target?.scanId, first.status === 'recorded' ? first.scanId : -1);
    assert.deepEqual(target.inventory.packages, [lodash]);
    assert.deepEqual(target.loadVulnerabilities(), []);

    const rematched = await store.recordRematch({
      workloadId,
      basedOnScanId: target.scanId,
      scanTime: new Date(Date.UTC(2025, 0, 1)),
      content: content(['X'], [lodash]),
      events: (ctx) => {
        assert.deepEqual(ctx.previousKeys, []);
        return [];
      },
    });
    assert.equal(rematched.status, 'recorded');
    assert.deepEqual(await store.rematchCandidates([advisoryKey('X')]), [workloadId]);
    const again = await store.recordRematch({
      workloadId,
      basedOnScanId: target.scanId,
      scanTime: new Date(),
      content: content([], [lodash]),
      events: () => [],
    });
    assert.deepEqual(again, { status: 'stale' });
    // Never dated before the scan it re-derives: it is now the latest at any time after that scan.
    const [latest] = await store.latestScans(
      'c',
      { cluster: 'c', namespaces: '*' },
      { pod: 'rm' },
      new Date(Date.UTC(2025, 1, 2)),
    );
    assert.equal(latest?.kind, 'rematch');
    assert.equal(latest.scanTime, '2025-02-01T00:00:00.000Z');
    assert.equal(latest.inventoryHash, 'h-rm');

    assert.equal(await store.rematchCursor(), undefined);
    await store.setRematchCursor(7);
    await store.setRematchCursor(3);
    assert.equal(await store.rematchCursor(), 3);
  });
});
