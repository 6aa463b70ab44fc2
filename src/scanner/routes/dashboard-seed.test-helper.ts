/**
 * Data for the dashboard's browser tests and benchmark: a few workloads reported through the real
 * API (npm packages matched against the shared OSV records, so they carry real findings), and many
 * more recorded straight into the store with a small clean inventory (fast to write).
 */
import type { FastifyInstance } from 'fastify';
import { planScanEvents } from '../ingest.js';
import type { AsyncAdvisoryStore } from '../../vulndb/advisory-store.js';
import { contentOf, PackageMatcher } from '../package-matcher.js';
import type { ScannerStore } from '../scanner-store.js';
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

const npm = (name: string, version: string) => ({
  name,
  version,
  ecosystem: 'npm',
  location: `/app/node_modules/${name}/package.json`,
  extractor: 'npm',
});

/**
 * `count` workloads `bulk-<i>` across 20 namespaces `team-<i % 20>`, written straight to the store.
 * With `findings`, each runs old lodash, express, axios, send, cookie, body-parser and path-to-regexp
 * (11 real findings each, matched once);
 * otherwise one clean package.
 */
export async function seedBulkWorkloads(
  store: ScannerStore,
  advisories: AsyncAdvisoryStore,
  count: number,
  options: { findings?: boolean } = {},
): Promise<void> {
  const packages = options.findings
    ? [
        npm('lodash', '4.17.11'),
        npm('express', '4.17.1'),
        npm('axios', '0.21.1'),
        npm('send', '0.17.1'),
        npm('cookie', '0.4.0'),
        npm('body-parser', '1.19.0'),
        npm('path-to-regexp', '0.1.7'),
      ]
    : [npm('left-pad', '1.3.0')];
  const sets = await new PackageMatcher(advisories).match(packages);
  const inventory = { packages, insecureConfigurations: [] };
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
      inventoryHash: options.findings ? 'bulk-vulnerable' : 'bulk',
      content: contentOf(inventory, sets),
      events: (context) => planScanEvents(workload, scanTime, context),
    });
  }
}
