/**
 * A scanner database of the previous layout (inventory and findings stored whole in every result,
 * a per-workload index) is converted in place when opened, on SQLite and on PostgreSQL: same
 * scans, same findings, found by the new index.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { createTestDatabase, postgresReachable, postgresWhat } from '../../testing/postgres.js';
import { requireOrSkip } from '../../testing/shared-data.js';
import { PostgresScannerStore } from './postgres-scanner-store.js';
import type { ScannerStore } from '../../scanner/scanner-store.js';
import type { Package } from '../../inventory/types.js';
import type { VulnerabilityFinding } from '../../matching/types.js';
import { packageView } from '../../scanner/finding-sets.js';
import { advisoryKey, inventoryPackageKey } from '../../scanner/rematch-index.js';
import { SqliteScannerStore } from './sqlite-scanner-store.js';

// The tables as the previous version created them.
const PREVIOUS_SCHEMA = `
CREATE TABLE IF NOT EXISTS scanner_clusters (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS scanner_workloads (
  id INTEGER PRIMARY KEY,
  cluster_id INTEGER NOT NULL REFERENCES scanner_clusters(id) ON DELETE CASCADE,
  namespace TEXT NOT NULL,
  pod TEXT NOT NULL,
  container TEXT NOT NULL DEFAULT '',
  node TEXT NOT NULL,
  image TEXT NOT NULL,
  image_digest TEXT,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  last_scan_id INTEGER,
  UNIQUE (cluster_id, namespace, pod, container)
) STRICT;
CREATE TABLE IF NOT EXISTS scanner_results (
  id INTEGER PRIMARY KEY,
  workload_id INTEGER NOT NULL REFERENCES scanner_workloads(id) ON DELETE CASCADE,
  inventory TEXT NOT NULL,
  vulnerabilities TEXT NOT NULL,
  insecure_configurations TEXT NOT NULL,
  summary TEXT NOT NULL,
  finding_keys TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS scanner_scans (
  id INTEGER PRIMARY KEY,
  workload_id INTEGER NOT NULL REFERENCES scanner_workloads(id) ON DELETE CASCADE,
  result_id INTEGER NOT NULL REFERENCES scanner_results(id) ON DELETE CASCADE,
  report_id TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('full', 'check-in', 'rematch')),
  scan_time INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  inventory_hash TEXT NOT NULL,
  node TEXT NOT NULL,
  image TEXT NOT NULL,
  image_digest TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS scanner_scans_workload_time ON scanner_scans (workload_id, scan_time, id);
CREATE TABLE IF NOT EXISTS scanner_reports (
  cluster_id INTEGER NOT NULL REFERENCES scanner_clusters(id) ON DELETE CASCADE,
  report_id TEXT NOT NULL,
  scan_id INTEGER NOT NULL REFERENCES scanner_scans(id) ON DELETE CASCADE,
  PRIMARY KEY (cluster_id, report_id)
) STRICT;
-- The re-match index: the keys (rematch-index.ts) of each workload's latest result.
CREATE TABLE IF NOT EXISTS scanner_match_index (
  key TEXT NOT NULL,
  workload_id INTEGER NOT NULL REFERENCES scanner_workloads(id) ON DELETE CASCADE,
  PRIMARY KEY (key, workload_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS scanner_match_index_workload ON scanner_match_index (workload_id);
CREATE TABLE IF NOT EXISTS scanner_meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS scanner_triggers (
  id TEXT PRIMARY KEY,
  cluster_id INTEGER NOT NULL REFERENCES scanner_clusters(id) ON DELETE CASCADE,
  namespaces TEXT NOT NULL,
  url TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('cloudevents', 'openwhisk')),
  secret TEXT NOT NULL,
  auth TEXT,
  every_scan INTEGER NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;
`;

const PREVIOUS_PG_SCHEMA = `
CREATE TABLE IF NOT EXISTS scanner_clusters (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text COLLATE "C" NOT NULL UNIQUE,
  created_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS scanner_workloads (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  cluster_id bigint NOT NULL REFERENCES scanner_clusters(id) ON DELETE CASCADE,
  namespace text COLLATE "C" NOT NULL,
  pod text COLLATE "C" NOT NULL,
  container text COLLATE "C" NOT NULL DEFAULT '',
  node text NOT NULL,
  image text NOT NULL,
  image_digest text,
  first_seen timestamptz NOT NULL,
  last_seen timestamptz NOT NULL,
  last_scan_id bigint,
  UNIQUE (cluster_id, namespace, pod, container)
);
CREATE TABLE IF NOT EXISTS scanner_results (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  workload_id bigint NOT NULL REFERENCES scanner_workloads(id) ON DELETE CASCADE,
  inventory json NOT NULL,
  vulnerabilities json NOT NULL,
  insecure_configurations json NOT NULL,
  summary json NOT NULL,
  finding_keys json NOT NULL
);
CREATE INDEX IF NOT EXISTS scanner_results_workload ON scanner_results (workload_id);
CREATE TABLE IF NOT EXISTS scanner_scans (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  workload_id bigint NOT NULL REFERENCES scanner_workloads(id) ON DELETE CASCADE,
  result_id bigint NOT NULL REFERENCES scanner_results(id) ON DELETE CASCADE,
  report_id text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('full', 'check-in', 'rematch')),
  scan_time timestamptz NOT NULL,
  received_at timestamptz NOT NULL,
  inventory_hash text NOT NULL,
  node text NOT NULL,
  image text NOT NULL,
  image_digest text
);
CREATE INDEX IF NOT EXISTS scanner_scans_workload_time ON scanner_scans (workload_id, scan_time, id);
CREATE INDEX IF NOT EXISTS scanner_scans_result ON scanner_scans (result_id);
CREATE TABLE IF NOT EXISTS scanner_reports (
  cluster_id bigint NOT NULL REFERENCES scanner_clusters(id) ON DELETE CASCADE,
  report_id text NOT NULL,
  scan_id bigint NOT NULL REFERENCES scanner_scans(id) ON DELETE CASCADE,
  PRIMARY KEY (cluster_id, report_id)
);
CREATE INDEX IF NOT EXISTS scanner_reports_scan ON scanner_reports (scan_id);
-- The re-match index: the keys (rematch-index.ts) of each workload's latest result.
CREATE TABLE IF NOT EXISTS scanner_match_index (
  key text COLLATE "C" NOT NULL,
  workload_id bigint NOT NULL REFERENCES scanner_workloads(id) ON DELETE CASCADE,
  PRIMARY KEY (key, workload_id)
);
CREATE INDEX IF NOT EXISTS scanner_match_index_workload ON scanner_match_index (workload_id);
CREATE TABLE IF NOT EXISTS scanner_meta (
  key text PRIMARY KEY,
  value text NOT NULL
);
CREATE TABLE IF NOT EXISTS scanner_triggers (
  id text PRIMARY KEY,
  cluster_id bigint NOT NULL REFERENCES scanner_clusters(id) ON DELETE CASCADE,
  namespaces json NOT NULL,
  url text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('cloudevents', 'openwhisk')),
  secret text NOT NULL,
  auth text,
  every_scan boolean NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS scanner_triggers_cluster ON scanner_triggers (cluster_id);
`;

const pkg: Package = {
  name: 'lodash',
  version: '4.17.20',
  ecosystem: 'npm',
  location: '/app',
  extractor: 'npm',
};
const clean: Package = {
  name: 'left-pad',
  version: '1.3.0',
  ecosystem: 'npm',
  location: '/app',
  extractor: 'npm',
};
const finding: VulnerabilityFinding = {
  id: 'CVE-2021-23337',
  aliases: ['GHSA-35jh-r3h4-6jhm'],
  package: packageView(pkg),
  severity: 'HIGH',
  summary: 'Command injection',
};
const summary = {
  counts: { CRITICAL: 0, HIGH: 1, MEDIUM: 0, LOW: 0, UNKNOWN: 0 },
  configurationCounts: { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 },
  riskScore: 5,
  compliance: { passed: true, thresholds: { CRITICAL: 0, HIGH: 5, MEDIUM: 20, LOW: 50 }, violations: [] },
};

const inventory = { packages: [clean, pkg], insecureConfigurations: [] };

/** Workload 7 (scan 3, result 5) and workload 8 (scan 4, result 6) ran the same content. */
async function assertConverted(
  store: ScannerStore,
  count: (table: string) => Promise<number>,
): Promise<void> {
  for (const id of [3, 4]) {
    const scan = await store.getScan(id, { cluster: '*', namespaces: '*' });
    assert.deepEqual(scan?.vulnerabilities, [finding]);
    assert.deepEqual(scan?.inventory, inventory);
    assert.deepEqual(scan?.summary, summary);
  }
  // The shared content is stored once.
  assert.equal(await count('scanner_inventories'), 1);
  assert.equal(await count('scanner_finding_sets'), 1);
  assert.deepEqual(await store.rematchCandidates([inventoryPackageKey(pkg)]), [7, 8]);
  assert.deepEqual(await store.rematchCandidates([advisoryKey('GHSA-35jh-r3h4-6jhm')]), [7, 8]);
  assert.deepEqual(await store.rematchCandidates(['p|npm|express']), []);
  // A check-in on the converted result, and the previous keys decoded from it.
  let previous: readonly string[] | undefined;
  const outcome = await store.recordScan({
    reportId: 'r2',
    workload: { cluster: 'c', namespace: 'ns', pod: 'p', node: 'n', image: 'i' },
    scanTime: new Date(2000),
    inventoryHash: 'h',
    events: (ctx) => {
      previous = ctx.previousKeys;
      return [];
    },
  });
  assert.equal(outcome.status === 'recorded' && outcome.kind, 'check-in');
  assert.deepEqual(previous, ['vuln|CVE-2021-23337|npm|lodash|4.17.20']);
}

test('a SQLite database of the previous layout is converted when opened', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'containment-scanner-migrate-'));
  try {
    const path = join(dir, 'scanner.sqlite');
    const old = new Database(path);
    old.exec(PREVIOUS_SCHEMA);
    old.exec(`INSERT INTO scanner_clusters (id, name, created_at) VALUES (1, 'c', 0);
      INSERT INTO scanner_workloads (id, cluster_id, namespace, pod, node, image, first_seen, last_seen, last_scan_id)
        VALUES (7, 1, 'ns', 'p', 'n', 'i', 0, 0, 3), (8, 1, 'ns', 'q', 'n', 'i', 0, 0, 4)`);
    const result = old.prepare(
      `INSERT INTO scanner_results (id, workload_id, inventory, vulnerabilities, insecure_configurations, summary, finding_keys)
       VALUES (?, ?, ?, ?, '[]', ?, '[]')`,
    );
    for (const [id, workload] of [
      [5, 7],
      [6, 8],
    ])
      result.run(id, workload, JSON.stringify(inventory), JSON.stringify([finding]), JSON.stringify(summary));
    old.exec(`INSERT INTO scanner_scans (id, workload_id, result_id, report_id, kind, scan_time, received_at, inventory_hash, node, image)
        VALUES (3, 7, 5, 'r1', 'full', 1000, 1000, 'h', 'n', 'i'), (4, 8, 6, 'r0', 'full', 1000, 1000, 'h', 'n', 'i');
      INSERT INTO scanner_reports (cluster_id, report_id, scan_id) VALUES (1, 'r1', 3), (1, 'r0', 4);
      INSERT INTO scanner_match_index (key, workload_id) VALUES ('p|npm|lodash', 7)`);
    old.close();

    const store = await SqliteScannerStore.open(path);
    try {
      await assertConverted(store, async (table) =>
        Number(store.db.prepare(`SELECT count(*) FROM ${table}`).pluck().get()),
      );
      const columns = store.db
        .prepare('SELECT name FROM pragma_table_info(?)')
        .pluck()
        .all('scanner_results');
      assert.ok(!columns.includes('vulnerabilities') && columns.includes('runs'), String(columns));
    } finally {
      await store.close();
    }
    // Opening it again changes nothing.
    const again = await SqliteScannerStore.open(path);
    assert.equal((await again.getScan(3, { cluster: '*', namespaces: '*' }))?.vulnerabilities.length, 1);
    await again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a PostgreSQL database of the previous layout is converted when opened', async (t) => {
  if (!requireOrSkip(t, await postgresReachable(), postgresWhat)) return;
  const database = await createTestDatabase('scanner_migrate');
  const pool = new pg.Pool({ connectionString: database.url, max: 2 });
  try {
    await pool.query(PREVIOUS_PG_SCHEMA);
    await pool.query(`INSERT INTO scanner_clusters (id, name, created_at) OVERRIDING SYSTEM VALUE VALUES (1, 'c', now());
      INSERT INTO scanner_workloads (id, cluster_id, namespace, pod, node, image, first_seen, last_seen, last_scan_id)
        OVERRIDING SYSTEM VALUE VALUES (7, 1, 'ns', 'p', 'n', 'i', now(), now(), 3), (8, 1, 'ns', 'q', 'n', 'i', now(), now(), 4)`);
    await pool.query(
      `INSERT INTO scanner_results (id, workload_id, inventory, vulnerabilities, insecure_configurations, summary, finding_keys)
       OVERRIDING SYSTEM VALUE VALUES (5, 7, $1, $2, '[]', $3, '[]'), (6, 8, $1, $2, '[]', $3, '[]')`,
      [JSON.stringify(inventory), JSON.stringify([finding]), JSON.stringify(summary)],
    );
    await pool.query(`INSERT INTO scanner_scans (id, workload_id, result_id, report_id, kind, scan_time, received_at, inventory_hash, node, image)
        OVERRIDING SYSTEM VALUE VALUES (3, 7, 5, 'r1', 'full', to_timestamp(1), to_timestamp(1), 'h', 'n', 'i'),
          (4, 8, 6, 'r0', 'full', to_timestamp(1), to_timestamp(1), 'h', 'n', 'i');
      INSERT INTO scanner_reports (cluster_id, report_id, scan_id) VALUES (1, 'r1', 3), (1, 'r0', 4)`);
    await assertConverted(await PostgresScannerStore.open(pool), async (table) =>
      Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]?.n),
    );
    const { rows } = await pool.query(
      `SELECT column_name FROM information_schema.columns WHERE table_name = 'scanner_results'`,
    );
    assert.ok(!rows.some((r: { column_name: string }) => r.column_name === 'vulnerabilities'));
    // Opening it again changes nothing.
    const again = await PostgresScannerStore.open(pool);
    assert.equal((await again.getScan(3, { cluster: '*', namespaces: '*' }))?.vulnerabilities.length, 1);
  } finally {
    await pool.end();
    await database.drop();
  }
});
