/**
 * `ScannerStore` on one SQLite file (better-sqlite3, WAL): the shared store (`storage/scanner/`)
 * over this connection. The outbox (`SqliteOutbox`) and the API tokens live on the same
 * connection, so a scan, its history row and its CloudEvents commit in one transaction.
 */
import type { Database as Db } from 'better-sqlite3';
import { migrateSqlite } from '../migrations.js';
import { SqliteOutbox } from '../outbox/sqlite-outbox.js';
import { scannerMigrations } from './migrations.js';
import { SqlScannerStore } from './sql-scanner-store.js';
import type { ScannerEngine } from './sql-scanner-store.js';
import { queuedWrites, sqliteTransactions } from './transaction.js';
import { sqliteDb } from '../sql.js';
import { configureSqlite, openSqlite } from '../sqlite.js';
import { ResultCodec } from './result-codec.js';
import type { ScanDetail, StoredInventory } from '../../scanner/scanner-store.js';

/** Re-matches written per transaction: fewer commits, yet the event loop is never held for long. */
const REMATCH_TRANSACTION = 50;

export interface SqliteScannerStoreOptions {
  /** Clock (epoch ms) for created/received times (tests). */
  now?: () => number;
}

function sqliteEngine(db: Db, options: SqliteScannerStoreOptions): ScannerEngine & { queue: SqliteOutbox } {
  configureSqlite(db);
  migrateSqlite(db, scannerMigrations({ sqlite: convertWholeResults }));
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

  /** Opens (creating if needed) the database at `path`. */
  static open(path: string, options: SqliteScannerStoreOptions = {}): SqliteScannerStore {
    return new SqliteScannerStore(openSqlite(path), options);
  }

  /** Uses an open connection (shared with the token store); the store takes ownership of closing it. */
  constructor(
    readonly db: Db,
    options: SqliteScannerStoreOptions = {},
  ) {
    super(sqliteEngine(db, options));
  }

  override async close(): Promise<void> {
    this.db.close();
  }
}

/**
 * From the previous layout: each whole result becomes blobs and runs in place, keeping its id,
 * inside the (synchronous) migration transaction — which is why this one step is written against
 * better-sqlite3 directly rather than over the async seam (`ResultStore.storeBlobs`).
 */
function convertWholeResults(db: Db): void {
  const codec = new ResultCodec();
  // A page at a time: whole results are large, and no statement may write while one iterates.
  const page = db.prepare(
    'SELECT id, inventory, vulnerabilities FROM scanner_results WHERE id > ? ORDER BY id LIMIT 50',
  );
  const update = db.prepare('UPDATE scanner_results SET inventory_id = ?, runs = ? WHERE id = ?');
  const blobId = (table: string, column: string, digest: string, body: string): number => {
    db.prepare(`INSERT OR IGNORE INTO ${table} (digest, ${column}) VALUES (?, ?)`).run(digest, body);
    return db.prepare(`SELECT id FROM ${table} WHERE digest = ?`).pluck().get(digest) as number;
  };
  for (let after = 0; ;) {
    const rows = page.all(after) as { id: number; inventory: string; vulnerabilities: string }[];
    if (rows.length === 0) break;
    for (const row of rows) {
      const encoded = codec.encode({
        inventory: JSON.parse(row.inventory) as StoredInventory,
        vulnerabilities: JSON.parse(row.vulnerabilities) as ScanDetail['vulnerabilities'],
      });
      const { inventory } = encoded;
      const inventoryId = blobId('scanner_inventories', 'inventory', inventory.digest, inventory.json);
      db.prepare(
        'INSERT OR IGNORE INTO scanner_inventory_keys (key, inventory_id) SELECT value, ? FROM json_each(?)',
      ).run(inventoryId, JSON.stringify(inventory.packageKeys()));
      const setIds = new Map(
        encoded.sets.map((s) => [
          s.digest,
          String(blobId('scanner_finding_sets', 'findings', s.digest, s.body)),
        ]),
      );
      db.prepare(
        `INSERT OR IGNORE INTO scanner_advisory_packages (advisory_key, package_key)
         SELECT value ->> 0, value ->> 1 FROM json_each(?)`,
      ).run(JSON.stringify(encoded.advisoryPackages));
      update.run(inventoryId, codec.runsJson(encoded, setIds), row.id);
      after = row.id;
    }
  }
}
