/**
 * Data for the dashboard's browser tests and benchmark: a few workloads reported through the real
 * API (npm packages matched against the shared OSV records, so they carry real findings), and many
 * more recorded straight into the store with a small clean inventory (fast to write).
 */
import type { FastifyInstance } from 'fastify';
import { planScanEvents } from '../ingest.js';
import { contentOf } from '../package-matcher.js';
import type { ScannerStore } from '../store/scanner-store.js';
import { npmReport } from '../scanner-harness.test-helper.js';

export const CLUSTER = 'prod';

/** Reports through POST /v1/reports; lodash 4.17.11 is affected by GHSA-jf85-cpcp-j695 (CVE-2019-10744). */
export async function reportRealWorkloads(app: FastifyInstance, adminToken: string): Promise<void> {
  const reports = [
    npmReport(CLUSTER, 'web', 'storefront', [
      ['lodash', '4.17.11'],
      ['express', '4.17.1'],
    ]),
    npmReport(CLUSTER, 'web', 'checkout', [['left-pad', '1.3.0']]),
    npmReport(CLUSTER, 'payments', 'ledger', [['lodash', '4.17.11']]),
  ];
  for (const body of reports) {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/reports',
      headers: { authorization: `Bearer ${adminToken}` },
      payload: body,
    });
    if (res.statusCode !== 201) throw new Error(`report failed: ${res.statusCode} ${res.body}`);
  }
}

/** `count` workloads `bulk-<i>` across 20 namespaces `team-<i % 20>`, written straight to the store. */
export async function seedBulkWorkloads(store: ScannerStore, count: number): Promise<void> {
  const inventory = {
    packages: [
      {
        name: 'left-pad',
        version: '1.3.0',
        ecosystem: 'npm',
        location: '/app/node_modules/left-pad/package.json',
        extractor: 'npm',
      },
    ],
    insecureConfigurations: [],
  };
  const scanTime = new Date(Date.UTC(2025, 0, 2));
  for (let i = 0; i < count; i++) {
    const workload = {
      cluster: CLUSTER,
      namespace: `team-${i % 20}`,
      pod: `bulk-${i}`,
      node: `node-${i % 8}`,
      image: `registry.local/team-${i % 20}/svc:${i % 7}`,
    };
    await store.recordScan({
      reportId: `bulk-${i}`,
      workload,
      scanTime,
      inventoryHash: 'bulk',
      content: contentOf(inventory, [undefined]),
      events: (context) => planScanEvents(workload, scanTime, context),
    });
  }
}
