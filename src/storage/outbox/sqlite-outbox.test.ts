import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { EventTypes, createEvent } from '../../events/cloud-event.js';
import { SqliteOutbox } from './sqlite-outbox.js';

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'containment-outbox-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function open(): { db: Database.Database; outbox: SqliteOutbox; file: string } {
  const file = join(tmp, `outbox-${++n}.sqlite`);
  const db = new Database(file);
  db.exec('CREATE TABLE scans (id INTEGER PRIMARY KEY, workload TEXT NOT NULL UNIQUE)');
  return { db, outbox: new SqliteOutbox(db), file };
}

function event(pod = 'web-1') {
  return createEvent(EventTypes.SCAN_COMPLETED, 'local', {
    workload: { cluster: 'local', namespace: 'local', pod, node: 'n1', image: 'img' },
    scanTime: new Date().toISOString(),
    summary: { CRITICAL: 0, HIGH: 1, MEDIUM: 0, LOW: 0, UNKNOWN: 0 },
    newFindings: ['CVE-1'],
    insecureConfigurations: [],
  });
}

test('the event commits or rolls back with the caller’s transaction, and the file is in WAL mode', async () => {
  const { db, outbox, file } = open();
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  const kept = event('a');
  db.transaction(() => {
    db.prepare('INSERT INTO scans (workload) VALUES (?)').run('a');
    outbox.enqueue(db, kept, ['t1', 't2']);
  })();
  const lost = event('b');
  assert.throws(() =>
    db.transaction(() => {
      outbox.enqueue(db, lost, ['t1']);
      db.prepare('INSERT INTO scans (workload) VALUES (?)').run('a'); // unique violation: the scan fails
    })(),
  );
  // Read through a second connection: only committed rows count.
  const reader = new Database(file, { readonly: true });
  const rows = reader.prepare('SELECT event_id, trigger_id FROM event_deliveries ORDER BY trigger_id').all();
  assert.deepEqual(rows, [
    { event_id: kept.id, trigger_id: 't1' },
    { event_id: kept.id, trigger_id: 't2' },
  ]);
  assert.deepEqual(reader.prepare('SELECT id FROM event_outbox').all(), [{ id: kept.id }]);
  reader.close();
  const claimed = await outbox.claim(10, 60_000, 'me');
  assert.equal(claimed.length, 2);
  assert.equal(JSON.parse(claimed[0]?.body ?? '{}').id, kept.id);
  db.close();
});

test('enqueue refuses a different connection (it would not share the caller’s transaction)', () => {
  const { db, outbox, file } = open();
  const other = new Database(file);
  assert.throws(() => outbox.enqueue(other, event(), ['t1']), /connection/);
  other.close();
  db.close();
});

test('claims lease rows: a second claimer sees none until the lease runs out', async () => {
  const { db, outbox } = open();
  const e = event();
  outbox.enqueue(db, e, ['t1']);
  const first = await outbox.claim(10, 150, 'a');
  assert.deepEqual(
    first.map((c) => [c.eventId, c.triggerId, c.attempts, c.type]),
    [[e.id, 't1', 0, EventTypes.SCAN_COMPLETED]],
  );
  assert.deepEqual(await outbox.claim(10, 150, 'b'), []);
  await new Promise((r) => setTimeout(r, 200));
  const second = await outbox.claim(10, 60_000, 'b');
  assert.equal(second.length, 1, 'an expired lease (a crashed deliverer) gives the row back');
  // The old owner can no longer reschedule or dead-letter it; the new one can.
  await outbox.scheduleRetry(second[0]!, 'a', 0, 'stale');
  await outbox.deadLetter(second[0]!, 'a', 'stale');
  assert.deepEqual(await outbox.listDeadLetters(), []);
  await outbox.scheduleRetry(second[0]!, 'b', 0, 'HTTP 500');
  const third = await outbox.claim(10, 60_000, 'c');
  assert.equal(third[0]?.attempts, 1);
  db.close();
});

test("releaseLeases frees a crashed owner's claims at once, and nothing delivered", async () => {
  const { db, outbox } = open();
  const [held, done] = [event(), event()];
  outbox.enqueue(db, held, ['t1']);
  outbox.enqueue(db, done, ['t1']);
  const claimed = await outbox.claim(10, 60_000, 'killed');
  const delivered = claimed.find((c) => c.eventId === done.id);
  assert.ok(delivered);
  await outbox.markDelivered(delivered);
  assert.deepEqual(await outbox.claim(10, 60_000, 'restarted'), [], 'still leased for a minute');
  assert.equal(outbox.releaseLeases(), 1);
  assert.deepEqual(
    (await outbox.claim(10, 60_000, 'restarted')).map((c) => c.eventId),
    [held.id],
  );
  db.close();
});

test('retry delays, delivered rows, dead letters, replay and purge', async () => {
  const { db, outbox } = open();
  const e1 = event('a');
  const e2 = event('b');
  outbox.enqueue(db, e1, ['t1', 't2']);
  outbox.enqueue(db, e2, ['t1']);
  const claimed = await outbox.claim(10, 60_000, 'me');
  assert.equal(claimed.length, 3);
  const find = (eventId: string, triggerId: string) =>
    claimed.find((c) => c.eventId === eventId && c.triggerId === triggerId)!;
  await outbox.markDelivered(find(e1.id, 't1'));
  await outbox.scheduleRetry(find(e1.id, 't2'), 'me', 60_000, 'HTTP 503');
  await outbox.deadLetter(find(e2.id, 't1'), 'me', 'HTTP 410');
  assert.deepEqual(
    await outbox.claim(10, 60_000, 'me'),
    [],
    'nothing due: delivered, retry in a minute, dead',
  );

  const dead = await outbox.listDeadLetters();
  assert.equal(dead.length, 1);
  assert.deepEqual(
    { ...dead[0], deadAt: undefined },
    {
      eventId: e2.id,
      triggerId: 't1',
      type: e2.type,
      body: find(e2.id, 't1').body,
      attempts: 1,
      lastError: 'HTTP 410',
      deadAt: undefined,
    },
  );
  assert.ok(Date.parse(dead[0]!.deadAt) > 0);
  assert.deepEqual(await outbox.listDeadLetters({ triggerId: 't2' }), []);

  assert.equal(await outbox.replayDeadLetters({ eventId: 'nope' }), 0);
  assert.equal(await outbox.replayDeadLetters({ triggerId: 't1' }), 1);
  const replayed = await outbox.claim(10, 60_000, 'me');
  assert.deepEqual(
    replayed.map((c) => [c.eventId, c.attempts]),
    [[e2.id, 0]],
  );
  await outbox.markDelivered(replayed[0]!);

  // e1 still has a pending delivery (t2): only e2 is purgeable.
  assert.equal(await outbox.purgeDelivered(new Date(Date.now() + 1000)), 1);
  const left = db.prepare('SELECT event_id FROM event_deliveries').all() as { event_id: string }[];
  assert.deepEqual(new Set(left.map((r) => r.event_id)), new Set([e1.id]));
  assert.equal(await outbox.purgeDelivered(new Date(0)), 0);
  db.close();
});
