/**
 * Several clusters: two real API servers (`east`, `west`), one scanner registering both, one
 * policy runtime in cluster mode (its SDK creates SecurityActions through each cluster's API
 * server with the runtime's own ServiceAccount there). Both clusters hold a pod of the SAME name
 * (`shop/web`), so anything that crossed over would be seen:
 * - east's report comes from the real cluster agent (a Podman container in the pod's kubepods
 *   cgroup, named by the pod through the API server); west's is posted with west's agent token;
 * - each cluster's scanner trigger fires its own function namespace's policy, whose action lands
 *   in its own API server only, where that cluster's node operator carries it out (east's pod has a
 *   real process here, so its network namespace is isolated too) while the policy waits;
 * - east's policy token cannot read west's findings, and an east policy cannot act outside its
 *   namespaces (refused before any API call) nor reach a pod that exists only in west.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import pino from 'pino';
import { Agent } from '../../src/agent/agent.js';
import { KubernetesDiscovery } from '../../src/agent/kubernetes/kubernetes-discovery.js';
import {
  buildPodTestImage,
  podmanPodAvailable,
  runPodContainer,
} from '../../src/agent/kubernetes/pod-container.test-helper.js';
import type { PodContainer, PodTestImage } from '../../src/agent/kubernetes/pod-container.test-helper.js';
import { ScannerClient } from '../../src/clients/scanner-client.js';
import { eventually } from '../../src/enforcement/podman-fixture.test-helper.js';
import { ErrorCodes } from '../../src/errors.js';
import { runFunctions } from '../../src/functions/run-functions.js';
import type { RunningFunctions } from '../../src/functions/run-functions.js';
import type { EnforcementClient } from '../../src/functions/host/enforcement-client.js';
import { kubernetesEnforcement } from '../../src/functions/host/kubernetes-enforcement-client.js';
import { httpFindings, PolicySdkHost } from '../../src/functions/host/policy-sdk-host.js';
import type { NamespaceCredentials } from '../../src/functions/host/policy-sdk-host.js';
import { WhiskClient } from '../../src/clients/whisk-client.js';
import { installSecurityNotices, securityNoticesUrl } from '../../src/functions/security-notices.js';
import { installCrd } from '../../src/kubernetes/crd.test-helper.js';
import { Operator } from '../../src/operator/operator.js';
import { buildAgentReport } from '../../src/scanner/agent-report.js';
import type { RunningServer } from '../../src/scanner/run-server.js';
import { binariesWhat, findBinaries } from '../../src/testing/k8s/binaries.js';
import { startControlPlane } from '../../src/testing/k8s/control-plane.js';
import type { ControlPlane } from '../../src/testing/k8s/control-plane.js';
import { startTestScanner } from '../../src/testing/scanner.js';
import { requireOrSkip, sharedDataDir } from '../../src/testing/shared-data.js';

const NPM_RECORDS = join(sharedDataDir, 'osv', 'npm');
const RUNTIME_USER = 'system:serviceaccount:containment-system:containment-functions';
const AGENT_USER = 'system:serviceaccount:containment-system:containment-operator';
const NODES = { east: 'node-east-1', west: 'node-west-1' } as const;
type ClusterName = keyof typeof NODES;
const CLUSTERS: ClusterName[] = ['east', 'west'];
const ACTIONS = '/apis/containment.dev/v1alpha1/namespaces/shop/securityactions';

/**
 * Quarantines the pod of every scan event and waits for the node's operator; says in the reason
 * which cluster the event named.
 */
const POLICY = `
import { kubernetes, vs } from '@containment/policy-sdk';
export async function main(params: Record<string, any>) {
  const data = params.data ?? params;
  const pod = { namespace: data.workload.namespace, name: data.workload.pod };
  const findings = await vs.getFindings(pod, data.scanTime);
  const names = (findings?.vulnerablePackages ?? []).map((v: any) => v.package.name);
  const done = await kubernetes.quarantine(pod, {
    wait: true,
    reason: 'event of ' + data.workload.cluster + ' with ' + [...new Set(names)].join(','),
  });
  return { action: done.name, phase: done.status?.phase };
}
`;

interface Cluster {
  cp: ControlPlane;
  runtime: k8s.KubeConfig;
  agentToken: string;
  policyToken: string;
}

interface Env {
  tmp: string;
  clusters: Record<ClusterName, Cluster>;
  scanner: RunningServer;
  adminToken: string;
  functions: RunningFunctions;
  /** The runtime's SDK host, and how many enforcement clients it asked for, per cluster. */
  host: PolicySdkHost;
  enforcementCalls: Record<string, number>;
  image: PodTestImage;
  containers: PodContainer[];
  operators: Operator[];
}

let env: Env | string = 'not set up';

async function must(
  cp: ControlPlane,
  method: string,
  path: string,
  body?: unknown,
  contentType?: string,
): Promise<unknown> {
  const r = await cp.request(method, path, { body, ...(contentType ? { contentType } : {}) });
  assert.ok(r.status >= 200 && r.status < 300, `${cp.name}: ${method} ${path}: ${r.status} ${r.text}`);
  return r.json;
}

async function prepareCluster(cp: ControlPlane): Promise<k8s.KubeConfig> {
  const admin = new k8s.KubeConfig();
  admin.loadFromOptions(cp.kubeConfig);
  await installCrd(admin);
  const grants: [string, k8s.V1PolicyRule[]][] = [
    [
      RUNTIME_USER,
      [
        {
          apiGroups: ['containment.dev'],
          resources: ['securityactions'],
          verbs: ['get', 'list', 'watch', 'create'],
        },
        { apiGroups: [''], resources: ['pods'], verbs: ['get'] },
      ],
    ],
    [AGENT_USER, [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }]],
  ];
  for (const [user, rules] of grants) {
    const name = user.split(':').pop() as string;
    await must(cp, 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', { metadata: { name }, rules });
    await must(cp, 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ kind: 'User', name: user }],
    });
  }
  await must(cp, 'POST', '/api/v1/namespaces', { metadata: { name: 'shop' } });
  const runtime = new k8s.KubeConfig();
  runtime.loadFromOptions(cp.kubeConfigFor(cp.issueClient(RUNTIME_USER)));
  return runtime;
}

async function createPod(cp: ControlPlane, node: string, image: string): Promise<string> {
  const pod = await must(cp, 'POST', '/api/v1/namespaces/shop/pods', {
    metadata: { name: 'web' },
    spec: { nodeName: node, containers: [{ name: 'app', image }] },
  });
  return (pod as k8s.V1Pod).metadata?.uid as string;
}

async function setup(): Promise<Env | string> {
  const binaries = findBinaries();
  if (!binaries) return binariesWhat;
  const podman = podmanPodAvailable();
  if (podman) return podman;
  if (!existsSync(NPM_RECORDS)) return `${NPM_RECORDS} (shared test data)`;
  const tmp = mkdtempSync(join(tmpdir(), 'containment-two-clusters-'));
  const [east, west, { server: scanner, adminToken, admin }] = await Promise.all([
    startControlPlane({ name: 'east', binaries }),
    startControlPlane({ name: 'west', binaries }),
    startTestScanner({
      dataDir: join(tmp, 'scanner'),
      records: NPM_RECORDS,
      cluster: null,
      triggerAllow: ['127.0.0.0/8'],
    }),
  ]);
  const clusters = {} as Record<ClusterName, Cluster>;
  for (const [name, cp] of [
    ['east', east],
    ['west', west],
  ] as const) {
    const runtime = await prepareCluster(cp);
    const { agentToken } = await admin.createCluster(name);
    const { token: policyToken } = await admin.createToken({
      name: `policies of ${name}`,
      role: 'policy',
      cluster: name,
      namespaces: ['shop'],
    });
    clusters[name] = { cp, runtime, agentToken, policyToken };
  }

  const credentials = (ns: string): NamespaceCredentials | undefined => {
    const cluster = CLUSTERS.find((c) => ns === `${c}-policies`);
    if (!cluster) return undefined;
    // No enforcer token in cluster mode: the runtime's ServiceAccount acts, the host limits namespaces.
    return { cluster, scannerToken: clusters[cluster].policyToken, enforcerToken: '', namespaces: ['shop'] };
  };
  const enforcementCalls: Record<string, number> = {};
  const toCluster = kubernetesEnforcement((c) =>
    c === 'east' || c === 'west' ? clusters[c].runtime : undefined,
  );
  const host = new PolicySdkHost({
    credentials,
    findings: httpFindings(scanner.url),
    enforcement: (creds): EnforcementClient => {
      enforcementCalls[creds.cluster] = (enforcementCalls[creds.cluster] ?? 0) + 1;
      return toCluster(creds);
    },
  });
  const functions = await runFunctions({
    host: '127.0.0.1',
    port: 0,
    dataDir: join(tmp, 'functions'),
    logger: pino({ level: 'warn' }),
    policyHost: host,
    rateLimit: false,
  });
  for (const cluster of CLUSTERS) {
    const ns = `${cluster}-policies`;
    const auth = functions.addNamespace(ns);
    const secret = randomBytes(32).toString('base64url');
    await installSecurityNotices(new WhiskClient({ apihost: functions.url, auth, namespace: ns }), secret);
    const put = async (path: string, body: unknown): Promise<void> => {
      const res = await fetch(`${functions.url}/api/v1/namespaces/${ns}/${path}?overwrite=true`, {
        method: 'PUT',
        headers: {
          authorization: `Basic ${Buffer.from(auth).toString('base64')}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify(body),
      });
      assert.ok(res.ok, `PUT ${path}: ${res.status} ${await res.text()}`);
    };
    await put('actions/isolate', { exec: { kind: 'typescript', code: POLICY } });
    await put('rules/notices-isolate', { trigger: `/${ns}/security-notices`, action: `/${ns}/isolate` });
    await admin.createTrigger({
      cluster,
      namespaces: '*',
      url: securityNoticesUrl(functions.url, ns),
      kind: 'cloudevents',
      secret,
      options: { everyScan: false },
    });
  }
  return {
    tmp,
    clusters,
    scanner,
    adminToken,
    functions,
    host,
    enforcementCalls,
    image: buildPodTestImage({ name: 'minimist', version: '1.2.5' }),
    containers: [],
    operators: [],
  };
}

function need(t: TestContext): Env | undefined {
  if (typeof env === 'string') {
    requireOrSkip(t, false, env);
    return undefined;
  }
  return env;
}

interface ActionItem {
  metadata: { name: string; labels?: Record<string, string> };
  spec: { target: { namespace: string; pod: string; uid?: string }; action: string; reason: string };
  status?: {
    phase: string;
    node?: string;
    message?: string;
    conditions?: { type: string; reason?: string }[];
  };
}

async function actionsIn(cp: ControlPlane): Promise<ActionItem[]> {
  for (;;) {
    // 429 while the new resource's storage initializes, right after the CRD is established.
    const r = await cp.request('GET', ACTIONS);
    if (r.status === 429) await new Promise((res) => setTimeout(res, 200));
    else {
      assert.equal(r.status, 200, r.text);
      return (r.json as { items: ActionItem[] }).items;
    }
  }
}

interface FindingsBody {
  workload: { cluster: string; node: string; container?: string };
  vulnerablePackages: { package: { name: string } }[];
  error?: { code: string };
}

async function scannerGet(
  e: Env,
  token: string,
  path: string,
): Promise<{ status: number; body: FindingsBody }> {
  const res = await fetch(`${e.scanner.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as FindingsBody };
}

describe('two clusters, one scanner, one policy runtime', () => {
  before(async () => {
    env = await setup();
  });
  after(async () => {
    if (typeof env === 'string') return;
    for (const op of env.operators) await op.stop();
    for (const c of env.containers) c.remove();
    env.image.remove();
    await env.functions.close();
    await env.scanner.close();
    await Promise.all(CLUSTERS.map((c) => (env as Env).clusters[c].cp.stop()));
    rmSync(env.tmp, { recursive: true, force: true });
  });

  test('each cluster’s reports, findings, events and actions stay with that cluster', async (t) => {
    const e = need(t);
    if (!e) return;
    const { east, west } = e.clusters;
    // east: a real pod container, found by the cluster agent.
    const eastUid = await createPod(east.cp, NODES.east, 'registry.example/east/web:1');
    const container = runPodContainer(e.image, eastUid);
    e.containers.push(container);
    await must(
      east.cp,
      'PATCH',
      '/api/v1/namespaces/shop/pods/web/status',
      {
        status: {
          phase: 'Running',
          containerStatuses: [
            {
              name: 'app',
              containerID: `cri-o://${container.id}`,
              image: 'registry.example/east/web:1',
              imageID: `registry.example/east/web@sha256:${'e'.repeat(64)}`,
              ready: true,
              restartCount: 0,
              state: { running: {} },
            },
          ],
        },
      },
      'application/merge-patch+json',
    );
    const agentKc = new k8s.KubeConfig();
    agentKc.loadFromOptions(east.cp.kubeConfigFor(east.cp.issueClient(AGENT_USER)));
    // Quiet: the operators warn while the new CRD's storage initializes.
    const logger = pino({ level: 'error' });
    const agent = new Agent({
      discovery: new KubernetesDiscovery({
        kubeConfig: agentKc,
        cluster: 'east',
        node: NODES.east,
        logger,
        pollIntervalMs: 300,
      }),
      sink: new ScannerClient({ server: e.scanner.url, token: east.agentToken }),
      logger,
      rescanIntervalMs: 60_000,
      driftCheckIntervalMs: 0,
    });
    await agent.start();
    t.after(() => agent.stop());
    // Each cluster's node operator (finding its pods' processes in this host's /proc).
    for (const cluster of CLUSTERS) {
      const admin = new k8s.KubeConfig();
      admin.loadFromOptions(e.clusters[cluster].cp.kubeConfig);
      const op = new Operator({
        kubeConfig: admin,
        node: NODES[cluster],
        logger,
        evidenceDir: join(e.tmp, 'evidence', cluster),
      });
      e.operators.push(op);
      await op.start();
    }

    // west: a pod of the same namespace and name; its node's agent report is posted.
    await createPod(west.cp, NODES.west, 'registry.example/west/web:2');
    const westReport = buildAgentReport({
      reportId: randomUUID(),
      workload: {
        cluster: 'west',
        namespace: 'shop',
        pod: 'web',
        container: 'app',
        node: NODES.west,
        image: 'registry.example/west/web:2',
      },
      scanTime: new Date().toISOString(),
      inventory: {
        packages: [
          {
            name: 'lodash',
            version: '4.17.15',
            ecosystem: 'npm',
            location: '/app/node_modules/lodash/package.json',
            extractor: 'npm',
          },
        ],
        insecureConfigurations: [],
      },
    });
    await new ScannerClient({ server: e.scanner.url, token: west.agentToken }).sendReport(westReport);
    // A west agent token cannot report for east.
    await assert.rejects(
      new ScannerClient({ server: e.scanner.url, token: west.agentToken }).sendReport({
        ...westReport,
        reportId: randomUUID(),
        workload: { ...westReport.workload, cluster: 'east' },
      }),
      (err: { status?: number }) => err.status === 403,
    );

    // Each trigger fires its own cluster's policy; each action lands in its own API server, and
    // that cluster's operator carries it out.
    const finished = async (cp: ControlPlane): Promise<boolean> =>
      (await actionsIn(cp)).some((a) => a.status?.phase === 'Succeeded' || a.status?.phase === 'Failed');
    assert.ok(
      await eventually(async () => (await finished(east.cp)) && (await finished(west.cp)), 400, 100),
      `both clusters' actions finish: ${JSON.stringify([await actionsIn(east.cp), await actionsIn(west.cp)])}`,
    );
    await new Promise((r) => setTimeout(r, 500)); // nothing more is on its way
    const [eastActions, westActions] = [await actionsIn(east.cp), await actionsIn(west.cp)];
    assert.equal(eastActions.length, 1, JSON.stringify(eastActions));
    assert.equal(westActions.length, 1, JSON.stringify(westActions));
    const [ea, wa] = [eastActions[0] as ActionItem, westActions[0] as ActionItem];
    assert.equal(ea.spec.reason, 'event of east with minimist');
    assert.equal(wa.spec.reason, 'event of west with lodash');
    assert.equal(ea.metadata.labels?.['containment.dev/node'], NODES.east);
    assert.equal(wa.metadata.labels?.['containment.dev/node'], NODES.west);
    assert.equal(ea.spec.target.uid, eastUid);
    assert.deepEqual(
      [ea.status?.phase, ea.status?.node],
      ['Succeeded', NODES.east],
      JSON.stringify(ea.status),
    );
    assert.deepEqual(
      [wa.status?.phase, wa.status?.node],
      ['Succeeded', NODES.west],
      JSON.stringify(wa.status),
    );
    assert.notEqual(wa.spec.target.uid, eastUid);
    // East's pod has a real process on this host (found through its kubepods cgroup): isolated
    // there too; west's pod has none here, which its operator says rather than failing.
    const nodeIsolation = (a: ActionItem): string | undefined =>
      a.status?.conditions?.find((c) => c.type === 'NodeIsolation')?.reason;
    assert.equal(nodeIsolation(ea), 'NftablesApplied', JSON.stringify(ea.status));
    assert.equal(nodeIsolation(wa), 'NoLocalProcess', JSON.stringify(wa.status));

    // Findings: the same pod name, each cluster's own packages and node.
    for (const [cluster, pkg, node] of [
      ['east', 'minimist', NODES.east],
      ['west', 'lodash', NODES.west],
    ] as const) {
      const { status, body } = await scannerGet(
        e,
        e.adminToken,
        `/v1/findings?cluster=${cluster}&namespace=shop&pod=web`,
      );
      assert.equal(status, 200);
      const names = new Set(body.vulnerablePackages.map((v) => v.package.name));
      assert.deepEqual([...names], [pkg], `${cluster} findings`);
      // One container: its own scan, with the identity its cluster's agent reported.
      assert.deepEqual(
        [body.workload.cluster, body.workload.node, body.workload.container],
        [cluster, node, 'app'],
      );
    }
  });

  test('an east policy token reads no west findings and an east policy cannot act in west', async (t) => {
    const e = need(t);
    if (!e) return;
    const { east, west } = e.clusters;
    const own = await scannerGet(e, east.policyToken, '/v1/findings?cluster=east&namespace=shop&pod=web');
    assert.equal(own.status, 200);
    const other = await scannerGet(e, east.policyToken, '/v1/findings?cluster=west&namespace=shop&pod=web');
    assert.equal(other.status, 403, JSON.stringify(other.body));
    assert.equal(other.body.error?.code, 'FORBIDDEN');

    const westBefore = (await actionsIn(west.cp)).length;
    const calls = { ...e.enforcementCalls };
    const context = { activationId: 'a'.repeat(32), annotations: {}, scope: { mode: 'namespace' as const } };
    // Outside the namespaces east's credentials allow: refused by the host, no client is even made.
    await assert.rejects(
      e.host.invokeSdk('east-policies', 'isolate', 'kubernetes.quarantine', ['kube-system/web'], context),
      { code: ErrorCodes.FORBIDDEN },
    );
    assert.deepEqual(e.enforcementCalls, calls, 'no enforcement client was asked for');
    // A pod that exists only in west: east's policy reaches east's API server only, where it is not.
    await must(west.cp, 'POST', '/api/v1/namespaces/shop/pods', {
      metadata: { name: 'only-west' },
      spec: { nodeName: NODES.west, containers: [{ name: 'app', image: 'registry.example/x:1' }] },
    });
    await assert.rejects(
      e.host.invokeSdk('east-policies', 'isolate', 'kubernetes.quarantine', ['shop/only-west'], context),
      {
        code: ErrorCodes.ACTION_INVALID,
        message: /in cluster east: target pod shop\/only-west does not exist/,
      },
    );
    assert.equal((await actionsIn(west.cp)).length, westBefore, 'west is untouched');
    assert.equal(e.enforcementCalls.west, calls.west);
    // A function namespace with no credentials acts nowhere.
    await assert.rejects(
      e.host.invokeSdk('guest', 'isolate', 'kubernetes.quarantine', ['shop/web'], context),
      { code: ErrorCodes.FORBIDDEN },
    );
  });
});
