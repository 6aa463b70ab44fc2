import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { repoRoot } from '../testing/shared-data.js';
import { startReceiver } from './receiver.test-helper.js';
import { waitUntil } from '../testing/wait.js';
import { signedBy } from '../testing/webhooks.js';

const child = join(dirname(fileURLToPath(import.meta.url)), 'sigkill-child.test-helper.ts');

function startChild(
  dbFile: string,
  url: string,
  count: number,
): { proc: ChildProcess; firstLine: Promise<string> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', child, dbFile, url, String(count)], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const firstLine = new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).once('line', resolve);
    proc.once('exit', (code, signal) => reject(new Error(`child exited early (${code ?? signal})`)));
  });
  return { proc, firstLine };
}

function exited(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode);
  return new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
}

test('SIGKILL with deliveries in flight loses no event: a restarted process delivers every accepted one', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'containment-sigkill-'));
  const dbFile = join(tmp, 'outbox.sqlite');
  const K = 20;
  const answeredBeforeKill = 5;
  // Phase 1: answer a few, then leave requests hanging (deliveries in flight at the kill).
  let phase = 1;
  const idOf = (body: string): string => (JSON.parse(body) as { id: string }).id;
  const answered: string[] = [];
  const receiver = await startReceiver((req) => {
    if (phase === 1 && answered.length >= answeredBeforeKill) return undefined;
    answered.push(idOf(req.body));
    return { status: 200 };
  });
  const processes: ChildProcess[] = [];
  try {
    const first = startChild(dbFile, receiver.url, K);
    processes.push(first.proc);
    const enqueued = (JSON.parse(await first.firstLine) as { enqueued: string[] }).enqueued;
    assert.equal(enqueued.length, K);
    await waitUntil(() => receiver.hanging.length >= 2, 15_000, 'deliveries in flight');
    first.proc.kill('SIGKILL');
    await exited(first.proc);
    assert.equal(first.proc.signalCode, 'SIGKILL');
    const inFlightAtKill = receiver.requests.slice(answeredBeforeKill).map((r) => idOf(r.body));
    assert.ok(inFlightAtKill.length >= 2);
    const seenBeforeRestart = receiver.requests.length;
    for (const res of receiver.hanging.splice(0)) res.destroy();

    phase = 2;
    const second = startChild(dbFile, receiver.url, 0);
    processes.push(second.proc);
    assert.deepEqual(JSON.parse(await second.firstLine), { enqueued: [] });
    await waitUntil(
      () => enqueued.every((id) => answered.includes(id)),
      20_000,
      'every event after the restart',
    );
    second.proc.kill('SIGTERM');
    assert.equal(await exited(second.proc), 0);

    // The crashed process's in-flight deliveries were sent again, with the same event ids.
    const afterRestart = new Set(receiver.requests.slice(seenBeforeRestart).map((r) => idOf(r.body)));
    for (const id of inFlightAtKill) assert.ok(afterRestart.has(id), `${id} redelivered`);
    for (const r of receiver.requests) {
      assert.equal(signedBy(r.body, r.headers, 'sigkill-secret'), true);
      assert.ok(enqueued.includes(idOf(r.body)));
    }
    const db = new Database(dbFile, { readonly: true });
    const statuses = db.prepare('SELECT status, count(*) AS n FROM event_deliveries GROUP BY status').all();
    db.close();
    assert.deepEqual(statuses, [{ status: 'delivered', n: K }]);
  } finally {
    for (const p of processes) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await receiver.close();
    rmSync(tmp, { recursive: true, force: true });
  }
});
