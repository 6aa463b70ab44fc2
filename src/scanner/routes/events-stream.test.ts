/**
 * `GET /v1/events/stream` on a real listening scanner: a viewer of `web` hears of a new `web` scan
 * and never of a `payments` one; the session cookie authenticates it like a bearer token; the
 * stream ends after its lifetime. With the action API mounted (over a real SQLite action store),
 * the same viewer hears of web's detections and actions and never of payments' (attack test), and
 * a stream resumed with `Last-Event-ID` sends, per kind, exactly what came after that id. With two
 * replicas on one PostgreSQL database, a stream on one hears of a detection stored by the other.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ActionStore } from '../../enforcement/action-store.js';
import { parseSecurityAction } from '../../enforcement/security-action.js';
import type { SecurityAction } from '../../enforcement/security-action.js';
import type { RuntimeDetection } from '../../runtime/contracts.js';
import { createTestDatabase, postgresReachable, postgresWhat } from '../../testing/postgres.js';
import type { TestDatabase } from '../../testing/postgres.js';
import { isCI, sharedDataDir } from '../../testing/shared-data.js';
import { npmReport, startHarness } from '../scanner-harness.test-helper.js';
import type { BackendHarness, Harness } from '../scanner-harness.test-helper.js';
import { CLUSTER, reportRealWorkloads } from './dashboard-seed.test-helper.js';

const osvNpm = join(sharedDataDir, 'osv', 'npm');
const haveData = existsSync(osvNpm);
if (!haveData) {
  const msg = `shared OSV data not found at ${osvNpm}`;
  if (isCI()) throw new Error(msg);
  console.warn(`\n*** SKIPPED: ${msg} ***\n`);
}

/** Reads SSE frames until `until` says stop or the stream ends; returns the `event: scan` payloads. */
async function readScans(
  body: ReadableStream<Uint8Array>,
  until: (scans: { workload: { namespace: string; pod: string } }[]) => boolean,
): Promise<{ scans: { workload: { namespace: string; pod: string } }[]; ended: boolean }> {
  const scans: { workload: { namespace: string; pod: string } }[] = [];
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return { scans, ended: true };
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = frame.split('\n').find((l) => l.startsWith('data: '));
      if (frame.split('\n').includes('event: scan') && data !== undefined)
        scans.push(JSON.parse(data.slice(6)));
    }
    if (until(scans)) {
      await reader.cancel();
      return { scans, ended: false };
    }
  }
}

const havePostgres = await postgresReachable();
if (haveData && !havePostgres) {
  if (isCI()) throw new Error(postgresWhat);
  console.warn(`\n*** SKIPPED (two replicas): ${postgresWhat} not reachable ***\n`);
}

interface Frame {
  id?: string;
  event: string;
  data: unknown;
}

/** Reads SSE frames until `until` says stop or the stream ends; every frame with data. */
async function readFrames(
  body: ReadableStream<Uint8Array>,
  until: (frames: Frame[]) => boolean,
): Promise<Frame[]> {
  const frames: Frame[] = [];
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return frames;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const lines = buffer.slice(0, end).split('\n');
      buffer = buffer.slice(end + 2);
      const field = (name: string): string | undefined =>
        lines.find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2);
      const data = field('data');
      if (data === undefined) continue;
      const id = field('id');
      frames.push({
        ...(id === undefined ? {} : { id }),
        event: field('event') ?? 'message',
        data: JSON.parse(data),
      });
    }
    if (until(frames)) {
      await reader.cancel();
      return frames;
    }
  }
}

describe('live scan events (SSE)', { skip: !haveData }, () => {
  let h: Harness;
  let base: string;
  let viewer: string;
  before(async () => {
    h = await startHarness(osvNpm, { eventStream: { pollMs: 100, maxAgeMs: 4000 } });
    await h.store.createCluster(CLUSTER);
    await reportRealWorkloads(h.app, h.adminToken);
    viewer = (
      await h.tokens.issue({ name: 'v', role: 'viewer', scope: { cluster: CLUSTER, namespaces: ['web'] } })
    ).token;
    base = await h.app.listen({ port: 0, host: '127.0.0.1' });
  });
  after(async () => h?.close());

  const report = async (namespace: string, pod: string): Promise<void> => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/reports',
      headers: { authorization: `Bearer ${h.adminToken}` },
      payload: npmReport(CLUSTER, namespace, pod, [['minimist', '1.2.0']]),
    });
    assert.equal(res.statusCode, 201, res.body);
  };

  test('a viewer of web hears of new web scans only, through the session cookie', async () => {
    const signIn = await fetch(`${base}/ui/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-containment-csrf': '1' },
      body: JSON.stringify({ token: viewer }),
    });
    const cookie = (signIn.headers.get('set-cookie') ?? '').split(';')[0] as string;
    const res = await fetch(`${base}/v1/events/stream`, { headers: { cookie } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    // Earlier scans are not replayed; the payments scan comes first and must be skipped.
    await report('payments', 'ledger-2');
    await report('web', 'search');
    const { scans } = await readScans(res.body as ReadableStream<Uint8Array>, (s) => s.length >= 1);
    assert.deepEqual(
      scans.map((s) => `${s.workload.namespace}/${s.workload.pod}`),
      ['web/search'],
    );
  });

  test('unauthenticated: 401 with its code; the stream ends after its lifetime', async () => {
    const anonymous = await fetch(`${base}/v1/events/stream`);
    assert.equal(anonymous.status, 401);
    assert.equal(((await anonymous.json()) as { error: { code: string } }).error.code, 'UNAUTHENTICATED');
    const res = await fetch(`${base}/v1/events/stream`, { headers: { authorization: `Bearer ${viewer}` } });
    const { ended } = await readScans(res.body as ReadableStream<Uint8Array>, () => false);
    assert.equal(ended, true);
  });
});

function detection(namespace: string, lastSeen: string, count = 1): RuntimeDetection {
  return {
    workload: {
      cluster: CLUSTER,
      namespace,
      pod: `${namespace}-pod`,
      container: 'app',
      node: 'n1',
      image: 'registry.local/app:1',
      containerId: 'a'.repeat(64),
    },
    ruleId: 'reverse_shell',
    kind: 'process',
    severity: 'CRITICAL',
    title: 'A shell whose stdin/stdout is a socket',
    detectedAt: lastSeen,
    process: { pid: 42, uid: 0, name: 'sh', exe: '/bin/sh', argv: ['sh', '-i'] },
    evidence: { stdinSocket: true },
    baseline: { state: 'none' },
    count,
    firstSeen: '2026-01-01T00:00:00.000Z',
    lastSeen,
    fingerprint: `fp-${namespace}`,
    source: 'ebpf',
  };
}

function action(name: string, namespace: string, phase: 'Running' | 'Succeeded', at: string): SecurityAction {
  return parseSecurityAction({
    metadata: { name },
    spec: {
      target: { namespace, pod: `${namespace}-pod` },
      action: 'Snapshot',
      reason: 'test',
      requestedBy: 'policy/p',
    },
    status: {
      phase,
      startedAt: '2026-01-01T00:00:00.000Z',
      ...(phase === 'Succeeded' ? { completedAt: at } : {}),
      evidence: [],
      conditions: [
        { type: 'Done', status: phase === 'Succeeded' ? 'True' : 'False', lastTransitionTime: at },
      ],
    },
  });
}

describe('live detections and actions (SSE)', { skip: !haveData }, () => {
  let h: Harness;
  let base: string;
  let viewer: string;
  let actions: ActionStore;
  const work = mkdtempSync(join(tmpdir(), 'containment-sse-'));
  before(async () => {
    actions = new ActionStore(join(work, 'actions.sqlite'));
    const refuse = (): Promise<never> => Promise.reject(new Error('not in this test'));
    h = await startHarness(osvNpm, {
      eventStream: { pollMs: 100, maxAgeMs: 10_000 },
      actions: {
        cluster: CLUSTER,
        enforcer: {
          submit: refuse,
          preview: refuse,
          get: (id) => actions.get(id),
          list: (f) => actions.list(f),
        },
      },
    });
    await h.store.createCluster(CLUSTER);
    viewer = (
      await h.tokens.issue({ name: 'v', role: 'viewer', scope: { cluster: CLUSTER, namespaces: ['web'] } })
    ).token;
    base = await h.app.listen({ port: 0, host: '127.0.0.1' });
  });
  after(async () => {
    await h?.close();
    actions?.close();
    rmSync(work, { recursive: true, force: true });
  });

  const detect = async (d: RuntimeDetection): Promise<void> => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/detections',
      headers: { authorization: `Bearer ${h.adminToken}` },
      payload: { detections: [d] },
    });
    assert.equal(res.statusCode, 201, res.body);
  };
  const stream = (lastEventId?: string): Promise<Response> =>
    fetch(`${base}/v1/events/stream`, {
      headers: {
        authorization: `Bearer ${viewer}`,
        ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }),
      },
    });
  const describeFrame = (f: Frame): string => {
    if (f.event === 'detection') {
      const d = f.data as { workload: { namespace: string }; count: number };
      return `detection ${d.workload.namespace} x${d.count}`;
    }
    const a = f.data as SecurityAction;
    return `action ${a.metadata.name} ${a.status?.phase}`;
  };

  test('a viewer of web hears of web detections and actions only; resumes by Last-Event-ID', async () => {
    // Before the stream: not replayed without Last-Event-ID.
    await detect(detection('web', '2026-01-01T00:00:00.000Z'));
    actions.claim(action('old-web', 'web', 'Succeeded', '2026-01-01T00:00:00.000Z'), new Date());

    const res = await stream();
    assert.equal(res.status, 200);
    // The attacks come first: payments' detection and action must never reach the web viewer.
    await detect(detection('payments', '2026-01-01T00:01:00.000Z'));
    actions.claim(action('pay-1', 'payments', 'Succeeded', '2026-01-01T00:01:00.000Z'), new Date());
    // Web: the aggregate seen again (count grows) and a new action that then changes phase.
    await detect(detection('web', '2026-01-01T00:02:00.000Z', 3));
    actions.claim(action('web-1', 'web', 'Running', '2026-01-01T00:02:00.000Z'), new Date());
    const first = await readFrames(res.body as ReadableStream<Uint8Array>, (f) => f.length >= 2);
    assert.deepEqual(first.map(describeFrame).sort(), ['action web-1 Running', 'detection web x3']);
    const lastId = first.at(-1)?.id;
    assert.match(lastId ?? '', /^s\d+-d\d+-t\d+-a\d+$/);

    // While disconnected: web-1 completes, the web aggregate is seen again, payments acts again.
    actions.update(action('web-1', 'web', 'Succeeded', '2026-01-01T00:03:00.000Z'), new Date());
    actions.claim(action('pay-2', 'payments', 'Succeeded', '2026-01-01T00:03:00.000Z'), new Date());
    await detect(detection('payments', '2026-01-01T00:03:00.000Z', 5));
    await detect(detection('web', '2026-01-01T00:03:00.000Z', 4));

    // Resumed: exactly what changed after lastId, of web only; nothing already sent again.
    const resumed = await stream(lastId);
    const replay = await readFrames(resumed.body as ReadableStream<Uint8Array>, (f) => f.length >= 2);
    assert.deepEqual(replay.map(describeFrame).sort(), ['action web-1 Succeeded', 'detection web x4']);

    // A stream of its own lifetime, to see nothing else follows (no duplicate, no other namespace).
    const quiet = await stream(replay.at(-1)?.id);
    const rest = await readFrames(quiet.body as ReadableStream<Uint8Array>, () => false);
    assert.deepEqual(rest.map(describeFrame), []);
  });

  test('the opening frame carries the cursor: what happens between two streams is not lost', async () => {
    const res = await stream();
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let opening = '';
    while (!opening.includes('\n\n')) opening += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    const id = /^id: (\S+)$/m.exec(opening)?.[1];
    assert.match(id ?? '', /^s\d+-d\d+-t\d+-a\d+$/);
    // Between the streams (the browser reconnecting): a detection and an action in web.
    await detect(detection('web', '2026-01-01T00:04:00.000Z', 5));
    actions.claim(action('web-2', 'web', 'Succeeded', '2026-01-01T00:04:00.000Z'), new Date());
    const resumed = await stream(id);
    const frames = await readFrames(resumed.body as ReadableStream<Uint8Array>, (f) => f.length >= 2);
    assert.deepEqual(frames.map(describeFrame).sort(), ['action web-2 Succeeded', 'detection web x5']);
  });

  test('a malformed Last-Event-ID replays nothing', async () => {
    const res = await stream('s0-dx');
    await detect(detection('web', '2026-01-01T00:05:00.000Z', 6));
    const frames = await readFrames(res.body as ReadableStream<Uint8Array>, (f) => f.length >= 1);
    assert.deepEqual(frames.map(describeFrame), ['detection web x6']);
  });
});

describe('live detections across two replicas (PostgreSQL)', { skip: !haveData || !havePostgres }, () => {
  let database: TestDatabase;
  let a: BackendHarness;
  let b: BackendHarness;
  let base: string;
  let viewer: string;
  before(async () => {
    database = await createTestDatabase('sse');
    a = await startHarness(osvNpm, { backend: 'postgres', databaseUrl: database.url });
    b = await startHarness(osvNpm, {
      backend: 'postgres',
      databaseUrl: database.url,
      eventStream: { pollMs: 100, maxAgeMs: 10_000 },
    });
    await a.store.createCluster(CLUSTER);
    viewer = (
      await a.tokens.issue({ name: 'v', role: 'viewer', scope: { cluster: CLUSTER, namespaces: ['web'] } })
    ).token;
    base = await b.app.listen({ port: 0, host: '127.0.0.1' });
  });
  after(async () => {
    await b?.close();
    await a?.close();
    await database?.drop();
  });

  test('a stream on replica B hears of web detections stored through replica A, never payments’', async () => {
    const res = await fetch(`${base}/v1/events/stream`, { headers: { authorization: `Bearer ${viewer}` } });
    assert.equal(res.status, 200);
    for (const namespace of ['payments', 'web']) {
      const stored = await a.app.inject({
        method: 'POST',
        url: '/v1/detections',
        headers: { authorization: `Bearer ${a.adminToken}` },
        payload: { detections: [detection(namespace, '2026-01-01T00:00:00.000Z', 2)] },
      });
      assert.equal(stored.statusCode, 201, stored.body);
    }
    const frames = await readFrames(res.body as ReadableStream<Uint8Array>, (f) => f.length >= 1);
    assert.deepEqual(
      frames.map((f) => `${f.event} ${(f.data as RuntimeDetection).workload.namespace}`),
      ['detection web'],
    );
  });
});
