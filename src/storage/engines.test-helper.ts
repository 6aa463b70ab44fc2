/**
 * The engines every store test runs against: SQLite always, PostgreSQL when reachable (tests
 * call `requireOrSkip(t, engine.available, engine.what)`, so it is mandatory under CI).
 * `database()` gives a fresh, empty database — a new SQLite file, or a new schema in this test
 * file's throwaway PostgreSQL database — and `connect()` opens one more connection to it: two
 * connections stand for two processes (SQLite) or two replicas (PostgreSQL).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Database } from 'better-sqlite3';
import pg from 'pg';
import { createSchema, createTestDatabase, postgresReachable, postgresWhat } from '../testing/postgres.js';
import type { TestDatabase } from '../testing/postgres.js';
import { openSqlite } from './sqlite.js';
import { postgresDb, sqliteDb } from './sql.js';
import type { Engine, SqlDb } from './sql.js';

export type Connection =
  | { engine: 'sqlite'; db: SqlDb; sqlite: Database; close(): Promise<void> }
  | { engine: 'postgres'; db: SqlDb; pool: pg.Pool; close(): Promise<void> };

export interface TestDatabaseHandle {
  connect(): Promise<Connection>;
}

export interface TestEngine {
  name: Engine;
  available: boolean;
  /** Named in the skip message when not available. */
  what: string;
  database(): Promise<TestDatabaseHandle>;
}

export interface TestEngines {
  engines: TestEngine[];
  /** Closes every connection, removes the SQLite files, drops the PostgreSQL database. */
  cleanup(): Promise<void>;
}

export async function testEngines(prefix: string): Promise<TestEngines> {
  let tmp: string | undefined;
  let pgDatabase: Promise<TestDatabase> | undefined;
  let counter = 0;
  const open: Connection[] = [];
  const track = (c: Connection): Connection => {
    open.push(c);
    return c;
  };

  const sqlite: TestEngine = {
    name: 'sqlite',
    available: true,
    what: 'SQLite',
    async database() {
      tmp ??= mkdtempSync(join(tmpdir(), `containment-${prefix}-`));
      const path = join(tmp, `db-${++counter}.sqlite`);
      return {
        async connect() {
          const db = openSqlite(path);
          return track({
            engine: 'sqlite',
            db: sqliteDb(db),
            sqlite: db,
            close: async () => void db.close(),
          });
        },
      };
    },
  };
  const postgres: TestEngine = {
    name: 'postgres',
    available: await postgresReachable(),
    what: postgresWhat,
    async database() {
      pgDatabase ??= createTestDatabase(prefix);
      const url = await createSchema((await pgDatabase).url, `s_${++counter}`);
      return {
        async connect() {
          const pool = new pg.Pool({ connectionString: url, max: 3 });
          return track({ engine: 'postgres', db: postgresDb(pool), pool, close: () => pool.end() });
        },
      };
    },
  };
  return {
    engines: [sqlite, postgres],
    async cleanup() {
      for (const c of open.splice(0)) await c.close().catch(() => {});
      if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
      if (pgDatabase !== undefined) await (await pgDatabase).drop();
    },
  };
}
