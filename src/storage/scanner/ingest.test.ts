/**
 * What a report costs the database: the statements `recordScan` issues, on both engines. On
 * PostgreSQL each statement is a round trip to a server that replicas share, so a statement more
 * per report is a measurable loss (bench:server); these counts catch one slipping in.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { findingKeys, packageView } from '../../scanner/finding-sets.js';
import { PostgresScannerStore } from './postgres-scanner-store.js';
import type { ScanContent, ScannerStore } from '../../scanner/scanner-store.js';
import { SqliteScannerStore } from './sqlite-scanner-store.js';
import type { Package } from '../../inventory/types.js';
import { requireOrSkip } from '../../testing/shared-data.js';
import { testEngines } from '../engines.test-helper.js';
import { configureSqlite } from '../sqlite.js';

const { engines, cleanup } = await testEngines('ingest');
const tmp = mkdtempSync(join(tmpdir(), 'containment-ingest-'));
after(async () => {
  await cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

const zero = { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 };
const dep: Package = { name: 'dep', version: '1.0.0', ecosystem: 'npm', location: '/app', extractor: 'npm' };
const content = (): ScanContent => {
  const vulnerabilities = [
    { id: 'GHSA-1', aliases: [], package: packageView(dep), severity: 'HIGH' as const },
  ];
  return {
    inventory: { packages: [dep], insecureConfigurations: [] },
    vulnerabilities,
    insecureConfigurations: [],
    summary: {
      counts: { ...zero, HIGH: 1 },
      configurationCounts: zero,
      riskScore: 0,
      compliance: { passed: true, thresholds: { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0 }, violations: [] },
    },
    findingKeys: findingKeys(vulnerabilities, []),
  };
};
const workload = { cluster: 'c', namespace: 'ns', pod: 'p', node: 'n', image: 'i' };

/**
 * Statements of a workload's first report (a new inventory with one finding) and of a check-in.
 * PostgreSQL: a check-in is one statement (it writes nothing when the report is anything but a
 * plain check-in); a first report is BEGIN, the cluster, workload and report id in one statement,
 * the result's blobs in one, the result, scan, workload pointer and report claim in one, and COMMIT. SQLite, whose statements cost no round trip and cannot write inside WITH,
 * keeps one prepared statement per write.
 */
const expected = {
  postgres: { first: 5, checkIn: 1 },
  sqlite: { first: 12, checkIn: 7 },
};

for (const engine of engines) {
  describe(`statements per report (${engine.name})`, () => {
    const need = (t: TestContext): boolean => requireOrSkip(t, engine.available, engine.what);

    test('a first report and a check-in issue the statements they need, no more', async (t) => {
      if (!need(t)) return;
      const issued: string[] = [];
      let counting = false;
      const note = (sql: unknown): void => {
        if (counting) issued.push(String(typeof sql === 'string' ? sql : (sql as { text: string }).text));
      };
      let store: ScannerStore;
      if (engine.name === 'sqlite') {
        const db = configureSqlite(new Database(join(tmp, 'counted.sqlite'), { verbose: note }));
        store = await SqliteScannerStore.open(db);
      } else {
        const c = await (await engine.database()).connect();
        const pool = (c as { pool: pg.Pool }).pool;
        // Every query reaches the server through a pooled client: count them there.
        pool.on('connect', (client) => {
          const query = client.query.bind(client) as (...args: unknown[]) => unknown;
          (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args) => {
            note(args[0]);
            return query(...args);
          };
        });
        store = await PostgresScannerStore.open(pool);
      }
      await store.createCluster('c');
      const count = async (report: { reportId: string; content?: ScanContent }): Promise<string[]> => {
        issued.length = 0;
        counting = true;
        const outcome = await store.recordScan({
          ...report,
          workload,
          scanTime: new Date(),
          inventoryHash: 'h',
          events: () => [],
        });
        counting = false;
        assert.equal(outcome.status, 'recorded');
        return [...issued];
      };
      const first = await count({ reportId: 'r1', content: content() });
      const checkIn = await count({ reportId: 'r2' });
      await store.close();
      const want = expected[engine.name];
      assert.equal(first.length, want.first, `first report:\n${first.join('\n')}`);
      assert.equal(checkIn.length, want.checkIn, `check-in:\n${checkIn.join('\n')}`);
    });
  });
}
