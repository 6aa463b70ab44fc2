/**
 * Stored results and their blobs (`scanner_results`, `scanner_inventories`,
 * `scanner_finding_sets`, and the re-match index written with them: `scanner_inventory_keys`,
 * `scanner_advisory_packages`), for both engines. A result references its inventory (stored once
 * per distinct content) and its findings as (package index, finding set) pairs, each distinct set
 * stored once (`result-codec.ts`, which also caches blobs in-process: they are immutable).
 */
import type { InsecureConfiguration } from '../../inventory/types.js';
import type { FindingSet } from '../../scanner/finding-sets.js';
import { contentOf } from '../../scanner/package-matcher.js';
import type { EncodedContent, ResultCodec, StoredBlobs } from '../../scanner/store/result-codec.js';
import type { ScanContent, StoredInventory } from '../../scanner/store/scanner-store.js';
import { int } from '../sql.js';
import type { SqlDb } from '../sql.js';

/** A stored result's columns that decoding needs. */
export interface ResultColumns {
  inventory_id: number | string;
  runs: string;
  /** JSON text on SQLite, parsed from pg's json. */
  insecure_configurations: unknown;
}

const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export class ResultStore {
  constructor(readonly codec: ResultCodec) {}

  /**
   * Inserts the blobs the content needs and the codec does not know to be stored, in digest order
   * (two PostgreSQL replicas inserting the same blobs then wait for each other, not deadlock).
   */
  async storeBlobs(db: SqlDb, encoded: EncodedContent): Promise<StoredBlobs> {
    const { inventory } = encoded;
    let inventoryId = inventory.knownId ?? this.codec.inventoryId(inventory.digest);
    if (inventoryId === undefined) {
      // With its re-match keys, in one statement on PostgreSQL; the keys only if the blob is new.
      const inserted = await db.insertThen(
        `INSERT INTO scanner_inventories (digest, inventory) VALUES ($1, $2)
         ON CONFLICT (digest) DO NOTHING RETURNING id`,
        `INSERT INTO scanner_inventory_keys (key, inventory_id)
         SELECT value, inserted.id FROM inserted, ${db.elements('$3', 'text')}
         WHERE true ON CONFLICT DO NOTHING`,
        [inventory.digest, inventory.json, db.array(inventory.packageKeys())],
      );
      const id =
        inserted ??
        (
          await db.get<{ id: number | string }>('SELECT id FROM scanner_inventories WHERE digest = $1', [
            inventory.digest,
          ])
        )?.id;
      if (id === undefined) throw new Error('inventory blob vanished');
      inventoryId = String(id);
    }
    const setIds = new Map<string, string>();
    const missing: FindingSet[] = [];
    for (const set of encoded.sets) {
      const id = this.codec.setId(set.digest);
      if (id === undefined) missing.push(set);
      else setIds.set(set.digest, id);
    }
    if (missing.length > 0) {
      missing.sort((a, b) => byString(a.digest, b.digest));
      await db.insertMany(
        'scanner_finding_sets',
        [
          ['digest', 'text'],
          ['findings', 'text'],
        ],
        missing.map((m) => [m.digest, m.body]),
      );
      const rows = await db.all<{ id: number | string; digest: string }>(
        `SELECT id, digest FROM scanner_finding_sets WHERE ${db.inArray('digest', '$1', 'text')}`,
        [db.array(missing.map((m) => m.digest))],
      );
      for (const row of rows) setIds.set(row.digest, String(row.id));
    }
    if (encoded.advisoryPackages.length > 0) {
      const pairs = [...encoded.advisoryPackages].sort(
        (a, b) => byString(a[0], b[0]) || byString(a[1], b[1]),
      );
      await db.insertMany(
        'scanner_advisory_packages',
        [
          ['advisory_key', 'text'],
          ['package_key', 'text'],
        ],
        pairs,
      );
    }
    return { inventoryId, setIds };
  }

  /** Inserts a result row; its id. */
  async insert(
    db: SqlDb,
    workloadId: number,
    inventoryId: string,
    runsJson: string,
    content: Pick<ScanContent, 'insecureConfigurations' | 'summary'>,
  ): Promise<number> {
    const row = await db.get<{ id: number | string }>(
      `INSERT INTO scanner_results (workload_id, inventory_id, runs, insecure_configurations, summary)
       VALUES ($1, $2, $3, $4, $5) RETURNING id`,
      [
        workloadId,
        Number(inventoryId),
        runsJson,
        JSON.stringify(content.insecureConfigurations),
        JSON.stringify(content.summary),
      ],
    );
    return int((row as { id: number | string }).id);
  }

  async inventory(db: SqlDb, id: number | string): Promise<StoredInventory> {
    const cached = this.codec.cachedInventory(String(id));
    if (cached) return cached;
    const row = await db.get<{ inventory: string }>(
      'SELECT inventory FROM scanner_inventories WHERE id = $1',
      [int(id)],
    );
    return this.codec.rememberInventory(String(id), (row as { inventory: string }).inventory);
  }

  async sets(db: SqlDb, ids: readonly string[]): Promise<Map<string, FindingSet>> {
    const { found, missing } = this.codec.cachedSets(ids);
    if (missing.length === 0) return found;
    const rows = await db.all<{ id: number | string; digest: string; findings: string }>(
      `SELECT id, digest, findings FROM scanner_finding_sets WHERE ${db.inArray('id', '$1', 'bigint')}`,
      [db.array(missing.map(Number))],
    );
    return this.codec.addSets(found, rows);
  }

  /** Loads what decoding a stored result needs; the returned function decodes it (once). */
  async decoder(db: SqlDb, row: ResultColumns): Promise<() => ScanContent> {
    const inventory = await this.inventory(db, row.inventory_id);
    const sets = await this.sets(db, this.codec.setIdsOf(row.runs));
    let content: ScanContent | undefined;
    return () => {
      content ??= contentOf(
        inventory,
        this.codec.runs(inventory.packages, row.runs, sets),
        db.json<InsecureConfiguration[]>(row.insecure_configurations),
      );
      return content;
    };
  }
}
