/**
 * `containment posture --kubeconfig` against a real kube-apiserver + etcd: paged reads, the API
 * server's own RBAC defaults not reported, PolicyReports written (and rewritten) through a
 * minimal wgpolicyk8s.io CRD, and the failure modes (forbidden, unreachable).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import yaml from 'js-yaml';
import { requireOrSkip } from '../../testing/shared-data.js';
import { containment } from '../../testing/tools.js';
import { binariesWhat, findBinaries } from '../../testing/k8s/binaries.js';
import { startControlPlane } from '../../testing/k8s/control-plane.js';
import type { ControlPlane } from '../../testing/k8s/control-plane.js';
import type { PostureReport } from '../types.js';
import { policyReportsOf } from '../policy-report.js';
import { runPosture as evaluatePosture } from '../run-posture.js';
import { readCluster } from './read-cluster.js';
import { writePolicyReports } from './write-policy-reports.js';

const binaries = findBinaries();
const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'hardened-deployment.yaml');
const tmp = mkdtempSync(join(tmpdir(), 'posture-cluster-'));

function crd(plural: string, kind: string, scope: 'Namespaced' | 'Cluster'): unknown {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.wgpolicyk8s.io` },
    spec: {
      group: 'wgpolicyk8s.io',
      scope,
      names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
      versions: [
        {
          name: 'v1alpha2',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        },
      ],
    },
  };
}

const PLURALS: Record<string, string> = {
  Namespace: 'namespaces',
  Pod: 'pods',
  Service: 'services',
  ServiceAccount: 'serviceaccounts',
  ResourceQuota: 'resourcequotas',
  NetworkPolicy: 'networkpolicies',
  Deployment: 'deployments',
  ClusterRoleBinding: 'clusterrolebindings',
};

/** REST path of an object's collection. */
function collection(o: { apiVersion: string; kind: string; metadata: { namespace?: string } }): string {
  const plural = PLURALS[o.kind];
  if (!plural) throw new Error(`no plural for ${o.kind}`);
  const base = o.apiVersion === 'v1' ? '/api/v1' : `/apis/${o.apiVersion}`;
  return `${base}${o.metadata.namespace ? `/namespaces/${o.metadata.namespace}` : ''}/${plural}`;
}

function runPosture(args: string[]): {
  status: number | null;
  stdout: string;
  stderr: string;
  report?: PostureReport;
} {
  const r = containment(['posture', ...args]);
  let report: PostureReport | undefined;
  if (args.includes('json')) {
    try {
      report = JSON.parse(r.stdout) as PostureReport;
    } catch {
      // the assertions below show stderr
    }
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ...(report ? { report } : {}) };
}

describe('posture against a real API server', () => {
  let cp: ControlPlane | undefined;

  before(async () => {
    if (!binaries) return;
    cp = await startControlPlane({ binaries, name: 'posture' });
    const create = async (o: unknown): Promise<void> => {
      const r = await cp!.request('POST', collection(o as Parameters<typeof collection>[0]), { body: o });
      assert.equal(r.status, 201, r.text);
    };
    for (const [plural, kind, scope] of [
      ['policyreports', 'PolicyReport', 'Namespaced'],
      ['clusterpolicyreports', 'ClusterPolicyReport', 'Cluster'],
    ] as const) {
      const r = await cp.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
        body: crd(plural, kind, scope),
      });
      assert.equal(r.status, 201, r.text);
    }
    // The hardened reference workload, as is, in namespace `shop`.
    for (const o of yaml.loadAll(readFileSync(FIXTURE, 'utf8'))) await create(o);
    await create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'risky' } });
    for (let i = 0; i < 5; i++) {
      await create({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `priv-${i}`, namespace: 'risky' },
        spec: {
          nodeName: 'node-a',
          containers: [{ name: 'c', image: 'nginx', securityContext: { privileged: true } }],
        },
      });
    }
    await create({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'open', namespace: 'risky' },
      spec: { type: 'NodePort', ports: [{ port: 80 }] },
    });
    await create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'mallory-admin' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ kind: 'User', name: 'mallory', apiGroup: 'rbac.authorization.k8s.io' }],
    });
    // CRDs must be Established before their objects can be written.
    for (const plural of ['policyreports', 'clusterpolicyreports']) {
      for (let i = 0; ; i++) {
        const r = await cp.request(
          'GET',
          `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${plural}.wgpolicyk8s.io`,
        );
        const conditions =
          (r.json as { status?: { conditions?: { type: string; status: string }[] } }).status?.conditions ??
          [];
        if (conditions.some((c) => c.type === 'Established' && c.status === 'True')) break;
        if (i > 100) throw new Error(`CRD ${plural} not established`);
        await new Promise((res) => setTimeout(res, 100));
      }
    }
  });
  after(async () => {
    await cp?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('scores the cluster: hardened namespace 100, findings where they belong, API defaults ignored', (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const r = runPosture([
      '--kubeconfig',
      cp.kubeconfigPath,
      '--format',
      'json',
      '--allowed-registry',
      'registry.example.com/acme',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const report = r.report!;
    const ns = Object.fromEntries(report.namespaces.map((n) => [n.namespace, n]));
    assert.equal(
      ns.shop?.score,
      100,
      JSON.stringify(report.findings.filter((f) => f.object.namespace === 'shop')),
    );
    assert.equal(ns.default?.score, 100);
    assert.ok(ns.risky && ns.risky.score < 100);
    const ids = (pred: (f: PostureReport['findings'][number]) => boolean) =>
      report.findings.filter(pred).map((f) => f.control);
    assert.equal(ids((f) => f.control === 'PSS-privileged').length, 5);
    assert.ok(ids((f) => f.object.name === 'open').includes('NET-NODEPORT-SERVICE'));
    assert.ok(
      ids((f) => f.object.namespace === 'risky' && f.object.kind === 'Namespace').includes(
        'NS-NO-NETWORKPOLICY',
      ),
    );
    // the only cluster-admin binding reported is ours; the API server's bootstrap ones are not
    assert.deepEqual(
      report.findings.filter((f) => f.control === 'RBAC-CLUSTER-ADMIN-BINDING').map((f) => f.object.name),
      ['mallory-admin'],
    );
    assert.deepEqual(
      report.findings.filter((f) => f.object.kind === 'ClusterRole').map((f) => f.object.name),
      [],
    );
    assert.ok(report.evaluated > 50, `${report.evaluated} objects read`);
  });

  it('reads in pages without losing or repeating objects', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const paged = await readCluster(kc, { pageSize: 2 });
    const whole = await readCluster(kc, { pageSize: 1000 });
    const keys = (x: typeof paged) =>
      x.inputs
        .map(
          (i) =>
            `${String(i.object.kind)}/${String((i.object.metadata as { namespace?: string }).namespace)}/${String((i.object.metadata as { name: string }).name)}`,
        )
        .sort();
    assert.deepEqual(keys(paged), keys(whole));
    assert.equal(paged.inputs.filter((i) => i.object.kind === 'Pod').length, 5);
    assert.equal(new Set(keys(paged)).size, keys(paged).length);
  });

  it('--fail-below exits 1 under the score, 0 at or above it', (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const low = runPosture(['--kubeconfig', cp.kubeconfigPath, '--fail-below', '100', '--format', 'json']);
    assert.equal(low.status, 1, low.stderr);
    assert.match(low.stderr, /posture score \d+ is below 100/);
    assert.equal(runPosture(['--kubeconfig', cp.kubeconfigPath, '--fail-below', '0']).status, 0);
  });

  it('--policy-reports writes a PolicyReport per namespace and a ClusterPolicyReport, and rewrites them', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    for (let round = 0; round < 2; round++) {
      const r = runPosture(['--kubeconfig', cp.kubeconfigPath, '--policy-reports', '--format', 'json']);
      assert.equal(r.status, 0, r.stderr);
    }
    const risky = await cp.request('GET', '/apis/wgpolicyk8s.io/v1alpha2/namespaces/risky/policyreports');
    const items = (
      risky.json as {
        items: {
          metadata: { name: string };
          summary: { fail: number };
          results: { policy: string; severity: string; resources: { name: string }[] }[];
        }[];
      }
    ).items;
    assert.equal(items.length, 1);
    assert.equal(items[0]!.metadata.name, 'containment-posture');
    assert.equal(items[0]!.summary.fail, items[0]!.results.length);
    const priv = items[0]!.results.filter((x) => x.policy === 'PSS-privileged');
    assert.deepEqual(priv.map((x) => x.resources[0]!.name).sort(), [
      'priv-0',
      'priv-1',
      'priv-2',
      'priv-3',
      'priv-4',
    ]);
    assert.equal(priv[0]!.severity, 'critical');
    const shop = await cp.request(
      'GET',
      '/apis/wgpolicyk8s.io/v1alpha2/namespaces/shop/policyreports/containment-posture',
    );
    assert.equal(shop.status, 200);
    assert.deepEqual((shop.json as { results: unknown[] }).results, []);
    const cluster = await cp.request(
      'GET',
      '/apis/wgpolicyk8s.io/v1alpha2/clusterpolicyreports/containment-posture',
    );
    assert.equal(cluster.status, 200, cluster.text);
    assert.ok(
      (cluster.json as { results: { policy: string }[] }).results.some(
        (x) => x.policy === 'RBAC-CLUSTER-ADMIN-BINDING',
      ),
    );
  });

  it('a report too big for one object is split into parts; parts no longer needed are deleted', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const { report } = await evaluatePosture({ level: 'restricted', kubeconfig: cp.kubeconfigPath });
    const names = async (): Promise<string[]> => {
      const r = await cp!.request('GET', '/apis/wgpolicyk8s.io/v1alpha2/namespaces/risky/policyreports');
      return (r.json as { items: { metadata: { name: string } }[] }).items.map((i) => i.metadata.name).sort();
    };
    const inRisky = report.findings.filter((f) => f.object.namespace === 'risky').length;
    await writePolicyReports(kc, policyReportsOf(report, new Date(), 3));
    const split = await names();
    assert.equal(split.length, Math.ceil(inRisky / 3));
    assert.ok(split.includes('containment-posture-2'));
    await writePolicyReports(kc, policyReportsOf(report));
    assert.deepEqual(await names(), ['containment-posture']);
  });

  it('a user who may not list pods gets FORBIDDEN, not a clean score', (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const nobody = cp.kubeConfigFor(cp.issueClient('nobody'));
    const path = join(tmp, 'nobody.kubeconfig');
    writeFileSync(
      path,
      yaml.dump({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: nobody.clusters.map((c) => ({
          name: c.name,
          cluster: { server: c.server, 'certificate-authority-data': c.caData },
        })),
        users: nobody.users.map((u) => ({
          name: u.name,
          user: { 'client-certificate-data': u.certData, 'client-key-data': u.keyData },
        })),
        contexts: nobody.contexts.map((c) => ({
          name: c.name,
          context: { cluster: c.cluster, user: c.user },
        })),
        'current-context': nobody.currentContext,
      }),
    );
    const r = runPosture(['--kubeconfig', path]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^error\[FORBIDDEN\]: .*may not list (Namespace|Pod) objects/m);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });

  it('an unreachable API server is KUBERNETES_UNAVAILABLE; a bad kubeconfig is CONFIG_INVALID', (t) => {
    if (!requireOrSkip(t, binaries !== undefined, binariesWhat) || !cp) return;
    const text = readFileSync(cp.kubeconfigPath, 'utf8').split(cp.server).join('https://127.0.0.1:1');
    assert.ok(text.includes('https://127.0.0.1:1'));
    const path = join(tmp, 'down.kubeconfig');
    writeFileSync(path, text);
    const down = runPosture(['--kubeconfig', path]);
    assert.equal(down.status, 2);
    assert.match(
      down.stderr,
      /^error\[KUBERNETES_UNAVAILABLE\]: listing \w+ objects from https:\/\/127\.0\.0\.1:1 failed/,
    );
    writeFileSync(join(tmp, 'bad.kubeconfig'), '{{{');
    const bad = runPosture(['--kubeconfig', join(tmp, 'bad.kubeconfig')]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /^error\[CONFIG_INVALID\]: cannot load Kubernetes credentials from /);
  });
});
