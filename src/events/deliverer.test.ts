import assert from 'node:assert/strict';
import { lookup } from 'node:dns/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { HTTP } from 'cloudevents';
import type { CloudEvent } from 'cloudevents';
import { ContainmentError, ErrorCodes } from '../errors.js';
import { requireOrSkip } from '../testing/shared-data.js';
import { EventTypes, createEvent } from './cloud-event.js';
import { Deliverer, openWhiskTriggerUrl, retryDelayMs } from './deliverer.js';
import type { DelivererOptions, DeliveryOutcome, DeliveryTarget } from './deliverer.js';
import { startReceiver } from './receiver.test-helper.js';
import { waitUntil } from '../testing/wait.js';
import type { Receiver } from './receiver.test-helper.js';
import { signedBy } from '../testing/webhooks.js';
import { SqliteOutbox } from '../storage/outbox/sqlite-outbox.js';
import { TargetGuard } from './ssrf.js';

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'containment-deliverer-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function receiver(respond?: Parameters<typeof startReceiver>[0]): Promise<Receiver> {
  const r = await startReceiver(respond);
  cleanups.push(() => r.close());
  return r;
}

let n = 0;
interface Harness {
  db: Database.Database;
  outbox: SqliteOutbox;
  deliverer: Deliverer;
  outcomes: DeliveryOutcome[];
  targets: Map<string, DeliveryTarget>;
  enqueue(triggerIds: string[]): CloudEvent<unknown>;
}

/** A SQLite outbox and a started deliverer; the poll is an hour, so only notify() and retry timers wake it. */
function harness(options: Partial<DelivererOptions> = {}, allow: string[] = ['127.0.0.0/8']): Harness {
  const db = new Database(join(tmp, `d-${++n}.sqlite`));
  const outbox = new SqliteOutbox(db);
  const outcomes: DeliveryOutcome[] = [];
  const targets = new Map<string, DeliveryTarget>();
  const deliverer = new Deliverer({
    queue: outbox,
    targets: (id) => targets.get(id),
    guard: new TargetGuard({ allow }),
    pollIntervalMs: 3_600_000,
    requestTimeoutMs: 2000,
    retry: { baseMs: 20, jitter: 0, maxAttempts: 5 },
    onOutcome: (o) => outcomes.push(o),
    onError: (e) => assert.fail(`queue error: ${String(e)}`),
    ...options,
  });
  deliverer.start();
  cleanups.push(async () => {
    await deliverer.stop();
    db.close();
  });
  return {
    db,
    outbox,
    deliverer,
    outcomes,
    targets,
    enqueue(triggerIds) {
      const event = createEvent(EventTypes.SCAN_COMPLETED, 'local', {
        workload: { cluster: 'local', namespace: 'shop', pod: `web-${n}`, node: 'n1', image: 'nginx' },
        scanTime: new Date().toISOString(),
        summary: { CRITICAL: 1, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 },
        newFindings: ['CVE-2024-0001'],
        insecureConfigurations: ['sshd-installed'],
      });
      db.transaction(() => outbox.enqueue(db, event, triggerIds))();
      deliverer.notify();
      return event;
    },
  };
}

function statusOf(db: Database.Database, eventId: string, triggerId: string): unknown {
  return db
    .prepare('SELECT status FROM event_deliveries WHERE event_id = ? AND trigger_id = ?')
    .pluck()
    .get(eventId, triggerId);
}

describe('cloudevents targets', () => {
  test('structured mode, signed exact body, idempotency key; woken by notify()', async () => {
    const r = await receiver();
    const h = harness();
    h.targets.set('t1', { kind: 'cloudevents', url: `${r.url}/hook?x=1`, secret: 'trigger-secret' });
    const event = h.enqueue(['t1']);
    await waitUntil(() => h.outcomes.length === 1, 5000, 'delivery');
    assert.equal(r.requests.length, 1);
    const req = r.requests[0]!;
    assert.equal(req.method, 'POST');
    assert.equal(req.path, '/hook?x=1');
    assert.match(req.headers['content-type'] ?? '', /^application\/cloudevents\+json/);
    assert.equal(req.headers['idempotency-key'], event.id);
    // Standard Webhooks: the delivery id is the event id, and the signature covers id, time and body.
    assert.equal(req.headers['webhook-id'], event.id);
    assert.equal(signedBy(req.body, req.headers, 'trigger-secret'), true);
    assert.equal(signedBy(req.body, req.headers, 'another-secret'), false);
    const parsed = HTTP.toEvent({ headers: req.headers, body: req.body }) as CloudEvent<unknown>;
    assert.equal(parsed.id, event.id);
    assert.equal(parsed.type, 'dev.containment.scan.completed');
    assert.equal(parsed.source, '/containment/local');
    assert.deepEqual(parsed.data, event.data);
    assert.deepEqual(h.outcomes[0], {
      eventId: event.id,
      triggerId: 't1',
      attempt: 1,
      result: 'delivered',
      status: 200,
    });
    assert.equal(statusOf(h.db, event.id, 't1'), 'delivered');
  });

  test('retries with exponential backoff, then succeeds with the same event id', async () => {
    let calls = 0;
    const r = await receiver(() => ({ status: ++calls <= 2 ? 503 : 204 }));
    const h = harness({ retry: { baseMs: 30, jitter: 0, maxAttempts: 5 } });
    h.targets.set('t1', { kind: 'cloudevents', url: r.url, secret: 's' });
    const event = h.enqueue(['t1']);
    await waitUntil(() => h.outcomes.some((o) => o.result === 'delivered'), 5000, 'delivery after retries');
    assert.deepEqual(
      h.outcomes.map((o) => [o.attempt, o.result, o.result === 'retry' ? o.retryInMs : undefined]),
      [
        [1, 'retry', 30],
        [2, 'retry', 60],
        [3, 'delivered', undefined],
      ],
    );
    assert.deepEqual(
      r.requests.map((q) => JSON.parse(q.body).id),
      [event.id, event.id, event.id],
    );
    assert.equal(h.db.prepare('SELECT attempts FROM event_deliveries').pluck().get(), 2);
  });

  test('dead-letters after maxAttempts failures; replay delivers it', async () => {
    let status = 500;
    const r = await receiver(() => ({ status }));
    const h = harness({ retry: { baseMs: 10, jitter: 0, maxAttempts: 3 } });
    h.targets.set('t1', { kind: 'cloudevents', url: r.url, secret: 's' });
    const event = h.enqueue(['t1']);
    await waitUntil(() => h.outcomes.some((o) => o.result === 'dead'), 5000, 'dead letter');
    assert.deepEqual(
      h.outcomes.map((o) => o.result),
      ['retry', 'retry', 'dead'],
    );
    assert.equal(r.requests.length, 3);
    const dead = await h.outbox.listDeadLetters();
    assert.deepEqual(
      dead.map((d) => [d.eventId, d.triggerId, d.attempts, d.lastError]),
      [[event.id, 't1', 3, 'HTTP 500']],
    );
    assert.equal(statusOf(h.db, event.id, 't1'), 'dead');

    status = 200;
    assert.equal(await h.outbox.replayDeadLetters({ eventId: event.id }), 1);
    h.deliverer.notify();
    await waitUntil(() => h.outcomes.some((o) => o.result === 'delivered'), 5000, 'replayed delivery');
    assert.equal(r.requests.length, 4);
    assert.equal(JSON.parse(r.requests[3]!.body).id, event.id);
    assert.deepEqual(await h.outbox.listDeadLetters(), []);
    assert.equal(statusOf(h.db, event.id, 't1'), 'delivered');
  });

  test('a failing trigger does not hold up another', async () => {
    const bad = await receiver(() => ({ status: 500 }));
    const good = await receiver();
    const h = harness({ retry: { baseMs: 60_000, jitter: 0, maxAttempts: 5 } });
    h.targets.set('bad', { kind: 'cloudevents', url: bad.url, secret: 's' });
    h.targets.set('good', { kind: 'cloudevents', url: good.url, secret: 's' });
    const events = [h.enqueue(['bad', 'good']), h.enqueue(['bad', 'good']), h.enqueue(['good'])];
    await waitUntil(() => good.requests.length === 3 && bad.requests.length === 2, 5000, 'deliveries');
    assert.deepEqual(
      new Set(good.requests.map((q) => JSON.parse(q.body).id)),
      new Set(events.map((e) => e.id)),
    );
    assert.equal(statusOf(h.db, events[0]!.id, 'bad'), 'pending');
  });

  test('3xx is a failure and the redirect is not followed', async () => {
    const elsewhere = await receiver();
    const r = await receiver(() => ({ status: 307, headers: { location: `${elsewhere.url}/steal` } }));
    const h = harness({ retry: { baseMs: 10, jitter: 0, maxAttempts: 2 } });
    h.targets.set('t1', { kind: 'cloudevents', url: r.url, secret: 's' });
    h.enqueue(['t1']);
    await waitUntil(() => h.outcomes.some((o) => o.result === 'dead'), 5000, 'dead letter');
    assert.equal(r.requests.length, 2);
    assert.equal(elsewhere.requests.length, 0);
    assert.equal((await h.outbox.listDeadLetters())[0]?.lastError, 'HTTP 307');
  });

  test('a receiver that does not answer times out and is retried', async () => {
    let hang = true;
    const r = await receiver(() => (hang ? undefined : { status: 200 }));
    const h = harness({
      requestTimeoutMs: 150,
      leaseMs: 1000,
      retry: { baseMs: 10, jitter: 0, maxAttempts: 5 },
    });
    h.targets.set('t1', { kind: 'cloudevents', url: r.url, secret: 's' });
    h.enqueue(['t1']);
    await waitUntil(() => h.outcomes.length === 1, 5000, 'timeout');
    const first = h.outcomes[0]!;
    assert.equal(first.result, 'retry');
    assert.match(first.result === 'retry' ? first.error : '', /timed out after 150 ms/);
    hang = false;
    await waitUntil(() => h.outcomes.some((o) => o.result === 'delivered'), 5000, 'delivery');
  });

  test('a removed trigger dead-letters its deliveries', async () => {
    const h = harness();
    const event = h.enqueue(['gone']);
    await waitUntil(() => h.outcomes.length === 1, 5000, 'outcome');
    assert.deepEqual(h.outcomes[0], {
      eventId: event.id,
      triggerId: 'gone',
      attempt: 1,
      result: 'dead',
      error: 'trigger gone no longer exists',
    });
  });

  test('stop() lets in-flight deliveries finish and record their result', async () => {
    const r = await receiver(async () => {
      await new Promise((res) => setTimeout(res, 150));
      return { status: 200 };
    });
    const h = harness();
    h.targets.set('t1', { kind: 'cloudevents', url: r.url, secret: 's' });
    const event = h.enqueue(['t1']);
    await waitUntil(() => r.requests.length === 1, 5000, 'request in flight');
    await h.deliverer.stop();
    assert.equal(statusOf(h.db, event.id, 't1'), 'delivered');
  });
});

describe('SSRF at delivery time', () => {
  test('a name that resolves to loopback is refused when the connection is made, before any request', async (t) => {
    const name = hostname();
    const addresses = (await lookup(name, { all: true })).map((a) => a.address);
    // Never risk traffic off this machine: only run when the name really is loopback here.
    if (
      !requireOrSkip(
        t,
        addresses.length > 0 && addresses.every((a) => a.startsWith('127.')),
        `${name} resolving to 127.x`,
      )
    ) {
      return;
    }
    const r = await receiver();
    const port = new URL(r.url).port;
    const h = harness({}, []);
    // The host name passes the static check; only the resolved address (127.0.0.1 here) betrays it.
    h.targets.set('by-name', { kind: 'cloudevents', url: `http://${name}:${port}/`, secret: 's' });
    h.targets.set('literal', { kind: 'cloudevents', url: `http://127.0.0.1:${port}/`, secret: 's' });
    h.targets.set('localhost', { kind: 'cloudevents', url: `http://localhost:${port}/`, secret: 's' });
    h.enqueue(['by-name', 'literal', 'localhost']);
    await waitUntil(() => h.outcomes.length === 3, 5000, 'outcomes');
    for (const o of h.outcomes) {
      assert.equal(o.result, 'dead', o.triggerId);
      assert.match(o.result === 'dead' ? o.error : '', /refused/);
    }
    assert.equal(r.requests.length, 0, 'no request reached the receiver');
  });

  test('metadata targets are dead-lettered without any traffic', async () => {
    const h = harness({}, ['0.0.0.0/0']);
    h.targets.set('imds', { kind: 'cloudevents', url: 'http://0xA9FEA9FE/latest/meta-data/', secret: 's' });
    h.enqueue(['imds']);
    await waitUntil(() => h.outcomes.length === 1, 5000, 'outcome');
    assert.equal(h.outcomes[0]?.result, 'dead');
  });
});

describe('openwhisk targets', () => {
  test('fires the trigger with Basic auth and the event as parameters', async () => {
    const apiKey =
      '23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP';
    const r = await receiver((req) => {
      const m = /^\/api\/v1\/namespaces\/([^/]+)\/triggers\/([^/?]+)$/.exec(req.path);
      if (req.method !== 'POST' || !m) return { status: 404 };
      if (req.headers.authorization !== `Basic ${Buffer.from(apiKey).toString('base64')}`)
        return { status: 401 };
      return {
        status: 202,
        body: JSON.stringify({ activationId: 'a1b2c3' }),
        headers: { 'content-type': 'application/json' },
      };
    });
    const h = harness({ retry: { baseMs: 10, jitter: 0, maxAttempts: 1 } });
    const url = openWhiskTriggerUrl(r.url, 'guest', 'containment scan');
    h.targets.set('ow', { kind: 'openwhisk', url, secret: 'sig-secret', auth: apiKey });
    h.targets.set('ow-bad-key', { kind: 'openwhisk', url, secret: 'sig-secret', auth: 'uuid:wrong' });
    const event = h.enqueue(['ow', 'ow-bad-key']);
    await waitUntil(() => h.outcomes.length === 2, 5000, 'outcomes');

    const ok = h.outcomes.find((o) => o.triggerId === 'ow');
    assert.deepEqual(ok, {
      eventId: event.id,
      triggerId: 'ow',
      attempt: 1,
      result: 'delivered',
      status: 202,
    });
    const bad = h.outcomes.find((o) => o.triggerId === 'ow-bad-key');
    assert.equal(bad?.result, 'dead');

    const req = r.requests.find((q) =>
      q.headers.authorization?.includes(Buffer.from(apiKey).toString('base64')),
    )!;
    assert.equal(req.path, '/api/v1/namespaces/guest/triggers/containment%20scan');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.equal(signedBy(req.body, req.headers, 'sig-secret'), true);
    const params = JSON.parse(req.body);
    assert.equal(params.id, event.id);
    assert.equal(params.type, EventTypes.SCAN_COMPLETED);
    assert.equal(params.specversion, '1.0');
    assert.deepEqual(params.data, event.data);
  });
});

describe('configuration', () => {
  test('retryDelayMs: exponential, ± jitter, capped', () => {
    const policy = { baseMs: 100, maxMs: 1000, jitter: 0.5, maxAttempts: 10 };
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((f) => retryDelayMs(f, policy, () => 0.5)),
      [100, 200, 400, 800, 1000],
    );
    assert.equal(
      retryDelayMs(3, policy, () => 0),
      200,
    );
    assert.equal(
      retryDelayMs(3, policy, () => 1),
      600,
    );
    assert.equal(
      retryDelayMs(5, policy, () => 0),
      800,
    );
    for (let i = 0; i < 50; i++) {
      const d = retryDelayMs(2, policy);
      assert.ok(d >= 100 && d <= 300, String(d));
    }
  });

  test('a lease not longer than the request timeout is refused', () => {
    const db = new Database(':memory:');
    assert.throws(
      () =>
        new Deliverer({
          queue: new SqliteOutbox(db),
          targets: () => undefined,
          guard: new TargetGuard({ allow: [] }),
          requestTimeoutMs: 5000,
          leaseMs: 5000,
        }),
      (e: unknown) => e instanceof ContainmentError && e.code === ErrorCodes.CONFIG_INVALID,
    );
    db.close();
  });
});
