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
import type { EncodedContent, ResultCodec, StoredBlobs } from './result-codec.js';
import type { ScanContent, StoredInventory } from '../../scanner/scanner-store.js';
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
   * (two PostgreSQL replicas inserting the same blobs then wait for each other, not deadlock). On
   * PostgreSQL all in one statement (`storeBlobsAtOnce`); on SQLite one statement per write.
   */
  async storeBlobs(db: SqlDb, encoded: EncodedContent): Promise<StoredBlobs> {
    const { inventory } = encoded;
    if (db.engine === 'postgres') return this.storeBlobsAtOnce(db, encoded);
    let inventoryId = inventory.knownId ?? this.codec.inventoryId(inventory.digest);
    if (inventoryId === undefined) {
      const inserted = await db.get<{ id: number | string }>(
        `INSERT INTO scanner_inventories (digest, inventory) VALUES ($1, $2)
         ON CONFLICT (digest) DO NOTHING RETURNING id`,
        [inventory.digest, inventory.json],
      );
      if (inserted) {
        const id = int(inserted.id);
        await db.insertMany(
          'scanner_inventory_keys',
          [
            ['key', 'text'],
            ['inventory_id', 'bigint'],
          ],
          inventory.packageKeys().map((key) => [key, id]),
        );
      }
      const id =
        inserted?.id ??
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

  /**
   * PostgreSQL's `storeBlobs` in one statement (a round trip instead of up to five): the inventory
   * with its keys, the missing finding sets and the advisory pairs, each `ON CONFLICT DO NOTHING`
   * in the same order as on SQLite (inventory, then sets and pairs by digest: replicas wait for each
   * other, never deadlock). The ids of blobs that were already stored are read in the same
   * statement; only a blob another replica committed while it ran (invisible to its snapshot) is
   * read again after it.
   */
  private async storeBlobsAtOnce(db: SqlDb, encoded: EncodedContent): Promise<StoredBlobs> {
    const { inventory } = encoded;
    const knownInventory = inventory.knownId ?? this.codec.inventoryId(inventory.digest);
    const setIds = new Map<string, string>();
    const missing: FindingSet[] = [];
    for (const set of encoded.sets) {
      const id = this.codec.setId(set.digest);
      if (id === undefined) missing.push(set);
      else setIds.set(set.digest, id);
    }
    missing.sort((a, b) => byString(a.digest, b.digest));
    const pairs = [...encoded.advisoryPackages].sort((a, b) => byString(a[0], b[0]) || byString(a[1], b[1]));
    const rows = await db.all<{ blob: 'inventory' | 'set'; id: number | string; digest: string }>(
      `WITH inv AS (
         INSERT INTO scanner_inventories (digest, inventory) SELECT $1::text, $2::text WHERE $1 IS NOT NULL
         ON CONFLICT (digest) DO NOTHING RETURNING id
       ), keys AS (
         INSERT INTO scanner_inventory_keys (key, inventory_id)
         SELECT k, inv.id FROM inv, unnest($3::text[]) AS k ON CONFLICT DO NOTHING
       ), sets AS (
         INSERT INTO scanner_finding_sets (digest, findings) SELECT * FROM unnest($4::text[], $5::text[])
         ON CONFLICT DO NOTHING RETURNING id, digest
       ), pairs AS (
         INSERT INTO scanner_advisory_packages (advisory_key, package_key)
         SELECT * FROM unnest($6::text[], $7::text[]) ON CONFLICT DO NOTHING
       )
       SELECT 'inventory' AS blob, id, $1 AS digest FROM inv
       UNION ALL SELECT 'inventory', id, digest FROM scanner_inventories WHERE digest = $1
       UNION ALL SELECT 'set', id, digest FROM sets
       UNION ALL SELECT 'set', id, digest FROM scanner_finding_sets WHERE digest = ANY($4::text[])`,
      [
        knownInventory === undefined ? inventory.digest : null,
        knownInventory === undefined ? inventory.json : null,
        knownInventory === undefined ? inventory.packageKeys() : [],
        missing.map((m) => m.digest),
        missing.map((m) => m.body),
        pairs.map(([advisory]) => advisory),
        pairs.map(([, pkg]) => pkg),
      ],
    );
    let inventoryId = knownInventory;
    for (const row of rows) {
      if (row.blob === 'inventory') inventoryId = String(row.id);
      else setIds.set(row.digest, String(row.id));
    }
    inventoryId ??= (
      await db.get<{ id: number | string }>('SELECT id FROM scanner_inventories WHERE digest = $1', [
        inventory.digest,
      ])
    )?.id?.toString();
    if (inventoryId === undefined) throw new Error('inventory blob vanished');
    const unread = missing.filter((m) => !setIds.has(m.digest)).map((m) => m.digest);
    if (unread.length > 0) {
      const late = await db.all<{ id: number | string; digest: string }>(
        `SELECT id, digest FROM scanner_finding_sets WHERE ${db.inArray('digest', '$1', 'text')}`,
        [db.array(unread)],
      );
      for (const row of late) setIds.set(row.digest, String(row.id));
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
