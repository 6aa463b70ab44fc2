/**
 * The Helm chart (deploy/helm/containment) rendered by the real Helm (built from the Go module proxy)
 * and checked against a real kube-apiserver: lint, what it renders for default and non-default values,
 * the values schema refusing bad input, every rendered object accepted by server-side apply (dry run),
 * and the ServiceAccounts' RBAC exercised by impersonation — every listed verb works, nothing more is
 * granted (SubjectAccessReview over a verb × resource matrix, SelfSubjectRulesReview per account).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import yaml from 'js-yaml';
import { binariesWhat, findBinaries, findHelm, helmWhat } from '../../src/testing/k8s/binaries.js';
import { startControlPlane } from '../../src/testing/k8s/control-plane.js';
import type { ApiResponse, ControlPlane } from '../../src/testing/k8s/control-plane.js';
import { repoRoot, requireOrSkip } from '../../src/testing/shared-data.js';
import { containment } from '../../src/testing/tools.js';

const chartDir = join(repoRoot, 'deploy', 'helm', 'containment');
const crdFile = join(chartDir, 'crds', 'securityactions.containment.dev.yaml');
const NS = 'containment-system';
const WORKLOAD_NS = 'workload';
const RELEASE = 'containment';

const helmBin = findHelm();
const binaries = findBinaries();

// ---------------------------------------------------------------------------------------------------
// Helm

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

// Helm keeps caches and repositories under $HOME by default: give it a throwaway home.
const helmHome = mkdtempSync(join(tmpdir(), 'containment-helm-test-'));
const helmEnv = {
  ...process.env,
  HELM_CACHE_HOME: join(helmHome, 'cache'),
  HELM_CONFIG_HOME: join(helmHome, 'config'),
  HELM_DATA_HOME: join(helmHome, 'data'),
};
let valuesFiles = 0;

function helm(args: string[]): { status: number | null; stdout: string; stderr: string } {
  assert.ok(helmBin, 'helm is built');
  const r = spawnSync(helmBin, args, { env: helmEnv, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function valuesFile(values: unknown): string {
  const file = join(helmHome, `values-${++valuesFiles}.yaml`);
  writeFileSync(file, yaml.dump(values));
  return file;
}

/** `helm template` → the rendered objects; throws with helm's stderr when it fails. */
function render(values: unknown = {}, namespace = NS): K8sObject[] {
  const r = helm(['template', RELEASE, chartDir, '--namespace', namespace, '-f', valuesFile(values)]);
  if (r.status !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  return yaml.loadAll(r.stdout).filter((o): o is K8sObject => o !== null && typeof o === 'object');
}

/** `helm template` that must fail; returns stderr. */
function renderFails(values: unknown): string {
  const r = helm(['template', RELEASE, chartDir, '--namespace', NS, '-f', valuesFile(values)]);
  assert.notEqual(r.status, 0, `expected helm to refuse ${JSON.stringify(values)}`);
  return r.stderr;
}

const ids = (objects: K8sObject[]): string[] => objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();

function find<T = K8sObject>(objects: K8sObject[], kind: string, name: string): T {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  assert.ok(found, `${kind}/${name} is rendered`);
  return found as T;
}

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: {
    name: string;
    value?: string;
    valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } };
  }[];
  securityContext?: {
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    runAsNonRoot?: boolean;
    capabilities?: { add?: string[]; drop?: string[] };
    seccompProfile?: { type: string };
  };
  resources?: { limits?: { cpu?: string; memory?: string }; requests?: { cpu?: string; memory?: string } };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}

interface PodSpec {
  serviceAccountName: string;
  automountServiceAccountToken?: boolean;
  hostPID?: boolean;
  hostNetwork?: boolean;
  hostIPC?: boolean;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type: string } };
  containers: Container[];
  volumes?: {
    name: string;
    hostPath?: { path: string; type?: string };
    secret?: { secretName: string };
    persistentVolumeClaim?: { claimName: string };
  }[];
}

interface Workload extends K8sObject {
  spec: {
    replicas?: number;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
}

interface Webhook {
  name: string;
  failurePolicy: string;
  sideEffects: string;
  admissionReviewVersions: string[];
  clientConfig: {
    service: { name: string; namespace: string; path: string; port: number };
    caBundle: string;
  };
  namespaceSelector: { matchExpressions: { key: string; operator: string; values: string[] }[] };
  rules: { apiGroups: string[]; apiVersions: string[]; resources: string[]; operations: string[] }[];
}

const workloads = (objects: K8sObject[]): Workload[] =>
  objects.filter((o): o is Workload => ['Deployment', 'DaemonSet'].includes(o.kind));

function container(w: Workload, name: string): Container {
  const c = w.spec.template.spec.containers.find((x) => x.name === name);
  assert.ok(c, `${w.metadata.name} has a container ${name}`);
  return c;
}

function env(c: Container, name: string): NonNullable<Container['env']>[number] | undefined {
  return c.env?.find((e) => e.name === name);
}

// ---------------------------------------------------------------------------------------------------
// The API server, as the admin or impersonating a ServiceAccount

type Resp = ApiResponse;

const sa = (name: string, namespace = NS): string => `system:serviceaccount:${namespace}:${name}`;
const SA = {
  operator: sa(`${RELEASE}-operator`),
  functions: sa(`${RELEASE}-functions`),
  scanner: sa(`${RELEASE}-scanner`),
  admission: sa(`${RELEASE}-admission`),
  /** Bound to nothing: what every authenticated ServiceAccount gets anyway. */
  unbound: sa('unbound'),
};

let cp: ControlPlane | undefined;
const agent = new https.Agent({ keepAlive: true, maxSockets: 8 });

function api(
  method: string,
  path: string,
  options: { body?: unknown; contentType?: string; as?: string } = {},
): Promise<Resp> {
  assert.ok(cp, 'control plane started');
  return cp.request(method, path, {
    ...(options.body === undefined ? {} : { body: options.body }),
    ...(options.contentType === undefined ? {} : { contentType: options.contentType }),
    ...(options.as === undefined ? {} : { impersonate: options.as }),
    agent,
    timeoutMs: 30_000,
  });
}

async function ok(method: string, path: string, options: Parameters<typeof api>[2] = {}): Promise<Resp> {
  const r = await api(method, path, options);
  assert.ok(
    r.status >= 200 && r.status < 300,
    `${options.as ?? 'admin'} ${method} ${path}: ${r.status} ${r.text}`,
  );
  return r;
}

async function forbidden(method: string, path: string, as: string, body?: unknown, contentType?: string) {
  const r = await api(method, path, { as, body, contentType });
  assert.equal(r.status, 403, `${as} ${method} ${path} must be forbidden, got ${r.status} ${r.text}`);
}

/** REST path of an object, from the server's discovery document of its group/version. */
const discovery = new Map<string, { name: string; kind: string; namespaced: boolean }[]>();
async function resourcePath(obj: K8sObject): Promise<string> {
  const base = obj.apiVersion.includes('/') ? `/apis/${obj.apiVersion}` : `/api/${obj.apiVersion}`;
  let resources = discovery.get(base);
  if (!resources) {
    resources = (
      (await ok('GET', base)).json as { resources: { name: string; kind: string; namespaced: boolean }[] }
    ).resources;
    discovery.set(base, resources);
  }
  const r = resources.find((x) => x.kind === obj.kind && !x.name.includes('/'));
  assert.ok(r, `the server serves ${obj.apiVersion} ${obj.kind}`);
  const ns = r.namespaced ? `/namespaces/${obj.metadata.namespace ?? NS}` : '';
  return `${base}${ns}/${r.name}/${obj.metadata.name}`;
}

/** Server-side apply (the way `kubectl apply --server-side` does it), optionally as a dry run. */
async function serverSideApply(obj: K8sObject, dryRun: boolean): Promise<Resp> {
  const query = `fieldManager=containment-helm-test&force=true${dryRun ? '&dryRun=All' : ''}`;
  return api('PATCH', `${await resourcePath(obj)}?${query}`, {
    body: obj,
    contentType: 'application/apply-patch+yaml',
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function installCrd(): Promise<void> {
  const crd = yaml.load(readFileSync(crdFile, 'utf8')) as K8sObject;
  const created = await serverSideApply(crd, false);
  assert.ok([200, 201].includes(created.status), created.text);
  for (let i = 0; i < 100; i++) {
    const r = await ok('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`);
    const conditions = (r.json as { status?: { conditions?: { type: string; status: string }[] } }).status
      ?.conditions;
    if (conditions?.some((c) => c.type === 'Established' && c.status === 'True')) {
      // Discovery of the new group lags the Established condition a little.
      for (let j = 0; j < 100; j++) {
        if ((await api('GET', '/apis/containment.dev/v1alpha1')).status === 200) return;
        await sleep(100);
      }
    }
    await sleep(100);
  }
  throw new Error('the SecurityAction CRD never became Established');
}

// ---------------------------------------------------------------------------------------------------
// The RBAC contract (common-k8s shared contract): exactly these, nothing more.

type Rule = [group: string, resource: string, verbs: string[]];
const EXPECTED: Record<keyof typeof SA, Rule[]> = {
  operator: [
    ['', 'pods', ['get', 'list', 'watch', 'delete', 'patch']],
    ['networking.k8s.io', 'networkpolicies', ['get', 'create', 'delete']],
    ['containment.dev', 'securityactions', ['get', 'list', 'watch', 'update', 'patch']],
    ['containment.dev', 'securityactions/status', ['get', 'update', 'patch']],
    ['', 'events', ['create', 'patch', 'list']],
    // The agent container of the same DaemonSet.
    ['', 'nodes', ['get']],
  ],
  functions: [
    ['containment.dev', 'securityactions', ['get', 'list', 'watch', 'create']],
    // patch: the SDK's kubernetes.label (a merge patch of the pod's labels).
    ['', 'pods', ['get', 'patch']],
  ],
  scanner: [],
  admission: [],
  unbound: [],
};

const triples = (rules: Rule[]): Set<string> =>
  new Set(rules.flatMap(([g, r, verbs]) => verbs.map((v) => `${g}|${r}|${v}`)));

const CLUSTER_SCOPED = new Set([
  'nodes',
  'namespaces',
  'clusterroles',
  'clusterrolebindings',
  'customresourcedefinitions',
  'validatingwebhookconfigurations',
  'persistentvolumes',
]);
/** What the matrix asks about: every resource the chart's accounts touch and the sensitive rest. */
const UNIVERSE: [string, string][] = [
  ['', 'pods'],
  ['', 'pods/exec'],
  ['', 'pods/attach'],
  ['', 'pods/portforward'],
  ['', 'pods/log'],
  ['', 'pods/eviction'],
  ['', 'pods/status'],
  ['', 'pods/ephemeralcontainers'],
  ['', 'secrets'],
  ['', 'configmaps'],
  ['', 'services'],
  ['', 'serviceaccounts'],
  ['', 'serviceaccounts/token'],
  ['', 'persistentvolumeclaims'],
  ['', 'persistentvolumes'],
  ['', 'events'],
  ['', 'nodes'],
  ['', 'nodes/proxy'],
  ['', 'nodes/status'],
  ['', 'namespaces'],
  ['apps', 'deployments'],
  ['apps', 'daemonsets'],
  ['batch', 'jobs'],
  ['events.k8s.io', 'events'],
  ['networking.k8s.io', 'networkpolicies'],
  ['containment.dev', 'securityactions'],
  ['containment.dev', 'securityactions/status'],
  ['rbac.authorization.k8s.io', 'roles'],
  ['rbac.authorization.k8s.io', 'rolebindings'],
  ['rbac.authorization.k8s.io', 'clusterroles'],
  ['rbac.authorization.k8s.io', 'clusterrolebindings'],
  ['apiextensions.k8s.io', 'customresourcedefinitions'],
  ['admissionregistration.k8s.io', 'validatingwebhookconfigurations'],
];
const VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'];

async function inBatches<T, R>(items: T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size)
    out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

// ---------------------------------------------------------------------------------------------------

function needsHelm(t: TestContext): boolean {
  return requireOrSkip(t, helmBin !== undefined, helmWhat);
}

function needsCluster(t: TestContext): boolean {
  return needsHelm(t) && requireOrSkip(t, binaries !== undefined, binariesWhat) && cp !== undefined;
}

function needsCrd(t: TestContext): boolean {
  return (
    needsCluster(t) &&
    requireOrSkip(
      t,
      existsSync(crdFile),
      `the SecurityAction CRD manifest (${crdFile}, written with the operator)`,
    )
  );
}

after(() => {
  agent.destroy();
  rmSync(helmHome, { recursive: true, force: true });
});

describe('Helm chart: rendering with the real helm', () => {
  it('passes helm lint, strict, with default and non-default values', (t) => {
    if (!needsHelm(t)) return;
    for (const extra of [[], ['-f', valuesFile({ admission: { mode: 'warn', failurePolicy: 'Ignore' } })]]) {
      const r = helm(['lint', '--strict', chartDir, '--namespace', NS, ...extra]);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  it('renders every component with the contract names, the image and hardened pods by default', (t) => {
    if (!needsHelm(t)) return;
    const objects = render();
    const f = `${RELEASE}`;
    assert.deepEqual(
      ids(objects),
      [
        `ClusterRole/${f}-agent`,
        `ClusterRole/${f}-functions`,
        `ClusterRole/${f}-operator`,
        `ClusterRoleBinding/${f}-agent`,
        `ClusterRoleBinding/${f}-functions`,
        `ClusterRoleBinding/${f}-operator`,
        `DaemonSet/${f}-node`,
        `NetworkPolicy/${f}-admission`,
        `NetworkPolicy/${f}-functions`,
        `NetworkPolicy/${f}-node`,
        `NetworkPolicy/${f}-scanner`,
        `Deployment/${f}-admission`,
        `Deployment/${f}-functions`,
        `Deployment/${f}-scanner`,
        `Secret/${f}-admission-tls`,
        `Service/${f}-admission`,
        `Service/${f}-functions`,
        `Service/${f}-scanner`,
        `ServiceAccount/${f}-admission`,
        `ServiceAccount/${f}-functions`,
        `ServiceAccount/${f}-operator`,
        `ServiceAccount/${f}-scanner`,
        `ValidatingWebhookConfiguration/${f}-admission`,
      ].sort(),
    );
    for (const o of objects.filter((x) => !x.kind.startsWith('Cluster') && !x.kind.startsWith('Validating')))
      assert.equal(o.metadata.namespace, NS, `${o.kind}/${o.metadata.name} is in the release namespace`);

    // The scanner: `containment server`, PostgreSQL URL from the Secret through the environment only.
    const scanner = find<Workload>(objects, 'Deployment', `${f}-scanner`);
    assert.equal(scanner.spec.replicas, 2);
    const sc = container(scanner, 'scanner');
    assert.deepEqual(sc.command, ['containment']);
    assert.equal(sc.args?.[0], 'server');
    assert.deepEqual(env(sc, 'CONTAINMENT_DATABASE')?.valueFrom?.secretKeyRef, {
      name: 'containment-database',
      key: 'url',
    });
    assert.ok(!sc.args?.some((a) => a.includes('postgres')), 'no database URL in the arguments');
    assert.equal(scanner.spec.template.spec.automountServiceAccountToken, false);

    const functions = find<Workload>(objects, 'Deployment', `${f}-functions`);
    assert.equal(container(functions, 'functions').args?.[0], 'functions');
    assert.ok(!container(functions, 'functions').args?.some((a) => a.startsWith('--enforcement')));
    assert.equal(functions.spec.template.spec.serviceAccountName, `${f}-functions`);

    // The node DaemonSet: agent + operator, host PIDs, the capabilities nsenter and nft need, nothing else.
    const node = find<Workload>(objects, 'DaemonSet', `${f}-node`);
    const ps = node.spec.template.spec;
    assert.equal(ps.hostPID, true);
    assert.equal(ps.hostNetwork, false);
    assert.equal(ps.hostIPC, false);
    assert.equal(ps.serviceAccountName, `${f}-operator`);
    const agentC = container(node, 'agent');
    const operatorC = container(node, 'operator');
    assert.deepEqual(agentC.args?.slice(0, 2), ['agent', '--kubernetes']);
    assert.ok(agentC.args?.includes(`--server=http://${f}-scanner.${NS}.svc:8080`));
    assert.deepEqual(env(agentC, 'CONTAINMENT_TOKEN')?.valueFrom?.secretKeyRef, {
      name: 'containment-agent-token',
      key: 'token',
    });
    assert.equal(operatorC.args?.[0], 'operator');
    assert.equal(env(operatorC, 'NODE_OPTIONS')?.value, '--max-old-space-size=128');
    for (const c of [agentC, operatorC]) {
      assert.equal(env(c, 'NODE_NAME')?.valueFrom?.fieldRef?.fieldPath, 'spec.nodeName', c.name);
      assert.equal(c.securityContext?.privileged, false, c.name);
      assert.equal(c.securityContext?.allowPrivilegeEscalation, false, c.name);
      assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], c.name);
      const proc = c.volumeMounts?.find((m) => m.name === 'host-proc');
      assert.equal(proc?.readOnly, true, `${c.name} mounts /proc read-only`);
    }
    assert.deepEqual([...(operatorC.securityContext?.capabilities?.add ?? [])].sort(), [
      'DAC_READ_SEARCH',
      'KILL',
      'NET_ADMIN',
      'SYS_ADMIN',
      'SYS_PTRACE',
    ]);
    assert.deepEqual([...(agentC.securityContext?.capabilities?.add ?? [])].sort(), [
      'DAC_READ_SEARCH',
      'SYS_PTRACE',
    ]);
    const hostPaths = Object.fromEntries(
      (ps.volumes ?? []).filter((v) => v.hostPath).map((v) => [v.name, v.hostPath?.path]),
    );
    assert.deepEqual(hostPaths, {
      'host-proc': '/proc',
      evidence: '/var/lib/containment/evidence',
      'pod-logs': '/var/log/pods',
    });
    assert.ok(operatorC.volumeMounts?.some((m) => m.name === 'evidence' && !m.readOnly));
    // Snapshot bundles copy the pod's logs: the kubelet's log directory, read-only, operator only.
    assert.deepEqual(
      operatorC.volumeMounts?.find((m) => m.name === 'pod-logs'),
      { name: 'pod-logs', mountPath: '/var/log/pods', readOnly: true },
    );
    assert.ok(operatorC.args?.includes('--pod-logs-dir=/var/log/pods'));
    assert.ok(!agentC.volumeMounts?.some((m) => m.name === 'pod-logs'), 'only the operator reads pod logs');
    assert.ok(!agentC.volumeMounts?.some((m) => m.name === 'evidence'), 'only the operator writes evidence');

    // Every workload: read-only root, seccomp, limits; all but the node DaemonSet non-root, no capability.
    for (const w of workloads(objects)) {
      const spec = w.spec.template.spec;
      assert.equal(spec.securityContext?.seccompProfile?.type, 'RuntimeDefault', w.metadata.name);
      for (const c of spec.containers) {
        const where = `${w.metadata.name}/${c.name}`;
        assert.equal(c.image, `ghcr.io/containment-dev/containment:0.1.0`, where);
        assert.equal(c.securityContext?.readOnlyRootFilesystem, true, where);
        assert.equal(c.securityContext?.allowPrivilegeEscalation, false, where);
        assert.equal(c.securityContext?.seccompProfile?.type, 'RuntimeDefault', where);
        assert.ok(c.resources?.limits?.cpu && c.resources.limits.memory, `${where} has cpu+memory limits`);
        if (w.kind === 'DaemonSet') continue;
        assert.equal(c.securityContext?.runAsNonRoot, true, where);
        assert.equal(c.securityContext?.capabilities?.add, undefined, where);
        assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], where);
      }
      if (w.kind === 'DaemonSet') continue;
      assert.equal(spec.securityContext?.runAsNonRoot, true, w.metadata.name);
      assert.ok((spec.securityContext?.runAsUser ?? 0) > 0, w.metadata.name);
      assert.ok(!spec.hostPID && !spec.hostNetwork && !spec.hostIPC, w.metadata.name);
      assert.ok(!(spec.volumes ?? []).some((v) => v.hostPath), `${w.metadata.name} mounts no host path`);
      // Selector ⊂ pod labels, and the Service of the same name selects these pods.
      for (const [k, v] of Object.entries(w.spec.selector.matchLabels))
        assert.equal(w.spec.template.metadata.labels[k], v, w.metadata.name);
      const svc = find<K8sObject & { spec: { selector: Record<string, string> } }>(
        objects,
        'Service',
        w.metadata.name,
      );
      assert.deepEqual(svc.spec.selector, w.spec.selector.matchLabels);
    }

    // NetworkPolicies: each listening component admits traffic on its own port only; node pods none.
    type Policy = K8sObject & {
      spec: {
        podSelector: { matchLabels: Record<string, string> };
        policyTypes: string[];
        ingress?: { ports: { port: number }[] }[];
      };
    };
    for (const w of workloads(objects)) {
      const policy = find<Policy>(objects, 'NetworkPolicy', w.metadata.name);
      assert.deepEqual(policy.spec.podSelector.matchLabels, w.spec.selector.matchLabels);
      assert.deepEqual(policy.spec.policyTypes, ['Ingress']);
      const ports = (policy.spec.ingress ?? []).flatMap((r) => r.ports.map((p) => p.port));
      const listening = w.spec.template.spec.containers.flatMap(
        (c) =>
          (c as Container & { ports?: { containerPort: number }[] }).ports?.map((p) => p.containerPort) ?? [],
      );
      assert.deepEqual(ports, listening, `${w.metadata.name}: ingress only to its listening port`);
    }
    assert.deepEqual(find<Policy>(objects, 'NetworkPolicy', `${f}-node`).spec.ingress, undefined);
  });

  it('registers the admission webhook for pods and pod-owning workloads, system namespaces excluded', (t) => {
    if (!needsHelm(t)) return;
    const objects = render();
    const vwc = find<K8sObject & { webhooks: Webhook[] }>(
      objects,
      'ValidatingWebhookConfiguration',
      `${RELEASE}-admission`,
    );
    assert.equal(vwc.webhooks.length, 1);
    const hook = vwc.webhooks[0]!;
    assert.equal(hook.failurePolicy, 'Fail');
    assert.equal(hook.sideEffects, 'None');
    assert.deepEqual(hook.admissionReviewVersions, ['v1']);
    assert.deepEqual(hook.clientConfig.service, {
      name: `${RELEASE}-admission`,
      namespace: NS,
      path: '/validate',
      port: 443,
    });
    const excluded = hook.namespaceSelector.matchExpressions.find(
      (e) => e.key === 'kubernetes.io/metadata.name' && e.operator === 'NotIn',
    );
    assert.deepEqual(excluded?.values.sort(), [
      'containment-system',
      'kube-node-lease',
      'kube-public',
      'kube-system',
    ]);
    const covered = new Set(
      hook.rules.flatMap((r) =>
        r.resources.flatMap((res) =>
          r.apiGroups.map((g) => `${g || 'core'}/${res}:${r.operations.join(',')}`),
        ),
      ),
    );
    for (const res of [
      'core/pods',
      'apps/deployments',
      'apps/replicasets',
      'apps/statefulsets',
      'apps/daemonsets',
      'batch/jobs',
      'batch/cronjobs',
    ])
      assert.ok(covered.has(`${res}:CREATE,UPDATE`), `${res} is gated on create and update`);
    const args =
      container(find<Workload>(objects, 'Deployment', `${RELEASE}-admission`), 'admission').args ?? [];
    assert.ok(args.includes('--mode=deny'), args.join(' '));
    // Without a scanner token the gate cannot ask the scanner (the CLI refuses --server alone).
    assert.ok(!args.some((a) => a.startsWith('--server')), args.join(' '));

    // The generated serving certificate: signed by the caBundle, valid for the Service's DNS name, with its key.
    const secret = find<K8sObject & { data: Record<string, string> }>(
      objects,
      'Secret',
      `${RELEASE}-admission-tls`,
    );
    const ca = new X509Certificate(Buffer.from(hook.clientConfig.caBundle, 'base64'));
    const cert = new X509Certificate(Buffer.from(secret.data['tls.crt']!, 'base64'));
    assert.ok(cert.verify(ca.publicKey), 'the serving certificate is signed by the webhook caBundle');
    assert.equal(cert.checkHost(`${RELEASE}-admission.${NS}.svc`), `${RELEASE}-admission.${NS}.svc`);
    assert.ok(cert.checkPrivateKey(createPrivateKey(Buffer.from(secret.data['tls.key']!, 'base64'))));
    assert.equal(Buffer.from(secret.data['ca.crt']!, 'base64').toString(), ca.toString());
  });

  it('follows non-default values: warn mode, Ignore, digest, replicas, another namespace, provided TLS', (t) => {
    if (!needsHelm(t)) return;
    const digest = `sha256:${'ab'.repeat(32)}`;
    const caBundle = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString(
      'base64',
    );
    const objects = render(
      {
        image: { repository: 'registry.example:5000/sec/containment', tag: '0.1.0-rc1', digest },
        cluster: 'prod-east',
        scanner: { replicas: 5, database: { existingSecret: 'pg', key: 'dsn' } },
        functions: {
          persistence: { existingClaim: 'functions-data' },
          sdkConfig: { existingSecret: 'policy-sdk', key: 'sdk.yaml' },
        },
        node: { operator: { writableLayerHostPaths: ['/var/lib/containerd'] } },
        admission: {
          mode: 'warn',
          failurePolicy: 'Ignore',
          level: 'restricted',
          denyUnknownImages: true,
          allowedRegistries: ['registry.example:5000', 'ghcr.io'],
          excludedNamespaces: ['monitoring'],
          thresholds: ['CRITICAL=0', 'HIGH=2'],
          scannerToken: { existingSecret: 'admission-token', key: 'token' },
          tls: { existingSecret: 'my-webhook-tls', caBundle },
        },
      },
      'security',
    );
    const image = `registry.example:5000/sec/containment:0.1.0-rc1@${digest}`;
    for (const w of workloads(objects))
      for (const c of w.spec.template.spec.containers) assert.equal(c.image, image, w.metadata.name);
    assert.equal(find<Workload>(objects, 'Deployment', `${RELEASE}-scanner`).spec.replicas, 5);
    assert.deepEqual(
      env(
        container(find<Workload>(objects, 'Deployment', `${RELEASE}-scanner`), 'scanner'),
        'CONTAINMENT_DATABASE',
      )?.valueFrom?.secretKeyRef,
      { name: 'pg', key: 'dsn' },
    );
    const functions = find<Workload>(objects, 'Deployment', `${RELEASE}-functions`);
    const fv = functions.spec.template.spec.volumes;
    assert.equal(fv?.find((v) => v.name === 'data')?.persistentVolumeClaim?.claimName, 'functions-data');
    // With SDK credentials, policies enforce through the API server with the runtime's ServiceAccount.
    const fc = container(functions, 'functions');
    assert.ok(fc.args?.includes('--sdk-config=/etc/containment/sdk/sdk.yaml'), fc.args?.join(' '));
    assert.ok(fc.args?.includes('--enforcement=kubernetes'), fc.args?.join(' '));
    assert.equal(fv?.find((v) => v.name === 'sdk-config')?.secret?.secretName, 'policy-sdk');
    assert.equal(fc.volumeMounts?.find((m) => m.name === 'sdk-config')?.readOnly, true);
    const node = find<Workload>(objects, 'DaemonSet', `${RELEASE}-node`);
    assert.ok(container(node, 'agent').args?.includes('--cluster=prod-east'));
    // Writable layers (for filesystem-changes.tar): read-only at their own path, operator only.
    assert.deepEqual(
      container(node, 'operator').volumeMounts?.filter((m) => m.name.startsWith('writable-layers-')),
      [{ name: 'writable-layers-0', mountPath: '/var/lib/containerd', readOnly: true }],
    );
    assert.ok(!container(node, 'agent').volumeMounts?.some((m) => m.name.startsWith('writable-layers-')));
    assert.deepEqual(node.spec.template.spec.volumes?.find((v) => v.name === 'writable-layers-0')?.hostPath, {
      path: '/var/lib/containerd',
      type: 'Directory',
    });
    assert.ok(
      container(node, 'agent').args?.includes('--server=http://containment-scanner.security.svc:8080'),
    );

    const hook = find<K8sObject & { webhooks: Webhook[] }>(
      objects,
      'ValidatingWebhookConfiguration',
      `${RELEASE}-admission`,
    ).webhooks[0]!;
    assert.equal(hook.failurePolicy, 'Ignore');
    assert.equal(hook.clientConfig.caBundle, caBundle);
    assert.equal(hook.clientConfig.service.namespace, 'security');
    assert.deepEqual(hook.namespaceSelector.matchExpressions[0]?.values.sort(), [
      'kube-node-lease',
      'kube-public',
      'kube-system',
      'monitoring',
      'security',
    ]);
    const admission = find<Workload>(objects, 'Deployment', `${RELEASE}-admission`);
    const args = container(admission, 'admission').args ?? [];
    for (const a of [
      '--mode=warn',
      '--level=restricted',
      '--deny-unknown-images',
      '--allowed-registry=registry.example:5000',
      '--allowed-registry=ghcr.io',
      '--threshold=CRITICAL=0',
      '--threshold=HIGH=2',
      '--server=http://containment-scanner.security.svc:8080',
    ])
      assert.ok(args.includes(a), `${a} in ${args.join(' ')}`);
    assert.deepEqual(env(container(admission, 'admission'), 'CONTAINMENT_TOKEN')?.valueFrom?.secretKeyRef, {
      name: 'admission-token',
      key: 'token',
    });
    // A provided certificate: no generated Secret, the pod mounts the user's.
    assert.ok(!objects.some((o) => o.kind === 'Secret'), 'no generated TLS secret');
    assert.equal(
      admission.spec.template.spec.volumes?.find((v) => v.name === 'tls')?.secret?.secretName,
      'my-webhook-tls',
    );
    // RBAC subjects follow the release namespace.
    const binding = find<K8sObject & { subjects: { namespace: string; name: string }[] }>(
      objects,
      'ClusterRoleBinding',
      `${RELEASE}-operator`,
    );
    assert.deepEqual(binding.subjects, [
      { kind: 'ServiceAccount', name: `${RELEASE}-operator`, namespace: 'security' },
    ]);
  });

  it('leaves out the admission gate, the policy runtime, the node DaemonSet and NetworkPolicies when disabled', (t) => {
    if (!needsHelm(t)) return;
    assert.ok(
      !ids(render({ networkPolicy: { enabled: false } })).some((id) => id.startsWith('NetworkPolicy/')),
    );
    const noAdmission = ids(render({ admission: { enabled: false } }));
    assert.ok(!noAdmission.some((id) => id.includes('admission')), noAdmission.join(' '));
    assert.ok(noAdmission.includes(`DaemonSet/${RELEASE}-node`));
    const scannerOnly = ids(
      render({ admission: { enabled: false }, functions: { enabled: false }, node: { enabled: false } }),
    );
    assert.deepEqual(scannerOnly, [
      `Deployment/${RELEASE}-scanner`,
      `NetworkPolicy/${RELEASE}-scanner`,
      `Service/${RELEASE}-scanner`,
      `ServiceAccount/${RELEASE}-scanner`,
    ]);
  });

  it('gives the agent the runtime sensor’s capabilities, host mounts and resources only with runtimeDetection.enabled', (t) => {
    if (!needsHelm(t)) return;
    const off = find<Workload>(render(), 'DaemonSet', `${RELEASE}-node`);
    const offAgent = container(off, 'agent');
    assert.ok(
      offAgent.args?.includes('--runtime-detection=off'),
      'off said to the agent, not left to its default',
    );
    assert.deepEqual(
      offAgent.volumeMounts?.map((m) => m.name),
      ['host-proc', 'tmp'],
    );

    const node = find<Workload>(
      render({
        runtimeDetection: { enabled: true, baselineLearning: '1h' },
        node: { operator: { writableLayerHostPaths: ['/var/lib/containerd'] } },
      }),
      'DaemonSet',
      `${RELEASE}-node`,
    );
    const ps = node.spec.template.spec;
    // The probes keep tasks in pid namespaces deeper than the agent's: it must be the host's.
    assert.equal(ps.hostPID, true);
    const agentC = container(node, 'agent');
    assert.ok(agentC.args?.includes('--runtime-detection=on'));
    assert.ok(agentC.args?.includes('--baseline-learning=1h'));
    assert.equal(agentC.securityContext?.privileged, false);
    assert.equal(agentC.securityContext?.allowPrivilegeEscalation, false);
    assert.equal(agentC.securityContext?.readOnlyRootFilesystem, true);
    assert.deepEqual(agentC.securityContext?.seccompProfile, { type: 'RuntimeDefault' });
    assert.deepEqual(agentC.securityContext?.capabilities?.drop, ['ALL']);
    assert.deepEqual([...(agentC.securityContext?.capabilities?.add ?? [])].sort(), [
      'BPF',
      'DAC_READ_SEARCH',
      'PERFMON',
      'SYS_PTRACE',
    ]);
    assert.deepEqual(agentC.resources, {
      limits: { cpu: '1', memory: '768Mi' },
      requests: { cpu: '100m', memory: '320Mi' },
    });
    const sensorMounts = ['tracefs', 'cgroup', 'btf'];
    assert.deepEqual(
      agentC.volumeMounts?.filter((m) => sensorMounts.includes(m.name)),
      [
        { name: 'tracefs', mountPath: '/sys/kernel/tracing', readOnly: true },
        { name: 'cgroup', mountPath: '/sys/fs/cgroup', readOnly: true },
        { name: 'btf', mountPath: '/sys/kernel/btf', readOnly: true },
      ],
    );
    const hostPaths = Object.fromEntries(
      (ps.volumes ?? []).filter((v) => sensorMounts.includes(v.name)).map((v) => [v.name, v.hostPath]),
    );
    assert.deepEqual(hostPaths, {
      tracefs: { path: '/sys/kernel/tracing', type: 'Directory' },
      cgroup: { path: '/sys/fs/cgroup', type: 'Directory' },
      btf: { path: '/sys/kernel/btf', type: 'Directory' },
    });
    // drift_executable reads the containers' upper directories (host paths), read-only.
    assert.deepEqual(
      agentC.volumeMounts?.find((m) => m.name === 'writable-layers-0'),
      { name: 'writable-layers-0', mountPath: '/var/lib/containerd', readOnly: true },
    );
    // The operator is not the sensor: its capabilities and mounts do not change.
    const operatorC = container(node, 'operator');
    assert.ok(!operatorC.securityContext?.capabilities?.add?.includes('BPF'));
    assert.ok(!operatorC.volumeMounts?.some((m) => sensorMounts.includes(m.name)));
  });

  it('passes only subcommands, flags and environment variables the containment CLI really has', async (t) => {
    if (!needsHelm(t)) return;
    const { buildProgram } = await import('../../src/cli/main.js');
    const program = await buildProgram();
    const cliSource = (sub: string): string =>
      [`${sub}-command.ts`, 'common.ts', 'api-client.ts']
        .map((f) => join(repoRoot, 'src', 'cli', f))
        .filter((f) => existsSync(f))
        .map((f) => readFileSync(f, 'utf8'))
        .join('\n');
    const everything = {
      admission: {
        mode: 'warn',
        denyUnknownImages: true,
        allowedRegistries: ['ghcr.io'],
        thresholds: ['HIGH=1'],
        scannerToken: { existingSecret: 't', key: 'k' },
      },
      scanner: { adminToken: { existingSecret: 'a', key: 'k' } },
      functions: {
        auth: { existingSecret: 'f', key: 'k' },
        sdkConfig: { existingSecret: 's', key: 'sdk.yaml' },
      },
      runtimeDetection: { enabled: true, baselineLearning: '1h' },
    };
    let checked = 0;
    for (const w of workloads([...render(), ...render(everything)]))
      for (const c of w.spec.template.spec.containers) {
        const where = `${w.metadata.name}/${c.name}`;
        assert.deepEqual(c.command, ['containment'], where);
        const sub = program.commands.find((x) => x.name() === c.args?.[0]);
        assert.ok(sub, `${where}: \`containment ${c.args?.[0]}\` exists`);
        for (const flag of (c.args ?? []).slice(1).map((a) => a.split('=')[0]!)) {
          assert.ok(
            sub.options.some((o) => o.long === flag),
            `${where}: containment ${sub.name()} has ${flag}`,
          );
          checked++;
        }
        for (const e of c.env ?? []) {
          const known =
            e.name === 'NODE_OPTIONS' ||
            sub.options.some((o) => o.envVar === e.name) ||
            ((e.name.startsWith('NODE_NAME') || e.name.startsWith('CONTAINMENT_')) &&
              cliSource(sub.name()).includes(e.name));
          assert.ok(known, `${where}: containment ${sub.name()} reads ${e.name}`);
          checked++;
        }
      }
    assert.ok(checked > 30, `checked ${checked} flags and variables`);
  });

  it('scores clean under `containment posture` (restricted) except what the node DaemonSet needs', (t) => {
    if (!needsHelm(t)) return;
    const rendered = join(helmHome, 'rendered.yaml');
    const r0 = helm([
      'template',
      RELEASE,
      chartDir,
      '--namespace',
      NS,
      '-f',
      valuesFile({ image: { digest: `sha256:${'1'.repeat(64)}` } }),
    ]);
    assert.equal(r0.status, 0, r0.stderr);
    writeFileSync(rendered, r0.stdout);
    const r = containment(['posture', '-f', rendered, '--level', 'restricted', '--format', 'json']);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as {
      findings: { control: string; category: string; object: { kind: string; name: string } }[];
    };
    const outsideNode = report.findings
      .filter((x) => !(x.object.kind === 'DaemonSet' && x.object.name === `${RELEASE}-node`))
      .map((x) => `${x.object.kind}/${x.object.name}: ${x.control}`);
    // A chart does not impose a ResourceQuota on the namespace it is installed in; nothing else may show.
    assert.deepEqual(
      outsideNode.filter((x) => !x.endsWith('NS-NO-RESOURCEQUOTA')),
      [],
    );
    // The DaemonSet's findings are exactly its documented needs: host PIDs, root, the added capabilities
    // and the two host paths.
    const node = new Set(
      report.findings.filter((x) => x.object.kind === 'DaemonSet').map((x) => x.control.replace(/_.*$/, '')),
    );
    assert.deepEqual([...node].sort(), [
      'PSS-capabilities',
      'PSS-hostNamespaces',
      'PSS-restrictedVolumes',
      'PSS-runAsNonRoot',
      'PSS-runAsUser',
    ]);
  });

  it('refuses values the schema does not allow, naming the field', (t) => {
    if (!needsHelm(t)) return;
    const cases: [unknown, RegExp][] = [
      [{ admission: { mode: 'block' } }, /\/admission\/mode/],
      [{ admission: { failurePolicy: 'Maybe' } }, /\/admission\/failurePolicy/],
      [{ admission: { level: 'privileged' } }, /\/admission\/level/],
      [{ admission: { tls: { existingSecret: 'mine' } } }, /\/admission\/tls\/caBundle/],
      [{ scanner: { replicas: -1 } }, /\/scanner\/replicas/],
      [{ scanner: { replicas: 'two' } }, /\/scanner\/replicas/],
      [{ scanner: { database: { existingSecret: '', key: 'url' } } }, /\/scanner\/database\/existingSecret/],
      // null deletes a default in Helm: limits can't be dropped, nor one of them.
      [{ scanner: { resources: { limits: null } } }, /\/scanner\/resources/],
      [
        { node: { operator: { resources: { limits: { memory: null } } } } },
        /\/node\/operator\/resources\/limits/,
      ],
      [{ functions: { replicas: 2 } }, /\/functions\/replicas/],
      [{ image: { digest: 'sha256:nothex' } }, /\/image\/digest/],
      [{ image: { repository: 'UPPER/case' } }, /\/image\/repository/],
      [{ podSecurityContext: { runAsNonRoot: false } }, /\/podSecurityContext\/runAsNonRoot/],
      [{ node: { evidenceHostPath: 'relative/path' } }, /\/node\/evidenceHostPath/],
      [{ node: { operator: { writableLayerHostPaths: ['var/lib/containerd'] } } }, /writableLayerHostPaths/],
      [{ admission: { port: 443 } }, /\/admission\/port/],
      [{ admission: { denyUnknownImages: true } }, /\/admission\/scannerToken\/existingSecret/],
      [{ admission: { thresholds: ['SEVERE=1'] } }, /\/admission\/thresholds\/0/],
      [{ runtimeDetection: { baselineLearning: '2 days' } }, /\/runtimeDetection\/baselineLearning/],
      [{ runtimeDetection: { cgroupHostPath: 'sys/fs/cgroup' } }, /\/runtimeDetection\/cgroupHostPath/],
      [{ runtimeDetection: { resources: { limits: null } } }, /\/runtimeDetection\/resources/],
      [{ scannr: { replicas: 1 } }, /additional properties 'scannr' not allowed/],
    ];
    for (const [values, message] of cases) assert.match(renderFails(values), message, JSON.stringify(values));
  });
});

describe('Helm chart against the real API server', () => {
  before(async () => {
    if (!helmBin || !binaries) return;
    cp = await startControlPlane({ binaries, name: 'helm-chart' });
    await ok('POST', '/api/v1/namespaces', { body: { metadata: { name: NS } } });
    await ok('POST', '/api/v1/namespaces', { body: { metadata: { name: WORKLOAD_NS } } });
    if (existsSync(crdFile)) await installCrd();
  });
  after(async () => {
    await cp?.stop();
  });

  it('accepts every rendered object by server-side apply (dry run), for several value sets', async (t) => {
    if (!needsCluster(t)) return;
    const renders = [
      render(),
      render({
        admission: { mode: 'warn', failurePolicy: 'Ignore', level: 'restricted' },
        scanner: { replicas: 1 },
      }),
      render({ admission: { enabled: false }, image: { digest: `sha256:${'0'.repeat(64)}` } }),
      render({ runtimeDetection: { enabled: true, baselineLearning: '30m' } }),
    ];
    for (const objects of renders) {
      const results = await Promise.all(
        objects.map(async (o) => [o, await serverSideApply(o, true)] as const),
      );
      for (const [o, r] of results)
        assert.ok([200, 201].includes(r.status), `${o.kind}/${o.metadata.name}: ${r.status} ${r.text}`);
    }
    // A dry run persists nothing...
    assert.equal((await api('GET', `/apis/apps/v1/namespaces/${NS}/daemonsets/${RELEASE}-node`)).status, 404);
    // ...and really validates: the same path refuses what the server would refuse.
    const vwc = structuredClone(
      find<K8sObject & { webhooks: Webhook[] }>(
        renders[0]!,
        'ValidatingWebhookConfiguration',
        `${RELEASE}-admission`,
      ),
    );
    vwc.webhooks[0]!.failurePolicy = 'Maybe';
    const refused = await serverSideApply(vwc, true);
    assert.equal(refused.status, 422, refused.text);
    assert.match(refused.text, /failurePolicy/);
  });

  it('installs the CRD from crds/ and the chart includes it with --include-crds', async (t) => {
    if (!needsCrd(t)) return;
    const r = helm(['template', RELEASE, chartDir, '--namespace', NS, '--include-crds']);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(
      yaml.loadAll(r.stdout).some((o) => (o as K8sObject | null)?.kind === 'CustomResourceDefinition'),
      'the CRD is part of the chart',
    );
    const crd = await ok(
      'GET',
      '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/securityactions.containment.dev',
    );
    assert.equal((crd.json as { spec: { scope: string } }).spec.scope, 'Namespaced');
  });

  describe('RBAC by impersonation', () => {
    let podUid = '';
    before(async () => {
      if (!cp) return;
      // The chart's ServiceAccounts, ClusterRoles and bindings, applied for real.
      for (const o of render().filter((x) =>
        /^(ServiceAccount|ClusterRole|ClusterRoleBinding)$/.test(x.kind),
      )) {
        const r = await serverSideApply(o, false);
        assert.ok([200, 201].includes(r.status), `${o.kind}/${o.metadata.name}: ${r.text}`);
      }
      await ok('POST', '/api/v1/nodes', { body: { metadata: { name: 'node-a' } } });
      const pod = (name: string) => ({
        metadata: { name, labels: { app: 'web' } },
        spec: { nodeName: 'node-a', containers: [{ name: 'web', image: 'registry.example/web:1' }] },
      });
      const created = await ok('POST', `/api/v1/namespaces/${WORKLOAD_NS}/pods`, { body: pod('web-1') });
      podUid = (created.json as { metadata: { uid: string } }).metadata.uid;
      for (const name of ['web-2', 'web-3'])
        await ok('POST', `/api/v1/namespaces/${WORKLOAD_NS}/pods`, { body: pod(name) });
      await ok('POST', `/api/v1/namespaces/${WORKLOAD_NS}/secrets`, {
        body: { metadata: { name: 'db' }, stringData: { password: 'hunter2' } },
      });
      await ok('POST', `/api/v1/namespaces/${WORKLOAD_NS}/configmaps`, {
        body: { metadata: { name: 'cfg' } },
      });
    });

    const pods = `/api/v1/namespaces/${WORKLOAD_NS}/pods`;
    const actions = `/apis/containment.dev/v1alpha1/namespaces/${WORKLOAD_NS}/securityactions`;
    const policies = `/apis/networking.k8s.io/v1/namespaces/${WORKLOAD_NS}/networkpolicies`;
    const events = `/api/v1/namespaces/${WORKLOAD_NS}/events`;
    const merge = 'application/merge-patch+json';
    const action = (name: string, labels: Record<string, string> = {}) => ({
      apiVersion: 'containment.dev/v1alpha1',
      kind: 'SecurityAction',
      metadata: { name, labels },
      spec: {
        target: { namespace: WORKLOAD_NS, pod: 'web-1' },
        action: 'Quarantine',
        reason: 'remote shell installed',
        requestedBy: 'policy/reference@1',
      },
    });

    it('lets the operator do each thing its contract lists (pods, NetworkPolicies, actions, status, events, node)', async (t) => {
      if (!needsCrd(t)) return;
      const as = SA.operator;
      await ok('POST', actions, { body: action('quarantine-web-1') });
      await ok('GET', `${pods}/web-1`, { as });
      await ok('GET', pods, { as });
      await ok('GET', `${pods}?watch=1&timeoutSeconds=1&labelSelector=app%3Dweb`, { as });
      await ok('PATCH', `${pods}/web-1`, {
        as,
        contentType: merge,
        body: { metadata: { labels: { 'containment.dev/quarantine': podUid } } },
      });
      await ok('DELETE', `${pods}/web-3?gracePeriodSeconds=0`, { as });
      // The deny-all NetworkPolicy of the shared contract.
      await ok('POST', policies, {
        as,
        body: {
          metadata: { name: 'containment-quarantine-web-1' },
          spec: {
            podSelector: { matchLabels: { 'containment.dev/quarantine': podUid } },
            policyTypes: ['Ingress', 'Egress'],
          },
        },
      });
      await ok('GET', `${policies}/containment-quarantine-web-1`, { as });
      await ok('DELETE', `${policies}/containment-quarantine-web-1`, { as });
      // Actions: list/watch by node label, label an unlabelled one with its resourceVersion, status.
      await ok('GET', `${actions}?labelSelector=containment.dev%2Fnode%3Dnode-a`, { as });
      await ok('GET', `/apis/containment.dev/v1alpha1/securityactions?watch=1&timeoutSeconds=1`, { as });
      const current = (await ok('GET', `${actions}/quarantine-web-1`, { as })).json as K8sObject;
      current.metadata.labels = { ...current.metadata.labels, 'containment.dev/node': 'node-a' };
      await ok('PUT', `${actions}/quarantine-web-1`, { as, body: current });
      await ok('PATCH', `${actions}/quarantine-web-1`, {
        as,
        contentType: merge,
        body: { metadata: { annotations: { 'containment.dev/seen': 'node-a' } } },
      });
      await ok('GET', `${actions}/quarantine-web-1/status`, { as });
      await ok('PATCH', `${actions}/quarantine-web-1/status`, {
        as,
        contentType: merge,
        body: { status: { phase: 'Running', node: 'node-a' } },
      });
      const withStatus = (await ok('GET', `${actions}/quarantine-web-1/status`, { as })).json as K8sObject;
      await ok('PUT', `${actions}/quarantine-web-1/status`, {
        as,
        body: { ...withStatus, status: { phase: 'Succeeded', node: 'node-a', message: 'quarantined' } },
      });
      const now = new Date().toISOString();
      await ok('POST', events, {
        as,
        body: {
          metadata: { name: 'web-1.quarantined' },
          involvedObject: { kind: 'Pod', namespace: WORKLOAD_NS, name: 'web-1', uid: podUid },
          reason: 'Quarantined',
          message: 'deny-all NetworkPolicy applied',
          type: 'Warning',
          source: { component: 'containment-operator', host: 'node-a' },
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
      await ok('PATCH', `${events}/web-1.quarantined`, { as, contentType: merge, body: { count: 2 } });
      // A Snapshot keeps the pod's recent events as evidence.
      await ok('GET', `${events}?fieldSelector=involvedObject.uid=${podUid}`, { as });
      // The agent container (same account) reads its node.
      await ok('GET', '/api/v1/nodes/node-a', { as });
    });

    it('refuses the operator everything else (secrets, exec, nodes, namespaces, creating actions …)', async (t) => {
      if (!needsCluster(t)) return;
      const as = SA.operator;
      await forbidden('GET', `/api/v1/namespaces/${WORKLOAD_NS}/secrets/db`, as);
      await forbidden('GET', `/api/v1/secrets`, as);
      await forbidden('GET', `/api/v1/namespaces/${WORKLOAD_NS}/configmaps/cfg`, as);
      await forbidden('POST', `${pods}/web-1/exec?command=sh&stdin=true&tty=true`, as);
      await forbidden('POST', pods, as, {
        metadata: { name: 'evil' },
        spec: { nodeName: 'node-a', containers: [{ name: 'x', image: 'x' }] },
      });
      await forbidden('PUT', `${pods}/web-2`, as, { metadata: { name: 'web-2' } });
      await forbidden('PATCH', '/api/v1/nodes/node-a', as, { metadata: { labels: { x: 'y' } } }, merge);
      await forbidden('GET', '/api/v1/nodes', as);
      await forbidden('DELETE', `/api/v1/namespaces/${WORKLOAD_NS}`, as);
      await forbidden('POST', actions, as, action('self-made'));
      await forbidden('DELETE', `${actions}/quarantine-web-1`, as);
      await forbidden('GET', policies, as);
      await forbidden('DELETE', `/apis/apps/v1/namespaces/${WORKLOAD_NS}/deployments`, as);
      await forbidden('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', as, {
        metadata: { name: 'escalate' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
        subjects: [{ kind: 'ServiceAccount', name: `${RELEASE}-operator`, namespace: NS }],
      });
      await forbidden('POST', `/api/v1/namespaces/${NS}/serviceaccounts/${RELEASE}-operator/token`, as, {
        spec: { audiences: ['x'] },
      });
    });

    it('lets the policy runtime create and follow actions, read pods and label them, nothing more', async (t) => {
      if (!needsCrd(t)) return;
      const as = SA.functions;
      await ok('GET', `${pods}/web-1`, { as });
      await ok('POST', actions, { as, body: action('policy-made', { 'containment.dev/node': 'node-a' }) });
      await ok('GET', `${actions}/policy-made`, { as });
      await ok('GET', actions, { as });
      await ok('GET', `${actions}?watch=1&timeoutSeconds=1&fieldSelector=metadata.name%3Dpolicy-made`, {
        as,
      });

      // kubernetes.label: a merge patch of the pod's labels (server-side dry run: nothing stored).
      await ok('PATCH', `${pods}/web-2?dryRun=All`, {
        as,
        body: { metadata: { labels: { a: 'b' } } },
        contentType: merge,
      });

      await forbidden('GET', pods, as);
      await forbidden('DELETE', `${pods}/web-2`, as);
      await forbidden('PATCH', `${pods}/web-2/status`, as, { status: { phase: 'Failed' } }, merge);
      await forbidden('PATCH', `${actions}/policy-made`, as, { spec: { dryRun: true } }, merge);
      await forbidden('DELETE', `${actions}/policy-made`, as);
      await forbidden(
        'PATCH',
        `${actions}/policy-made/status`,
        as,
        { status: { phase: 'Succeeded' } },
        merge,
      );
      await forbidden('GET', `/api/v1/namespaces/${WORKLOAD_NS}/secrets/db`, as);
      await forbidden('POST', policies, as, { metadata: { name: 'np' }, spec: { podSelector: {} } });
      await forbidden('POST', events, as, { metadata: { name: 'e' }, involvedObject: { name: 'web-1' } });
      await forbidden('GET', '/api/v1/nodes/node-a', as);
    });

    it('gives the scanner and the admission webhook no Kubernetes API access at all', async (t) => {
      if (!needsCluster(t)) return;
      for (const as of [SA.scanner, SA.admission]) {
        await forbidden('GET', `${pods}/web-1`, as);
        await forbidden('GET', actions, as);
        await forbidden('GET', `/api/v1/namespaces/${WORKLOAD_NS}/secrets`, as);
        await forbidden('GET', '/api/v1/namespaces', as);
      }
    });

    it('grants exactly the listed rules: SubjectAccessReview over every verb × resource', async (t) => {
      if (!needsCluster(t)) return;
      const questions = (Object.keys(SA) as (keyof typeof SA)[]).flatMap((who) =>
        UNIVERSE.flatMap(([group, resource]) => VERBS.map((verb) => ({ who, group, resource, verb }))),
      );
      const answers = await inBatches(questions, 16, async (q) => {
        const [res, sub] = q.resource.split('/');
        const review = await ok('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SubjectAccessReview',
            spec: {
              user: SA[q.who],
              groups: ['system:serviceaccounts', `system:serviceaccounts:${NS}`, 'system:authenticated'],
              resourceAttributes: {
                namespace: CLUSTER_SCOPED.has(res!) ? '' : WORKLOAD_NS,
                verb: q.verb,
                group: q.group,
                resource: res,
                ...(sub ? { subresource: sub } : {}),
              },
            },
          },
        });
        return { ...q, allowed: (review.json as { status: { allowed: boolean } }).status.allowed };
      });
      const wrong = answers.filter(
        (a) => a.allowed !== triples(EXPECTED[a.who]).has(`${a.group}|${a.resource}|${a.verb}`),
      );
      assert.deepEqual(
        wrong.map(
          (a) => `${a.who}: ${a.verb} ${a.group || 'core'}/${a.resource} ${a.allowed ? 'allowed' : 'denied'}`,
        ),
        [],
      );
      // The listed rules themselves were asked about (the matrix covers the contract).
      for (const who of Object.keys(EXPECTED) as (keyof typeof SA)[])
        assert.equal(
          answers.filter((a) => a.who === who && a.allowed).length,
          triples(EXPECTED[who]).size,
          `${who}: every granted rule is in the matrix`,
        );
      // No escalation paths either.
      for (const who of ['operator', 'functions'] as const)
        for (const [verb, group, resource] of [
          ['impersonate', '', 'serviceaccounts'],
          ['impersonate', '', 'users'],
          ['bind', 'rbac.authorization.k8s.io', 'clusterroles'],
          ['escalate', 'rbac.authorization.k8s.io', 'clusterroles'],
        ] as const) {
          const review = await ok('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
            body: {
              spec: {
                user: SA[who],
                groups: ['system:serviceaccounts', `system:serviceaccounts:${NS}`, 'system:authenticated'],
                resourceAttributes: { verb, group, resource },
              },
            },
          });
          assert.equal(
            (review.json as { status: { allowed: boolean } }).status.allowed,
            false,
            `${who} ${verb} ${resource}`,
          );
        }
    });

    it('grants exactly the listed rules: SelfSubjectRulesReview per account, beyond what any account has', async (t) => {
      if (!needsCluster(t)) return;
      const rulesOf = async (as: string): Promise<Set<string>> => {
        const r = await ok('POST', '/apis/authorization.k8s.io/v1/selfsubjectrulesreviews', {
          as,
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SelfSubjectRulesReview',
            spec: { namespace: WORKLOAD_NS },
          },
        });
        const status = (
          r.json as {
            status: {
              incomplete: boolean;
              resourceRules: {
                verbs: string[];
                apiGroups?: string[];
                resources?: string[];
                resourceNames?: string[];
              }[];
            };
          }
        ).status;
        assert.equal(status.incomplete, false, `${as}: the rules review is complete`);
        const out = new Set<string>();
        for (const rule of status.resourceRules) {
          assert.equal(
            rule.resourceNames,
            undefined,
            `${as}: no rule is limited to names (${JSON.stringify(rule)})`,
          );
          for (const g of rule.apiGroups ?? [''])
            for (const res of rule.resources ?? []) for (const v of rule.verbs) out.add(`${g}|${res}|${v}`);
        }
        return out;
      };
      const baseline = await rulesOf(SA.unbound);
      // Sanity: the baseline is what every authenticated account may do (self reviews), and no wildcard.
      assert.ok(
        [...baseline].every(
          (r) => r.startsWith('authorization.k8s.io|') || r.startsWith('authentication.k8s.io|'),
        ),
        [...baseline].join(' '),
      );
      for (const who of ['operator', 'functions', 'scanner', 'admission'] as const) {
        const granted = [...(await rulesOf(SA[who]))].filter((r) => !baseline.has(r)).sort();
        assert.ok(!granted.some((r) => r.includes('*')), `${who} has no wildcard: ${granted.join(' ')}`);
        assert.deepEqual(granted, [...triples(EXPECTED[who])].sort(), `${who}'s rules`);
      }
    });
  });
  describe('the registered webhook on the API server', () => {
    const hookName = `${RELEASE}-admission`;
    const vwcPath = `/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/${hookName}`;
    const pod = (name: string) => ({
      metadata: { name },
      spec: { nodeName: 'node-a', containers: [{ name: 'c', image: 'registry.example/app:1' }] },
    });
    const deployment = (name: string) => ({
      metadata: { name },
      spec: {
        selector: { matchLabels: { app: name } },
        template: { metadata: { labels: { app: name } }, spec: pod(name).spec },
      },
    });

    /** Applies the chart's real webhook registration; no webhook pod runs, so every call fails. */
    async function register(values: unknown): Promise<void> {
      const vwc = find(render(values), 'ValidatingWebhookConfiguration', hookName);
      const r = await serverSideApply(vwc, false);
      assert.ok([200, 201].includes(r.status), r.text);
    }
    after(async () => {
      if (cp) await api('DELETE', vwcPath);
    });

    it('with failurePolicy Fail refuses gated workloads in user namespaces, never in excluded ones', async (t) => {
      if (!needsCluster(t)) return;
      await register({ admission: { failurePolicy: 'Fail', excludedNamespaces: ['monitoring'] } });
      await ok('POST', '/api/v1/namespaces', { body: { metadata: { name: 'monitoring' } } });
      // The API server needs a moment to load a new webhook configuration.
      let refused: Resp | undefined;
      for (let i = 0; i < 50 && refused === undefined; i++) {
        const r = await api('POST', `/api/v1/namespaces/${WORKLOAD_NS}/pods`, { body: pod(`gated-${i}`) });
        if (r.status >= 400) refused = r;
        else await sleep(100);
      }
      assert.ok(refused, 'a pod in a user namespace is sent to the (unreachable) webhook and refused');
      assert.match(
        (refused.json as { message: string }).message,
        /failed calling webhook "workloads\.admission\.containment\.dev"/,
      );
      const refusedDeployment = await api('POST', `/apis/apps/v1/namespaces/${WORKLOAD_NS}/deployments`, {
        body: deployment('gated'),
      });
      assert.match(refusedDeployment.text, /failed calling webhook/, `${refusedDeployment.status}`);
      const refusedJob = await api('POST', `/apis/batch/v1/namespaces/${WORKLOAD_NS}/jobs`, {
        body: {
          metadata: { name: 'gated' },
          spec: { template: { spec: { ...pod('j').spec, restartPolicy: 'Never' } } },
        },
      });
      assert.match(refusedJob.text, /failed calling webhook/, `${refusedJob.status}`);
      // Not a pod-owning kind: not sent to the webhook.
      await ok('POST', `/api/v1/namespaces/${WORKLOAD_NS}/configmaps`, {
        body: { metadata: { name: 'not-gated' } },
      });
      // Excluded namespaces: the system ones, the release's own (the gate's pods must start), the user's list.
      for (const ns of ['kube-system', NS, 'monitoring']) {
        await ok('POST', `/api/v1/namespaces/${ns}/pods`, { body: pod('exempt') });
        await ok('POST', `/apis/apps/v1/namespaces/${ns}/deployments`, { body: deployment('exempt') });
      }
    });

    it('with failurePolicy Ignore admits when the webhook cannot be reached', async (t) => {
      if (!needsCluster(t)) return;
      await register({ admission: { failurePolicy: 'Ignore' } });
      let admitted = false;
      for (let i = 0; i < 50 && !admitted; i++) {
        const r = await api('POST', `/api/v1/namespaces/${WORKLOAD_NS}/pods`, { body: pod(`ignored-${i}`) });
        admitted = r.status === 201;
        if (!admitted) await sleep(100);
      }
      assert.ok(admitted, 'failurePolicy Ignore admits the pod');
      await ok('POST', `/apis/apps/v1/namespaces/${WORKLOAD_NS}/deployments`, {
        body: deployment('ignored'),
      });
    });
  });
  describe('helm install, upgrade and uninstall for real', () => {
    // Another release and namespace than the objects above, so nothing collides with them.
    const release = 'ctm';
    const ns = 'ctm-system';
    const full = 'ctm-containment';
    const vwcPath = `/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/${full}-admission`;
    const secretPath = `/api/v1/namespaces/${ns}/secrets/${full}-admission-tls`;

    async function webhookCerts(): Promise<{ caBundle: string; ca: string; crt: string }> {
      const vwc = (await ok('GET', vwcPath)).json as { webhooks: Webhook[] };
      const secret = (await ok('GET', secretPath)).json as { data: Record<string, string> };
      return {
        caBundle: vwc.webhooks[0]!.clientConfig.caBundle,
        ca: secret.data['ca.crt']!,
        crt: secret.data['tls.crt']!,
      };
    }

    it('installs (with the CRD from crds/), upgrades keeping the generated webhook certificate, uninstalls', async (t) => {
      if (!needsCrd(t) || !cp) return;
      const kube = ['--kubeconfig', cp.kubeconfigPath];
      // Helm installs crds/ itself, but skips a CRD that exists: remove the one installed above first.
      const crdPath =
        '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/securityactions.containment.dev';
      await ok('DELETE', crdPath);
      for (let i = 0; i < 100 && (await api('GET', crdPath)).status !== 404; i++) await sleep(100);
      assert.equal((await api('GET', crdPath)).status, 404, 'the CRD is gone before the install');
      // Ignore: no webhook pod ever runs here, and this test's own objects must not be refused.
      const install = helm([
        'install',
        release,
        chartDir,
        '-n',
        ns,
        '--create-namespace',
        ...kube,
        '--set',
        'admission.failurePolicy=Ignore',
      ]);
      assert.equal(install.status, 0, install.stderr);
      assert.match(install.stdout, /STATUS: deployed/);
      assert.match(install.stdout, /Containment 0\.1\.0 is installed in namespace ctm-system/);
      const scanner = (await ok('GET', `/apis/apps/v1/namespaces/${ns}/deployments/${full}-scanner`))
        .json as Workload;
      assert.equal(scanner.spec.replicas, 2);
      assert.equal(scanner.metadata.labels?.['app.kubernetes.io/managed-by'], 'Helm');
      await ok('GET', `/apis/apps/v1/namespaces/${ns}/daemonsets/${full}-node`);
      await ok('GET', `/apis/rbac.authorization.k8s.io/v1/clusterroles/${full}-operator`);
      const crd = (await ok('GET', crdPath)).json as K8sObject;
      assert.equal(
        crd.metadata.labels?.['app.kubernetes.io/managed-by'],
        undefined,
        'crds/ is not templated',
      );
      const first = await webhookCerts();
      assert.equal(first.caBundle, first.ca, 'the webhook trusts the CA that signed the serving certificate');

      // An upgrade changes what it is asked to, and keeps the certificate (a new one would need new pods
      // and a new caBundle at the same instant).
      const upgrade = helm([
        'upgrade',
        release,
        chartDir,
        '-n',
        ns,
        ...kube,
        '--set',
        'admission.failurePolicy=Ignore',
        '--set',
        'admission.mode=warn',
      ]);
      assert.equal(upgrade.status, 0, upgrade.stderr);
      assert.deepEqual(await webhookCerts(), first);
      const admission = (await ok('GET', `/apis/apps/v1/namespaces/${ns}/deployments/${full}-admission`))
        .json as Workload;
      assert.ok(container(admission, 'admission').args?.includes('--mode=warn'));

      const uninstall = helm(['uninstall', release, '-n', ns, ...kube]);
      assert.equal(uninstall.status, 0, uninstall.stderr);
      assert.equal((await api('GET', vwcPath)).status, 404);
      assert.equal(
        (await api('GET', `/apis/rbac.authorization.k8s.io/v1/clusterroles/${full}-operator`)).status,
        404,
      );
      assert.equal((await api('GET', `/apis/apps/v1/namespaces/${ns}/daemonsets/${full}-node`)).status, 404);
      // Helm never deletes CRDs (that would delete every SecurityAction with them).
      await ok('GET', crdPath);
    });
  });
});
