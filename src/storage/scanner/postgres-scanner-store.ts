/**
 * `ScannerStore` on PostgreSQL, for several scanner replicas sharing one database: the shared
 * store (`sql-scanner-store.ts`) over the caller's pool, with the outbox (`PostgresOutbox`) on the
 * same pool so a scan and its events commit in one transaction. Concurrency is by row locks
 * (`ingest.ts`, `rematch.ts` there) and, for schema changes, an advisory lock (`migrations.ts`).
 */
import type { Pool } from 'pg';
import { migratePostgres } from '../migrations.js';
import { PostgresOutbox } from '../outbox/postgres-outbox.js';
import { scannerMigrations } from './migrations.js';
import { SqlScannerStore } from './sql-scanner-store.js';
import { postgresTransactions } from './transaction.js';
import { postgresDb } from '../sql.js';

export interface PostgresScannerStoreOptions {
  /** Clock (epoch ms) for created/received times (tests). */
  now?: () => number;
}

export class PostgresScannerStore extends SqlScannerStore {
  /** The outbox on this pool: events commit with the scans that caused them. */
  declare readonly queue: PostgresOutbox;

  /**
   * Creates the tables if needed (under an advisory lock: replicas may start together) on the
   * caller's pool, which it shares with the token and advisory stores and ends itself.
   */
  static async open(pool: Pool, options: PostgresScannerStoreOptions = {}): Promise<PostgresScannerStore> {
    const queue = await PostgresOutbox.open(pool);
    await migratePostgres(pool, scannerMigrations());
    return new PostgresScannerStore(pool, queue, options);
  }

  private constructor(
    readonly pool: Pool,
    queue: PostgresOutbox,
    options: PostgresScannerStoreOptions,
  ) {
    super({
      db: postgresDb(pool, { prepared: true }),
      transaction: postgresTransactions(pool, queue),
      queue,
      // One per transaction: the row locks reports wait for are held briefly.
      rematchesPerTransaction: 1,
      now: options.now ?? Date.now,
    });
  }
}
