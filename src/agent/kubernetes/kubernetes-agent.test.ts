/**
 * The cluster agent end to end on this host: a real kube-apiserver, a Podman container placed in
 * the kubepods cgroup of a Pod object bound to this node (no kubelet runs: the test writes the
 * pod's status the way a kubelet would), and a real scanner service in-process. The agent runs
 * with only get/list/watch on pods (RBAC), finds the container through /proc, names it by the
 * pod and reports its packages. Processes no pod of this node names are ignored — including one a
 * pod claims whose UID does not match the process's cgroup. With the runtime sensor on (real
 * bpftrace), a shell exec'd in a pod container is one detection carrying the pod's identity; shells
 * in containers of no pod and on the host are none.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import pino from 'pino';
import type { ScannerClient } from '../../clients/scanner-client.js';
import { eventually } from '../../enforcement/podman-fixture.test-helper.js';
import type { RuntimeDetection } from '../../runtime/contracts.js';
import { RuntimeFixture, ebpfMissing } from '../../runtime/runtime-fixture.test-helper.js';
import type { RunningServer } from '../../scanner/run-server.js';
import { binariesWhat, findBinaries } from '../../testing/k8s/binaries.js';
import { startControlPlane } from '../../testing/k8s/control-plane.js';
import type { ControlPlane } from '../../testing/k8s/control-plane.js';
import { startTestScanner } from '../../testing/scanner.js';
import { repoRoot, requireOrSkip, sharedDataDir } from '../../testing/shared-data.js';
import { Agent } from '../agent.js';
import { KubernetesDiscovery } from './kubernetes-discovery.js';
import { buildPodTestImage, podmanPodAvailable, runPodContainer } from './pod-container.test-helper.js';
import type { PodContainer, PodTestImage } from './pod-container.test-helper.js';

const NODE = 'node-a';
const NPM_RECORDS = join(sharedDataDir, 'osv', 'npm');
const DIGEST = `sha256:${'ab'.repeat(32)}`;
const IMAGE = 'registry.example/shop/web:1.0';
const AGENT_USER = 'system:serviceaccount:containment-system:containment-operator';

interface Env {
  cp: ControlPlane;
  image: PodTestImage;
  containers: PodContainer[];
  server: RunningServer;
  adminToken: string;
  agentToken: string;
  agentClient: ScannerClient;
  tmp: string;
}

let env: Env | string = 'not set up';

async function setup(): Promise<Env | string> {
  const binaries = findBinaries();
  if (!binaries) return binariesWhat;
  const podman = podmanPodAvailable();
  if (podman) return podman;
  if (!existsSync(NPM_RECORDS)) return `${NPM_RECORDS} (shared test data)`;
  const tmp = mkdtempSync(join(tmpdir(), 'containment-k8s-agent-'));
  const [cp, scanner] = await Promise.all([
    startControlPlane({ name: 'east', binaries }),
    startTestScanner({ dataDir: join(tmp, 'data'), records: NPM_RECORDS, cluster: 'east' }),
  ]);
  const { server, adminToken, agentToken, agent: agentClient } = scanner;
  // What the chart grants the node DaemonSet's ServiceAccount on pods, and nothing else.
  await must(cp, 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', {
    metadata: { name: 'containment-agent-test' },
    rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }],
  });
  await must(cp, 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    metadata: { name: 'containment-agent-test' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'containment-agent-test' },
    subjects: [{ kind: 'User', name: AGENT_USER }],
  });
  await must(cp, 'POST', '/api/v1/namespaces', { metadata: { name: 'shop' } });
  return { cp, image: buildPodTestImage(), containers: [], server, adminToken, agentToken, agentClient, tmp };
}

/** The node agent's discovery of NODE in cluster east, with `user`'s credentials (default the agent's). */
function discoveryOf(
  e: Env,
  logger: pino.Logger,
  options: { pollIntervalMs?: number; identifyWaitMs?: number } = {},
  user = AGENT_USER,
): KubernetesDiscovery {
  const kubeConfig = new k8s.KubeConfig();
  kubeConfig.loadFromOptions(e.cp.kubeConfigFor(e.cp.issueClient(user)));
  return new KubernetesDiscovery({ kubeConfig, cluster: 'east', node: NODE, logger, ...options });
}

async function must(
  cp: ControlPlane,
  method: string,
  path: string,
  body?: unknown,
  contentType?: string,
): Promise<unknown> {
  const r = await cp.request(method, path, { body, ...(contentType ? { contentType } : {}) });
  assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${r.text}`);
  return r.json;
}

/** A Pod object bound to `node`; returns its UID (assigned by the API server). */
async function createPod(cp: ControlPlane, name: string, node = NODE): Promise<string> {
  const pod = (await must(cp, 'POST', '/api/v1/namespaces/shop/pods', {
    metadata: { name },
    spec: { nodeName: node, containers: [{ name: 'app', image: IMAGE }] },
  })) as k8s.V1Pod;
  return pod.metadata?.uid as string;
}

/** What the kubelet would write once the container runs. */
async function setRunning(cp: ControlPlane, pod: string, containerId: string): Promise<void> {
  await must(
    cp,
    'PATCH',
    `/api/v1/namespaces/shop/pods/${pod}/status`,
    {
      status: {
        phase: 'Running',
        containerStatuses: [
          {
            name: 'app',
            containerID: `containerd://${containerId}`,
            image: IMAGE,
            imageID: `registry.example/shop/web@${DIGEST}`,
            ready: true,
            restartCount: 0,
            state: { running: { startedAt: new Date().toISOString() } },
          },
        ],
      },
    },
    'application/merge-patch+json',
  );
}

function need(t: TestContext): Env | undefined {
  if (typeof env === 'string') {
    requireOrSkip(t, false, env);
    return undefined;
  }
  return env;
}

async function api<T>(e: Env, path: string): Promise<T> {
  const res = await fetch(`${e.server.url}${path}`, { headers: { authorization: `Bearer ${e.adminToken}` } });
  assert.ok(res.ok, `GET ${path}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

interface LogLine {
  level: number;
  msg: string;
  containerId?: string;
}

describe('cluster agent (--kubernetes) against a real API server', () => {
  before(async () => {
    env = await setup();
  });
  after(async () => {
    if (typeof env === 'string') return;
    for (const c of env.containers) c.remove();
    env.image.remove();
    await env.server.close();
    await env.cp.stop();
    rmSync(env.tmp, { recursive: true, force: true });
  });

  test('reports a pod container with its pod identity and packages; ignores processes no pod of this node names', async (t) => {
    const e = need(t);
    if (!e) return;
    const webUid = await createPod(e.cp, 'web');
    const web = runPodContainer(e.image, webUid);
    e.containers.push(web);
    // A container in a pod cgroup no pod names, and one an impostor pod claims under another UID.
    const stray = runPodContainer(e.image, randomUUID());
    const claimed = runPodContainer(e.image, randomUUID());
    e.containers.push(stray, claimed);
    await createPod(e.cp, 'impostor');
    await setRunning(e.cp, 'impostor', claimed.id);
    // A pod of another node naming the web container: this node's agent never sees it.
    await createPod(e.cp, 'elsewhere', 'node-b');
    await setRunning(e.cp, 'elsewhere', web.id);

    const logs: LogLine[] = [];
    const logger = pino({ level: 'debug' }, { write: (l: string) => logs.push(JSON.parse(l) as LogLine) });
    const discovery = discoveryOf(e, logger, { pollIntervalMs: 200 });
    const agent = new Agent({
      discovery,
      sink: e.agentClient,
      logger,
      rescanIntervalMs: 60_000,
      // The writable layer comes from /proc/<pid>/mountinfo here (no engine to ask).
      driftCheckIntervalMs: 200,
    });
    await agent.start();
    t.after(() => agent.stop());
    // Running, but its pod's status does not name it yet: nothing to scan.
    await new Promise((r) => setTimeout(r, 600));
    assert.deepEqual(agent.watched(), []);

    // The "kubelet" writes the status: the informer's update announces the container.
    await setRunning(e.cp, 'web', web.id);
    const scans = (): Promise<{ scans: { workload: Record<string, string> }[] }> =>
      api(e, '/v1/scans?cluster=east&limit=100');
    assert.ok(
      await eventually(async () => (await scans()).scans.length > 0, 150, 100),
      'a report for the pod container reaches the scanner',
    );
    const { scans: rows } = await scans();
    assert.deepEqual(
      rows.map((r) => r.workload),
      [
        {
          cluster: 'east',
          namespace: 'shop',
          pod: 'web',
          container: 'app',
          node: NODE,
          image: IMAGE,
          imageDigest: DIGEST,
        },
      ],
    );
    const findings = await api<{ vulnerablePackages: { package: { name: string; version: string } }[] }>(
      e,
      '/v1/findings?cluster=east&namespace=shop&pod=web',
    );
    assert.ok(
      findings.vulnerablePackages.some((v) => v.package.name === 'minimist' && v.package.version === '1.2.5'),
      `the package inside the container was scanned: ${JSON.stringify(findings)}`,
    );
    assert.deepEqual(agent.watched(), [web.id]);

    // Several more listings: the stray processes are logged once each, never as errors.
    await new Promise((r) => setTimeout(r, 800));
    const ignored = logs.filter((l) => l.msg.startsWith('process of no known pod container'));
    for (const c of [stray, claimed]) {
      assert.equal(ignored.filter((l) => l.containerId === c.id.slice(0, 12)).length, 1, c.name);
    }
    assert.deepEqual(
      logs.filter((l) => l.level >= 50),
      [],
      'no error logged',
    );
    assert.equal(agent.stats.errors, 0);
    assert.deepEqual(agent.watched(), [web.id]);

    // A package dropped into the running container (its writable layer) is found by a drift rescan.
    const dir = `/proc/${web.pid}/root/app/node_modules/lodash`;
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/package.json`, JSON.stringify({ name: 'lodash', version: '4.17.15' }));
    assert.ok(
      await eventually(
        async () => {
          const f = await api<{ vulnerablePackages: { package: { name: string } }[] }>(
            e,
            '/v1/findings?cluster=east&namespace=shop&pod=web',
          );
          return f.vulnerablePackages.some((v) => v.package.name === 'lodash');
        },
        100,
        100,
      ),
      'the drift rescan reported the new package',
    );
  });

  test('credentials that may not list pods stop the start with one clear error', async (t) => {
    const e = need(t);
    if (!e) return;
    const discovery = discoveryOf(e, pino({ level: 'silent' }), {}, 'nobody');
    await assert.rejects(discovery.start(), {
      code: 'KUBERNETES_UNAVAILABLE',
      message:
        /^cannot list the pods of node node-a at https:\/\/127\.0\.0\.1:\d+: pods is forbidden: User "nobody"/,
    });
  });

  test('`containment agent --kubernetes` as a process: a kubeconfig file, NODE_NAME, scans, stops on SIGTERM', async (t) => {
    const e = need(t);
    if (!e) return;
    // The first test's pod and container are still there; this process finds them on its own.
    const creds = e.cp.issueClient(AGENT_USER);
    const options = e.cp.kubeConfigFor(creds);
    const file = join(e.tmp, 'agent.kubeconfig');
    const cluster = options.clusters[0];
    const user = options.users[0];
    assert.ok(cluster && user);
    writeFileSync(
      file,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          { name: 'east', cluster: { server: cluster.server, 'certificate-authority-data': cluster.caData } },
        ],
        users: [
          {
            name: 'agent',
            user: { 'client-certificate-data': user.certData, 'client-key-data': user.keyData },
          },
        ],
        contexts: [{ name: 'east', context: { cluster: 'east', user: 'agent' } }],
        'current-context': 'east',
      }),
    );
    const child = spawn(
      process.execPath,
      [
        join(repoRoot, 'bin', 'containment.js'),
        ...['agent', '--kubernetes', '--kubeconfig', file, '--cluster', 'east'],
        ...['--server', e.server.url, '--token', e.agentToken],
      ],
      {
        env: { ...process.env, NODE_NAME: NODE, CONTAINMENT_LOG_LEVEL: 'info' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const scanned = new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        // The sensor starts before "agent started" (as root it runs here too): wait for both lines.
        if (
          /"container":"shop\/web\/app".*"container scanned"/.test(stderr) &&
          /"agent started"/.test(stderr)
        )
          resolve();
      });
      void exited.then(() => reject(new Error(`exited early: ${stderr}`)));
    });
    await scanned;
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /"agent stopped"/);
  });

  test('runtime detection: a shell exec’d in a pod container is one shell_in_container detection of that pod; other shells none', async (t) => {
    const e = need(t);
    if (!e) return;
    const missing = ebpfMissing();
    if (!requireOrSkip(t, missing === undefined, missing ?? '')) return;
    const fixture = RuntimeFixture.create();
    t.after(() => fixture.cleanup());
    // A pod container whose image has a shell; a container in a pod cgroup no pod names; a plain
    // engine container (no pod cgroup at all).
    const termUid = await createPod(e.cp, 'term');
    const term = fixture.run([`--cgroup-parent=/kubepods/besteffort/pod${termUid}`]);
    await setRunning(e.cp, 'term', term.id);
    const stray = fixture.run([`--cgroup-parent=/kubepods/besteffort/pod${randomUUID()}`]);
    // A pod whose status the "kubelet" writes only after the sensor first saw its container.
    const lateUid = await createPod(e.cp, 'late-status');
    const late = fixture.run([`--cgroup-parent=/kubepods/besteffort/pod${lateUid}`]);
    const plain = fixture.run();

    const logger = pino({ level: 'warn' });
    const client = e.agentClient;
    const agent = new Agent({
      discovery: discoveryOf(e, logger, { pollIntervalMs: 200, identifyWaitMs: 1_000 }),
      sink: client,
      detections: client,
      runtimeDetection: 'on',
      runtimeTuning: { detector: { mode: 'ebpf', redescribeMs: 500 }, forwarder: { batchMs: 100 } },
      cluster: 'east',
      node: NODE,
      logger,
      rescanIntervalMs: 60_000,
      driftCheckIntervalMs: 0,
    });
    await agent.start();
    t.after(() => agent.stop());
    assert.equal(agent.runtimeStatus()?.detector.mode, 'ebpf');

    fixture.exec(stray, ['sh', '-c', 'true']);
    fixture.exec(plain, ['sh', '-c', 'true']);
    execFileSync('/usr/bin/busybox', ['sh', '-c', 'true']);
    execFileSync('sh', ['-c', 'true']);
    fixture.exec(term, ['sh', '-c', 'true']);
    // Unnamed when first seen (identify gives up after 1 s), named once the status is there: the
    // detector asks again (after redescribeMs), so the later shell is the pod's.
    fixture.exec(late, ['sleep', '0']);
    await new Promise((r) => setTimeout(r, 1_500));
    await setRunning(e.cp, 'late-status', late.id);
    await new Promise((r) => setTimeout(r, 700));
    fixture.exec(late, ['sh', '-c', 'true']);

    const all = async (): Promise<RuntimeDetection[]> =>
      (await api<{ detections: RuntimeDetection[] }>(e, '/v1/detections?cluster=east&limit=100')).detections;
    assert.ok(
      await eventually(async () => (await all()).length >= 2, 150, 100),
      'the two pods’ detections reach the scanner',
    );
    // Both shells outside pods were seen by the kernel probes and stopped at the node.
    assert.ok(
      await eventually(async () => (agent.runtimeStatus()?.unmanaged ?? 0) >= 2, 100, 100),
      `the stray and the plain container's shells are counted as not sent: ${JSON.stringify(agent.runtimeStatus())}`,
    );
    const status = agent.runtimeStatus();
    // Host shells never get this far (the probes keep only tasks in a deeper pid namespace).
    const detections = await all();
    assert.deepEqual(
      detections.map((d) => [d.workload.pod, d.ruleId, d.count, d.source, d.process.name]).sort(),
      [
        ['late-status', 'shell_in_container', 1, 'ebpf', 'sh'],
        ['term', 'shell_in_container', 1, 'ebpf', 'sh'],
      ],
    );
    assert.deepEqual(detections.find((d) => d.workload.pod === 'late-status')?.workload.containerId, late.id);
    assert.deepEqual(detections.find((d) => d.workload.pod === 'term')?.workload, {
      cluster: 'east',
      namespace: 'shop',
      pod: 'term',
      container: 'app',
      node: NODE,
      image: IMAGE,
      imageDigest: DIGEST,
      containerId: term.id,
      podUid: termUid,
    });
    assert.equal(status?.forwarder.dropped, 0);
  });

  test('identify (the sensor’s naming): waits for the status that names a new container; no pod UID or a wrong one is ignore', async (t) => {
    const e = need(t);
    if (!e) return;
    const discovery = discoveryOf(e, pino({ level: 'silent' }), { identifyWaitMs: 10_000 });
    await discovery.start();
    t.after(() => discovery.close());
    const uid = await createPod(e.cp, 'late');
    const containerId = 'c'.repeat(64);
    // The entrypoint's exec comes before the kubelet writes the container id: the answer waits for it.
    const pending = discovery.identify({ containerId, podUid: uid });
    await setRunning(e.cp, 'late', containerId);
    assert.deepEqual(await pending, {
      cluster: 'east',
      namespace: 'shop',
      pod: 'late',
      container: 'app',
      node: NODE,
      image: IMAGE,
      imageDigest: DIGEST,
    });
    assert.equal(await discovery.identify({ containerId }), 'ignore', 'a cgroup of no pod');
    const short = discoveryOf(e, pino({ level: 'silent' }), { identifyWaitMs: 300 });
    await short.start();
    t.after(() => short.close());
    assert.equal(
      await short.identify({ containerId, podUid: randomUUID() }),
      'ignore',
      'a pod UID other than the pod’s own',
    );
    await must(e.cp, 'DELETE', '/api/v1/namespaces/shop/pods/late?gracePeriodSeconds=0');
  });

  test('a deleted pod’s container is no longer watched (its process alone names no pod)', async (t) => {
    const e = need(t);
    if (!e) return;
    const logger = pino({ level: 'silent' });
    const agent = new Agent({
      discovery: discoveryOf(e, logger, { pollIntervalMs: 200 }),
      sink: e.agentClient,
      logger,
      rescanIntervalMs: 60_000,
      driftCheckIntervalMs: 0,
    });
    await agent.start();
    t.after(() => agent.stop());
    const web = e.containers[0] as PodContainer;
    assert.ok(await eventually(async () => agent.watched().includes(web.id), 50, 100));
    await must(e.cp, 'DELETE', '/api/v1/namespaces/shop/pods/web?gracePeriodSeconds=0');
    const gone = await e.cp.request('GET', '/api/v1/namespaces/shop/pods/web');
    assert.equal(gone.status, 404, gone.text.slice(0, 300));
    assert.ok(
      await eventually(async () => agent.watched().length === 0, 50, 100),
      `still watched: ${agent.watched().join(', ')}`,
    );
    assert.equal(agent.stats.errors, 0);
  });
});
