/**
 * Sends outbox deliveries to their triggers: structured-mode CloudEvents over HTTP, or an Apache
 * OpenWhisk trigger fire with the event as parameters. Every body is signed with the trigger's
 * secret. Non-2xx answers, network errors and timeouts are retried with capped exponential
 * backoff and jitter, and dead-lettered after `maxAttempts`; a target the SSRF guard refuses (or a
 * trigger that no longer exists) is dead-lettered at once. Redirects are never followed.
 *
 * Requests go through `node:http(s)` rather than `fetch` so the guard's `lookup` pins each
 * connection to addresses it has checked (fetch offers no such hook without undici's Agent).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { hostname } from 'node:os';
import { ContainmentError, ErrorCodes, isContainmentError } from '../errors.js';
import type { ClaimedDelivery, DeliveryQueue } from './outbox.js';
import { signDelivery } from './signature.js';
import type { TargetGuard } from './ssrf.js';

export type DeliveryTarget =
  | { kind: 'cloudevents'; url: string; secret: string }
  /** `url` is the trigger's fire URL (see `openWhiskTriggerUrl`); `auth` is the API key `uuid:key`. */
  | { kind: 'openwhisk'; url: string; secret: string; auth: string };

/** `<apiHost>/api/v1/namespaces/{namespace}/triggers/{trigger}`, each name percent-encoded. */
export function openWhiskTriggerUrl(apiHost: string, namespace: string, trigger: string): string {
  const base = apiHost.replace(/\/+$/, '');
  return `${base}/api/v1/namespaces/${encodeURIComponent(namespace)}/triggers/${encodeURIComponent(trigger)}`;
}

export interface RetryPolicy {
  /** Delay after the first failure. */
  baseMs: number;
  /** Upper bound of any delay. */
  maxMs: number;
  /** Fraction of the delay added or removed at random (0.2 = ±20%). */
  jitter: number;
  /** Failed attempts after which a delivery becomes a dead letter. */
  maxAttempts: number;
}

const RETRY_WAKE_SLACK_MS = 25;

export const DEFAULT_RETRY: RetryPolicy = { baseMs: 1000, maxMs: 5 * 60_000, jitter: 0.2, maxAttempts: 10 };

/** Delay before the next try after `failures` failed attempts (1, 2, …): `base·2^(failures-1) ± jitter`, capped. */
export function retryDelayMs(
  failures: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const exponential = policy.baseMs * 2 ** Math.max(0, failures - 1);
  const jittered = exponential * (1 + policy.jitter * (2 * random() - 1));
  return Math.round(Math.min(policy.maxMs, Math.max(0, jittered)));
}

export type DeliveryOutcome = ClaimedDeliveryRef &
  (
    | { result: 'delivered'; status: number }
    | { result: 'retry'; error: string; retryInMs: number }
    | { result: 'dead'; error: string }
  );

interface ClaimedDeliveryRef {
  eventId: string;
  triggerId: string;
  /** This attempt's number, from 1. */
  attempt: number;
}

export interface DelivererOptions {
  queue: DeliveryQueue;
  /** The trigger's current target; undefined when the trigger was removed. */
  targets: (triggerId: string) => DeliveryTarget | undefined | Promise<DeliveryTarget | undefined>;
  guard: TargetGuard;
  /** Lease owner id; unique per process. */
  owner?: string;
  /** Deliveries in flight at once. */
  concurrency?: number;
  /** How long a claim keeps other deliverers off a row; must exceed `requestTimeoutMs`. */
  leaseMs?: number;
  requestTimeoutMs?: number;
  /** Fallback poll when nobody calls `notify()` (other replicas' events, retries after a restart). */
  pollIntervalMs?: number;
  retry?: Partial<RetryPolicy>;
  onOutcome?: (outcome: DeliveryOutcome) => void;
  /** Queue errors (database unavailable, …); the loop keeps going. */
  onError?: (error: unknown) => void;
}

export class Deliverer {
  readonly owner: string;
  private readonly queue: DeliveryQueue;
  private readonly targets: DelivererOptions['targets'];
  private readonly guard: TargetGuard;
  private readonly concurrency: number;
  private readonly leaseMs: number;
  private readonly requestTimeoutMs: number;
  private readonly pollIntervalMs: number;
  private readonly retry: RetryPolicy;
  private readonly onOutcome: (outcome: DeliveryOutcome) => void;
  private readonly onError: (error: unknown) => void;

  private readonly inFlight = new Set<Promise<void>>();
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private woken = false;
  private wake: (() => void) | undefined;
  private stopping = false;
  private loop: Promise<void> | undefined;

  constructor(options: DelivererOptions) {
    this.queue = options.queue;
    this.targets = options.targets;
    this.guard = options.guard;
    this.owner = options.owner ?? `${hostname()}/${process.pid}/${randomUUID()}`;
    this.concurrency = options.concurrency ?? 8;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.leaseMs = options.leaseMs ?? Math.max(60_000, 3 * this.requestTimeoutMs);
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.onOutcome = options.onOutcome ?? (() => {});
    this.onError = options.onError ?? (() => {});
    // A lease that ran out mid-request would let another replica send the same event concurrently.
    if (this.leaseMs <= this.requestTimeoutMs) {
      throw new ContainmentError(
        ErrorCodes.CONFIG_INVALID,
        'delivery lease must be longer than the request timeout',
      );
    }
    if (this.retry.maxAttempts < 1 || this.concurrency < 1) {
      throw new ContainmentError(ErrorCodes.CONFIG_INVALID, 'maxAttempts and concurrency must be at least 1');
    }
  }

  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.loop = this.run();
  }

  /** Wakes the loop now (call after an enqueue's transaction commits, or after a replay). */
  notify(): void {
    this.woken = true;
    this.wake?.();
  }

  /** Stops claiming, waits for in-flight deliveries to finish (each bounded by the request timeout). */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const timer of this.retryTimers) clearTimeout(timer);
    this.retryTimers.clear();
    this.notify();
    await this.loop;
    this.loop = undefined;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      this.woken = false;
      const free = this.concurrency - this.inFlight.size;
      let claimed: ClaimedDelivery[] = [];
      if (free > 0) {
        try {
          claimed = await this.queue.claim(free, this.leaseMs, this.owner);
        } catch (e) {
          this.onError(e);
        }
      }
      for (const delivery of claimed) {
        const task: Promise<void> = this.deliver(delivery).finally(() => {
          this.inFlight.delete(task);
          this.notify();
        });
        this.inFlight.add(task);
      }
      // A full batch may mean more are due; otherwise sleep until notified, a slot frees, or the poll.
      if (free > 0 && claimed.length === free && !this.stopping) continue;
      await this.sleep();
    }
    await Promise.all(this.inFlight);
  }

  private async sleep(): Promise<void> {
    if (this.woken || this.stopping) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.pollIntervalMs);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = undefined;
  }

  private async deliver(delivery: ClaimedDelivery): Promise<void> {
    const ref = { eventId: delivery.eventId, triggerId: delivery.triggerId, attempt: delivery.attempts + 1 };
    const attempt = await this.attempt(delivery);
    try {
      if ('status' in attempt) {
        await this.queue.markDelivered(delivery);
        this.onOutcome({ ...ref, result: 'delivered', status: attempt.status });
      } else if (attempt.permanent || ref.attempt >= this.retry.maxAttempts) {
        await this.queue.deadLetter(delivery, this.owner, attempt.error);
        this.onOutcome({ ...ref, result: 'dead', error: attempt.error });
      } else {
        const retryInMs = retryDelayMs(ref.attempt, this.retry);
        await this.queue.scheduleRetry(delivery, this.owner, retryInMs, attempt.error);
        // Wake when it is due rather than at the next poll; the slack covers timers firing a
        // millisecond early and the store's clock (PostgreSQL's now()) being a little behind ours.
        const timer = setTimeout(() => {
          this.retryTimers.delete(timer);
          this.notify();
        }, retryInMs + RETRY_WAKE_SLACK_MS).unref();
        this.retryTimers.add(timer);
        this.onOutcome({ ...ref, result: 'retry', error: attempt.error, retryInMs });
      }
    } catch (e) {
      // The lease runs out and the delivery comes back: at least once, never lost.
      this.onError(e);
    }
  }

  private async attempt(
    delivery: ClaimedDelivery,
  ): Promise<{ status: number } | { error: string; permanent: boolean }> {
    try {
      const target = await this.targets(delivery.triggerId);
      if (!target) return { error: `trigger ${delivery.triggerId} no longer exists`, permanent: true };
      const status = await this.send(target, delivery);
      return status >= 200 && status < 300 ? { status } : { error: `HTTP ${status}`, permanent: false };
    } catch (e) {
      const refused = isContainmentError(e) && e.code === ErrorCodes.TARGET_URL_REFUSED;
      return { error: e instanceof Error ? e.message : String(e), permanent: refused };
    }
  }

  /** One POST; resolves with the status code, rejects on network errors, refusals and timeouts. */
  private send(target: DeliveryTarget, delivery: ClaimedDelivery): Promise<number> {
    const url = this.guard.checkUrl(target.url);
    const headers: Record<string, string> = {
      'content-type':
        target.kind === 'cloudevents' ? 'application/cloudevents+json; charset=utf-8' : 'application/json',
      'content-length': String(Buffer.byteLength(delivery.body)),
      // Standard Webhooks: webhook-id is the event id, so every retry of one event shares it.
      ...signDelivery(delivery.body, target.secret, delivery.eventId),
      'idempotency-key': delivery.eventId,
      'user-agent': 'containment-deliverer',
    };
    if (target.kind === 'openwhisk')
      headers.authorization = `Basic ${Buffer.from(target.auth).toString('base64')}`;
    const request = url.protocol === 'https:' ? https.request : http.request;
    return new Promise<number>((resolve, reject) => {
      const req = request(url, {
        method: 'POST',
        headers,
        lookup: this.guard.lookup,
        signal: AbortSignal.timeout(this.requestTimeoutMs),
      });
      req.on('error', (e) =>
        reject(e.name === 'AbortError' ? new Error(`timed out after ${this.requestTimeoutMs} ms`) : e),
      );
      req.on('response', (res) => {
        // Drain and ignore the answer: only the status counts (3xx included: redirects are not followed).
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      });
      req.end(delivery.body);
    });
  }
}
