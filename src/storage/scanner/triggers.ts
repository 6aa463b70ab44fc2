/**
 * The scanner's event triggers (`scanner_triggers`): one implementation for both engines over
 * the dialect seam. A trigger belongs to a registered cluster and goes with it.
 */
import { randomUUID } from 'node:crypto';
import { ErrorCodes, NotFoundError } from '../../errors.js';
import type { DeliveryTarget } from '../../events/deliverer.js';
import type { NewTrigger, TriggerRecord } from '../../scanner/scanner-store.js';
import { isoTime } from '../sql.js';
import type { SqlDb } from '../sql.js';

interface TriggerRow {
  id: string;
  cluster: string;
  namespaces: unknown;
  url: string;
  kind: TriggerRecord['kind'];
  secret: string;
  auth: string | null;
  /** 0/1 on SQLite, boolean on PostgreSQL. */
  every_scan: number | boolean;
  created_at: number | Date;
}

function triggerOf(db: SqlDb, row: TriggerRow): TriggerRecord {
  return {
    id: row.id,
    cluster: row.cluster,
    namespaces: db.json<TriggerRecord['namespaces']>(row.namespaces),
    url: row.url,
    kind: row.kind,
    everyScan: row.every_scan === true || row.every_scan === 1,
    createdAt: isoTime(row.created_at),
  };
}

const SELECT = `SELECT t.id, t.namespaces, t.url, t.kind, t.secret, t.auth, t.every_scan, t.created_at, c.name AS cluster
  FROM scanner_triggers t JOIN scanner_clusters c ON c.id = t.cluster_id`;

export class TriggerStore {
  constructor(
    private readonly db: SqlDb,
    /** Epoch ms. */
    private readonly now: () => number,
  ) {}

  /** Throws CLUSTER_NOT_FOUND when the cluster is not registered. */
  async create(input: NewTrigger): Promise<TriggerRecord> {
    const id = randomUUID();
    const at = new Date(this.now());
    const inserted = await this.db.run(
      `INSERT INTO scanner_triggers (id, cluster_id, namespaces, url, kind, secret, auth, every_scan, created_at)
       SELECT $1, c.id, $3, $4, $5, $6, $7, $8, $9 FROM scanner_clusters c WHERE c.name = $2`,
      [
        id,
        input.cluster,
        JSON.stringify(input.namespaces),
        input.url,
        input.kind,
        input.secret,
        input.auth ?? null,
        input.everyScan,
        at,
      ],
    );
    if (inserted !== 1)
      throw new NotFoundError(ErrorCodes.CLUSTER_NOT_FOUND, `cluster ${input.cluster} is not registered`);
    return {
      id,
      cluster: input.cluster,
      namespaces: input.namespaces,
      url: input.url,
      kind: input.kind,
      everyScan: input.everyScan,
      createdAt: at.toISOString(),
    };
  }

  private row(id: string): Promise<TriggerRow | undefined> {
    return this.db.get<TriggerRow>(`${SELECT} WHERE t.id = $1`, [id]);
  }

  async get(id: string): Promise<TriggerRecord | undefined> {
    const row = await this.row(id);
    return row && triggerOf(this.db, row);
  }

  async list(): Promise<TriggerRecord[]> {
    return (await this.db.all<TriggerRow>(`${SELECT} ORDER BY c.name, t.created_at, t.id`)).map((row) =>
      triggerOf(this.db, row),
    );
  }

  async delete(id: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM scanner_triggers WHERE id = $1', [id])) === 1;
  }

  /** The deliverer's view of a trigger; undefined once it is deleted. */
  async target(id: string): Promise<DeliveryTarget | undefined> {
    const row = await this.row(id);
    if (!row) return undefined;
    if (row.kind === 'openwhisk')
      return { kind: 'openwhisk', url: row.url, secret: row.secret, auth: row.auth ?? '' };
    return { kind: 'cloudevents', url: row.url, secret: row.secret };
  }
}
