/**
 * The scanner store's database on the dialect seam, for the parts written once for both engines
 * beside the store classes (baselines, retention): the SQLite store's connection or the
 * PostgreSQL store's pool.
 */
import type { Database } from 'better-sqlite3';
import type { Pool } from 'pg';
import { BaselineStore } from '../storage/scanner/baselines.js';
import { postgresDb, sqliteDb } from '../storage/sql.js';
import type { SqlDb } from '../storage/sql.js';
import type { ScannerStore } from './scanner-store.js';

export function scannerSqlDb(store: ScannerStore): SqlDb {
  if ('pool' in store) return postgresDb(store.pool as Pool);
  if ('db' in store) return sqliteDb(store.db as Database);
  throw new TypeError('scanner store without a SQL database');
}

const baselineStores = new WeakMap<ScannerStore, BaselineStore>();

/** The baselines beside the scanner store (one per store: SQLite statements are prepared once). */
export function baselinesOf(store: ScannerStore): BaselineStore {
  let baselines = baselineStores.get(store);
  if (!baselines) {
    baselines = new BaselineStore(scannerSqlDb(store));
    baselineStores.set(store, baselines);
  }
  return baselines;
}
