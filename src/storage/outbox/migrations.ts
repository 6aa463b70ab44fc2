/**
 * The outbox's tables (`event_outbox`, `event_deliveries`) on both engines: one history
 * (`storage/migrations.ts`). SQLite keeps epoch milliseconds, PostgreSQL the database's own
 * timestamps (replicas with skewed clocks agree on leases).
 */
import { defineMigrations } from '../migrations.js';

export const OUTBOX_MIGRATIONS = defineMigrations('events', [
  {
    version: 1,
    name: 'event_outbox and event_deliveries',
    sqlite: `
CREATE TABLE IF NOT EXISTS event_outbox (
  id TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS event_deliveries (
  event_id TEXT NOT NULL REFERENCES event_outbox(id) ON DELETE CASCADE,
  trigger_id TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  lease_owner TEXT,
  lease_until INTEGER,
  last_error TEXT,
  finished_at INTEGER,
  PRIMARY KEY (event_id, trigger_id)
);
CREATE INDEX IF NOT EXISTS event_deliveries_due ON event_deliveries (status, next_attempt_at);
`,
    postgres: `
CREATE TABLE IF NOT EXISTS event_outbox (
  id text PRIMARY KEY,
  type text NOT NULL,
  body text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS event_deliveries (
  event_id text NOT NULL REFERENCES event_outbox(id) ON DELETE CASCADE,
  trigger_id text NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  lease_owner text,
  lease_until timestamptz,
  last_error text,
  finished_at timestamptz,
  PRIMARY KEY (event_id, trigger_id)
);
CREATE INDEX IF NOT EXISTS event_deliveries_due ON event_deliveries (next_attempt_at) WHERE status = 'pending';
`,
  },
]);
