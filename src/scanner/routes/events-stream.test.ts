/**
 * `GET /v1/events/stream` on a real listening scanner: a viewer of `web` hears of a new `web` scan
 * and never of a `payments` one; the session cookie authenticates it like a bearer token; the
 * stream ends after its lifetime.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isCI, sharedDataDir } from '../../testing/shared-data.js';
import { npmReport, startHarness } from '../scanner-harness.test-helper.js';
import type { Harness } from '../scanner-harness.test-helper.js';
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
