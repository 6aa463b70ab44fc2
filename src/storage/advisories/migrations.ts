/**
 * The advisory database's tables (`vulndb/`), in the one schema history (`storage/migrations.ts`),
 * component `vulndb`. Version 1 is the layout the advisory stores created before the history
 * existed, written idempotently, so databases made by earlier releases open and are recorded at
 * version 1 with their data. The `meta` row `schema_version = 1` stays: it marks the file (or
 * schema) as an advisory database and is what earlier releases check before reading.
 *
 * On SQLite the advisories have a file of their own (`vulndb.sqlite`); on PostgreSQL they share
 * the scanner's database, hence the `vulndb_` prefix there. "C" collation on PostgreSQL: binary
 * order and equality, as in SQLite, so ids sort the same on both engines.
 */
import { defineMigrations } from '../migrations.js';

/** The layout marker both engines keep in their meta table (not the migration version). */
export const ADVISORY_LAYOUT = '1';

/** Secondary indexes, dropped and rebuilt around an import into an empty database. */
export const SQLITE_ADVISORY_INDEXES = [
  'CREATE INDEX IF NOT EXISTS records_import_id ON records (import_id)',
  'CREATE INDEX IF NOT EXISTS affected_rid ON affected (rid)',
];
export const POSTGRES_ADVISORY_INDEXES = [
  'CREATE INDEX IF NOT EXISTS vulndb_records_import_id ON vulndb_records (import_id)',
  'CREATE INDEX IF NOT EXISTS vulndb_affected_rid ON vulndb_affected (rid)',
];

/**
 * Each package's finding set (`scanner/package-matcher.ts`) as of one import (`generation`): beside
 * the advisories it was computed from, so a replaced advisory database (import ids start again)
 * can never serve another's entries. Only the newest import's entries are read; each import
 * deletes the older ones when it finishes.
 */
const SQLITE_MATCH_CACHE = `
CREATE TABLE IF NOT EXISTS match_cache (
  generation INTEGER NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  UNIQUE (generation, key)
); -- not WITHOUT ROWID: a value (a package's findings) is often larger than that layout suits
`;
const POSTGRES_MATCH_CACHE = `
CREATE TABLE IF NOT EXISTS vulndb_match_cache (
  generation integer NOT NULL,
  key text COLLATE "C" NOT NULL,
  value text NOT NULL,
  PRIMARY KEY (generation, key)
);
`;

export const ADVISORY_MIGRATIONS = defineMigrations('vulndb', [
  {
    version: 1,
    name: 'advisory records, their package index and the import log',
    sqlite: `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS imports (
  id INTEGER PRIMARY KEY,
  source TEXT,
  started_at TEXT NOT NULL,
  finished_at TEXT
);
CREATE TABLE IF NOT EXISTS records (
  rid INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  modified TEXT NOT NULL,
  withdrawn TEXT,
  hash BLOB NOT NULL,
  json TEXT NOT NULL,
  import_id INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS affected (
  name TEXT NOT NULL,
  ecosystem TEXT NOT NULL,
  rid INTEGER NOT NULL,
  PRIMARY KEY (name, ecosystem, rid)
) WITHOUT ROWID;
${SQLITE_ADVISORY_INDEXES.join(';\n')};
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '${ADVISORY_LAYOUT}');
`,
    postgres: `
CREATE TABLE IF NOT EXISTS vulndb_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS vulndb_imports (
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  source text,
  started_at timestamptz NOT NULL,
  finished_at timestamptz
);
CREATE TABLE IF NOT EXISTS vulndb_records (
  rid integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id text COLLATE "C" NOT NULL UNIQUE,
  modified text NOT NULL,
  withdrawn text,
  hash bytea NOT NULL,
  json text NOT NULL,
  import_id integer NOT NULL
);
CREATE TABLE IF NOT EXISTS vulndb_affected (
  name text COLLATE "C" NOT NULL,
  ecosystem text COLLATE "C" NOT NULL,
  rid integer NOT NULL REFERENCES vulndb_records (rid) ON DELETE CASCADE,
  PRIMARY KEY (name, ecosystem, rid)
);
${POSTGRES_ADVISORY_INDEXES.join(';\n')};
INSERT INTO vulndb_meta (key, value) VALUES ('schema_version', '${ADVISORY_LAYOUT}') ON CONFLICT DO NOTHING;
`,
  },
  {
    version: 2,
    name: 'the match cache shared by scanner replicas, per import (generation) and package',
    sqlite: SQLITE_MATCH_CACHE,
    postgres: POSTGRES_MATCH_CACHE,
  },
]);
