/**
 * The Helm chart's node DaemonSet with runtime detection on, run by a real kubelet (no Podman
 * anywhere): a one-node cluster on this host (src/testing/k8s/node.ts: kube-apiserver, etcd,
 * controller-manager, scheduler, kube-proxy, kubelet, containerd), the chart rendered by the real
 * Helm and applied as it is — only the scanner's address is given through `node.agent.extraArgs`,
 * since no cluster DNS runs — an image of this checkout imported into containerd, and a real
 * scanner on the host. A pod's shell, exec'd through the API server like `kubectl exec`, must
 * become one `shell_in_container` detection of that pod (namespace, pod, container, node) seen
 * by the agent's eBPF sensor.
 *
 * Opt-in (several minutes: an image of a few hundred MB, a cluster starting on 2 cores):
 * `npm run test:kubelet` (CONTAINMENT_KUBELET_TEST=1). Once opted in, a missing part fails under
 * CI=true like any real component. The binaries: `node --import tsx scripts/k8s/build.ts --node`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import yaml from 'js-yaml';
import type { RuntimeDetection } from '../../src/runtime/contracts.js';
import { preflight } from '../../src/runtime/sensor/preflight.js';
import {
  agentImageMissing,
  buildAgentImage,
  writeSandboxImage,
  writeWorkloadImage,
} from '../../src/testing/k8s/agent-image.js';
import {
  binariesWhat,
  findBinaries,
  findHelm,
  findNodeBinaries,
  helmWhat,
  nodeBinariesWhat,
} from '../../src/testing/k8s/binaries.js';
import {
  NODE_ADDRESS,
  SANDBOX_IMAGE,
  nodePrerequisitesMissing,
  startTestCluster,
} from '../../src/testing/k8s/node.js';
import type { TestCluster } from '../../src/testing/k8s/node.js';
import { startTestScanner } from '../../src/testing/scanner.js';
import type { TestScanner } from '../../src/testing/scanner.js';
import { repoRoot, requireOrSkip } from '../../src/testing/shared-data.js';

const OPT_IN = 'CONTAINMENT_KUBELET_TEST';
const CLUSTER = 'kubelet-test';
const NS = 'containment-system';
const AGENT_IMAGE = { repository: 'localhost/containment', tag: 'kubelet-test' };
const WORKLOAD_IMAGE = 'localhost/containment-busybox:1';
const chartDir = join(repoRoot, 'deploy', 'helm', 'containment');

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
}

interface Env {
  cluster: TestCluster;
  scanner: TestScanner<string>;
  tmp: string;
}

let env: Env | string = 'not set up';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What is missing to run this test, or undefined. */
function missing(): string | undefined {
  if (!findBinaries()) return binariesWhat;
  if (!findNodeBinaries()) return nodeBinariesWhat;
  if (!findHelm()) return helmWhat;
  const node = nodePrerequisitesMissing();
  if (node) return node;
  const image = agentImageMissing();
  if (image) return image;
  const pf = preflight();
  return pf.mode === 'ebpf' ? undefined : `eBPF (${pf.reasons.join('; ')})`;
}

async function ok(cp: TestCluster['cp'], method: string, path: string, body?: unknown, contentType?: string) {
  const r = await cp.request(method, path, {
    body,
    timeoutMs: 30_000,
    ...(contentType ? { contentType } : {}),
  });
  assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${r.text}`);
  return r.json;
}

/** REST path of an object, from the server's discovery document of its group/version. */
async function resourcePath(cp: TestCluster['cp'], obj: K8sObject): Promise<string> {
  const base = obj.apiVersion.includes('/') ? `/apis/${obj.apiVersion}` : `/api/${obj.apiVersion}`;
  const { resources } = (await ok(cp, 'GET', base)) as {
    resources: { name: string; kind: string; namespaced: boolean }[];
  };
  const r = resources.find((x) => x.kind === obj.kind && !x.name.includes('/'));
  assert.ok(r, `the server serves ${obj.apiVersion} ${obj.kind}`);
  const ns = r.namespaced ? `/namespaces/${obj.metadata.namespace ?? NS}` : '';
  return `${base}${ns}/${r.name}/${obj.metadata.name}`;
}

/** `helm template` of the chart with runtime detection on; the node component's objects and the CRD. */
function renderChart(tmp: string, scannerUrl: string): K8sObject[] {
  const values = join(tmp, 'values.yaml');
  writeFileSync(
    values,
    yaml.dump({
      image: { ...AGENT_IMAGE, pullPolicy: 'Never' },
      cluster: CLUSTER,
      // The scanner runs on the host (no PostgreSQL in this cluster); the others are not under test.
      functions: { enabled: false },
      admission: { enabled: false },
      runtimeDetection: { enabled: true },
      // No cluster DNS: the scanner by address (the agent takes the last --server).
      node: { agent: { extraArgs: [`--server=${scannerUrl}`] } },
    }),
  );
  const home = join(tmp, 'helm');
  const r = spawnSync(
    findHelm() as string,
    ['template', 'containment', chartDir, '--namespace', NS, '--include-crds', '-f', values],
    {
      encoding: 'utf8',
      env: {
        ...process.env,
        HELM_CACHE_HOME: join(home, 'cache'),
        HELM_CONFIG_HOME: join(home, 'config'),
        HELM_DATA_HOME: join(home, 'data'),
      },
    },
  );
  assert.equal(r.status, 0, `helm template: ${r.stderr}`);
  const objects = yaml.loadAll(r.stdout).filter((o): o is K8sObject => o !== null && typeof o === 'object');
  // The scanner Deployment needs PostgreSQL; its Service and NetworkPolicies are harmless but unused.
  return objects.filter((o) => o.kind !== 'Deployment');
}

async function setup(): Promise<Env | string> {
  if (process.env[OPT_IN] !== '1') return 'opt-in';
  const what = missing();
  if (what) return what;
  const tmp = mkdtempSync(join(tmpdir(), 'containment-kubelet-test-'));
  const images = ['pause', 'workload', 'agent'].map((n) => join(tmp, `${n}.tar`));
  writeSandboxImage(SANDBOX_IMAGE, images[0] as string);
  writeWorkloadImage(WORKLOAD_IMAGE, images[1] as string);
  await buildAgentImage(`${AGENT_IMAGE.repository}:${AGENT_IMAGE.tag}`, images[2] as string);
  const cluster = await startTestCluster({
    binaries: findNodeBinaries() as NonNullable<ReturnType<typeof findNodeBinaries>>,
    images,
  });
  for (const image of images) rmSync(image);
  const scanner = await startTestScanner({ cluster: CLUSTER, host: NODE_ADDRESS });
  return { cluster, scanner, tmp };
}

async function podOf(cp: TestCluster['cp'], ns: string, selector: string): Promise<k8s.V1Pod | undefined> {
  const list = (await ok(
    cp,
    'GET',
    `/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent(selector)}`,
  )) as {
    items: k8s.V1Pod[];
  };
  return list.items[0];
}

async function waitRunning(e: Env, ns: string, selector: string, timeoutMs: number): Promise<k8s.V1Pod> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pod = await podOf(e.cluster.cp, ns, selector);
    const statuses = pod?.status?.containerStatuses ?? [];
    if (pod?.status?.phase === 'Running' && statuses.length > 0 && statuses.every((s) => s.state?.running))
      return pod;
    if (Date.now() > deadline)
      throw new Error(
        `no running pod ${ns}/${selector}: ${JSON.stringify(pod?.status)}\n${e.cluster.logTails()}`,
      );
    await sleep(1000);
  }
}

async function containerLog(e: Env, ns: string, pod: string, container: string): Promise<string> {
  const r = await e.cluster.cp.request(
    'GET',
    `/api/v1/namespaces/${ns}/pods/${pod}/log?container=${container}`,
    {
      timeoutMs: 30_000,
    },
  );
  // 400 while the container is not running yet (waiting, restarting); anything else is a failure.
  if (r.status === 400) return '';
  assert.equal(r.status, 200, `GET the log of ${ns}/${pod}/${container}: ${r.status} ${r.text}`);
  return r.text;
}

/** `kubectl exec` through the API server (WebSocket → kubelet → containerd); resolves with the exit status. */
async function exec(e: Env, ns: string, pod: string, container: string, command: string[]): Promise<string> {
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions(e.cluster.cp.kubeConfig);
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve, reject) => {
    new k8s.Exec(kc)
      .exec(ns, pod, container, command, out, out, null, false, (status) => {
        resolve(`${status.status ?? 'unknown'}: ${Buffer.concat(chunks).toString('utf8')}`);
      })
      .catch(reject);
  });
}

describe('the chart’s node DaemonSet on a real kubelet, runtime detection on (opt-in)', () => {
  // Building the image (and dist/ when stale) and starting the cluster take minutes on 2 busy cores.
  before(
    async () => {
      env = await setup();
    },
    { timeout: 1_200_000 },
  );
  after(async () => {
    if (typeof env === 'string') return;
    await env.cluster.stop();
    await env.scanner.close();
    rmSync(env.tmp, { recursive: true, force: true });
  });

  it(
    'a shell exec’d in a pod becomes one shell_in_container detection of that pod, seen by the agent’s eBPF sensor',
    { timeout: 900_000 },
    async (t) => {
      if (env === 'opt-in') {
        t.skip(`opt-in: set ${OPT_IN}=1 (npm run test:kubelet)`);
        return;
      }
      if (!requireOrSkip(t, typeof env !== 'string', String(env))) return;
      const e = env as Env;
      const { cp } = e.cluster;

      // The chart, as rendered, with the agent's token in the Secret it names.
      await ok(cp, 'POST', '/api/v1/namespaces', { metadata: { name: NS } });
      await ok(cp, 'POST', `/api/v1/namespaces/${NS}/secrets`, {
        metadata: { name: 'containment-agent-token' },
        stringData: { token: e.scanner.agentToken },
      });
      const objects = renderChart(e.tmp, e.scanner.url);
      for (const o of objects) {
        await ok(
          cp,
          'PATCH',
          `${await resourcePath(cp, o)}?fieldManager=containment-kubelet-test&force=true`,
          o,
          'application/apply-patch+yaml',
        );
      }
      const ds = objects.find((o) => o.kind === 'DaemonSet') as K8sObject & {
        spec: {
          template: {
            spec: { containers: { name: string; securityContext?: { capabilities?: { add?: string[] } } }[] };
          };
        };
      };
      assert.deepEqual(
        ds.spec.template.spec.containers
          .find((c) => c.name === 'agent')
          ?.securityContext?.capabilities?.add?.sort(),
        ['BPF', 'DAC_READ_SEARCH', 'PERFMON', 'SYS_PTRACE'],
        'the chart rendered the runtime-detection DaemonSet',
      );

      // The DaemonSet's pod, created by the DaemonSet controller, bound by the scheduler, run by the kubelet.
      const agentPod = await waitRunning(e, NS, 'app.kubernetes.io/component=node', 300_000);
      const agentName = agentPod.metadata?.name as string;
      let log = '';
      for (let i = 0; i < 240 && !/runtime sensor started/.test(log); i++) {
        await sleep(1000);
        log = await containerLog(e, NS, agentName, 'agent');
      }
      const started = log.split('\n').find((l) => l.includes('runtime sensor started')) ?? '';
      assert.match(
        started,
        /"mode":"ebpf"/,
        `the agent's sensor runs eBPF probes in the pod:\n${log.slice(-3000)}`,
      );

      // A workload whose entrypoint is not a shell, on the same node.
      await ok(cp, 'POST', '/api/v1/namespaces', { metadata: { name: 'shop' } });
      await ok(cp, 'POST', '/api/v1/namespaces/shop/serviceaccounts', {
        metadata: { name: 'default' },
      }).catch(() => undefined);
      await ok(cp, 'POST', '/api/v1/namespaces/shop/pods', {
        metadata: { name: 'term', labels: { app: 'term' } },
        spec: {
          containers: [{ name: 'app', image: WORKLOAD_IMAGE, imagePullPolicy: 'Never' }],
          automountServiceAccountToken: false,
          terminationGracePeriodSeconds: 0,
        },
      });
      const term = await waitRunning(e, 'shop', 'app=term', 180_000);
      const containerId = term.status?.containerStatuses?.[0]?.containerID?.replace(/^containerd:\/\//, '');
      assert.match(containerId ?? '', /^[0-9a-f]{64}$/);
      // The agent knows the pod once its watch delivered it; a moment for that.
      await sleep(3000);

      assert.match(await exec(e, 'shop', 'term', 'app', ['sh', '-c', 'true']), /^Success/);

      const detections = async (): Promise<RuntimeDetection[]> =>
        e.scanner.detectionsOf('term', CLUSTER, 'shop');
      let found: RuntimeDetection[] = [];
      for (let i = 0; i < 120 && found.length === 0; i++) {
        await sleep(500);
        found = await detections();
      }
      assert.equal(
        found.length,
        1,
        `one detection for shop/term:\n${(await containerLog(e, NS, agentName, 'agent')).slice(-3000)}`,
      );
      const d = found[0] as RuntimeDetection;
      assert.deepEqual(
        [d.ruleId, d.source, d.process.name, d.count],
        ['shell_in_container', 'ebpf', 'sh', 1],
      );
      assert.deepEqual(
        {
          cluster: d.workload.cluster,
          namespace: d.workload.namespace,
          pod: d.workload.pod,
          container: d.workload.container,
          node: d.workload.node,
          containerId: d.workload.containerId,
        },
        {
          cluster: CLUSTER,
          namespace: 'shop',
          pod: 'term',
          container: 'app',
          node: e.cluster.nodeName,
          containerId,
        },
      );
      // Nothing else in the cluster produced a detection (the agent's own pods and the host are not workloads).
      const all = await fetch(`${e.scanner.url}/v1/detections?cluster=${CLUSTER}&limit=100`, {
        headers: { authorization: `Bearer ${e.scanner.adminToken}` },
      });
      const every = ((await all.json()) as { detections: RuntimeDetection[] }).detections;
      assert.deepEqual(
        every.map((x) => `${x.workload.namespace}/${x.workload.pod} ${x.ruleId}`),
        ['shop/term shell_in_container'],
      );
    },
  );
});
