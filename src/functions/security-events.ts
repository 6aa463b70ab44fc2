/**
 * The runtime's security-event log: authentication failures, throttled callers, rejected input and
 * sandbox violations, kept in the runtime's SQLite store (it survives a restart) and read through
 * `GET /api/v1/namespaces/{ns}/security-events` with the namespace's key.
 */
import type { Logger } from 'pino';

export type SecurityEventKind =
  | 'authentication-failed'
  | 'rate-limited'
  | 'body-too-large'
  | 'invalid-event'
  | 'stale-delivery'
  | 'replayed-delivery'
  | 'invalid-input'
  | 'sandbox-violation'
  /** A policy's enforcement call named a workload outside its enforcement scope (refused). */
  | 'scope-denied'
  /** A web action's caller had a valid identity without a role the action requires (403). */
  | 'access-denied'
  /** A web action's input matched an attack pattern (reported, or blocked with 400). */
  | 'input-threat';

/** Events that name no existing namespace (a made-up one, `_` without a valid key) are kept under this. */
export const UNATTRIBUTED = '';

export interface SecurityEvent {
  /** RFC 3339. */
  time: string;
  /** The namespace concerned, or UNATTRIBUTED. */
  namespace: string;
  kind: SecurityEventKind;
  /** The URL path, or `actions/<path>` for an activation refused or ended by the runtime. */
  endpoint: string;
  /** The caller's address, or `trigger <name>` for a rule's activation. */
  source: string;
  reason: string;
}

export interface SecurityEventStore {
  insertSecurityEvent(event: SecurityEvent): void;
  /** `namespace` undefined: every namespace's, and the unattributed ones. */
  listSecurityEvents(
    namespace: string | undefined,
    q: { limit: number; after?: number },
  ): (SecurityEvent & { id: number })[];
}

export class SecurityEventLog {
  constructor(
    private readonly store: SecurityEventStore,
    private readonly logger?: Pick<Logger, 'warn'>,
  ) {}

  record(event: Omit<SecurityEvent, 'time'>): void {
    const full: SecurityEvent = { time: new Date().toISOString(), ...event };
    this.logger?.warn({ securityEvent: full }, 'security event');
    try {
      this.store.insertSecurityEvent(full);
    } catch (e) {
      // A full disk must not turn a refused request into a 500; the log line above still has it.
      this.logger?.warn({ err: e }, 'could not store security event');
    }
  }

  list(
    namespace: string | undefined,
    q: { limit: number; after?: number } = { limit: 200 },
  ): (SecurityEvent & { id: number })[] {
    return this.store.listSecurityEvents(namespace, q);
  }
}
