/**
 * A ReplayGuard kept in SQLite, so a receiver's restart does not reopen the replay window: an id
 * accepted just before the restart is still refused after it, until it expires (by then the
 * timestamp check refuses the delivery anyway).
 */
import Database from 'better-sqlite3';
import { replayRetentionMs } from './signature.js';
import type { ReplayGuard } from './signature.js';

export class SqliteReplayGuard implements ReplayGuard {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement<[string, number]>;
  private readonly prune: Database.Statement<[number]>;
  private readonly remove: Database.Statement<[string]>;

  constructor(
    file: string,
    private readonly retentionMs = replayRetentionMs(),
  ) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS delivery_ids (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID',
    );
    this.insert = this.db.prepare(
      'INSERT INTO delivery_ids (id, expires_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING',
    );
    this.prune = this.db.prepare('DELETE FROM delivery_ids WHERE expires_at <= ?');
    this.remove = this.db.prepare('DELETE FROM delivery_ids WHERE id = ?');
  }

  claim(id: string, now: Date = new Date()): boolean {
    const t = now.getTime();
    return this.db.transaction(() => {
      this.prune.run(t);
      return this.insert.run(id, t + this.retentionMs).changes === 1;
    })();
  }

  release(id: string): void {
    this.remove.run(id);
  }

  close(): void {
    this.db.close();
  }
}
