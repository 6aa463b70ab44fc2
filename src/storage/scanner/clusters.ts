/** Registered clusters (`scanner_clusters`): one implementation for both engines. */
import { ConflictError, ErrorCodes } from '../../errors.js';
import type { ClusterListing, ClusterRecord } from '../../scanner/scanner-store.js';
import { int, isoTime } from '../sql.js';
import type { SqlDb } from '../sql.js';
import { Params, visibleWhere } from './visibility.js';
import type { Visibility } from './visibility.js';

export class ClusterStore {
  constructor(
    private readonly db: SqlDb,
    /** Epoch ms. */
    private readonly now: () => number,
  ) {}

  /** Throws CLUSTER_EXISTS when the name is taken. */
  async create(name: string): Promise<ClusterRecord> {
    const at = new Date(this.now());
    const inserted = await this.db.run(
      'INSERT INTO scanner_clusters (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING',
      [name, at],
    );
    if (inserted === 0) throw new ConflictError(ErrorCodes.CLUSTER_EXISTS, `cluster ${name} already exists`);
    return { name, createdAt: at.toISOString() };
  }

  async get(name: string): Promise<ClusterRecord | undefined> {
    const row = await this.db.get<{ name: string; created_at: number | Date }>(
      'SELECT name, created_at FROM scanner_clusters WHERE name = $1',
      [name],
    );
    return row && { name: row.name, createdAt: isoTime(row.created_at) };
  }

  async list(visibility: Visibility): Promise<ClusterListing[]> {
    const p = new Params();
    // The workload count obeys the namespace filter; the cluster filter applies to clusters themselves.
    const where = visibleWhere(this.db, p, visibility);
    const rows = await this.db.all<{ name: string; created_at: number | Date; workloads: number | string }>(
      `SELECT c.name, c.created_at,
         (SELECT count(*) FROM scanner_workloads w WHERE w.cluster_id = c.id AND ${where}) AS workloads
       FROM scanner_clusters c
       WHERE ${visibility.cluster === '*' ? '1 = 1' : `c.name = ${p.add(visibility.cluster)}`}
       ORDER BY c.name`,
      p.values,
    );
    return rows.map((r) => ({ name: r.name, createdAt: isoTime(r.created_at), workloads: int(r.workloads) }));
  }

  /** Deletes the cluster with its workloads, scans and triggers (cascading keys). */
  async delete(name: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM scanner_clusters WHERE name = $1', [name])) === 1;
  }
}
