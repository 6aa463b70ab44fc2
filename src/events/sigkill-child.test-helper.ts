/**
 * A stand-in server process for the SIGKILL test: opens the SQLite outbox at argv[2], enqueues
 * argv[4] events (each in its own committed transaction) and prints their ids as one JSON line,
 * then delivers them to argv[3] until SIGTERM (graceful stop) or SIGKILL (the crash under test).
 */
import Database from 'better-sqlite3';
import { EventTypes, createEvent } from './cloud-event.js';
import { Deliverer } from './deliverer.js';
import { SqliteOutbox } from '../storage/outbox/sqlite-outbox.js';
import { TargetGuard } from './ssrf.js';

const [dbFile, receiverUrl, countArg = '0'] = process.argv.slice(2);
if (!dbFile || !receiverUrl) throw new Error('usage: sigkill-child <db> <receiver-url> [count]');

const db = new Database(dbFile);
db.pragma('busy_timeout = 5000');
const outbox = new SqliteOutbox(db);
const ids: string[] = [];
for (let i = 0; i < Number(countArg); i++) {
  const event = createEvent(EventTypes.SCAN_COMPLETED, 'local', {
    workload: { cluster: 'local', namespace: 'local', pod: `pod-${i}`, node: 'n1', image: 'img' },
    scanTime: new Date().toISOString(),
    summary: { CRITICAL: 0, HIGH: 0, MEDIUM: 1, LOW: 0, UNKNOWN: 0 },
    newFindings: [`CVE-2024-${i}`],
    insecureConfigurations: [],
  });
  db.transaction(() => outbox.enqueue(db, event, ['receiver']))();
  ids.push(event.id);
}
process.stdout.write(`${JSON.stringify({ enqueued: ids })}\n`);

const deliverer = new Deliverer({
  queue: outbox,
  targets: () => ({ kind: 'cloudevents', url: receiverUrl, secret: 'sigkill-secret' }),
  guard: new TargetGuard({ allow: ['127.0.0.0/8'] }),
  concurrency: 4,
  requestTimeoutMs: 1000,
  // Short, so the next process takes over the killed one's claims quickly.
  leaseMs: 1500,
  pollIntervalMs: 100,
});
deliverer.start();
process.on('SIGTERM', () => {
  void deliverer.stop().then(() => {
    db.close();
    process.exit(0);
  });
});
