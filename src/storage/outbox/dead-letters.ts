/** Listing the outbox's dead letters: one query for both engines (`storage/sql.ts`). */
import type { DeadLetter, DeadLetterFilter } from '../../events/outbox.js';
import { isoTime } from '../sql.js';
import type { SqlDb } from '../sql.js';

interface DeadRow {
  event_id: string;
  trigger_id: string;
  type: string;
  body: string;
  attempts: number;
  last_error: string | null;
  finished_at: number | Date;
}

export async function listDeadLetters(
  db: SqlDb,
  filter: DeadLetterFilter & { limit?: number } = {},
): Promise<DeadLetter[]> {
  const rows = await db.all<DeadRow>(
    `SELECT d.event_id, d.trigger_id, e.type, e.body, d.attempts, d.last_error, d.finished_at
     FROM event_deliveries d JOIN event_outbox e ON e.id = d.event_id
     WHERE d.status = 'dead' AND (CAST($1 AS text) IS NULL OR d.event_id = $1)
       AND (CAST($2 AS text) IS NULL OR d.trigger_id = $2)
     ORDER BY d.finished_at, d.event_id, d.trigger_id LIMIT $3`,
    [filter.eventId ?? null, filter.triggerId ?? null, filter.limit ?? 1000],
  );
  return rows.map((r) => ({
    eventId: r.event_id,
    triggerId: r.trigger_id,
    type: r.type,
    body: r.body,
    attempts: r.attempts,
    lastError: r.last_error ?? '',
    deadAt: isoTime(r.finished_at),
  }));
}
