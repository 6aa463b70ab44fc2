/**
 * The advisory stores on the one schema history (storage/advisories/migrations.ts): a database
 * made by the release before it (the layout below is e6917ec's, verbatim, with a record written
 * the way that release wrote it) opens and upgrades in place on both engines, keeps its data and
 * import log, and a database from a newer Containment is refused without being touched.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { ErrorCodes } from '../errors.js';
import { createSchema, createTestDatabase, postgresReachable, postgresWhat } from '../testing/postgres.js';
import type { TestDatabase } from '../testing/postgres.js';
import { requireOrSkip } from '../testing/shared-data.js';
import type { AsyncAdvisoryStore, ImportItem } from './advisory-store.js';
import type { OsvRecord } from './osv.js';
import { openPostgresAdvisoryStore } from './postgres-store.js';
import { openSqliteAdvisoryStore } from './sqlite-store.js';

/** The history of an upgraded database: every step of this build (2: the shared match cache). */
const CURRENT = [
  { component: 'vulndb', version: 1 },
  { component: 'vulndb', version: 2 },
];

const OLD_SQLITE = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE imports (
  id INTEGER PRIMARY KEY,
  source TEXT,
  started_at TEXT NOT NULL,
  finished_at TEXT
);
CREATE TABLE records (
  rid INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  modified TEXT NOT NULL,
  withdrawn TEXT,
  hash BLOB NOT NULL,
  json TEXT NOT NULL,
  import_id INTEGER NOT NULL
);
CREATE INDEX records_import_id ON records (import_id);
CREATE TABLE affected (
  name TEXT NOT NULL,
  ecosystem TEXT NOT NULL,
  rid INTEGER NOT NULL,
  PRIMARY KEY (name, ecosystem, rid)
) WITHOUT ROWID;
CREATE INDEX affected_rid ON affected (rid);
INSERT INTO meta (key, value) VALUES ('schema_version', '1');
`;

const OLD_POSTGRES = `
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
CREATE INDEX IF NOT EXISTS vulndb_records_import_id ON vulndb_records (import_id);
CREATE TABLE IF NOT EXISTS vulndb_affected (
  name text COLLATE "C" NOT NULL,
  ecosystem text COLLATE "C" NOT NULL,
  rid integer NOT NULL REFERENCES vulndb_records (rid) ON DELETE CASCADE,
  PRIMARY KEY (name, ecosystem, rid)
);
CREATE INDEX IF NOT EXISTS vulndb_affected_rid ON vulndb_affected (rid);
INSERT INTO vulndb_meta (key, value) VALUES ('schema_version', '1');
`;

const OLD_RECORD: OsvRecord = {
  id: 'TEST-OLD-1',
  modified: '2024-01-01T00:00:00Z',
  affected: [{ package: { ecosystem: 'PyPI', name: 'Zope.Interface' } }],
};
const OLD_JSON = JSON.stringify(OLD_RECORD);
const OLD_HASH = createHash('sha256').update(OLD_JSON).digest();
const STARTED = '2025-03-01T10:00:00.000Z';

const items = (...records: OsvRecord[]): ImportItem[] => records.map((r) => ({ record: r, origin: r.id }));
const ids = (records: OsvRecord[]) => records.map((r) => r.id).sort();

let tmp: string;
const pgAvailable = await postgresReachable();
let database: TestDatabase | undefined;
let schemas = 0;
before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'containment-vulndb-migrate-'));
  if (pgAvailable) database = await createTestDatabase('vulndb_migrate');
});
after(async () => {
  rmSync(tmp, { recursive: true, force: true });
  await database?.drop();
});

/** What a database written by e6917ec answers, and that it takes the next import correctly. */
async function assertUpgraded(store: AsyncAdvisoryStore): Promise<void> {
  assert.deepEqual(ids(await store.lookup('PyPI', 'zope-interface')), ['TEST-OLD-1']);
  assert.deepEqual(await store.get('TEST-OLD-1'), OLD_RECORD);
  assert.equal((await store.lastImport())?.startedAt, STARTED);
  const report = await store.importRecords(
    items(OLD_RECORD, {
      ...OLD_RECORD,
      id: 'TEST-NEW-1',
      affected: [{ package: { ecosystem: 'npm', name: 'a' } }],
    }),
  );
  // The stored hash is the one the old release computed: the same record is unchanged.
  assert.equal(report.unchanged, 1);
  assert.deepEqual(report.addedIds, ['TEST-NEW-1']);
  assert.equal(report.importId, 2);
  assert.deepEqual(await store.changedSince(1), ['TEST-NEW-1']);
}

describe('SQLite: a database made by the previous release', () => {
  const makeOld = (name: string): string => {
    const path = join(tmp, name);
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.exec(OLD_SQLITE);
    db.prepare(`INSERT INTO imports (source, started_at, finished_at) VALUES (?, ?, ?)`).run(
      'old',
      STARTED,
      STARTED,
    );
    const rid = db
      .prepare(
        `INSERT INTO records (id, modified, withdrawn, hash, json, import_id) VALUES (?, ?, NULL, ?, ?, 1)`,
      )
      .run(OLD_RECORD.id, OLD_RECORD.modified, OLD_HASH, OLD_JSON).lastInsertRowid;
    db.prepare(`INSERT INTO affected (name, ecosystem, rid) VALUES ('zope-interface', 'PyPI', ?)`).run(rid);
    db.close();
    return path;
  };
  const history = (path: string) => {
    const db = new Database(path, { readonly: true });
    try {
      const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).pluck().all();
      if (!tables.includes('schema_migrations')) return [];
      return db.prepare(`SELECT component, version FROM schema_migrations ORDER BY version`).all();
    } finally {
      db.close();
    }
  };

  test('is read as it is when opened read-only: nothing is written', () => {
    const path = makeOld('readonly.sqlite');
    const store = openSqliteAdvisoryStore(path, { readonly: true });
    try {
      assert.deepEqual(ids(store.lookup('PyPI', 'Zope_Interface')), ['TEST-OLD-1']);
    } finally {
      store.close();
    }
    assert.deepEqual(history(path), []);
  });

  test('upgrades in place when opened for writing, keeping records and the import log', async () => {
    const path = makeOld('upgrade.sqlite');
    const store = openSqliteAdvisoryStore(path);
    try {
      assert.deepEqual(history(path), CURRENT);
      await assertUpgraded(store);
    } finally {
      store.close();
    }
    // Reopening applies nothing more.
    openSqliteAdvisoryStore(path).close();
    assert.deepEqual(history(path), CURRENT);
  });

  test('a version from a newer Containment is refused, read-only too, and not touched', () => {
    const path = makeOld('newer.sqlite');
    openSqliteAdvisoryStore(path).close();
    const db = new Database(path);
    db.prepare(`INSERT INTO schema_migrations VALUES ('vulndb', 99, 'from the future', ?)`).run(STARTED);
    db.close();
    for (const options of [{}, { readonly: true }, { create: true }]) {
      assert.throws(
        () => openSqliteAdvisoryStore(path, options),
        (e: { code?: string; message: string }) =>
          e.code === ErrorCodes.DB_UNREADABLE && /vulndb schema version 99/.test(e.message),
      );
    }
    assert.equal(history(path).length, CURRENT.length + 1);
  });
});

describe('PostgreSQL: a database made by the previous release', () => {
  const pgTest = (name: string, fn: (url: string) => Promise<void>) =>
    test(name, async (t: TestContext) => {
      if (!requireOrSkip(t, pgAvailable, postgresWhat) || database === undefined) return;
      const url = await createSchema(database.url, `m_${++schemas}`);
      const pool = new pg.Pool({ connectionString: url });
      try {
        await pool.query(OLD_POSTGRES);
        await pool.query(
          `INSERT INTO vulndb_imports (source, started_at, finished_at) VALUES ('old', $1, $1)`,
          [STARTED],
        );
        const { rows } = await pool.query<{ rid: number }>(
          `INSERT INTO vulndb_records (id, modified, withdrawn, hash, json, import_id)
           VALUES ($1, $2, NULL, $3, $4, 1) RETURNING rid`,
          [OLD_RECORD.id, OLD_RECORD.modified, OLD_HASH, OLD_JSON],
        );
        await pool.query(
          `INSERT INTO vulndb_affected (name, ecosystem, rid) VALUES ('zope-interface', 'PyPI', $1)`,
          [rows[0]?.rid],
        );
      } finally {
        await pool.end();
      }
      await fn(url);
    });
  const history = async (url: string) => {
    const pool = new pg.Pool({ connectionString: url });
    try {
      const { rows } = await pool.query(
        `SELECT component, version FROM schema_migrations WHERE component = 'vulndb' ORDER BY version`,
      );
      return rows;
    } finally {
      await pool.end();
    }
  };

  pgTest(
    'upgrades in place, keeping records and the import log; replicas opening together agree',
    async (url) => {
      const stores = await Promise.all([1, 2, 3].map(() => openPostgresAdvisoryStore(url)));
      try {
        assert.deepEqual(await history(url), CURRENT);
        await assertUpgraded(stores[0]!);
        assert.deepEqual(ids(await stores[2]!.lookup('npm', 'a')), ['TEST-NEW-1']);
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
    },
  );

  pgTest('a version from a newer Containment is refused and not touched', async (url) => {
    await (await openPostgresAdvisoryStore(url)).close();
    const pool = new pg.Pool({ connectionString: url });
    try {
      await pool.query(`INSERT INTO schema_migrations VALUES ('vulndb', 99, 'from the future', $1)`, [
        STARTED,
      ]);
    } finally {
      await pool.end();
    }
    for (const create of [false, true]) {
      await assert.rejects(
        openPostgresAdvisoryStore(url, { create }),
        (e: { code?: string; message: string }) =>
          e.code === ErrorCodes.DB_UNREADABLE && /vulndb schema version 99/.test(e.message),
      );
    }
    assert.equal((await history(url)).length, CURRENT.length + 1);
  });
});
