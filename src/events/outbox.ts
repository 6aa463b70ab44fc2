/**
 * The durable outbox: events are written in the same transaction as the change that caused them,
 * with one delivery row per (event, trigger), so one failing trigger never holds up another.
 * Deliverers claim due rows under a lease (a crashed deliverer's rows come back when the lease
 * runs out), then mark each delivered, due again later, or dead.
 */
import type { CloudEvent } from 'cloudevents';

export interface DeliveryKey {
  eventId: string;
  triggerId: string;
}

export interface ClaimedDelivery extends DeliveryKey {
  type: string;
  /** The exact structured-mode JSON body to send (and sign). */
  body: string;
  /** Failed attempts so far. */
  attempts: number;
}

export interface DeadLetter extends DeliveryKey {
  type: string;
  body: string;
  attempts: number;
  lastError: string;
  /** RFC 3339. */
  deadAt: string;
}

export interface DeadLetterFilter {
  eventId?: string;
  triggerId?: string;
}

/** What a deliverer needs; every write is conditional on the row still being pending. */
export interface DeliveryQueue {
  /** Leases up to `limit` due, unleased pending deliveries to `owner` for `leaseMs`. */
  claim(limit: number, leaseMs: number, owner: string): Promise<ClaimedDelivery[]>;
  markDelivered(key: DeliveryKey): Promise<void>;
  /** Counts a failed attempt and makes the delivery due again after `delayMs`. */
  scheduleRetry(key: DeliveryKey, owner: string, delayMs: number, error: string): Promise<void>;
  /** Counts a failed attempt and moves the delivery to the dead letters. */
  deadLetter(key: DeliveryKey, owner: string, error: string): Promise<void>;
}

export interface Outbox<Tx> extends DeliveryQueue {
  /**
   * Stores `event` with a pending delivery for each trigger, inside the caller's transaction
   * `tx`. Call the deliverer's `notify()` after that transaction commits.
   */
  enqueue(tx: Tx, event: CloudEvent<unknown>, triggerIds: readonly string[]): void | Promise<void>;
  listDeadLetters(filter?: DeadLetterFilter & { limit?: number }): Promise<DeadLetter[]>;
  /** Makes matching dead letters pending again with a fresh attempt count; returns how many. */
  replayDeadLetters(filter?: DeadLetterFilter): Promise<number>;
  /** Deletes events created before `before` with no pending or dead delivery; returns how many. */
  purgeDelivered(before: Date): Promise<number>;
}
