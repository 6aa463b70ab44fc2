/**
 * RHEL repository streams through the scanner service, on each store: an inventory mapped to
 * `Red Hat:enterprise_linux:9::baseos` gets AppStream advisories at ingest (the per-package match
 * cache) and when an AppStream advisory changes (re-match, indexed by base ecosystem and name),
 * exactly as `containment scan` (`evaluateInventory`) reports them; RHEL 8 workloads do not.
 * The advisories are synthetic, in the real Red Hat OSV shape (rhel-stream-records.test-helper.ts).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Package } from '../inventory/types.js';
import { evaluateInventory } from '../scan/scan.js';
import {
  APPSTREAM_8,
  APPSTREAM_9,
  AUS_9_2,
  BASEOS_9,
  EUS_9_2,
  RHEL9_INVENTORY_ECOSYSTEM,
  RHEL9_NODEJS,
} from '../vulndb/rhel-stream-records.test-helper.js';
import { rematchAdvisories } from './rematch.js';
import { describeEachBackend, startHarness } from './scanner-harness.test-helper.js';
import type { BackendHarness } from './scanner-harness.test-helper.js';

const RHEL8_NODEJS = { name: 'nodejs', version: '1:20.10.0-1.module+el8.9.0+20000+aaaaaaaa' };

function rpm(ecosystem: string, { name, version }: { name: string; version: string }): Package {
  return {
    name,
    version,
    ecosystem,
    source: { name, version },
    location: '/var/lib/rpm/rpmdb.sqlite',
    extractor: 'rpm',
  };
}

let reports = 0;
function report(pod: string, packages: Package[]): Record<string, unknown> {
  reports += 1;
  return {
    reportId: `rhel-${process.pid}-${reports}`,
    workload: { cluster: 'c', namespace: 'ns', pod, node: 'node-1', image: 'registry.local/ubi9:1' },
    scanTime: new Date(Date.UTC(2025, 0, 1, 0, 0, reports)).toISOString(),
    inventory: { packages, insecureConfigurations: [] },
    inventoryHash: packages.map((p) => `${p.ecosystem}/${p.name}@${p.version}`).join(','),
  };
}

let osvDir: string;
let h: BackendHarness;

describeEachBackend('RHEL streams in the scanner service', {}, (backend) => {
  before(async () => {
    // Everything but the RHEL 9 AppStream record, which the re-match test imports later.
    osvDir = mkdtempSync(join(tmpdir(), 'containment-rhel-osv-'));
    for (const r of [BASEOS_9, APPSTREAM_8, EUS_9_2, AUS_9_2]) {
      writeFileSync(join(osvDir, `${r.id.replace(':', '_')}.json`), JSON.stringify(r));
    }
    h = await startHarness(osvDir, { backend: backend.name });
  });
  after(async () => {
    await h?.close();
    rmSync(osvDir, { recursive: true, force: true });
  });

  const call = async (method: 'GET' | 'POST', url: string, token: string, payload?: object) => {
    const res = await h.app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token}` },
      ...(payload === undefined ? {} : { payload }),
    });
    return { status: res.statusCode, body: res.json() as Record<string, unknown> };
  };
  const findingIds = async (pod: string) => {
    const res = await call('GET', `/v1/findings?cluster=c&namespace=ns&pod=${pod}`, h.adminToken);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return (res.body.vulnerablePackages as { id: string }[]).map((f) => f.id).sort();
  };
  /** What `containment scan` reports for the pod's stored inventory against the same store. */
  const fullScanIds = async (pod: string) => {
    const [scan] = await h.store.latestScans(
      'c',
      { cluster: '*', namespaces: '*' },
      { pod },
      new Date(8.64e15),
    );
    assert.ok(scan);
    const full = await evaluateInventory(
      { kind: 'container', ref: pod },
      { completeness: 'complete', gaps: [], ...scan.inventory, notes: [] },
      h.advisories,
      {
        scanTime: scan.scanTime,
      },
    );
    return full.vulnerabilities.map((f) => f.id).sort();
  };

  test('a changed AppStream advisory re-matches the RHEL 9 workload only, like a full scan', async () => {
    const cluster = await call('POST', '/v1/clusters', h.adminToken, { name: 'c' });
    assert.equal(cluster.status, 201, JSON.stringify(cluster.body));
    const agent = cluster.body.agentToken as string;
    for (const [pod, pkg] of [
      ['rhel9', rpm(RHEL9_INVENTORY_ECOSYSTEM, RHEL9_NODEJS)],
      ['rhel8', rpm('Red Hat:enterprise_linux:8::baseos', RHEL8_NODEJS)],
    ] as const) {
      const res = await call('POST', '/v1/reports', agent, report(pod, [pkg]));
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
    assert.deepEqual(await findingIds('rhel9'), ['RHSA-2099:0005']);
    assert.deepEqual(await findingIds('rhel8'), ['RHSA-2099:0002']);

    const imported = await h.advisories.importRecords([{ record: APPSTREAM_9, origin: 'test' }]);
    assert.deepEqual(imported.addedIds, [APPSTREAM_9.id]);
    const deps = { store: h.store, advisories: h.advisories, onEvents: () => {} };
    // Both workloads hold a Red Hat nodejs (the index keys on the base ecosystem); only RHEL 9 changes.
    assert.deepEqual(await rematchAdvisories(deps, [APPSTREAM_9.id]), {
      advisories: 1,
      candidates: 2,
      rematched: 1,
      events: 0,
    });
    assert.deepEqual(await findingIds('rhel9'), ['RHSA-2099:0001', 'RHSA-2099:0005']);
    assert.deepEqual(await findingIds('rhel8'), ['RHSA-2099:0002']);
    assert.deepEqual(await fullScanIds('rhel9'), await findingIds('rhel9'));
    assert.deepEqual(await fullScanIds('rhel8'), await findingIds('rhel8'));

    // A report after the import goes through the service's per-package match cache.
    const late = await call(
      'POST',
      '/v1/reports',
      agent,
      report('rhel9-late', [rpm(RHEL9_INVENTORY_ECOSYSTEM, RHEL9_NODEJS)]),
    );
    assert.equal(late.status, 201, JSON.stringify(late.body));
    assert.deepEqual(await findingIds('rhel9-late'), ['RHSA-2099:0001', 'RHSA-2099:0005']);
  });
});
