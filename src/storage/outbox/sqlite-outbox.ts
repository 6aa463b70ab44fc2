/**
 * The outbox on SQLite (better-sqlite3, WAL). `enqueue` is synchronous and runs on the server's
 * own connection, so it joins the caller's `db.transaction(...)`; on its own it is atomic too
 * (a nested better-sqlite3 transaction becomes a savepoint). Times are epoch milliseconds.
 */
import type { Database, Statement } from 'better-sqlite3';
import type { CloudEvent } from 'cloudevents';
import { structuredBody } from '../../events/cloud-event.js';
import { migrateSqlite } from '../migrations.js';
import { sqliteDb } from '../sql.js';
import type { SqlDb } from '../sql.js';
import { listDeadLetters } from './dead-letters.js';
import { OUTBOX_MIGRATIONS } from './migrations.js';
import type {
  ClaimedDelivery,
  DeadLetter,
  DeadLetterFilter,
  DeliveryKey,
  Outbox,
} from '../../events/outbox.js';

export class SqliteOutbox implements Outbox<Database> {
  private readonly insertEvent: Statement;
  private readonly insertDelivery: Statement;
  private readonly claimStmt: Statement;
  private readonly bodyStmt: Statement;
  private readonly deliveredStmt: Statement;
  private readonly retryStmt: Statement;
  private readonly deadStmt: Statement;
  private readonly sql: SqlDb;

  constructor(private readonly db: Database) {
    db.pragma('journal_mode = WAL');
    migrateSqlite(db, OUTBOX_MIGRATIONS);
    this.sql = sqliteDb(db);
    this.insertEvent = db.prepare(
      'INSERT INTO event_outbox (id, type, body, created_at) VALUES (?, ?, ?, ?)',
    );
    this.insertDelivery = db.prepare(
      'INSERT OR IGNORE INTO event_deliveries (event_id, trigger_id, next_attempt_at) VALUES (?, ?, ?)',
    );
    this.claimStmt = db.prepare(`
      UPDATE event_deliveries SET lease_owner = @owner, lease_until = @until
      WHERE rowid IN (
        SELECT rowid FROM event_deliveries
        WHERE status = 'pending' AND next_attempt_at <= @now AND (lease_until IS NULL OR lease_until <= @now)
        ORDER BY next_attempt_at LIMIT @limit)
      RETURNING event_id, trigger_id, attempts`);
    this.bodyStmt = db.prepare('SELECT type, body FROM event_outbox WHERE id = ?');
    this.deliveredStmt = db.prepare(`
      UPDATE event_deliveries SET status = 'delivered', finished_at = @now, lease_owner = NULL, lease_until = NULL
      WHERE event_id = @eventId AND trigger_id = @triggerId AND status = 'pending'`);
    this.retryStmt = db.prepare(`
      UPDATE event_deliveries SET attempts = attempts + 1, next_attempt_at = @due, last_error = @error,
        lease_owner = NULL, lease_until = NULL
      WHERE event_id = @eventId AND trigger_id = @triggerId AND status = 'pending' AND lease_owner = @owner`);
    this.deadStmt = db.prepare(`
      UPDATE event_deliveries SET status = 'dead', attempts = attempts + 1, last_error = @error, finished_at = @now,
        lease_owner = NULL, lease_until = NULL
      WHERE event_id = @eventId AND trigger_id = @triggerId AND status = 'pending' AND lease_owner = @owner`);
  }

  enqueue(tx: Database, event: CloudEvent<unknown>, triggerIds: readonly string[]): void {
    // Statements are bound to this.db: another connection would be another transaction.
    if (tx !== this.db)
      throw new Error('SqliteOutbox.enqueue must run on the connection the outbox was opened with');
    const now = Date.now();
    this.db.transaction(() => {
      this.insertEvent.run(event.id, event.type, structuredBody(event), now);
      for (const triggerId of triggerIds) this.insertDelivery.run(event.id, triggerId, now);
    })();
  }

  /**
   * Frees every claimed delivery. Only for a process that owns the database alone (a SQLite data
   * dir has one server): after a crash its claims would otherwise wait out their lease.
   */
  releaseLeases(): number {
    return this.db
      .prepare(
        `UPDATE event_deliveries SET lease_owner = NULL, lease_until = NULL
         WHERE status = 'pending' AND lease_owner IS NOT NULL`,
      )
      .run().changes;
  }

  async claim(limit: number, leaseMs: number, owner: string): Promise<ClaimedDelivery[]> {
    return this.db
      .transaction(() => {
        const now = Date.now();
        const rows = this.claimStmt.all({ owner, until: now + leaseMs, now, limit }) as {
          event_id: string;
          trigger_id: string;
          attempts: number;
        }[];
        return rows.map((r) => {
          const event = this.bodyStmt.get(r.event_id) as { type: string; body: string };
          return { eventId: r.event_id, triggerId: r.trigger_id, attempts: r.attempts, ...event };
        });
      })
      .immediate();
  }

  async markDelivered(key: DeliveryKey): Promise<void> {
    this.deliveredStmt.run({ ...key, now: Date.now() });
  }

  async scheduleRetry(key: DeliveryKey, owner: string, delayMs: number, error: string): Promise<void> {
    this.retryStmt.run({ ...key, owner, due: Date.now() + delayMs, error });
  }

  async deadLetter(key: DeliveryKey, owner: string, error: string): Promise<void> {
    this.deadStmt.run({ ...key, owner, error, now: Date.now() });
  }

  listDeadLetters(filter: DeadLetterFilter & { limit?: number } = {}): Promise<DeadLetter[]> {
    return listDeadLetters(this.sql, filter);
  }

  async replayDeadLetters(filter: DeadLetterFilter = {}): Promise<number> {
    return this.db
      .prepare(
        `UPDATE event_deliveries SET status = 'pending', attempts = 0, next_attempt_at = @now, finished_at = NULL
         WHERE status = 'dead' AND (@eventId IS NULL OR event_id = @eventId)
           AND (@triggerId IS NULL OR trigger_id = @triggerId)`,
      )
      .run({ eventId: filter.eventId ?? null, triggerId: filter.triggerId ?? null, now: Date.now() }).changes;
  }

  async purgeDelivered(before: Date): Promise<number> {
    // Deliveries first, explicitly: the server's connection may not enable foreign-key cascades.
    const purgeable = `SELECT id FROM event_outbox e WHERE e.created_at < @before AND NOT EXISTS (
      SELECT 1 FROM event_deliveries d WHERE d.event_id = e.id AND d.status <> 'delivered')`;
    return this.db.transaction(() => {
      this.db
        .prepare(`DELETE FROM event_deliveries WHERE event_id IN (${purgeable})`)
        .run({ before: before.getTime() });
      return this.db
        .prepare(`DELETE FROM event_outbox WHERE id IN (${purgeable})`)
        .run({ before: before.getTime() }).changes;
    })();
  }
}
