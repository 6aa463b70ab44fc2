/**
 * Which storage `containment server` runs on. Without a database URL: SQLite files (the scanner
 * database `<data dir>/scanner.sqlite` with tokens and outbox, and the advisory database). With a
 * `postgres://` URL: everything — scanner store, tokens, outbox and advisories — in that one
 * PostgreSQL database on one pool, so several replicas can share it.
 */
import { join } from 'node:path';
import pg from 'pg';
import type { TokenStore } from '../auth/api-tokens.js';
import { openPostgresTokenStore, openSqliteTokenStore } from '../storage/tokens/token-store.js';
import { ContainmentError, ErrorCodes, isContainmentError } from '../errors.js';
import type { AsyncAdvisoryStore } from '../vulndb/advisory-store.js';
import { openPostgresAdvisoryStore } from '../vulndb/postgres-store.js';
import { openSqliteAdvisoryStore } from '../vulndb/sqlite-store.js';
import { PostgresScannerStore } from '../storage/scanner/postgres-scanner-store.js';
import type { ScannerStore } from './scanner-store.js';
import { SqliteScannerStore } from '../storage/scanner/sqlite-scanner-store.js';

export const SCANNER_DB_FILE = 'scanner.sqlite';

export interface ServerStoreOptions {
  /** `postgres://…`: run on PostgreSQL; the other two options are then unused. */
  database?: string;
  dataDir: string;
  /** The SQLite advisory database (must exist: `containment db update|import`). */
  advisoryDbPath: string;
  /** Errors of idle PostgreSQL connections (the pool replaces them). */
  onPoolError?: (error: Error) => void;
}

export interface ServerStores {
  store: ScannerStore;
  tokenStore: TokenStore;
  advisories: AsyncAdvisoryStore;
  close(): Promise<void>;
}

export async function openServerStores(options: ServerStoreOptions): Promise<ServerStores> {
  if (options.database === undefined) {
    const advisories = openSqliteAdvisoryStore(options.advisoryDbPath);
    try {
      const store = await SqliteScannerStore.open(join(options.dataDir, SCANNER_DB_FILE));
      // One server per SQLite data dir: deliveries a killed predecessor held are free at once.
      store.queue.releaseLeases();
      return {
        store,
        tokenStore: openSqliteTokenStore(store.db),
        advisories,
        async close() {
          await store.close();
          advisories.close();
        },
      };
    } catch (e) {
      advisories.close();
      throw e;
    }
  }

  const pool = new pg.Pool({ connectionString: options.database });
  pool.on('error', (e) => options.onPoolError?.(e));
  try {
    // First, so a database nobody imported advisories into gets the advisory store's clear error.
    const advisories = await openPostgresAdvisoryStore(pool);
    const store = await PostgresScannerStore.open(pool);
    const tokenStore = await openPostgresTokenStore(pool);
    return {
      store,
      tokenStore,
      advisories,
      async close() {
        await store.close();
        await advisories.close();
        await pool.end();
      },
    };
  } catch (e) {
    await pool.end().catch(() => {});
    if (isContainmentError(e)) throw e;
    // pg's messages never contain the password; the URL might.
    throw new ContainmentError(
      ErrorCodes.DB_UNREADABLE,
      `cannot open the PostgreSQL scanner database: ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
  }
}
