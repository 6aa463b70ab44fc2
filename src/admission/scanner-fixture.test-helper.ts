/**
 * A real scanner (SQLite, real OSV npm records) listening on loopback, holding one scan of a
 * vulnerable image (minimist 1.2.5: a CRITICAL advisory) and one of a clean image (minimist
 * 1.2.6), with a viewer token scoped to the cluster: what the admission gate asks in tests and in
 * the benchmark.
 */
import { join } from 'node:path';
import { startHarness } from '../scanner/scanner-harness.test-helper.js';
import type { Harness } from '../scanner/scanner-harness.test-helper.js';
import { sharedDataDir } from '../testing/shared-data.js';

export const osvNpmDir = join(sharedDataDir, 'osv', 'npm');
export const VULNERABLE_IMAGE = 'registry.local/shop/vulnerable:1.0';
export const CLEAN_IMAGE = 'registry.local/shop/clean:1.0';
export const UNSCANNED_IMAGE = 'registry.local/shop/never-scanned:1.0';
export const FIXTURE_CLUSTER = 'admission-test';

export interface ScannerFixture {
  harness: Harness;
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** Viewer, scoped to FIXTURE_CLUSTER, every namespace. */
  viewerToken: string;
  /** Posts a scan of `image` (npm packages) to the scanner as the cluster's agent. */
  report(
    image: string,
    packages: [string, string][],
    options?: { namespace?: string; imageDigest?: string },
  ): Promise<void>;
  close(): Promise<void>;
}

let reportCount = 0;

export async function startScannerFixture(): Promise<ScannerFixture> {
  const harness = await startHarness(osvNpmDir);
  try {
    await harness.app.listen({ host: '127.0.0.1', port: 0 });
    const address = harness.app.server.address();
    const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const call = async (token: string, path: string, body: unknown): Promise<Record<string, unknown>> => {
      const res = await fetch(`${url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const json = (await res.json()) as Record<string, unknown>;
      if (!res.ok) throw new Error(`POST ${path}: HTTP ${res.status} ${JSON.stringify(json)}`);
      return json;
    };
    const agentToken = (await call(harness.adminToken, '/v1/clusters', { name: FIXTURE_CLUSTER }))
      .agentToken as string;
    const viewerToken = (
      await call(harness.adminToken, '/v1/tokens', {
        name: 'admission',
        role: 'viewer',
        cluster: FIXTURE_CLUSTER,
        namespaces: '*',
      })
    ).token as string;
    const report = async (
      image: string,
      packages: [string, string][],
      options: { namespace?: string; imageDigest?: string } = {},
    ): Promise<void> => {
      reportCount += 1;
      await call(agentToken, '/v1/reports', {
        reportId: `admission-${process.pid}-${reportCount}`,
        workload: {
          cluster: FIXTURE_CLUSTER,
          namespace: options.namespace ?? 'shop',
          pod: `pod-${reportCount}`,
          node: 'node-1',
          image,
          ...(options.imageDigest === undefined ? {} : { imageDigest: options.imageDigest }),
        },
        scanTime: new Date(Date.UTC(2026, 0, 1, 0, 0, reportCount)).toISOString(),
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
        inventoryHash: `${image}:${packages.map((p) => p.join('@')).join(',')}`,
      });
    };
    await report(VULNERABLE_IMAGE, [['minimist', '1.2.5']]);
    await report(CLEAN_IMAGE, [['minimist', '1.2.6']]);
    return { harness, url, viewerToken, report, close: () => harness.close() };
  } catch (e) {
    await harness.close();
    throw e;
  }
}
