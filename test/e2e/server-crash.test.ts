/**
 * The real `containment server` killed with SIGKILL while CloudEvent deliveries are in flight
 * loses no event: after a restart on the same data directory, every event it accepted reaches a
 * real (slow) receiver at least once, with the same id and a valid signature.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { startReceiver } from '../../src/events/receiver.test-helper.js';
import { waitUntil } from '../../src/testing/wait.js';
import type { ReceivedRequest } from '../../src/events/receiver.test-helper.js';
import { signedBy } from '../../src/testing/webhooks.js';
import { buildAgentReport } from '../../src/scanner/agent-report.js';
import type { Package } from '../../src/inventory/types.js';
import {
  api,
  importAdvisories,
  newAdminToken,
  startScannerProcess,
} from '../../src/testing/scanner-process.js';
import type { ScannerProcess } from '../../src/testing/scanner-process.js';
import { sharedDataOrSkip } from '../../src/testing/shared-data.js';

const REPORTS = 40;
/** The receiver answers one request at a time, this long each: deliveries pile up in flight. */
const ANSWER_MS = 300;
const SECRET = 'crash-test-secret';
/**
 * The server leases a claimed delivery for 60 s (the deliverer's default); the restarted process
 * takes over the killed one's in-flight deliveries only when those leases run out.
 */
const REDELIVERY_BOUND_MS = 90_000;

interface EventBody {
  id: string;
  type: string;
  source: string;
  data: { workload: { pod: string }; newFindings: string[] };
}

/** Real npm versions the GHSA records in shared/data/osv cover (or, for the last ones, do not). */
const NPM_CHOICES: readonly (readonly [string, readonly string[]])[] = [
  ['lodash', ['4.17.11', '4.17.19', '4.17.20', '4.17.21']],
  ['minimist', ['0.2.0', '1.2.5', '1.2.8']],
  ['express', ['4.18.2', '4.19.2', '4.21.0']],
  ['axios', ['0.21.1', '1.5.0', '1.7.9']],
  ['semver', ['5.7.1', '7.5.1', '7.6.0']],
];

/** Workload `i`'s packages: a different version mix per workload, so findings differ between them. */
function packagesOf(i: number): Package[] {
  let rest = i;
  return NPM_CHOICES.map(([name, versions]) => {
    const version = versions[rest % versions.length] as string;
    rest = Math.floor(rest / versions.length);
    return {
      name,
      version,
      ecosystem: 'npm',
      location: `/srv/app/node_modules/${name}/package.json`,
      extractor: 'npm',
    };
  });
}

test(
  'SIGKILL of `containment server` with deliveries in flight: after a restart every accepted event arrives, same id, signed',
  { timeout: 180_000 },
  async (t) => {
    const shared = sharedDataOrSkip(t);
    if (!shared) return;
    const dataDir = mkdtempSync(join(tmpdir(), 'containment-server-crash-'));
    await importAdvisories(join(shared, 'osv'), ['--data-dir', dataDir]);

    // One answer at a time, ANSWER_MS each, so deliveries pile up in flight.
    let queue: Promise<unknown> = Promise.resolve();
    const answered = new Set<ReceivedRequest>();
    const receiver = await startReceiver((req) => {
      const turn = queue.then(() => new Promise((r) => setTimeout(r, ANSWER_MS)));
      queue = turn;
      return turn.then(() => {
        answered.add(req);
        return { status: 200 };
      });
    });
    const adminToken = newAdminToken();
    const serverArgs = ['--data-dir', dataDir, '--trigger-allow', '127.0.0.0/8', '--rate-limit', 'off'];
    const env = { CONTAINMENT_ADMIN_TOKEN: adminToken, CONTAINMENT_LOG_LEVEL: 'info' };
    const servers: ScannerProcess[] = [];
    let outbox: Database.Database | undefined;
    try {
      const first = await startScannerProcess(serverArgs, env);
      servers.push(first);
      // The server's own bookkeeping, read beside it (WAL): how many deliveries are not done yet.
      outbox = new Database(join(dataDir, 'scanner.sqlite'), { readonly: true });
      const undelivered = outbox.prepare(
        "SELECT count(*) AS n FROM event_deliveries WHERE status <> 'delivered'",
      );
      const outboxDrained = (): boolean => (undelivered.get() as { n: number }).n === 0;
      const cluster = await api<{ agentToken: string }>(first.url, adminToken, 'POST', '/v1/clusters', {
        name: 'crash',
      });
      assert.equal(cluster.status, 201);
      const trigger = await api(first.url, adminToken, 'POST', '/v1/triggers', {
        cluster: 'crash',
        url: `${receiver.url}/events`,
        kind: 'cloudevents',
        secret: SECRET,
      });
      assert.equal(trigger.status, 201);

      // Reports from 8 agents at once; every first scan of a workload enqueues one event.
      const accepted = new Map<string, number>();
      const scanTime = new Date().toISOString();
      const post = async (i: number): Promise<void> => {
        const report = buildAgentReport({
          reportId: `crash-report-${i}`,
          workload: { cluster: 'crash', namespace: 'apps', pod: `pod-${i}`, node: 'node-1', image: 'app:1' },
          scanTime,
          inventory: { packages: packagesOf(i), insecureConfigurations: [] },
        });
        const r = await api<{ events: number; scanId: number }>(
          first.url,
          cluster.body.agentToken,
          'POST',
          '/v1/reports',
          report,
        );
        assert.equal(r.status, 201, JSON.stringify(r.body));
        accepted.set(`pod-${i}`, r.body.events);
      };
      for (let i = 0; i < REPORTS; i += 8) {
        await Promise.all(Array.from({ length: Math.min(8, REPORTS - i) }, (_, k) => post(i + k)));
      }
      assert.deepEqual(new Set(accepted.values()), new Set([1]), 'each first scan enqueued one event');
      const scans = await api<{ scans: { workload: { pod: string } }[] }>(
        first.url,
        adminToken,
        'GET',
        '/v1/scans?cluster=crash&limit=1000',
      );
      assert.deepEqual(scans.body.scans.map((s) => s.workload.pod).sort(), [...accepted.keys()].sort());

      await waitUntil(() => receiver.requests.length >= 2, 15_000, 'deliveries in flight');
      await first.kill();
      assert.equal(first.child.signalCode, 'SIGKILL');
      const seenBeforeKill = receiver.requests.length;
      const inFlightAtKill = receiver.requests.filter((r) => !answered.has(r)).map((r) => idOf(r));
      assert.ok(inFlightAtKill.length >= 1, 'some deliveries were in flight at the kill');
      assert.ok(answered.size < REPORTS, 'the kill came before every event was delivered');

      const second = await startScannerProcess(serverArgs, env);
      servers.push(second);
      const afterKillIds = (): Set<string> =>
        new Set(receiver.requests.slice(seenBeforeKill).map((r) => idOf(r)));
      const answeredPods = (): Set<string> => new Set([...answered].map((r) => podOf(r)));
      await waitUntil(
        () =>
          [...accepted.keys()].every((pod) => answeredPods().has(pod)) &&
          inFlightAtKill.every((id) => afterKillIds().has(id)) &&
          outboxDrained(),
        REDELIVERY_BOUND_MS,
        'every accepted event after the restart',
      );

      // Nothing dead, nothing pending: the outbox of the restarted server is drained.
      const dead = await api<{ deadLetters: unknown[] }>(second.url, adminToken, 'GET', '/v1/deadletters');
      assert.deepEqual(dead.body.deadLetters, []);
      assert.equal(await second.stop(), 0);

      // One event id per workload, however often it was sent, each body signed with the secret.
      const idsByPod = new Map<string, Set<string>>();
      for (const r of receiver.requests) {
        const body = JSON.parse(r.body) as EventBody;
        assert.equal(r.path, '/events');
        assert.equal(body.type, 'dev.containment.scan.completed');
        assert.equal(body.source, '/containment/crash');
        assert.equal(r.headers['idempotency-key'], body.id);
        assert.equal(signedBy(r.body, r.headers, SECRET), true, `signature of ${body.id}`);
        assert.equal(signedBy(r.body, r.headers, 'another-secret'), false);
        const ids = idsByPod.get(body.data.workload.pod) ?? new Set<string>();
        ids.add(body.id);
        idsByPod.set(body.data.workload.pod, ids);
      }
      assert.deepEqual([...idsByPod.keys()].sort(), [...accepted.keys()].sort());
      for (const [pod, ids] of idsByPod) assert.equal(ids.size, 1, `${pod}: one event id`);
      const findingSets = new Set(
        receiver.requests.map((r) => JSON.stringify((JSON.parse(r.body) as EventBody).data.newFindings)),
      );
      assert.ok(findingSets.size > 1, 'the workloads have different findings');
      // The deliveries cut off by the kill were sent again with the same ids.
      for (const id of inFlightAtKill) assert.ok(afterKillIds().has(id), `${id} re-sent after the restart`);

      const statuses = outbox
        .prepare('SELECT status, count(*) AS n FROM event_deliveries GROUP BY status')
        .all();
      assert.deepEqual(statuses, [{ status: 'delivered', n: REPORTS }]);
    } finally {
      outbox?.close();
      for (const server of servers) await server.kill();
      await receiver.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  },
);

function idOf(r: ReceivedRequest): string {
  return (JSON.parse(r.body) as EventBody).id;
}

function podOf(r: ReceivedRequest): string {
  return (JSON.parse(r.body) as EventBody).data.workload.pod;
}
