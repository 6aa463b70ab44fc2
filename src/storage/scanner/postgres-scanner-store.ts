/**
 * `ScannerStore` on PostgreSQL, for several scanner replicas sharing one database: the shared
 * store (`storage/scanner/`) over the caller's pool, with the outbox (`PostgresOutbox`) on the
 * same pool so a scan and its events commit in one transaction. Concurrency is by row locks
 * (`ingest.ts`, `rematch.ts` there) and, for schema changes, an advisory lock (`migrations.ts`).
 */
import type { Pool, PoolClient } from 'pg';
import { migratePostgres } from '../migrations.js';
import { PostgresOutbox } from '../outbox/postgres-outbox.js';
import { scannerMigrations } from './migrations.js';
import { ResultStore } from './results.js';
import { SqlScannerStore } from './sql-scanner-store.js';
import { postgresTransactions } from './transaction.js';
import { postgresDb } from '../sql.js';
import { ResultCodec } from './result-codec.js';
import type { ScanDetail, StoredInventory } from '../../scanner/scanner-store.js';

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
    await migratePostgres(pool, scannerMigrations({ postgres: convertWholeResults }));
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

/**
 * From the previous layout (inventory and findings as JSON in every result, a per-workload key
 * index): each result becomes blobs and runs in place, keeping its id, in the migration's transaction.
 */
async function convertWholeResults(client: PoolClient): Promise<void> {
  const db = postgresDb(client);
  const results = new ResultStore(new ResultCodec());
  for (let after = '0'; ;) {
    const rows = await db.all<{ id: string; inventory: string; vulnerabilities: string }>(
      `SELECT id, inventory::text AS inventory, vulnerabilities::text AS vulnerabilities
       FROM scanner_results WHERE id > $1 ORDER BY id LIMIT 50`,
      [after],
    );
    if (rows.length === 0) break;
    for (const row of rows) {
      const encoded = results.codec.encode({
        inventory: JSON.parse(row.inventory) as StoredInventory,
        vulnerabilities: JSON.parse(row.vulnerabilities) as ScanDetail['vulnerabilities'],
      });
      const stored = await results.storeBlobs(db, encoded);
      await db.run('UPDATE scanner_results SET inventory_id = $1, runs = $2 WHERE id = $3', [
        stored.inventoryId,
        results.codec.runsJson(encoded, stored.setIds),
        row.id,
      ]);
      after = row.id;
    }
  }
}
