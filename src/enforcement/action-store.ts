/**
 * The enforcer's memory of SecurityActions, one SQLite row per action id (`<data dir>/enforcer.sqlite`).
 * Claiming an id is a single INSERT, so the same id submitted twice — even by two processes —
 * is carried out once.
 */
import Database from 'better-sqlite3';
import { defineMigrations, migrateSqlite } from '../storage/migrations.js';
import { configureSqlite } from '../storage/sqlite.js';
import type { ActionPhase, SecurityAction } from './security-action.js';
import { securityActionSchema } from './security-action.js';

export interface ActionListFilter {
  namespaces: readonly string[] | '*';
  phase?: ActionPhase;
  limit: number;
}

/** The enforcer's table, in the shared schema history (`storage/migrations.ts`). */
export const ACTION_MIGRATIONS = defineMigrations('actions', [
  {
    version: 1,
    name: 'security_actions',
    sqlite: `CREATE TABLE IF NOT EXISTS security_actions (
      id TEXT PRIMARY KEY,
      phase TEXT NOT NULL,
      document TEXT NOT NULL,
      updated_at TEXT NOT NULL
    )`,
  },
]);

export class ActionStore {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = configureSqlite(new Database(path), { normalSync: false, foreignKeys: false });
    migrateSqlite(this.db, ACTION_MIGRATIONS);
  }

  /** Stores the action unless its id is taken; true when this call claimed it. */
  claim(action: SecurityAction, at: Date): boolean {
    const result = this.db
      .prepare(
        'INSERT INTO security_actions (id, phase, document, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING',
      )
      .run(action.metadata.name, action.status?.phase ?? 'Pending', JSON.stringify(action), at.toISOString());
    return result.changes === 1;
  }

  update(action: SecurityAction, at: Date): void {
    this.db
      .prepare('UPDATE security_actions SET phase = ?, document = ?, updated_at = ? WHERE id = ?')
      .run(action.status?.phase ?? 'Pending', JSON.stringify(action), at.toISOString(), action.metadata.name);
  }

  get(id: string): SecurityAction | undefined {
    const row = this.db.prepare('SELECT document FROM security_actions WHERE id = ?').get(id) as
      { document: string } | undefined;
    return row ? securityActionSchema.parse(JSON.parse(row.document)) : undefined;
  }

  /** Actions that were Pending or Running, oldest first (left over by a process that stopped). */
  unfinished(): SecurityAction[] {
    const rows = this.db
      .prepare(
        "SELECT document FROM security_actions WHERE phase IN ('Pending', 'Running') ORDER BY updated_at",
      )
      .all() as { document: string }[];
    return rows.map((r) => securityActionSchema.parse(JSON.parse(r.document)));
  }

  /** Newest first, optionally only those whose target is in `namespaces`. */
  list(filter: ActionListFilter): SecurityAction[] {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (filter.namespaces !== '*') {
      if (filter.namespaces.length === 0) return [];
      where.push(
        `json_extract(document, '$.spec.target.namespace') IN (${filter.namespaces.map(() => '?').join(', ')})`,
      );
      params.push(...filter.namespaces);
    }
    if (filter.phase !== undefined) {
      where.push('phase = ?');
      params.push(filter.phase);
    }
    const rows = this.db
      .prepare(
        `SELECT document FROM security_actions ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY updated_at DESC, id LIMIT ?`,
      )
      .all(...params, filter.limit) as { document: string }[];
    return rows.map((r) => securityActionSchema.parse(JSON.parse(r.document)));
  }

  close(): void {
    this.db.close();
  }
}
