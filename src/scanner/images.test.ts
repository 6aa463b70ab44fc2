/**
 * `GET /v1/images`: the latest scan of each workload running an image (by reference or digest),
 * newest first, with per-severity counts, limited to the caller's namespaces — on both stores.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { sharedDataDir } from '../testing/shared-data.js';
import { describeEachBackend, startHarness } from './scanner-harness.test-helper.js';
import type { BackendHarness } from './scanner-harness.test-helper.js';

const osvNpm = join(sharedDataDir, 'osv', 'npm');
const haveData = existsSync(osvNpm);

type Json = Record<string, unknown>;
const APP = 'registry.local/app:1';
const DIGEST = `sha256:${'a'.repeat(64)}`;

let h: BackendHarness;
let counter = 0;

async function call(token: string, url: string, method: 'GET' | 'POST' = 'GET', payload?: object) {
  const res = await h.app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${token}` },
    ...(payload === undefined ? {} : { payload }),
  });
  return { status: res.statusCode, body: res.json() as Json };
}

function report(
  cluster: string,
  namespace: string,
  pod: string,
  image: string,
  digest: string | undefined,
  packages: [string, string][],
  rootUser = false,
): Json {
  counter += 1;
  return {
    reportId: `img-${counter}`,
    workload: { cluster, namespace, pod, node: 'n1', image, ...(digest ? { imageDigest: digest } : {}) },
    scanTime: new Date(Date.UTC(2025, 1, 1, 0, 0, counter)).toISOString(),
    inventory: {
      packages: packages.map(([name, version]) => ({ name, version, ecosystem: 'npm' })),
      insecureConfigurations: rootUser
        ? [{ id: 'root-user', severity: 'HIGH', title: 'runs as root', evidence: ['uid 0'] }]
        : [],
    },
    inventoryHash: `h-${counter}`,
  };
}

async function issue(role: string, cluster: string, namespaces: string[] | '*'): Promise<string> {
  const res = await call(h.adminToken, '/v1/tokens', 'POST', {
    name: `t-${++counter}`,
    role,
    cluster,
    namespaces,
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.token as string;
}

const pods = (body: Json): string[] =>
  (body.images as { workload: Json }[]).map((i) => `${String(i.workload.cluster)}/${String(i.workload.pod)}`);

describeEachBackend('GET /v1/images', { skip: !haveData }, (backend) => {
  let agent1: string;
  let viewerA: string;
  let viewerB: string;
  before(async () => {
    h = await startHarness(osvNpm, { backend: backend.name });
    agent1 = (await call(h.adminToken, '/v1/clusters', 'POST', { name: 'one' })).body.agentToken as string;
    const agent2 = (await call(h.adminToken, '/v1/clusters', 'POST', { name: 'two' })).body
      .agentToken as string;
    const post = async (token: string, body: Json): Promise<void> => {
      const res = await call(token, '/v1/reports', 'POST', body);
      assert.equal(res.status, 201, JSON.stringify(res.body));
    };
    // In scan-time order: p1 (vulnerable, root user), p2, p3 (other tag, same digest), p4 (cluster two).
    await post(agent1, report('one', 'a', 'p1', APP, DIGEST, [['minimist', '1.2.5']], true));
    await post(agent1, report('one', 'b', 'p2', APP, undefined, [['minimist', '1.2.8']]));
    await post(
      agent1,
      report('one', 'a', 'p3', 'registry.local/app:latest', DIGEST, [['lodash', '4.17.21']]),
    );
    await post(agent2, report('two', 'a', 'p4', APP, DIGEST, []));
    // p5 ran the image, then moved to another: its latest scan no longer does.
    await post(agent1, report('one', 'a', 'p5', APP, undefined, []));
    await post(agent1, report('one', 'a', 'p5', 'registry.local/app:2', undefined, []));
    viewerA = await issue('viewer', 'one', ['a']);
    viewerB = await issue('viewer', 'one', ['b']);
  });
  after(async () => {
    await h?.close();
  });

  test('by reference: the latest scan of each workload, newest first, every cluster for a global admin', async () => {
    const res = await call(h.adminToken, `/v1/images?image=${encodeURIComponent(APP)}`);
    assert.equal(res.status, 200);
    assert.deepEqual(pods(res.body), ['two/p4', 'one/p2', 'one/p1']);
    const cluster = await call(h.adminToken, `/v1/images?image=${encodeURIComponent(APP)}&cluster=two`);
    assert.deepEqual(pods(cluster.body), ['two/p4']);
    const limited = await call(h.adminToken, `/v1/images?image=${encodeURIComponent(APP)}&limit=1`);
    assert.deepEqual(pods(limited.body), ['two/p4']);
  });

  test('by digest as well as reference; severityCounts = vulnerabilities + configurations per severity', async () => {
    const res = await call(
      h.adminToken,
      `/v1/images?image=${encodeURIComponent('registry.local/none:0')}&digest=${DIGEST}&cluster=one`,
    );
    assert.deepEqual(pods(res.body), ['one/p3', 'one/p1']);
    const p1 = (res.body.images as Json[])[1] as Json;
    assert.equal(p1.image, APP);
    assert.equal(p1.imageDigest, DIGEST);
    const scan = await call(h.adminToken, `/v1/scans/${String(p1.scanId)}`);
    assert.equal(scan.status, 200);
    const summary = scan.body.summary as { counts: Json; configurationCounts: Json };
    const expected = Object.fromEntries(
      ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN'].map((s) => [
        s,
        (summary.counts[s] as number) + (summary.configurationCounts[s] as number),
      ]),
    );
    assert.deepEqual(p1.severityCounts, expected);
    // minimist 1.2.5 has real findings and the root user is one HIGH configuration.
    assert.ok(Object.values(summary.counts).some((n) => (n as number) > 0));
    assert.equal(summary.configurationCounts.HIGH, 1);
    assert.equal(p1.scanTime, scan.body.scanTime);
    const p3 = (res.body.images as Json[])[0] as Json;
    assert.deepEqual(p3.severityCounts, { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 });
  });

  test('namespace-scoped tokens see only their namespaces, whatever they ask', async () => {
    const url = `/v1/images?image=${encodeURIComponent(APP)}&digest=${DIGEST}`;
    assert.deepEqual(pods((await call(viewerA, url)).body), ['one/p3', 'one/p1']);
    assert.deepEqual(pods((await call(viewerB, url)).body), ['one/p2']);
    assert.deepEqual(pods((await call(viewerA, `${url}&cluster=two`)).body), []);
    assert.deepEqual(pods((await call(viewerB, `${url}&cluster=one`)).body), ['one/p2']);
  });

  test('bad queries and roles without findings:read are refused', async () => {
    const missing = await call(h.adminToken, '/v1/images');
    assert.equal(missing.status, 400);
    assert.equal((missing.body.error as Json).code, 'REQUEST_INVALID');
    assert.equal((await call(h.adminToken, `/v1/images?image=${APP}&limit=0`)).status, 400);
    assert.equal((await call(h.adminToken, `/v1/images?image=${APP}&cluster=*`)).status, 400);
    assert.equal((await call(agent1, `/v1/images?image=${APP}`)).status, 403);
  });
});
