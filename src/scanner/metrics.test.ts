/** `/metrics` after real traffic: reports by outcome, scans stored, events enqueued and delivered, durations. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startReceiver } from '../events/receiver.test-helper.js';
import { waitUntil } from '../testing/wait.js';
import type { Receiver } from '../events/receiver.test-helper.js';
import { isCI, sharedDataDir } from '../testing/shared-data.js';
import { npmReport, startHarness } from './scanner-harness.test-helper.js';
import type { Harness } from './scanner-harness.test-helper.js';

const osvNpm = join(sharedDataDir, 'osv', 'npm');
const haveData = existsSync(osvNpm);
if (!haveData && isCI()) throw new Error(`shared OSV data not found at ${osvNpm}`);

let h: Harness;
let url: string;
let up: Receiver;
let down: Receiver;

async function call(
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
): Promise<Response> {
  return fetch(`${url}${path}`, {
    method,
    headers: {
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

/** The value of one sample line, e.g. `containment_reports_received_total{outcome="full"}`. */
function sample(exposition: string, series: string): number | undefined {
  const line = exposition.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('metrics', { skip: !haveData }, () => {
  before(async () => {
    h = await startHarness(osvNpm);
    url = await h.app.listen({ host: '127.0.0.1', port: 0 });
    up = await startReceiver();
    down = await startReceiver(() => ({ status: 500 }));
  });
  after(async () => {
    await h?.close();
    await up?.close();
    await down?.close();
  });

  test('only a global admin token reads /metrics', async () => {
    assert.equal((await call(undefined, 'GET', '/metrics')).status, 401);
    const viewer = await h.tokens.issue({
      name: 'v',
      role: 'viewer',
      scope: { cluster: '*', namespaces: '*' },
    });
    assert.equal((await call(viewer.token, 'GET', '/metrics')).status, 403);
    const scopedAdmin = await h.tokens.issue({
      name: 'a',
      role: 'admin',
      scope: { cluster: 'c', namespaces: ['x'] },
    });
    assert.equal(
      (await call(scopedAdmin.token, 'GET', '/metrics')).status,
      403,
      'counts span every namespace',
    );
  });

  test('the exposition counts reports, scans, events and requests after traffic', async () => {
    const agent = (
      (await (await call(h.adminToken, 'POST', '/v1/clusters', { name: 'm' })).json()) as {
        agentToken: string;
      }
    ).agentToken;
    for (const receiver of [up, down]) {
      const res = await call(h.adminToken, 'POST', '/v1/triggers', {
        cluster: 'm',
        url: receiver.url,
        secret: 's',
      });
      assert.equal(res.status, 201);
    }
    const first = npmReport('m', 'ns', 'p', [['minimist', '1.2.5']]);
    assert.equal((await call(agent, 'POST', '/v1/reports', first)).status, 201);
    assert.equal((await call(agent, 'POST', '/v1/reports', first)).status, 200, 'same report id: duplicate');
    const same = { ...npmReport('m', 'ns', 'p', [['minimist', '1.2.5']]) };
    assert.equal((await call(agent, 'POST', '/v1/reports', same)).status, 201, 'same hash: check-in');
    assert.equal((await call(agent, 'POST', '/v1/reports', { ...first, scanTime: 'soon' })).status, 400);
    assert.equal((await call(agent, 'GET', '/v1/scans/1')).status, 403);
    // The harness retries twice with 20 ms backoff: the failing receiver's delivery ends dead.
    await waitUntil(
      () => up.requests.length === 1 && h.outcomes.some((o) => o.result === 'dead'),
      5000,
      'deliveries settled',
    );

    const res = await call(h.adminToken, 'GET', '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const expected: Record<string, number> = {
      'containment_reports_received_total{outcome="full"}': 1,
      'containment_reports_received_total{outcome="duplicate"}': 1,
      'containment_reports_received_total{outcome="check-in"}': 1,
      'containment_reports_received_total{outcome="rejected"}': 1,
      'containment_scans_stored_total{kind="full"}': 1,
      'containment_scans_stored_total{kind="check-in"}': 1,
      'containment_events_enqueued_total{type="dev.containment.scan.completed"}': 1,
      'containment_event_deliveries_total{result="delivered"}': 1,
      'containment_event_deliveries_total{result="retry"}': 1,
      'containment_event_deliveries_total{result="dead"}': 1,
      'containment_http_request_duration_seconds_count{method="POST",route="/v1/reports",status_code="201"}': 2,
      'containment_http_request_duration_seconds_count{method="GET",route="/v1/scans/:id",status_code="403"}': 1,
    };
    for (const [series, value] of Object.entries(expected)) assert.equal(sample(text, series), value, series);
    assert.match(text, /^# TYPE containment_http_request_duration_seconds histogram$/m);
  });
});
