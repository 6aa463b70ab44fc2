/**
 * The engines the advisory store tests run against: SQLite always, PostgreSQL when reachable
 * (tests call `requireOrSkip(t, factory.available, factory.what)`, so it is mandatory under CI).
 * Every `open()` gives a fresh, empty store: a new SQLite file, or a new schema in this test
 * file's throwaway PostgreSQL database (created on first use, dropped by `cleanup`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSchema, createTestDatabase, postgresReachable, postgresWhat } from '../testing/postgres.js';
import type { TestDatabase } from '../testing/postgres.js';
import type { AsyncAdvisoryStore } from './advisory-store.js';
import { openPostgresAdvisoryStore } from './postgres-store.js';
import { openSqliteAdvisoryStore } from './sqlite-store.js';

export interface StoreFactory {
  name: 'sqlite' | 'postgres';
  available: boolean;
  /** Named in the skip message when not available. */
  what: string;
  open(): Promise<AsyncAdvisoryStore>;
  /** Two stores on one fresh database, each with its own connection: two processes or replicas. */
  openPair(): Promise<[AsyncAdvisoryStore, AsyncAdvisoryStore]>;
}

export interface StoreFactories {
  factories: StoreFactory[];
  /** Removes the SQLite files and drops the PostgreSQL database (close the stores first). */
  cleanup(): Promise<void>;
}

export async function storeFactories(prefix: string): Promise<StoreFactories> {
  let tmp: string | undefined;
  let database: Promise<TestDatabase> | undefined;
  let counter = 0;

  const sqlite: StoreFactory = {
    name: 'sqlite',
    available: true,
    what: 'SQLite',
    open: async () => {
      tmp ??= mkdtempSync(join(tmpdir(), `containment-${prefix}-`));
      return openSqliteAdvisoryStore(join(tmp, `db-${++counter}`, 'vulndb.sqlite'), { create: true });
    },
    openPair: async () => {
      tmp ??= mkdtempSync(join(tmpdir(), `containment-${prefix}-`));
      const path = join(tmp, `db-${++counter}`, 'vulndb.sqlite');
      return [openSqliteAdvisoryStore(path, { create: true }), openSqliteAdvisoryStore(path)];
    },
  };
  const postgres: StoreFactory = {
    name: 'postgres',
    available: await postgresReachable(),
    what: postgresWhat,
    open: async () => {
      database ??= createTestDatabase(prefix);
      const { url } = await database;
      return openPostgresAdvisoryStore(await createSchema(url, `store_${++counter}`), { create: true });
    },
    openPair: async () => {
      database ??= createTestDatabase(prefix);
      const { url } = await database;
      const schemaUrl = await createSchema(url, `store_${++counter}`);
      const first = await openPostgresAdvisoryStore(schemaUrl, { create: true });
      return [first, await openPostgresAdvisoryStore(schemaUrl)];
    },
  };
  return {
    factories: [sqlite, postgres],
    async cleanup() {
      if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
      if (database !== undefined) await (await database).drop();
    },
  };
}
