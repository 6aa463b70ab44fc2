/**
 * SQLite-specific behaviour: opening files. What every engine shares runs against SQLite (and
 * PostgreSQL) in advisory-store.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { ErrorCodes } from '../errors.js';
import type { ImportItem } from './advisory-store.js';
import type { OsvRecord } from './osv.js';
import { LOOKUP_SQL, openSqliteAdvisoryStore } from './sqlite-store.js';

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'containment-vulndb-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

const items = (...records: unknown[]): ImportItem[] =>
  records.map((r, i) => ({ record: r, origin: `item-${i}` }));
const ids = (records: OsvRecord[]) => records.map((r) => r.id).sort();

function record(id: string, ecosystem: string, name: string): OsvRecord {
  return { id, modified: '2024-01-01T00:00:00Z', affected: [{ package: { ecosystem, name } }] };
}

describe('opening the database', () => {
  test('a missing database is not created for reading, and the message says how to get one', () => {
    const path = join(tmp, 'missing', 'vulndb.sqlite');
    assert.throws(
      () => openSqliteAdvisoryStore(path),
      (e: { code?: string; message: string }) =>
        e.code === ErrorCodes.DB_UNREADABLE &&
        e.message.includes(path) &&
        e.message.includes('containment db import'),
    );
    assert.throws(() => readdirSync(dirname(path)), /ENOENT/);
  });

  test('a file that is not SQLite is refused, not overwritten', () => {
    const path = join(tmp, 'not-sqlite.sqlite');
    const content = 'this is a text file, not a database\n'.repeat(200);
    writeFileSync(path, content);
    for (const create of [false, true]) {
      assert.throws(
        () => openSqliteAdvisoryStore(path, { create }),
        (e: { code?: string; message: string }) =>
          e.code === ErrorCodes.DB_UNREADABLE &&
          /not a SQLite database/.test(e.message) &&
          !e.message.includes('\n'),
      );
    }
    assert.equal(readFileSync(path, 'utf8'), content);
  });

  test('a foreign SQLite database and an unknown schema version are refused', async () => {
    const foreign = join(tmp, 'foreign.sqlite');
    const db = new Database(foreign);
    db.exec('CREATE TABLE users (name TEXT)');
    db.close();
    assert.throws(
      () => openSqliteAdvisoryStore(foreign, { create: true }),
      (e: { code?: string; message: string }) =>
        e.code === ErrorCodes.DB_UNREADABLE && /not a Containment vulnerability database/.test(e.message),
    );

    const future = join(tmp, 'future', 'vulndb.sqlite');
    openSqliteAdvisoryStore(future, { create: true }).close();
    const raw = new Database(future);
    raw.prepare(`UPDATE meta SET value = '99' WHERE key = 'schema_version'`).run();
    raw.close();
    assert.throws(
      () => openSqliteAdvisoryStore(future),
      (e: { code?: string; message: string }) =>
        e.code === ErrorCodes.DB_UNREADABLE && /version 99/.test(e.message),
    );
  });

  test('data survives reopening, also read-only; the database is in WAL mode', async () => {
    const path = join(tmp, 'reopen', 'vulndb.sqlite');
    const store = openSqliteAdvisoryStore(path, { create: true });
    await store.importRecords(items(record('TEST-PERSIST', 'Go', 'golang.org/x/net')));
    store.close();
    const raw = new Database(path, { readonly: true });
    assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    raw.close();
    const reader = openSqliteAdvisoryStore(path, { readonly: true });
    try {
      assert.deepEqual(ids(reader.lookup('Go', 'golang.org/x/net')), ['TEST-PERSIST']);
      assert.equal(reader.lastImport()?.importId, 1);
    } finally {
      reader.close();
    }
  });
});

describe('lookup query plan', () => {
  test('both the exact ecosystems and the RHEL stream range are primary-key searches', async () => {
    const path = join(tmp, 'plan', 'vulndb.sqlite');
    const store = openSqliteAdvisoryStore(path, { create: true });
    await store.importRecords(items(record('TEST-PLAN', 'Red Hat:enterprise_linux:9::appstream', 'nodejs')));
    await store.close();
    const db = new Database(path, { readonly: true });
    try {
      const plan = (
        db.prepare(`EXPLAIN QUERY PLAN ${LOOKUP_SQL}`).all('a', 'b', 'c', 'd', 'a', 'e', 'f') as {
          detail: string;
        }[]
      ).map((row) => row.detail);
      assert.ok(plan.includes('SEARCH affected USING PRIMARY KEY (name=? AND ecosystem=?)'), plan.join('\n'));
      assert.ok(
        plan.includes('SEARCH affected USING PRIMARY KEY (name=? AND ecosystem>? AND ecosystem<?)'),
        plan.join('\n'),
      );
      assert.ok(!plan.some((d) => d.startsWith('SCAN affected')), plan.join('\n'));
    } finally {
      db.close();
    }
  });
});

describe('the bulk path into an empty database', () => {
  const layout = (path: string) => {
    const db = new Database(path, { readonly: true });
    try {
      return {
        indexes: db
          .prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name`)
          .pluck()
          .all(),
        journal: db.pragma('journal_mode', { simple: true }),
        tables: db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).pluck().all(),
      };
    } finally {
      db.close();
    }
  };
  const expected = {
    indexes: ['affected_rid', 'records_import_id'],
    journal: 'wal',
    tables: ['affected', 'imports', 'match_cache', 'meta', 'records', 'schema_migrations'],
  };

  test('after a failure and after a success: the same indexes, tables and WAL mode as before', async () => {
    const path = join(tmp, 'bulk', 'vulndb.sqlite');
    const store = openSqliteAdvisoryStore(path, { create: true });
    try {
      assert.deepEqual(layout(path), expected);
      async function* failing(): AsyncGenerator<ImportItem> {
        for (let i = 0; i < 1500; i++) yield { record: record(`TEST-B-${i}`, 'npm', `b${i}`), origin: 'x' };
        throw new Error('source broke');
      }
      await assert.rejects(store.importRecords(failing()), /source broke/);
      assert.deepEqual(layout(path), expected);
      assert.equal(store.count().records, 0);
      await store.importRecords(items(record('TEST-B-1', 'npm', 'b1'), record('TEST-B-2', 'npm', 'b2')));
      assert.deepEqual(layout(path), expected);
      assert.deepEqual(ids(store.lookup('npm', 'b2')), ['TEST-B-2']);
    } finally {
      store.close();
    }
  });

  test('another connection open on the empty database: the import still commits, in WAL mode', async () => {
    const path = join(tmp, 'bulk-shared', 'vulndb.sqlite');
    const store = openSqliteAdvisoryStore(path, { create: true });
    const reader = openSqliteAdvisoryStore(path);
    try {
      assert.equal(reader.count().records, 0);
      await store.importRecords(items(record('TEST-S-1', 'npm', 's')));
      assert.deepEqual(ids(reader.lookup('npm', 's')), ['TEST-S-1']);
      assert.deepEqual(layout(path), expected);
    } finally {
      store.close();
      reader.close();
    }
  });
});
