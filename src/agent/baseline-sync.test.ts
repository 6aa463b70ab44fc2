/**
 * BaselineSync against a real scanner (SQLite, loopback): two agents of one cluster share a
 * baseline, a restarted agent loads it, an operator's lock and reset reach the agents on their
 * next sync, and an unreachable scanner is counted and retried, never fatal.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ScannerClient } from '../clients/scanner-client.js';
import { BaselineBook } from '../runtime/baseline/baseline.js';
import { startTestScanner } from '../testing/scanner.js';
import type { TestScanner } from '../testing/scanner.js';
import { BaselineSync } from './baseline-sync.js';

const IMAGE = 'sha256:' + 'ef'.repeat(32);
const exe = (value: string) => ({ type: 'executable' as const, value });
const silent = { info() {}, warn() {}, error() {}, debug() {} };

describe('BaselineSync (real scanner)', () => {
  let scanner: TestScanner<'prod'> | undefined;
  let admin: ScannerClient;
  let agentClient: ScannerClient;
  const syncs: BaselineSync[] = [];
  const agent = (book: BaselineBook, client = agentClient): BaselineSync => {
    const sync = new BaselineSync({
      client,
      book,
      cluster: 'prod',
      logger: silent,
      refOf: (image) => (image === IMAGE ? 'registry.local/web:1' : undefined),
      pushMs: 60_000,
      pollMs: 60_000,
    });
    syncs.push(sync);
    return sync;
  };

  before(async () => {
    scanner = await startTestScanner({ cluster: 'prod' });
    admin = scanner.admin;
    agentClient = scanner.agent;
  });
  after(async () => {
    for (const s of syncs) await s.stop();
    await scanner?.close();
  });

  test('pushed, shared by another agent and loaded again by a restarted one', async () => {
    const book = new BaselineBook({ durationMs: 3_600_000 });
    const a = agent(book);
    await a.start();
    book.observe(IMAGE, exe('/usr/sbin/nginx'), Date.now());
    await a.sync();
    const [stored] = await admin.baselines({ cluster: 'prod', image: 'registry.local/web:1' });
    assert.deepEqual(stored?.executables, ['/usr/sbin/nginx']);
    assert.equal(stored?.imageRef, 'registry.local/web:1');

    // Another node learns one more thing; the first one gets it on its next sync.
    const otherBook = new BaselineBook({ durationMs: 3_600_000 });
    const b = agent(otherBook);
    await b.start();
    assert.deepEqual(otherBook.get(IMAGE)?.executables, ['/usr/sbin/nginx'], 'loaded at start');
    otherBook.observe(IMAGE, exe('/bin/healthcheck'), Date.now());
    await b.sync();
    book.observe(IMAGE, exe('/usr/bin/logrotate'), Date.now());
    await a.sync();
    assert.deepEqual([...(book.get(IMAGE)?.executables ?? [])].sort(), [
      '/bin/healthcheck',
      '/usr/bin/logrotate',
      '/usr/sbin/nginx',
    ]);

    // A restart: an empty book, loaded from the scanner before any event.
    await a.stop();
    const restartedBook = new BaselineBook({ durationMs: 3_600_000 });
    await agent(restartedBook).start();
    assert.equal(restartedBook.state(IMAGE), 'learning');
    assert.equal(restartedBook.get(IMAGE)?.executables.length, 3);
  });

  test("an operator's lock reaches the agent on its next sync; a reset empties its baseline", async () => {
    const book = new BaselineBook({ durationMs: 3_600_000 });
    const sync = agent(book);
    await sync.start();
    assert.equal(book.observe(IMAGE, exe('/bin/unknown'), Date.now()), undefined, 'still learning');
    await admin.lockBaseline({ cluster: 'prod', image: 'registry.local/web:1' });
    await sync.sync();
    assert.equal(book.state(IMAGE), 'protect');
    assert.equal(sync.status().operatorChanges, 1);
    // What the agent learned but never pushed before the lock is not part of the locked baseline.
    assert.equal(book.observe(IMAGE, exe('/bin/unknown'), Date.now())?.state, 'protect');
    assert.equal(book.observe(IMAGE, exe('/usr/sbin/nginx'), Date.now()), undefined);

    await admin.resetBaseline({ cluster: 'prod', image: IMAGE });
    await sync.sync();
    assert.equal(book.state(IMAGE), 'learning');
    assert.deepEqual(book.get(IMAGE)?.executables, []);
    assert.equal(book.observe(IMAGE, exe('/bin/unknown'), Date.now()), undefined, 'learning again');
  });

  test('an unreachable scanner is counted and retried; learning goes on locally', async () => {
    const book = new BaselineBook({ durationMs: 3_600_000 });
    // Port 1: nothing listens there (connection refused).
    const url = 'http://127.0.0.1:1';
    const sync = agent(
      book,
      new ScannerClient({ server: url, token: 'ctm_0000000000000000_' + 'x'.repeat(43), timeoutMs: 2000 }),
    );
    await sync.start();
    book.observe('sha256:' + '01'.repeat(32), exe('/bin/app'), Date.now());
    await sync.sync();
    const status = sync.status();
    assert.equal(status.syncs, 0);
    assert.equal(status.failedSyncs, 2);
    assert.equal(status.images, 1);
  });
});
