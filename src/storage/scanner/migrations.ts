/**
 * The scanner's tables on both engines, in one history (`storage/migrations.ts`). Version 1 is
 * the layout of the first release with the migration runner; it also converts the previous
 * layout in place (inventory and findings as JSON in every result, a per-workload key index)
 * through the store's own blob writer (`previous-layout.ts`), so on SQLite it is an `{ async }`
 * step and the store opens with `migrateSqliteAsync`.
 */
import { defineMigrations } from '../migrations.js';
import type { Migrations } from '../migrations.js';
import { postgresDb, sqliteDb } from '../sql.js';
import { convertWholeResults } from './previous-layout.js';

export const SQLITE_SCANNER_TABLES = `
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
  -- The inventory of the latest result: what a feed change is matched against.
  inventory_id INTEGER,
  UNIQUE (cluster_id, namespace, pod, container)
) STRICT;
CREATE INDEX IF NOT EXISTS scanner_workloads_inventory ON scanner_workloads (inventory_id);
-- Content-addressed blobs (digest = SHA-256 of the JSON), immutable, shared by every result.
CREATE TABLE IF NOT EXISTS scanner_inventories (
  id INTEGER PRIMARY KEY,
  digest TEXT NOT NULL UNIQUE,
  inventory TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS scanner_finding_sets (
  id INTEGER PRIMARY KEY,
  digest TEXT NOT NULL UNIQUE,
  findings TEXT NOT NULL
) STRICT;
-- The re-match index: package keys (rematch-index.ts) of each inventory, written with it, and
-- the package keys each cited advisory id was found on.
CREATE TABLE IF NOT EXISTS scanner_inventory_keys (
  key TEXT NOT NULL,
  inventory_id INTEGER NOT NULL REFERENCES scanner_inventories(id),
  PRIMARY KEY (key, inventory_id)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS scanner_advisory_packages (
  advisory_key TEXT NOT NULL,
  package_key TEXT NOT NULL,
  PRIMARY KEY (advisory_key, package_key)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS scanner_results (
  id INTEGER PRIMARY KEY,
  workload_id INTEGER NOT NULL REFERENCES scanner_workloads(id) ON DELETE CASCADE,
  inventory_id INTEGER NOT NULL REFERENCES scanner_inventories(id),
  -- [[package index, finding set id], ...] for the packages with findings.
  runs TEXT NOT NULL,
  insecure_configurations TEXT NOT NULL,
  summary TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS scanner_results_workload ON scanner_results (workload_id);
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
CREATE INDEX IF NOT EXISTS scanner_workloads_image ON scanner_workloads (image);
CREATE INDEX IF NOT EXISTS scanner_workloads_image_digest ON scanner_workloads (image_digest);
CREATE INDEX IF NOT EXISTS scanner_scans_workload_time ON scanner_scans (workload_id, scan_time, id);
CREATE TABLE IF NOT EXISTS scanner_reports (
  cluster_id INTEGER NOT NULL REFERENCES scanner_clusters(id) ON DELETE CASCADE,
  report_id TEXT NOT NULL,
  scan_id INTEGER NOT NULL REFERENCES scanner_scans(id) ON DELETE CASCADE,
  PRIMARY KEY (cluster_id, report_id)
) STRICT;
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

// "C" collation on names: binary order and equality, as in SQLite, so listings sort the same.
export const POSTGRES_SCANNER_TABLES = `
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
  -- The inventory of the latest result: what a feed change is matched against.
  inventory_id bigint,
  UNIQUE (cluster_id, namespace, pod, container)
);
CREATE INDEX IF NOT EXISTS scanner_workloads_inventory ON scanner_workloads (inventory_id);
-- Content-addressed blobs (digest = SHA-256 of the JSON), immutable, shared by every result.
CREATE TABLE IF NOT EXISTS scanner_inventories (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  digest text COLLATE "C" NOT NULL UNIQUE,
  inventory text NOT NULL
);
CREATE TABLE IF NOT EXISTS scanner_finding_sets (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  digest text COLLATE "C" NOT NULL UNIQUE,
  findings text NOT NULL
);
-- The re-match index: package keys (rematch-index.ts) of each inventory, written with it, and
-- the package keys each cited advisory id was found on.
CREATE TABLE IF NOT EXISTS scanner_inventory_keys (
  key text COLLATE "C" NOT NULL,
  inventory_id bigint NOT NULL REFERENCES scanner_inventories(id),
  PRIMARY KEY (key, inventory_id)
);
CREATE TABLE IF NOT EXISTS scanner_advisory_packages (
  advisory_key text COLLATE "C" NOT NULL,
  package_key text COLLATE "C" NOT NULL,
  PRIMARY KEY (advisory_key, package_key)
);
CREATE TABLE IF NOT EXISTS scanner_results (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  workload_id bigint NOT NULL REFERENCES scanner_workloads(id) ON DELETE CASCADE,
  inventory_id bigint NOT NULL REFERENCES scanner_inventories(id),
  -- [[package index, finding set id], ...] for the packages with findings.
  runs text NOT NULL,
  insecure_configurations json NOT NULL,
  summary json NOT NULL
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
CREATE INDEX IF NOT EXISTS scanner_workloads_image ON scanner_workloads (image);
CREATE INDEX IF NOT EXISTS scanner_workloads_image_digest ON scanner_workloads (image_digest);
CREATE INDEX IF NOT EXISTS scanner_scans_workload_time ON scanner_scans (workload_id, scan_time, id);
CREATE INDEX IF NOT EXISTS scanner_scans_result ON scanner_scans (result_id);
CREATE TABLE IF NOT EXISTS scanner_reports (
  cluster_id bigint NOT NULL REFERENCES scanner_clusters(id) ON DELETE CASCADE,
  report_id text NOT NULL,
  scan_id bigint NOT NULL REFERENCES scanner_scans(id) ON DELETE CASCADE,
  PRIMARY KEY (cluster_id, report_id)
);
CREATE INDEX IF NOT EXISTS scanner_reports_scan ON scanner_reports (scan_id);
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

// One row per aggregate (`storage/scanner/detections.ts`): the workload, rule and fingerprint
// (the detector's hash of rule, container, program and evidence key) identify it; `occurrences`
// sums the agents' aggregates, whose latest count and first-seen are kept to add only the growth.
export const SQLITE_DETECTIONS_TABLE = `
CREATE TABLE IF NOT EXISTS scanner_detections (
  id INTEGER PRIMARY KEY,
  cluster_id INTEGER NOT NULL REFERENCES scanner_clusters(id) ON DELETE CASCADE,
  namespace TEXT NOT NULL,
  pod TEXT NOT NULL,
  container TEXT NOT NULL,
  rule_id TEXT NOT NULL,
  severity TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  occurrences INTEGER NOT NULL,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  agent_first_seen TEXT NOT NULL,
  agent_count INTEGER NOT NULL,
  detection TEXT NOT NULL,
  UNIQUE (cluster_id, namespace, pod, container, rule_id, fingerprint)
) STRICT;
CREATE INDEX IF NOT EXISTS scanner_detections_last_seen ON scanner_detections (cluster_id, namespace, last_seen);
`;

export const POSTGRES_DETECTIONS_TABLE = `
CREATE TABLE IF NOT EXISTS scanner_detections (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  cluster_id bigint NOT NULL REFERENCES scanner_clusters(id) ON DELETE CASCADE,
  namespace text COLLATE "C" NOT NULL,
  pod text COLLATE "C" NOT NULL,
  container text COLLATE "C" NOT NULL,
  rule_id text COLLATE "C" NOT NULL,
  severity text NOT NULL,
  fingerprint text COLLATE "C" NOT NULL,
  occurrences bigint NOT NULL,
  first_seen timestamptz NOT NULL,
  last_seen timestamptz NOT NULL,
  agent_first_seen text NOT NULL,
  agent_count bigint NOT NULL,
  detection json NOT NULL,
  UNIQUE (cluster_id, namespace, pod, container, rule_id, fingerprint)
);
CREATE INDEX IF NOT EXISTS scanner_detections_last_seen ON scanner_detections (cluster_id, namespace, last_seen);
`;

export const SQLITE_BASELINES_TABLE = `
CREATE TABLE IF NOT EXISTS scanner_baselines (
  id INTEGER PRIMARY KEY,
  cluster_id INTEGER NOT NULL REFERENCES scanner_clusters(id) ON DELETE CASCADE,
  image TEXT NOT NULL,
  image_ref TEXT,
  state TEXT NOT NULL,
  learning_started_at INTEGER NOT NULL,
  events_learned INTEGER NOT NULL,
  items TEXT NOT NULL,
  generation INTEGER NOT NULL,
  revision INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (cluster_id, image)
) STRICT;
CREATE INDEX IF NOT EXISTS scanner_baselines_ref ON scanner_baselines (cluster_id, image_ref);
CREATE INDEX IF NOT EXISTS scanner_detections_retention ON scanner_detections (last_seen);
`;

export const POSTGRES_BASELINES_TABLE = `
CREATE TABLE IF NOT EXISTS scanner_baselines (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  cluster_id bigint NOT NULL REFERENCES scanner_clusters(id) ON DELETE CASCADE,
  image text COLLATE "C" NOT NULL,
  image_ref text COLLATE "C",
  state text NOT NULL,
  learning_started_at bigint NOT NULL,
  events_learned bigint NOT NULL,
  items json NOT NULL,
  generation bigint NOT NULL,
  revision bigint NOT NULL,
  updated_at timestamptz NOT NULL,
  UNIQUE (cluster_id, image)
);
CREATE INDEX IF NOT EXISTS scanner_baselines_ref ON scanner_baselines (cluster_id, image_ref);
CREATE INDEX IF NOT EXISTS scanner_detections_retention ON scanner_detections (last_seen);
`;

export function scannerMigrations(): Migrations {
  return defineMigrations('scanner', [
    {
      version: 1,
      name: 'scanner tables; the previous layout converted in place',
      sqlite: {
        async: async (db) => {
          const previousLayout = (
            db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all('scanner_results') as string[]
          ).includes('vulnerabilities');
          if (previousLayout) {
            // Columns the tables of the previous layout lack; the rest of the schema creates what is new.
            db.exec(`ALTER TABLE scanner_workloads ADD COLUMN inventory_id INTEGER;
              ALTER TABLE scanner_results ADD COLUMN inventory_id INTEGER REFERENCES scanner_inventories(id);
              ALTER TABLE scanner_results ADD COLUMN runs TEXT;`);
          }
          db.exec(SQLITE_SCANNER_TABLES);
          if (!previousLayout) return;
          await convertWholeResults(sqliteDb(db));
          db.exec(`ALTER TABLE scanner_results DROP COLUMN inventory;
            ALTER TABLE scanner_results DROP COLUMN vulnerabilities;
            ALTER TABLE scanner_results DROP COLUMN finding_keys;
            UPDATE scanner_workloads SET inventory_id = (SELECT r.inventory_id FROM scanner_scans s
              JOIN scanner_results r ON r.id = s.result_id WHERE s.id = scanner_workloads.last_scan_id);
            DROP TABLE IF EXISTS scanner_match_index;`);
        },
      },
      postgres: async (client) => {
        const { rowCount } = await client.query(
          `SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
           AND table_name = 'scanner_results' AND column_name = 'vulnerabilities'`,
        );
        const previousLayout = rowCount === 1;
        if (previousLayout) {
          await client.query(`ALTER TABLE scanner_workloads ADD COLUMN inventory_id bigint;
            ALTER TABLE scanner_results ADD COLUMN inventory_id bigint, ADD COLUMN runs text`);
        }
        await client.query(POSTGRES_SCANNER_TABLES);
        if (!previousLayout) return;
        await convertWholeResults(postgresDb(client));
        await client.query(`ALTER TABLE scanner_results DROP COLUMN inventory, DROP COLUMN vulnerabilities,
            DROP COLUMN finding_keys, ALTER COLUMN inventory_id SET NOT NULL, ALTER COLUMN runs SET NOT NULL,
            ADD FOREIGN KEY (inventory_id) REFERENCES scanner_inventories(id);
          UPDATE scanner_workloads w SET inventory_id = r.inventory_id
            FROM scanner_scans s JOIN scanner_results r ON r.id = s.result_id WHERE s.id = w.last_scan_id;
          DROP TABLE IF EXISTS scanner_match_index`);
      },
    },
    {
      version: 2,
      name: 'runtime detections, aggregated per workload, rule and fingerprint',
      sqlite: SQLITE_DETECTIONS_TABLE,
      postgres: POSTGRES_DETECTIONS_TABLE,
    },
    {
      version: 3,
      name: 'behaviour baselines per cluster and image; detections by age (retention)',
      sqlite: SQLITE_BASELINES_TABLE,
      postgres: POSTGRES_BASELINES_TABLE,
    },
  ]);
}
