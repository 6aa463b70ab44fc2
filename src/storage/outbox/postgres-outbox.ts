/**
 * The outbox on PostgreSQL, safe with several replicas delivering at once: claims take rows with
 * `FOR UPDATE SKIP LOCKED` (concurrent claimers never wait for nor take the same rows) and set a
 * lease that keeps other replicas off those rows until it runs out. All times are the database's,
 * so replicas with skewed clocks agree.
 */
import type { ClientBase, Pool } from 'pg';
import type { CloudEvent } from 'cloudevents';
import { structuredBody } from '../../events/cloud-event.js';
import { migratePostgres } from '../migrations.js';
import { postgresDb } from '../sql.js';
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

export class PostgresOutbox implements Outbox<ClientBase | Pool> {
  private readonly sql: SqlDb;

  private constructor(private readonly pool: Pool) {
    this.sql = postgresDb(pool);
  }

  /** Creates or migrates the tables (`OUTBOX_MIGRATIONS`). */
  static async open(pool: Pool): Promise<PostgresOutbox> {
    await migratePostgres(pool, OUTBOX_MIGRATIONS);
    return new PostgresOutbox(pool);
  }

  /** One statement: atomic on its own (a pool will do), and part of the caller’s transaction on its client. */
  async enqueue(
    tx: ClientBase | Pool,
    event: CloudEvent<unknown>,
    triggerIds: readonly string[],
  ): Promise<void> {
    await tx.query(
      `WITH e AS (INSERT INTO event_outbox (id, type, body) VALUES ($1, $2, $3) RETURNING id)
       INSERT INTO event_deliveries (event_id, trigger_id)
       SELECT e.id, t FROM e, unnest($4::text[]) AS t ON CONFLICT DO NOTHING`,
      [event.id, event.type, structuredBody(event), [...triggerIds]],
    );
  }

  async claim(limit: number, leaseMs: number, owner: string): Promise<ClaimedDelivery[]> {
    const { rows } = await this.pool.query<{
      event_id: string;
      trigger_id: string;
      attempts: number;
      type: string;
      body: string;
    }>(
      `WITH due AS (
         SELECT event_id, trigger_id FROM event_deliveries
         WHERE status = 'pending' AND next_attempt_at <= now() AND (lease_until IS NULL OR lease_until <= now())
         ORDER BY next_attempt_at LIMIT $1
         FOR UPDATE SKIP LOCKED)
       UPDATE event_deliveries d SET lease_owner = $2, lease_until = now() + $3 * interval '1 millisecond'
       FROM due JOIN event_outbox e ON e.id = due.event_id
       WHERE d.event_id = due.event_id AND d.trigger_id = due.trigger_id
       RETURNING d.event_id, d.trigger_id, d.attempts, e.type, e.body`,
      [limit, owner, leaseMs],
    );
    return rows.map((r) => ({
      eventId: r.event_id,
      triggerId: r.trigger_id,
      attempts: r.attempts,
      type: r.type,
      body: r.body,
    }));
  }

  async markDelivered(key: DeliveryKey): Promise<void> {
    await this.pool.query(
      `UPDATE event_deliveries SET status = 'delivered', finished_at = now(), lease_owner = NULL, lease_until = NULL
       WHERE event_id = $1 AND trigger_id = $2 AND status = 'pending'`,
      [key.eventId, key.triggerId],
    );
  }

  async scheduleRetry(key: DeliveryKey, owner: string, delayMs: number, error: string): Promise<void> {
    await this.pool.query(
      `UPDATE event_deliveries SET attempts = attempts + 1, last_error = $4, lease_owner = NULL, lease_until = NULL,
         next_attempt_at = now() + $5 * interval '1 millisecond'
       WHERE event_id = $1 AND trigger_id = $2 AND status = 'pending' AND lease_owner = $3`,
      [key.eventId, key.triggerId, owner, error, delayMs],
    );
  }

  async deadLetter(key: DeliveryKey, owner: string, error: string): Promise<void> {
    await this.pool.query(
      `UPDATE event_deliveries SET status = 'dead', attempts = attempts + 1, last_error = $4, finished_at = now(),
         lease_owner = NULL, lease_until = NULL
       WHERE event_id = $1 AND trigger_id = $2 AND status = 'pending' AND lease_owner = $3`,
      [key.eventId, key.triggerId, owner, error],
    );
  }

  listDeadLetters(filter: DeadLetterFilter & { limit?: number } = {}): Promise<DeadLetter[]> {
    return listDeadLetters(this.sql, filter);
  }

  async replayDeadLetters(filter: DeadLetterFilter = {}): Promise<number> {
    const result = await this.pool.query(
      `UPDATE event_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), finished_at = NULL
       WHERE status = 'dead' AND ($1::text IS NULL OR event_id = $1) AND ($2::text IS NULL OR trigger_id = $2)`,
      [filter.eventId ?? null, filter.triggerId ?? null],
    );
    return result.rowCount ?? 0;
  }

  async purgeDelivered(before: Date): Promise<number> {
    const result = await this.pool.query(
      `DELETE FROM event_outbox e WHERE e.created_at < $1 AND NOT EXISTS (
         SELECT 1 FROM event_deliveries d WHERE d.event_id = e.id AND d.status <> 'delivered')`,
      [before],
    );
    return result.rowCount ?? 0;
  }
}
