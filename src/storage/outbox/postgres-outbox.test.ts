import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { requireOrSkip } from '../../testing/shared-data.js';
import { EventTypes, createEvent } from '../../events/cloud-event.js';
import { Deliverer } from '../../events/deliverer.js';
import type { DeliveryOutcome } from '../../events/deliverer.js';
import { PostgresOutbox } from './postgres-outbox.js';
import { startReceiver } from '../../events/receiver.test-helper.js';
import { poll, waitUntil } from '../../testing/wait.js';
import { TargetGuard } from '../../events/ssrf.js';

const adminUrl = process.env.CONTAINMENT_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function reachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

const available = await reachable();
const dbName = `containment_test_events_${randomBytes(6).toString('hex')}`;
let poolA: pg.Pool;
let poolB: pg.Pool;
let outboxA: PostgresOutbox;
let outboxB: PostgresOutbox;

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function backends(): Promise<number> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rows } = await client.query(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1',
      [dbName],
    );
    return (rows[0] as { n: number }).n;
  } finally {
    await client.end();
  }
}

before(async () => {
  if (!available) return;
  await admin(`CREATE DATABASE ${dbName}`);
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  poolA = new pg.Pool({ connectionString: url.toString(), max: 4 });
  poolB = new pg.Pool({ connectionString: url.toString(), max: 4 });
  // Two replicas starting together both create the schema.
  [outboxA, outboxB] = await Promise.all([PostgresOutbox.open(poolA), PostgresOutbox.open(poolB)]);
  await poolA.query('CREATE TABLE scans (workload text PRIMARY KEY)');
});

after(async () => {
  if (!available) return;
  await poolA?.end();
  await poolB?.end();
  // pool.end() resolves before the server has closed the backends; FORCE-terminating one that is
  // still closing surfaces as an error on an already-ended client, so let them go first.
  await poll(backends, (n) => n === 0, { ms: 5000, every: 20 });
  await admin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
});

function event(pod: string) {
  return createEvent(EventTypes.SCAN_COMPLETED, 'pg', {
    workload: { cluster: 'pg', namespace: 'shop', pod, node: 'n1', image: 'img' },
    scanTime: new Date().toISOString(),
    summary: { CRITICAL: 0, HIGH: 1, MEDIUM: 0, LOW: 0, UNKNOWN: 0 },
    newFindings: [],
    insecureConfigurations: [],
  });
}

async function reset(): Promise<void> {
  await poolA.query('TRUNCATE event_deliveries, event_outbox, scans');
}

describe('PostgresOutbox', () => {
  test('enqueue joins the caller’s transaction', async (t) => {
    if (!requireOrSkip(t, available, 'PostgreSQL on 127.0.0.1:5432')) return;
    await reset();
    const kept = event('a');
    const lost = event('b');
    const client = await poolA.connect();
    try {
      await client.query('BEGIN');
      await client.query("INSERT INTO scans VALUES ('a')");
      await outboxA.enqueue(client, kept, ['t1', 't2']);
      await client.query('COMMIT');
      await client.query('BEGIN');
      await outboxA.enqueue(client, lost, ['t1']);
      await assert.rejects(client.query("INSERT INTO scans VALUES ('a')"));
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    const { rows } = await poolB.query(
      'SELECT event_id, trigger_id FROM event_deliveries ORDER BY trigger_id',
    );
    assert.deepEqual(rows, [
      { event_id: kept.id, trigger_id: 't1' },
      { event_id: kept.id, trigger_id: 't2' },
    ]);
  });

  test('leases, retries, dead letters, replay and purge', async (t) => {
    if (!requireOrSkip(t, available, 'PostgreSQL on 127.0.0.1:5432')) return;
    await reset();
    const e1 = event('a');
    const e2 = event('b');
    await outboxA.enqueue(poolA, e1, ['t1']);
    const client = await poolA.connect();
    await outboxA.enqueue(client, e2, ['t1']);
    client.release();

    const claimedA = await outboxA.claim(1, 60_000, 'a');
    const claimedB = await outboxB.claim(10, 60_000, 'b');
    assert.equal(claimedA.length, 1);
    assert.equal(claimedB.length, 1, 'the leased row is not claimed again');
    assert.notEqual(claimedA[0]?.eventId, claimedB[0]?.eventId);
    assert.deepEqual(await outboxB.claim(10, 60_000, 'b'), []);
    const [a] = claimedA as [(typeof claimedA)[number]];
    const [b] = claimedB as [(typeof claimedB)[number]];
    assert.equal(JSON.parse(a.body).id, a.eventId);

    await outboxA.deadLetter(b, 'a', 'not my lease');
    await outboxB.scheduleRetry(b, 'b', 0, 'HTTP 502');
    const again = await outboxA.claim(10, 60_000, 'a');
    assert.deepEqual(
      again.map((c) => [c.eventId, c.attempts]),
      [[b.eventId, 1]],
    );
    await outboxA.deadLetter(again[0]!, 'a', 'HTTP 502');
    await outboxA.markDelivered(a);
    const dead = await outboxB.listDeadLetters();
    assert.deepEqual(
      dead.map((d) => [d.eventId, d.triggerId, d.attempts, d.lastError]),
      [[b.eventId, 't1', 2, 'HTTP 502']],
    );
    assert.equal(await outboxB.replayDeadLetters({ triggerId: 't1' }), 1);
    const replayed = await outboxB.claim(10, 60_000, 'b');
    assert.deepEqual(
      replayed.map((c) => [c.eventId, c.attempts]),
      [[b.eventId, 0]],
    );
    assert.equal(await outboxA.purgeDelivered(new Date(Date.now() + 60_000)), 1, 'only the delivered event');
    const { rows } = await poolA.query('SELECT id FROM event_outbox');
    assert.deepEqual(rows, [{ id: b.eventId }]);
  });

  test('lease expiry gives a crashed replica’s claims to another', async (t) => {
    if (!requireOrSkip(t, available, 'PostgreSQL on 127.0.0.1:5432')) return;
    await reset();
    const e = event('c');
    await outboxA.enqueue(poolA, e, ['t1']);
    assert.equal((await outboxA.claim(10, 100, 'dead-replica')).length, 1);
    assert.equal((await outboxB.claim(10, 60_000, 'b')).length, 0);
    await new Promise((r) => setTimeout(r, 150));
    assert.deepEqual(
      (await outboxB.claim(10, 60_000, 'b')).map((c) => c.eventId),
      [e.id],
    );
  });

  test('two replicas draining one outbox: every event delivered, never by both at once', async (t) => {
    if (!requireOrSkip(t, available, 'PostgreSQL on 127.0.0.1:5432')) return;
    await reset();
    const inFlight = new Set<string>();
    const overlaps: string[] = [];
    const deliveredIds: string[] = [];
    const receiver = await startReceiver(async (req) => {
      const id = (JSON.parse(req.body) as { id: string }).id;
      if (inFlight.has(id)) overlaps.push(id);
      inFlight.add(id);
      await new Promise((r) => setTimeout(r, 15));
      inFlight.delete(id);
      deliveredIds.push(id);
      return { status: 200 };
    });
    const byReplica: Record<string, number> = {};
    const deliverers = [outboxA, outboxB].map(
      (queue, i) =>
        new Deliverer({
          queue,
          owner: `replica-${i}`,
          targets: () => ({ kind: 'cloudevents', url: receiver.url, secret: 's' }),
          guard: new TargetGuard({ allow: ['127.0.0.0/8'] }),
          concurrency: 4,
          pollIntervalMs: 50,
          onOutcome: (o: DeliveryOutcome) => {
            if (o.result === 'delivered') byReplica[i] = (byReplica[i] ?? 0) + 1;
          },
          onError: (e) => assert.fail(String(e)),
        }),
    );
    const ids: string[] = [];
    try {
      const client = await poolA.connect();
      try {
        await client.query('BEGIN');
        for (let i = 0; i < 60; i++) {
          const e = event(`p${i}`);
          await outboxA.enqueue(client, e, ['t1']);
          ids.push(e.id);
        }
        await client.query('COMMIT');
      } finally {
        client.release();
      }
      for (const d of deliverers) d.start();
      for (const d of deliverers) d.notify();
      await waitUntil(() => deliveredIds.length >= ids.length, 20_000, 'all deliveries');
    } finally {
      await Promise.all(deliverers.map((d) => d.stop()));
      await receiver.close();
    }
    assert.deepEqual(overlaps, [], 'no event in flight twice at once');
    assert.deepEqual([...deliveredIds].sort(), [...ids].sort(), 'each event delivered exactly once');
    assert.ok(
      (byReplica[0] ?? 0) > 0 && (byReplica[1] ?? 0) > 0,
      `both replicas worked: ${JSON.stringify(byReplica)}`,
    );
    const { rows } = await poolA.query(
      "SELECT count(*)::int AS n FROM event_deliveries WHERE status = 'delivered'",
    );
    assert.equal(rows[0].n, 60);
  });
});
