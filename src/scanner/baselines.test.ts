/**
 * Behaviour baselines through the scanner API on both engines: agents sync, readers over the whole
 * cluster read, only admins (of that cluster) lock and reset; every refusal and bad body leaves
 * the stored baselines as they were.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Baseline, StoredBaseline } from '../runtime/contracts.js';
import { sharedDataDir } from '../testing/shared-data.js';
import { describeEachBackend, startHarness } from './scanner-harness.test-helper.js';
import type { BackendHarness } from './scanner-harness.test-helper.js';

const osvNpm = join(sharedDataDir, 'osv', 'npm');
const DIGEST = 'sha256:' + 'cd'.repeat(32);

function learned(executables: string[]): Baseline {
  return {
    image: DIGEST,
    state: 'learning',
    learningStartedAt: 1_700_000_000_000,
    eventsLearned: executables.length,
    executables,
    listeners: [],
    outbound: [],
  };
}

describeEachBackend('behaviour baselines API', { skip: !existsSync(osvNpm) }, (backend) => {
  let h: BackendHarness;
  const tokens: Record<string, string> = {};
  const as = (token: string) => ({ authorization: `Bearer ${token}` });
  const call = (method: 'GET' | 'POST', url: string, token: string, payload?: object) =>
    h.app.inject({ method, url, headers: as(token), ...(payload ? { payload } : {}) });
  const sync = (token: string, baselines: object[], cluster = 'c1') =>
    call('POST', '/v1/baselines/sync', token, { cluster, baselines });
  const stored = async (): Promise<StoredBaseline[]> => {
    const res = await call('GET', '/v1/baselines?cluster=c1', h.adminToken);
    assert.equal(res.statusCode, 200, res.body);
    return (res.json() as { baselines: StoredBaseline[] }).baselines;
  };
  const issue = async (role: string, cluster: string, namespaces: string[] | '*'): Promise<string> => {
    const res = await call('POST', '/v1/tokens', h.adminToken, {
      name: `${role}-${cluster}-${String(namespaces)}`,
      role,
      cluster,
      namespaces,
    });
    assert.equal(res.statusCode, 201, res.body);
    return (res.json() as { token: string }).token;
  };
  const refused = (res: { statusCode: number; body: string }, status: number, code: string): void => {
    assert.equal(res.statusCode, status, res.body);
    assert.equal((JSON.parse(res.body) as { error: { code: string } }).error.code, code);
  };

  before(async () => {
    h = await startHarness(osvNpm, { backend: backend.name });
    for (const name of ['c1', 'c2']) {
      const res = await call('POST', '/v1/clusters', h.adminToken, { name });
      tokens[`agent-${name}`] = (res.json() as { agentToken: string }).agentToken;
    }
    tokens.viewer = await issue('viewer', 'c1', '*');
    tokens.webViewer = await issue('viewer', 'c1', ['web']);
    tokens.analyst = await issue('analyst', 'c1', '*');
    tokens.c2Admin = await issue('admin', 'c2', '*');
    tokens.c1Admin = await issue('admin', 'c1', '*');
  });
  after(async () => {
    await h?.close();
  });

  test('an agent pushes and fetches; a whole-cluster reader reads, by digest or by reference', async () => {
    const first = await sync(tokens['agent-c1'] as string, [
      { baseline: learned(['/bin/sleep']), generation: 0, imageRef: 'localhost/app:1' },
    ]);
    assert.equal(first.statusCode, 200, first.body);
    const [b] = (first.json() as { baselines: StoredBaseline[] }).baselines;
    assert.equal(b?.cluster, 'c1');
    assert.deepEqual(b?.executables, ['/bin/sleep']);
    // Another node's agent (same cluster) only fetches: it gets the cluster's baseline.
    const fetched = await sync(tokens['agent-c1'] as string, []);
    assert.deepEqual((fetched.json() as { baselines: StoredBaseline[] }).baselines, [b]);
    // The agent's own cluster is the default; a viewer of the cluster reads by reference.
    const byRef = await call('GET', '/v1/baselines?image=localhost%2Fapp%3A1', tokens.viewer as string);
    assert.equal(byRef.statusCode, 200, byRef.body);
    assert.deepEqual((byRef.json() as { baselines: StoredBaseline[] }).baselines, [b]);
  });

  test('readers limited to some namespaces, other clusters and agents cannot read; a global admin names the cluster', async () => {
    refused(await call('GET', '/v1/baselines', tokens.webViewer as string), 403, 'FORBIDDEN');
    refused(await call('GET', '/v1/baselines?cluster=c1', tokens.c2Admin as string), 403, 'FORBIDDEN');
    refused(await call('GET', '/v1/baselines?cluster=c1', tokens['agent-c1'] as string), 403, 'FORBIDDEN');
    refused(await call('GET', '/v1/baselines', h.adminToken), 400, 'REQUEST_INVALID');
  });

  test('viewers, analysts, agents and admins of another cluster may not lock or reset; nothing changes', async () => {
    const before = await stored();
    for (const who of ['viewer', 'analyst', 'agent-c1', 'c2Admin']) {
      for (const action of ['lock', 'reset']) {
        const res = await call('POST', `/v1/baselines/${action}`, tokens[who] as string, {
          cluster: 'c1',
          image: DIGEST,
        });
        refused(res, 403, 'FORBIDDEN');
      }
    }
    // Refused before the body is even read.
    refused(await call('POST', '/v1/baselines/lock', tokens.viewer as string, {}), 403, 'FORBIDDEN');
    // An agent of another cluster cannot push into this one.

    refused(
      await sync(tokens['agent-c2'] as string, [{ baseline: learned(['/bin/evil']), generation: 0 }], 'c1'),
      403,
      'FORBIDDEN',
    );
    assert.deepEqual(await stored(), before);
  });

  test("an admin's lock reaches agents on their next sync and a stale push cannot undo it; reset empties", async () => {
    const locked = await call('POST', '/v1/baselines/lock', tokens.c1Admin as string, {
      image: 'localhost/app:1',
    });
    assert.equal(locked.statusCode, 200, locked.body);
    const { baseline } = locked.json() as { baseline: StoredBaseline };
    assert.equal(baseline.state, 'protect');
    assert.equal(baseline.generation, 1);
    // The agent still based on generation 0 pushes learning with a new item: the lock stands.
    const stale = await sync(tokens['agent-c1'] as string, [
      { baseline: learned(['/bin/sleep', '/tmp/dropper']), generation: 0 },
    ]);
    const [after] = (stale.json() as { baselines: StoredBaseline[] }).baselines;
    assert.equal(after?.state, 'protect');
    assert.deepEqual(after?.executables, ['/bin/sleep']);

    const monitor = await call('POST', '/v1/baselines/lock', h.adminToken, {
      cluster: 'c1',
      image: DIGEST,
      state: 'monitor',
    });
    assert.equal((monitor.json() as { baseline: StoredBaseline }).baseline.state, 'monitor');
    const reset = await call('POST', '/v1/baselines/reset', tokens.c1Admin as string, { image: DIGEST });
    assert.equal(reset.statusCode, 200, reset.body);
    const emptied = (reset.json() as { baseline: StoredBaseline }).baseline;
    assert.equal(emptied.state, 'learning');
    assert.deepEqual(emptied.executables, []);
    assert.equal(emptied.generation, 3);
  });

  test('bad input is a 400 with a stable code and nothing stored; an unknown image is a 404', async () => {
    const before = await stored();
    const agent = tokens['agent-c1'] as string;
    refused(
      await sync(agent, [{ baseline: { ...learned([]), state: 'none' }, generation: 0 }]),
      400,
      'REQUEST_INVALID',
    );
    refused(await sync(agent, [{ baseline: learned(['/bin/x']), generation: -1 }]), 400, 'REQUEST_INVALID');
    refused(
      await sync(agent, [
        { baseline: learned(Array.from({ length: 10_001 }, (_, i) => `/b/${i}`)), generation: 0 },
      ]),
      400,
      'REQUEST_INVALID',
    );
    refused(
      await call('POST', '/v1/baselines/lock', h.adminToken, { cluster: 'c1' }),
      400,
      'REQUEST_INVALID',
    );
    refused(
      await call('POST', '/v1/baselines/lock', h.adminToken, {
        cluster: 'c1',
        image: DIGEST,
        state: 'learning',
      }),
      400,
      'REQUEST_INVALID',
    );
    refused(
      await call('POST', '/v1/baselines/lock', h.adminToken, { cluster: 'c1', image: 'nothing:learned' }),
      404,
      'BASELINE_NOT_FOUND',
    );
    refused(
      await call('POST', '/v1/baselines/reset', h.adminToken, { cluster: 'c9', image: DIGEST }),
      404,
      'CLUSTER_NOT_FOUND',
    );
    assert.deepEqual(await stored(), before);
  });
});
