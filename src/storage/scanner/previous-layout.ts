/**
 * The scanner layout before the migration runner kept the inventory and the findings as JSON in
 * every result (and a per-workload key index). The scanner's migration 1 converts it in place:
 * each whole result becomes blobs and runs, keeping its id, written by the blob writer scans use
 * (`ResultStore.storeBlobs`), inside the migration's transaction, on both engines alike.
 */
import type { ScanDetail, StoredInventory } from '../../scanner/scanner-store.js';
import { int } from '../sql.js';
import type { SqlDb } from '../sql.js';
import { ResultCodec } from './result-codec.js';
import { ResultStore } from './results.js';

/** Results read per statement: whole results are large. */
const PAGE = 50;

/** Fills `inventory_id` and `runs` of every result from its whole `inventory` and `vulnerabilities`. */
export async function convertWholeResults(db: SqlDb): Promise<void> {
  // A codec of its own: the ids it remembers are those of this transaction only.
  const results = new ResultStore(new ResultCodec());
  for (let after = 0; ;) {
    const rows = await db.all<{ id: number | string; inventory: unknown; vulnerabilities: unknown }>(
      `SELECT id, inventory, vulnerabilities FROM scanner_results WHERE id > $1 ORDER BY id LIMIT ${PAGE}`,
      [after],
    );
    if (rows.length === 0) break;
    for (const row of rows) {
      const encoded = results.codec.encode({
        inventory: db.json<StoredInventory>(row.inventory),
        vulnerabilities: db.json<ScanDetail['vulnerabilities']>(row.vulnerabilities),
      });
      const stored = await results.storeBlobs(db, encoded);
      // Blobs another result shares are then not written again (they commit, or nothing does).
      results.codec.rememberStored(encoded, stored.inventoryId, stored.setIds);
      await db.run('UPDATE scanner_results SET inventory_id = $1, runs = $2 WHERE id = $3', [
        Number(stored.inventoryId),
        results.codec.runsJson(encoded, stored.setIds),
        row.id,
      ]);
      after = int(row.id);
    }
  }
}
