/**
 * The one place where the scanner's writes meet the engine: a transaction, and the outbox on the
 * same connection. Everything else in `storage/scanner/` is written once over `SqlDb`.
 *
 * - SQLite (one writer, better-sqlite3 runs synchronously): `BEGIN IMMEDIATE` takes the database
 *   lock before the first read, so e.g. two reports for one workload cannot both diff against the
 *   same predecessor; transactions of this store run one after another. The statements inside are
 *   awaited, but none waits for I/O, so the transaction runs in one turn of the event loop.
 * - PostgreSQL (replicas share the database, READ COMMITTED): a pooled client per transaction;
 *   the statements take row locks (`SqlDb.locking`) where two replicas could race.
 */
import type { CloudEvent } from 'cloudevents';
import type { Database } from 'better-sqlite3';
import type { Pool, PoolClient } from 'pg';
import type { PostgresOutbox } from '../outbox/postgres-outbox.js';
import type { SqliteOutbox } from '../outbox/sqlite-outbox.js';
import { postgresDb, sqliteDb } from '../sql.js';
import type { SqlDb } from '../sql.js';

/** What a write sees: its statements and the outbox, both in one transaction. */
export interface ScannerTx {
  db: SqlDb;
  enqueue(event: CloudEvent<unknown>, triggerIds: readonly string[]): Promise<void>;
}

/** Returned by a transaction's work: rolls back, and the transaction yields `value`. */
export class Rollback<T> {
  constructor(readonly value: T) {}
}

export type InTransaction = <T>(work: (tx: ScannerTx) => Promise<T | Rollback<T>>) => Promise<T>;

export function sqliteTransactions(db: Database, outbox: SqliteOutbox): InTransaction {
  const tx: ScannerTx = {
    db: sqliteDb(db),
    enqueue: async (event, triggerIds) => outbox.enqueue(db, event, triggerIds),
  };
  const begin = db.prepare('BEGIN IMMEDIATE');
  const commit = db.prepare('COMMIT');
  const rollback = db.prepare('ROLLBACK');
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(work: (tx: ScannerTx) => Promise<T | Rollback<T>>): Promise<T> => {
    const run = async (): Promise<T> => {
      begin.run();
      try {
        const result = await work(tx);
        if (result instanceof Rollback) {
          rollback.run();
          return result.value as T;
        }
        commit.run();
        return result;
      } catch (e) {
        if (db.inTransaction) rollback.run();
        throw e;
      }
    };
    const next = tail.then(run, run);
    tail = next.catch(() => undefined);
    return next;
  };
}

/**
 * SQLite: the store's single writes outside a transaction (a cluster, a trigger, the re-match
 * cursor) wait for the transaction under way instead of landing inside it (one connection: a
 * write issued between two of its statements would commit or roll back with it).
 */
export function queuedWrites(db: SqlDb, transaction: InTransaction): SqlDb {
  return { ...db, run: (sql, params) => transaction(async (tx) => tx.db.run(sql, params)) };
}

export function postgresTransactions(pool: Pool, outbox: PostgresOutbox): InTransaction {
  return async <T>(work: (tx: ScannerTx) => Promise<T | Rollback<T>>): Promise<T> => {
    const client: PoolClient = await pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work({
        db: postgresDb(client, { prepared: true }),
        enqueue: (event, triggerIds) => outbox.enqueue(client, event, triggerIds),
      });
      if (result instanceof Rollback) {
        await client.query('ROLLBACK');
        return result.value as T;
      }
      await client.query('COMMIT');
      return result;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      client.release();
    }
  };
}
