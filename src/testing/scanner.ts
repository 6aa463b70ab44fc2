/**
 * A real scanner server in this process for a test or a benchmark child: SQLite data directory,
 * an advisory database (empty, or with the OSV records given), no rate limit, re-matching only on
 * request, its generated admin token, and (unless `cluster: null`) one registered cluster with
 * its agent token.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScannerClient } from '../clients/scanner-client.js';
import type { RuntimeDetection } from '../runtime/contracts.js';
import { runScannerServer } from '../scanner/run-server.js';
import type { RunningServer } from '../scanner/run-server.js';
import { importFromPath } from '../vulndb/record-sources.js';
import { openSqliteAdvisoryStore } from '../vulndb/sqlite-store.js';

export interface TestScannerOptions<C extends string | null> {
  /** Created when missing; default a new temporary directory, removed by `close()`. */
  dataDir?: string;
  /** OSV records (a file or directory) imported into the advisory database; default none. */
  records?: string;
  /** The cluster registered through the admin API; default 'local', null registers none. */
  cluster?: C;
  /** CIDRs trigger URLs may use; default none. */
  triggerAllow?: readonly string[];
  /** The address to listen on; default 127.0.0.1 (a test node's pods reach the host on its bridge). */
  host?: string;
}

export type TestScanner<C extends string | null> = {
  server: RunningServer;
  url: string;
  dataDir: string;
  adminToken: string;
  admin: ScannerClient;
  /** `GET /v1/detections` of one pod as the admin (local mode: cluster and namespace `local`). */
  detectionsOf(pod: string, cluster?: string, namespace?: string): Promise<RuntimeDetection[]>;
  /** Stops the server, then removes the data directory when this helper made it. */
  close(): Promise<void>;
} & (C extends string ? { agentToken: string; agent: ScannerClient } : unknown);

export async function startTestScanner<C extends string | null = 'local'>(
  options: TestScannerOptions<C> = {},
): Promise<TestScanner<C>> {
  const owned = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'containment-test-scanner-'));
  mkdirSync(dataDir, { recursive: true });
  const advisoryDbPath = join(dataDir, 'advisories.sqlite');
  const advisories = openSqliteAdvisoryStore(advisoryDbPath, { create: true });
  try {
    if (options.records !== undefined) await importFromPath(advisories, options.records);
  } finally {
    advisories.close();
  }
  const server = await runScannerServer({
    host: options.host ?? '127.0.0.1',
    port: 0,
    dataDir,
    advisoryDbPath,
    triggerAllow: options.triggerAllow ?? [],
    rateLimit: false,
    rematchIntervalMs: 0,
  });
  const close = async (): Promise<void> => {
    await server.close();
    if (owned) rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const adminToken = server.generatedAdminToken as string;
    const admin = new ScannerClient({ server: server.url, token: adminToken });
    const detectionsOf = async (pod: string, cluster = 'local', namespace = 'local') => {
      const query = new URLSearchParams({ cluster, namespace, pod });
      const response = await fetch(`${server.url}/v1/detections?${query}`, {
        headers: { authorization: `Bearer ${adminToken}` },
      });
      assert.equal(response.status, 200);
      return ((await response.json()) as { detections: RuntimeDetection[] }).detections;
    };
    const base = { server, url: server.url, dataDir, adminToken, admin, detectionsOf, close };
    const cluster = options.cluster === undefined ? 'local' : options.cluster;
    if (cluster === null) return base as TestScanner<C>;
    const { agentToken } = await admin.createCluster(cluster);
    const agent = new ScannerClient({ server: server.url, token: agentToken });
    return { ...base, agentToken, agent } as TestScanner<C>;
  } catch (e) {
    await close();
    throw e;
  }
}
