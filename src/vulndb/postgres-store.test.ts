/**
 * PostgreSQL-specific behaviour: opening, several replicas on one database, what PostgreSQL
 * cannot store, and batching (checked against the SQLite store as an oracle). The behaviour both
 * engines share runs in advisory-store.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { ErrorCodes } from '../errors.js';
import { createSchema, createTestDatabase, postgresReachable, postgresWhat } from '../testing/postgres.js';
import type { TestDatabase } from '../testing/postgres.js';
import { requireOrSkip } from '../testing/shared-data.js';
import type { ImportItem, ImportReport } from './advisory-store.js';
import type { OsvRecord } from './osv.js';
import { openPostgresAdvisoryStore } from './postgres-store.js';
import { openSqliteAdvisoryStore } from './sqlite-store.js';

const available = await postgresReachable();
let database: TestDatabase | undefined;
let tmp: string;
let schemas = 0;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'containment-vulndb-pg-'));
  if (available) database = await createTestDatabase('vulndb');
});
after(async () => {
  rmSync(tmp, { recursive: true, force: true });
  await database?.drop();
});

/** A test that needs the server: skipped loudly without one, failed under CI. */
function pgTest(name: string, fn: (t: TestContext, db: TestDatabase) => Promise<void>): void {
  test(name, async (t) => {
    if (requireOrSkip(t, available, postgresWhat) && database) await fn(t, database);
  });
}

/** A URL whose connections work in a new, empty schema: a database of their own, in effect. */
const freshSchema = (db: TestDatabase) => createSchema(db.url, `s_${++schemas}`);

function record(id: string, name: string, extra: Partial<OsvRecord> = {}): OsvRecord {
  return {
    id,
    modified: '2024-01-01T00:00:00Z',
    affected: [
      { package: { ecosystem: 'npm', name }, ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }] }] },
    ],
    ...extra,
  };
}

const items = (records: unknown[]): ImportItem[] =>
  records.map((r, i) => ({ record: r, origin: `item-${i}` }));
const ids = (records: OsvRecord[]) => records.map((r) => r.id).sort();
const sorted = (list: string[]) => [...list].sort();

/** Yields now and then so that two imports on two replicas really overlap in time. */
async function* slowly(records: OsvRecord[]): AsyncGenerator<ImportItem> {
  for (const [i, r] of records.entries()) {
    if (i % 50 === 0) await sleep(2);
    yield { record: r, origin: r.id };
  }
}

const onDbUnreadable = (check: (message: string) => boolean) => (e: { code?: string; message: string }) =>
  e.code === ErrorCodes.DB_UNREADABLE && !e.message.includes('\n') && check(e.message);

describe('opening a PostgreSQL store', () => {
  pgTest(
    'a database without the tables is not written to unless creating, and says how to fill it',
    async (_t, db) => {
      const url = await freshSchema(db);
      await assert.rejects(
        openPostgresAdvisoryStore(url),
        onDbUnreadable((m) => m.includes('holds no advisories') && m.includes('containment db import')),
      );
      const pool = new pg.Pool({ connectionString: url });
      try {
        const { rows } = await pool.query(`SELECT to_regclass('vulndb_meta') AS t`);
        assert.equal((rows[0] as { t: unknown }).t, null);
      } finally {
        await pool.end();
      }
    },
  );

  pgTest('an unreachable server fails with one line that does not show the password', async () => {
    // Port 1 on loopback: nothing listens there.
    const url = 'postgres://scanner:s3cret-pw@127.0.0.1:1/vulndb?password=other-s3cret';
    await assert.rejects(
      openPostgresAdvisoryStore(url, { create: true }),
      onDbUnreadable(
        (m) => m.includes('127.0.0.1:1') && !m.includes('s3cret') && /ECONNREFUSED|connect/.test(m),
      ),
    );
  });

  pgTest('a missing database is reported with the server’s reason', async (_t, db) => {
    const url = new URL(db.url);
    url.pathname = `/${db.name}_missing`;
    await assert.rejects(
      openPostgresAdvisoryStore(url.toString()),
      onDbUnreadable((m) => m.includes(`${db.name}_missing`) && /does not exist/.test(m)),
    );
  });

  pgTest('an unknown schema version is refused', async (_t, db) => {
    const url = await freshSchema(db);
    await (await openPostgresAdvisoryStore(url, { create: true })).close();
    const pool = new pg.Pool({ connectionString: url });
    try {
      await pool.query(`UPDATE vulndb_meta SET value = '99' WHERE key = 'schema_version'`);
      for (const create of [false, true]) {
        await assert.rejects(
          openPostgresAdvisoryStore(url, { create }),
          onDbUnreadable((m) => /version 99/.test(m)),
        );
      }
    } finally {
      await pool.end();
    }
  });

  pgTest('replicas starting together all open the store; data survives reopening', async (_t, db) => {
    const url = await freshSchema(db);
    const stores = await Promise.all(
      [1, 2, 3, 4].map(() => openPostgresAdvisoryStore(url, { create: true })),
    );
    try {
      const [first, second] = stores;
      assert.ok(first && second);
      await first.importRecords(items([record('TEST-PERSIST', 'left-pad')]), { source: 'replica one' });
      assert.deepEqual(ids(await second.lookup('npm', 'left-pad')), ['TEST-PERSIST']);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
    const reader = await openPostgresAdvisoryStore(url);
    try {
      const last = await reader.lastImport();
      assert.equal(last?.source, 'replica one');
      assert.ok(last && Date.parse(last.startedAt) <= Date.parse(last.finishedAt));
      assert.deepEqual(await reader.count(), { records: 1, withdrawn: 0 });
    } finally {
      await reader.close();
    }
  });

  pgTest('a store on the caller’s pool leaves the pool open when closed', async (_t, db) => {
    const pool = new pg.Pool({ connectionString: await freshSchema(db) });
    try {
      const store = await openPostgresAdvisoryStore(pool, { create: true });
      await store.close();
      const { rows } = await pool.query('SELECT 1 AS one');
      assert.deepEqual(rows, [{ one: 1 }]);
    } finally {
      await pool.end();
    }
  });
});

describe('two replicas on one database', () => {
  pgTest(
    'importing the same records at once: one adds them, the other finds them unchanged',
    async (_t, db) => {
      const url = await freshSchema(db);
      const [a, b] = await Promise.all([url, url].map((u) => openPostgresAdvisoryStore(u, { create: true })));
      assert.ok(a && b);
      try {
        const records = Array.from({ length: 400 }, (_, i) => record(`TEST-SAME-${i}`, `pkg-${i % 40}`));
        const reports = await Promise.all([
          a.importRecords(slowly(records)),
          b.importRecords(slowly(records)),
        ]);
        const [earlier, later] = reports.sort((x, y) => x.importId - y.importId);
        assert.ok(earlier && later && earlier.importId !== later.importId);
        assert.deepEqual([earlier.added, earlier.unchanged], [400, 0]);
        assert.deepEqual([later.added, later.changed, later.unchanged, later.duplicate], [0, 0, 400, 0]);
        assert.deepEqual(await a.count(), { records: 400, withdrawn: 0 });
        assert.deepEqual(await b.changedSince(earlier.importId), []);
        assert.deepEqual(
          ids(await b.lookup('npm', 'pkg-7')),
          sorted(records.filter((_, i) => i % 40 === 7).map((r) => r.id)),
        );
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    },
  );

  pgTest(
    'importing different and conflicting records at once: serialised, each report right',
    async (_t, db) => {
      const url = await freshSchema(db);
      const [a, b] = await Promise.all([url, url].map((u) => openPostgresAdvisoryStore(u, { create: true })));
      assert.ok(a && b);
      try {
        const only = (tag: string) =>
          Array.from({ length: 300 }, (_, i) => record(`TEST-${tag}-${i}`, `${tag}-${i}`));
        // The same ids with different content from each replica.
        const shared = (tag: string) =>
          Array.from({ length: 200 }, (_, i) => record(`TEST-Z-${i}`, 'shared', { details: `from ${tag}` }));
        const input = { A: [...only('A'), ...shared('A')], B: [...shared('B'), ...only('B')] };
        const [reportA, reportB] = await Promise.all([
          a.importRecords(slowly(input.A), { source: 'A' }),
          b.importRecords(slowly(input.B), { source: 'B' }),
        ]);
        assert.ok(reportA && reportB);
        const [first, second] =
          reportA.importId < reportB.importId ? (['A', 'B'] as const) : (['B', 'A'] as const);
        const report = { A: reportA, B: reportB };
        const zIds = shared('A').map((r) => r.id);

        assert.deepEqual(sorted(report[first].addedIds), sorted(input[first].map((r) => r.id)));
        assert.deepEqual([report[first].changed, report[first].unchanged], [0, 0]);
        assert.deepEqual(sorted(report[second].addedIds), sorted(only(second).map((r) => r.id)));
        assert.deepEqual(sorted(report[second].changedIds), sorted(zIds));
        assert.equal(report[second].unchanged, 0);

        // The later import's content won, on both replicas.
        for (const store of [a, b]) {
          assert.deepEqual(await store.count(), { records: 800, withdrawn: 0 });
          assert.equal((await store.get('TEST-Z-17'))?.details, `from ${second}`);
          assert.deepEqual(ids(await store.lookup('npm', 'shared')), sorted(zIds));
          assert.deepEqual(
            await store.changedSince(report[first].importId),
            sorted([...only(second).map((r) => r.id), ...zIds]),
          );
          assert.equal((await store.lastImport())?.source, second);
        }

        // The second import began (after the lock) only once the first had finished.
        const pool = new pg.Pool({ connectionString: url });
        try {
          const { rows } = await pool.query<{ source: string; started_at: Date; finished_at: Date }>(
            'SELECT source, started_at, finished_at FROM vulndb_imports ORDER BY id',
          );
          assert.deepEqual(
            rows.map((r) => r.source),
            [first, second],
          );
          const [r1, r2] = rows;
          assert.ok(r1 && r2 && r2.started_at.getTime() >= r1.finished_at.getTime(), JSON.stringify(rows));
        } finally {
          await pool.end();
        }
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    },
  );
});

describe('hostile and awkward input', () => {
  pgTest(
    'a record with a NUL in a stored key is reported invalid; the rest of the import goes in',
    async (_t, db) => {
      const store = await openPostgresAdvisoryStore(await freshSchema(db), { create: true });
      try {
        const report = await store.importRecords([
          { record: record('TEST-OK', 'fine'), origin: 'ok.json' },
          { record: record('TEST-NUL-NAME', 'evil\0name'), origin: 'name.json' },
          { record: record('TEST-NUL\0ID', 'other'), origin: 'id.json' },
          // Elsewhere a NUL is only data, escaped in the stored JSON.
          { record: record('TEST-NUL-DETAILS', 'kept', { details: 'a\0b' }), origin: 'details.json' },
        ]);
        assert.deepEqual(sorted(report.addedIds), ['TEST-NUL-DETAILS', 'TEST-OK']);
        assert.deepEqual(
          report.invalidRecords.map((r) => r.origin),
          ['name.json', 'id.json'],
        );
        for (const { reason } of report.invalidRecords) assert.match(reason, /NUL/);
        assert.equal((await store.get('TEST-NUL-DETAILS'))?.details, 'a\0b');
        assert.deepEqual(await store.count(), { records: 2, withdrawn: 0 });
      } finally {
        await store.close();
      }
    },
  );

  pgTest(
    'a NUL in a looked-up package name (from a hostile container) matches nothing, fails nothing',
    async (_t, db) => {
      const store = await openPostgresAdvisoryStore(await freshSchema(db), { create: true });
      try {
        await store.importRecords(items([record('TEST-REAL', 'real')]));
        const answers = await store.lookupMany([
          { ecosystem: 'npm', name: 'real\0' },
          { ecosystem: 'npm\0', name: 'real' },
          { ecosystem: 'npm', name: 'real' },
        ]);
        assert.deepEqual(answers.map(ids), [[], [], ['TEST-REAL']]);
        assert.equal(await store.get('TEST-REAL\0'), undefined);
      } finally {
        await store.close();
      }
    },
  );

  pgTest('imports larger than a batch report exactly what the SQLite store reports', async (_t, db) => {
    // Ids repeat across batch boundaries (1000 records): duplicates, changes within one import,
    // withdrawals and un-withdrawals must come out as if written one by one.
    const first: OsvRecord[] = Array.from({ length: 2500 }, (_, i) =>
      record(`TEST-BATCH-${i}`, `p${i % 97}`),
    );
    first.push(record('TEST-BATCH-5', 'p5')); // duplicate, next batch
    first.push(record('TEST-BATCH-10', 'p10', { details: 'changed within the import' }));
    first.push(record('TEST-BATCH-10', 'p10', { details: 'changed within the import' })); // duplicate
    first.push(record('TEST-BATCH-11', 'p11', { withdrawn: '2024-02-01T00:00:00Z' }));
    const second: OsvRecord[] = [
      ...first.slice(0, 1200),
      record('TEST-BATCH-20', 'p20', { modified: '2025-01-01T00:00:00Z' }),
      record('TEST-BATCH-11', 'p11'), // un-withdrawn
      record('TEST-BATCH-12', 'p12', { withdrawn: '2024-02-01T00:00:00Z' }),
      record('TEST-BATCH-12', 'p12'), // and back within the import
      record('TEST-BATCH-NEW', 'p1'),
    ];
    const sqlite = openSqliteAdvisoryStore(join(tmp, 'oracle.sqlite'), { create: true });
    const postgres = await openPostgresAdvisoryStore(await freshSchema(db), { create: true });
    const withoutId = ({ importId: _, ...rest }: ImportReport) => rest;
    try {
      for (const batch of [first, second]) {
        const progress: number[] = [];
        const expected = await sqlite.importRecords(items(batch));
        const actual = await postgres.importRecords(items(batch), { onProgress: (n) => progress.push(n) });
        assert.deepEqual(withoutId(actual), withoutId(expected));
        assert.equal(progress.at(-1), batch.length);
        assert.deepEqual(
          progress,
          [...progress].sort((x, y) => x - y),
        );
      }
      assert.ok((await postgres.lastImport())?.importId === 2);
      assert.deepEqual(await postgres.count(), sqlite.count());
      assert.deepEqual(await postgres.changedSince(1), sqlite.changedSince(1));
      for (const name of ['p1', 'p5', 'p10', 'p11', 'p12', 'p20']) {
        assert.deepEqual(ids(await postgres.lookup('npm', name)), ids(sqlite.lookup('npm', name)), name);
      }
      assert.deepEqual(await postgres.get('TEST-BATCH-10'), sqlite.get('TEST-BATCH-10'));
    } finally {
      sqlite.close();
      await postgres.close();
    }
  });
});
