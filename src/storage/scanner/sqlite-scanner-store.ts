/**
 * `ScannerStore` on one SQLite file (better-sqlite3, WAL): the shared store (`sql-scanner-store.ts`)
 * over this connection. The outbox (`SqliteOutbox`) and the API tokens live on the same
 * connection, so a scan, its history row and its CloudEvents commit in one transaction.
 */
import type { Database as Db } from 'better-sqlite3';
import { migrateSqliteAsync } from '../migrations.js';
import { SqliteOutbox } from '../outbox/sqlite-outbox.js';
import { scannerMigrations } from './migrations.js';
import { SqlScannerStore } from './sql-scanner-store.js';
import type { ScannerEngine } from './sql-scanner-store.js';
import { queuedWrites, sqliteTransactions } from './transaction.js';
import { sqliteDb } from '../sql.js';
import { configureSqlite, openSqlite } from '../sqlite.js';

/** Re-matches written per transaction: fewer commits, yet the event loop is never held for long. */
const REMATCH_TRANSACTION = 50;

export interface SqliteScannerStoreOptions {
  /** Clock (epoch ms) for created/received times (tests). */
  now?: () => number;
}

function sqliteEngine(db: Db, options: SqliteScannerStoreOptions): ScannerEngine & { queue: SqliteOutbox } {
  const queue = new SqliteOutbox(db);
  const transaction = sqliteTransactions(db, queue);
  return {
    db: queuedWrites(sqliteDb(db), transaction),
    transaction,
    queue,
    rematchesPerTransaction: REMATCH_TRANSACTION,
    now: options.now ?? Date.now,
  };
}

export class SqliteScannerStore extends SqlScannerStore {
  /** The outbox on this connection: events commit with the scans that caused them. */
  declare readonly queue: SqliteOutbox;

  /**
   * Opens (creating if needed) the database at `path`, or uses an open connection (shared with
   * the token store), which the store then owns and closes. Asynchronous because the scanner's
   * first migration may convert the previous layout through the async store seam.
   */
  static async open(
    target: string | Db,
    options: SqliteScannerStoreOptions = {},
  ): Promise<SqliteScannerStore> {
    const db = typeof target === 'string' ? openSqlite(target) : configureSqlite(target);
    try {
      await migrateSqliteAsync(db, scannerMigrations());
      return new SqliteScannerStore(db, options);
    } catch (e) {
      if (typeof target === 'string') db.close();
      throw e;
    }
  }

  private constructor(
    readonly db: Db,
    options: SqliteScannerStoreOptions,
  ) {
    super(sqliteEngine(db, options));
  }

  override async close(): Promise<void> {
    this.db.close();
  }
}
