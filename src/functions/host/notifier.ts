/**
 * Where `notify(channel, message)` goes. The default, AuditNotifier, writes each notification as a
 * structured log line (`msg: "policy notification"`) and keeps the latest ones in memory for the
 * audit view; a deployment can plug in e-mail, chat or a webhook with the same interface.
 */
import pino from 'pino';
import type { Logger } from 'pino';
import type { JsonValue } from '../sandbox/sandbox.js';

export interface Notification {
  channel: string;
  message: JsonValue;
  /** The function namespace and action that sent it. */
  namespace: string;
  action: string;
  activationId: string;
  /** Sent by a dry-run activation: it describes what would have happened. */
  dryRun: boolean;
  /** RFC 3339. */
  at: string;
}

export interface Notifier {
  notify(notification: Notification): void | Promise<void>;
}

export class AuditNotifier implements Notifier {
  private readonly kept: Notification[] = [];
  private readonly logger: Pick<Logger, 'info'>;
  private readonly keep: number;

  /** `keep`: how many recent notifications stay in memory (default 1000). */
  constructor(options: { logger?: Pick<Logger, 'info'>; keep?: number } = {}) {
    this.logger = options.logger ?? pino({ name: 'containment-policy' });
    this.keep = options.keep ?? 1000;
  }

  notify(notification: Notification): void {
    this.logger.info({ notification }, 'policy notification');
    this.kept.push(notification);
    if (this.kept.length > this.keep) this.kept.splice(0, this.kept.length - this.keep);
  }

  /** The kept notifications, oldest first. */
  recent(): readonly Notification[] {
    return [...this.kept];
  }
}
