/**
 * Prometheus metrics of the scanner service (prom-client), served at `GET /metrics` to a global
 * admin token (the counts span every namespace, so a namespace-scoped token must not read them).
 * Each ScannerMetrics owns its registry: several servers in one process (tests, `containment up`)
 * never mix their numbers.
 */
import { Counter, Histogram, Registry } from 'prom-client';
import type { DeliveryOutcome } from '../events/deliverer.js';

/** How a `POST /v1/reports` ended: stored as a new scan, a check-in, a replayed id, or refused (4xx/5xx). */
export type ReportOutcome = 'full' | 'check-in' | 'duplicate' | 'rejected';

export class ScannerMetrics {
  readonly registry = new Registry();
  private readonly reports = new Counter({
    name: 'containment_reports_received_total',
    help: 'Agent reports received, by outcome (full, check-in, duplicate, rejected).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly scans = new Counter({
    name: 'containment_scans_stored_total',
    help: 'Scans stored, by kind (full: matched and stored; check-in: unchanged inventory).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  private readonly enqueued = new Counter({
    name: 'containment_events_enqueued_total',
    help: 'CloudEvents written to the outbox, by type.',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  private readonly deliveries = new Counter({
    name: 'containment_event_deliveries_total',
    help: 'Event delivery attempts, by result (delivered, retry, dead = dead-lettered).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  private readonly durations = new Histogram({
    name: 'containment_http_request_duration_seconds',
    help: 'HTTP request duration, by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  constructor() {
    // Outcomes and results exist from the start, so a dashboard shows 0 rather than "no data".
    for (const outcome of ['full', 'check-in', 'duplicate', 'rejected'] as const)
      this.reports.labels(outcome).inc(0);
    for (const result of ['delivered', 'retry', 'dead'] as const) this.deliveries.labels(result).inc(0);
  }

  reportReceived(outcome: ReportOutcome): void {
    this.reports.labels(outcome).inc();
    if (outcome === 'full' || outcome === 'check-in') this.scans.labels(outcome).inc();
  }

  eventsEnqueued(type: string, count: number): void {
    if (count > 0) this.enqueued.labels(type).inc(count);
  }

  /** Feed the deliverer's `onOutcome` here. */
  deliveryOutcome(outcome: DeliveryOutcome): void {
    this.deliveries.labels(outcome.result).inc();
  }

  /** `route` is the pattern (`/v1/scans/:id`), never the raw URL, to keep label values bounded. */
  requestDone(method: string, route: string, statusCode: number, seconds: number): void {
    this.durations.labels(method, route, String(statusCode)).observe(seconds);
  }

  contentType(): string {
    return this.registry.contentType;
  }

  exposition(): Promise<string> {
    return this.registry.metrics();
  }
}
