/**
 * Two scanner replicas (two Fastify apps, two pools, two deliverers) on one PostgreSQL database:
 * the same report reaching both at once is stored once, reports spread over both are all stored
 * once, and their events reach a real receiver exactly once, never in flight twice at a time.
 * Both share their package matches through the database (as `containment server` does by
 * default): what one replica matched, the other answers without looking up an advisory.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { TestContext } from 'node:test';
import { startReceiver } from '../events/receiver.test-helper.js';
import { waitUntil } from '../testing/wait.js';
import type { Receiver } from '../events/receiver.test-helper.js';
import { createTestDatabase, postgresReachable, postgresWhat } from '../testing/postgres.js';
import type { TestDatabase } from '../testing/postgres.js';
import { requireOrSkip, sharedDataDir, sharedDataOrSkip } from '../testing/shared-data.js';
import { countingLookups } from '../vulndb/counting-store.test-helper.js';
import { PackageMatcher } from './package-matcher.js';
import { npmReport, startHarness } from './scanner-harness.test-helper.js';
import type { BackendHarness } from './scanner-harness.test-helper.js';

type Json = Record<string, unknown>;

const osvNpm = join(sharedDataDir, 'osv', 'npm');
const available = (await postgresReachable()) && existsSync(osvNpm);
let database: TestDatabase | undefined;
let a: BackendHarness;
let b: BackendHarness;
let receiver: Receiver;
/** Receiver side: event ids being answered right now, and ids that arrived while already in flight. */
const inFlight = new Set<string>();
/** Each replica's advisory lookups so far, and failed writes to the shared match cache. */
const lookups: (() => number)[] = [];
const sharedErrors: unknown[] = [];
const overlapping: string[] = [];

function need(t: TestContext): boolean {
  if (sharedDataOrSkip(t) === undefined) return false;
  return requireOrSkip(t, available, postgresWhat);
}

async function post(replica: BackendHarness, token: string, url: string, payload: unknown) {
  const res = await replica.app.inject({
    method: 'POST',
    url,
    headers: { authorization: `Bearer ${token}` },
    payload: payload as object,
  });
  return { status: res.statusCode, body: res.json() as Json };
}

async function get(replica: BackendHarness, url: string): Promise<Json> {
  const res = await replica.app.inject({
    method: 'GET',
    url,
    headers: { authorization: `Bearer ${replica.adminToken}` },
  });
  assert.equal(res.statusCode, 200, res.body);
  return res.json() as Json;
}

/** Registers a cluster through replica A; its agent token works on both. */
async function cluster(name: string): Promise<string> {
  const res = await post(a, a.adminToken, '/v1/clusters', { name });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.agentToken as string;
}

before(async () => {
  if (!available) return;
  database = await createTestDatabase('replicas');
  // Both replicas start together: schema creation and advisory import race on purpose.
  [a, b] = (await Promise.all(
    [0, 1].map((i) =>
      startHarness(osvNpm, {
        backend: 'postgres',
        databaseUrl: database!.url,
        matcher: (advisories) => {
          const counted = countingLookups(advisories);
          lookups[i] = counted.lookups;
          return new PackageMatcher(counted.store, {
            shared: true,
            onSharedError: (e) => sharedErrors.push(e),
          });
        },
      }),
    ),
  )) as [BackendHarness, BackendHarness];
  receiver = await startReceiver(async (req) => {
    const id = (JSON.parse(req.body) as { id: string }).id;
    if (inFlight.has(id)) overlapping.push(id);
    inFlight.add(id);
    // Slow enough that a second delivery of the same event would overlap this one.
    await new Promise((r) => setTimeout(r, 20));
    inFlight.delete(id);
    return { status: 204 };
  });
});
after(async () => {
  await receiver?.close();
  await a?.close();
  await b?.close();
  await database?.drop();
});

test('one report id sent to both replicas at once is stored once', async (t) => {
  if (!need(t)) return;
  const agent = await cluster('twin');
  const reports = Array.from({ length: 10 }, (_, i) =>
    npmReport('twin', 'ns', `p${i}`, [['minimist', '1.2.5']]),
  );
  const answers = await Promise.all(
    reports.map((r) => Promise.all([post(a, agent, '/v1/reports', r), post(b, agent, '/v1/reports', r)])),
  );
  for (const pair of answers) {
    assert.deepEqual(pair.map((x) => x.status).sort(), [200, 201], JSON.stringify(pair));
    assert.equal(pair[0]!.body.scanId, pair[1]!.body.scanId);
    assert.equal(pair.filter((x) => x.body.duplicate === true).length, 1);
  }
  const scans = (await get(b, '/v1/scans?cluster=twin&limit=100')).scans as unknown[];
  assert.equal(scans.length, 10);

  // One report id for two workloads at once: stored for one, a conflict for the other.
  const first = npmReport('twin', 'ns', 'left', [['minimist', '1.2.5']]);
  const second = { ...first, workload: { ...(first.workload as Json), pod: 'right' } };
  const clash = await Promise.all([
    post(a, agent, '/v1/reports', first),
    post(b, agent, '/v1/reports', second),
  ]);
  assert.deepEqual(clash.map((x) => x.status).sort(), [201, 409], JSON.stringify(clash));
  assert.equal(((await get(a, '/v1/scans?cluster=twin&limit=100')).scans as unknown[]).length, 11);
});

test('50 reports spread over both replicas: all stored once; every event delivered once by the two deliverers', async (t) => {
  if (!need(t)) return;
  const agent = await cluster('spread');
  const trigger = await post(b, b.adminToken, '/v1/triggers', {
    cluster: 'spread',
    url: `${receiver.url}/hook`,
    secret: 'replica-secret',
  });
  assert.equal(trigger.status, 201, JSON.stringify(trigger.body));
  const reports = Array.from({ length: 50 }, (_, i) =>
    npmReport('spread', `ns${i % 3}`, `pod-${i}`, i % 2 ? [['minimist', '1.2.5']] : [['lodash', '4.17.20']]),
  );
  const replicas = [a, b];
  const answers = await Promise.all(reports.map((r, i) => post(replicas[i % 2]!, agent, '/v1/reports', r)));
  assert.ok(
    answers.every((x) => x.status === 201 && x.body.events === 1),
    JSON.stringify(answers[0]),
  );
  // Retried at the other replica: all duplicates, nothing new.
  const retried = await Promise.all(
    reports.map((r, i) => post(replicas[(i + 1) % 2]!, agent, '/v1/reports', r)),
  );
  assert.ok(retried.every((x, i) => x.status === 200 && x.body.scanId === answers[i]!.body.scanId));
  assert.equal(((await get(a, '/v1/scans?cluster=spread&limit=200')).scans as unknown[]).length, 50);
  const pods = (
    (await get(b, '/v1/workloads?cluster=spread&limit=200')).workloads as { workload: Json }[]
  ).map((w) => w.workload.pod);
  assert.equal(new Set(pods).size, 50);

  const delivered = () => [...a.outcomes, ...b.outcomes].filter((o) => o.result === 'delivered');
  await waitUntil(() => delivered().length >= 50, 15_000, '50 deliveries');
  const received = receiver.requests.filter((r) => r.path === '/hook');
  const ids = received.map((r) => (JSON.parse(r.body) as { id: string }).id);
  assert.equal(ids.length, 50, 'each event received exactly once');
  assert.equal(new Set(ids).size, 50);
  assert.deepEqual(overlapping, [], 'an event was in flight twice at the same time');
  assert.ok(
    received.every((r) => String(r.headers['webhook-signature']).startsWith('v1,')),
    'unsigned delivery',
  );
  // One delivery per outbox event, no failures, and both replicas' deliverers took part.
  assert.equal(await a.count('event_outbox'), 50);
  assert.equal(delivered().length, 50);
  assert.deepEqual(
    [...a.outcomes, ...b.outcomes].filter((o) => o.result !== 'delivered'),
    [],
  );
  assert.ok(a.outcomes.length > 0, 'replica A delivered nothing');
  assert.ok(b.outcomes.length > 0, 'replica B delivered nothing');
});

test('a package replica A matched is answered by replica B from the shared cache, identically', async (t) => {
  if (!need(t)) return;
  const agent = await cluster('shared');
  // Versions no other test here reports: neither replica has them cached.
  const packages = [
    ['minimist', '1.2.0'],
    ['lodash', '4.17.4'],
    ['left-pad', '1.0.0'],
  ] as const;
  const [lookupsA, lookupsB] = lookups as [() => number, () => number];
  const beforeA = lookupsA();
  const atA = await post(a, agent, '/v1/reports', npmReport('shared', 'ns', 'at-a', packages));
  assert.equal(atA.status, 201, JSON.stringify(atA.body));
  assert.ok(lookupsA() > beforeA, 'replica A did not look its packages up');
  const beforeB = lookupsB();
  const atB = await post(b, agent, '/v1/reports', npmReport('shared', 'ns', 'at-b', packages));
  assert.equal(atB.status, 201, JSON.stringify(atB.body));
  assert.equal(lookupsB(), beforeB, 'replica B looked up packages replica A had matched');
  const findings = async (replica: BackendHarness, id: unknown) =>
    ((await get(replica, `/v1/scans/${String(id)}`)).vulnerabilities as Json[]).map((v) => [
      v.id,
      (v.package as Json).name,
      v.severity,
    ]);
  const fromA = await findings(b, atA.body.scanId);
  assert.ok(fromA.length > 0, 'no findings to compare');
  assert.deepEqual(await findings(a, atB.body.scanId), fromA);
  assert.deepEqual(sharedErrors, []);
});
