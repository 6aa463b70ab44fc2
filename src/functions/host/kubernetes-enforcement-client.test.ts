/**
 * The policy SDK's Kubernetes enforcement client against a real API server with the chart's CRD,
 * authenticated as the policy runtime's ServiceAccount with exactly its RBAC (securityactions
 * get/list/watch/create, pods get/patch). The operator's part (status) is written by the test as
 * admin. `kubernetes.label` goes through the PolicySdkHost, as a policy calls it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import type { SecurityActionInput } from '../../enforcement/security-action.js';
import { ErrorCodes } from '../../errors.js';
import { installCrd } from '../../kubernetes/crd.test-helper.js';
import { binariesWhat, findBinaries } from '../../testing/k8s/binaries.js';
import { startControlPlane } from '../../testing/k8s/control-plane.js';
import type { ControlPlane } from '../../testing/k8s/control-plane.js';
import { repoRoot, requireOrSkip } from '../../testing/shared-data.js';
import type { JsonValue } from '../sandbox/sandbox.js';
import { KubernetesEnforcementClient, kubernetesEnforcement } from './kubernetes-enforcement-client.js';
import { DRY_RUN_ANNOTATION, PolicySdkHost, httpEnforcement } from './policy-sdk-host.js';
import type { NamespaceCredentials } from './policy-sdk-host.js';

const RUNTIME_USER = 'system:serviceaccount:containment-system:containment-functions';
const ACTIONS = '/apis/containment.dev/v1alpha1/namespaces/shop/securityactions';

let cp: ControlPlane | undefined;
let runtimeConfig: k8s.KubeConfig;
let podUid = '';

async function must(method: string, path: string, body?: unknown, contentType?: string): Promise<unknown> {
  const r = await (cp as ControlPlane).request(method, path, {
    body,
    ...(contentType ? { contentType } : {}),
  });
  assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${r.text}`);
  return r.json;
}

function need(t: TestContext): boolean {
  return requireOrSkip(t, cp !== undefined, binariesWhat);
}

function quarantine(name: string, pod = 'web'): SecurityActionInput {
  return {
    metadata: { name, namespace: 'shop' },
    spec: {
      target: { namespace: 'shop', pod },
      action: 'Quarantine',
      reason: 'test',
      requestedBy: 'policy/t@1',
    },
  };
}

async function listNames(): Promise<string[]> {
  const list = (await must('GET', ACTIONS)) as { items: { metadata: { name: string } }[] };
  return list.items.map((i) => i.metadata.name).sort();
}

async function setPhase(name: string, phase: string): Promise<void> {
  await must(
    'PATCH',
    `${ACTIONS}/${name}/status`,
    { status: { phase, node: 'node-a', message: `now ${phase}` } },
    'application/merge-patch+json',
  );
}

describe('KubernetesEnforcementClient (real API server)', () => {
  before(async () => {
    const binaries = findBinaries();
    if (!binaries) return;
    cp = await startControlPlane({ name: 'sdk', binaries });
    const admin = new k8s.KubeConfig();
    admin.loadFromOptions(cp.kubeConfig);
    await installCrd(admin);
    await must('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', {
      metadata: { name: 'containment-functions' },
      rules: [
        {
          apiGroups: ['containment.dev'],
          resources: ['securityactions'],
          verbs: ['get', 'list', 'watch', 'create'],
        },
        { apiGroups: [''], resources: ['pods'], verbs: ['get', 'patch'] },
      ],
    });
    await must('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      metadata: { name: 'containment-functions' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'containment-functions' },
      subjects: [{ kind: 'User', name: RUNTIME_USER }],
    });
    await must('POST', '/api/v1/namespaces', { metadata: { name: 'shop' } });
    const pod = (await must('POST', '/api/v1/namespaces/shop/pods', {
      metadata: { name: 'web' },
      spec: { nodeName: 'node-a', containers: [{ name: 'app', image: 'registry.example/web:1' }] },
    })) as k8s.V1Pod;
    podUid = pod.metadata?.uid as string;
    await must('POST', '/api/v1/namespaces/shop/pods', {
      metadata: { name: 'pending' },
      spec: { containers: [{ name: 'app', image: 'registry.example/web:1' }] },
    });
    runtimeConfig = new k8s.KubeConfig();
    runtimeConfig.loadFromOptions(cp.kubeConfigFor(cp.issueClient(RUNTIME_USER)));
  });
  after(async () => {
    await cp?.stop();
  });

  test('creates the action in the pod namespace, labelled with the pod node and pinned to its UID; again returns it', async (t) => {
    if (!need(t)) return;
    const client = new KubernetesEnforcementClient({ kubeConfig: runtimeConfig, cluster: 'sdk' });
    const first = await client.create(quarantine('q-1'), { wait: false });
    assert.equal(first.metadata.name, 'q-1');
    assert.equal(first.metadata.namespace, 'shop');
    assert.equal((first.metadata.labels as Record<string, string>)['containment.dev/node'], 'node-a');
    assert.equal(first.spec.target.uid, podUid);
    const again = await client.create(quarantine('q-1'), { wait: false });
    assert.equal(again.metadata.uid, first.metadata.uid, 'the same object, not a second one');
    assert.deepEqual(
      (await listNames()).filter((n) => n === 'q-1'),
      ['q-1'],
    );
    // The same name for another request is refused, and the stored action is unchanged.
    const other = { ...quarantine('q-1'), spec: { ...quarantine('q-1').spec, action: 'Terminate' as const } };
    await assert.rejects(client.create(other, { wait: false }), (e: { code?: string; message: string }) => {
      assert.equal(e.code, ErrorCodes.ACTION_INVALID);
      assert.match(e.message, /already used by a different request/);
      return true;
    });
  });

  test('a pod not scheduled yet gets no node label (an operator labels it later)', async (t) => {
    if (!need(t)) return;
    const client = new KubernetesEnforcementClient({ kubeConfig: runtimeConfig });
    const made = await client.create(quarantine('q-pending', 'pending'), { wait: false });
    assert.equal(
      (made.metadata.labels as Record<string, string> | undefined)?.['containment.dev/node'],
      undefined,
    );
  });

  test('bad requests are refused with one-line errors and create nothing', async (t) => {
    if (!need(t)) return;
    const client = new KubernetesEnforcementClient({ kubeConfig: runtimeConfig });
    const before = await listNames();
    await assert.rejects(client.create(quarantine('q-missing', 'nope'), { wait: false }), {
      code: ErrorCodes.ACTION_INVALID,
      message: /target pod shop\/nope does not exist/,
    });
    const elsewhere = { ...quarantine('q-ns'), metadata: { name: 'q-ns', namespace: 'kube-system' } };
    await assert.rejects(client.create(elsewhere, { wait: false }), { code: ErrorCodes.ACTION_INVALID });
    await assert.rejects(client.create(quarantine('../escape'), { wait: false }), {
      code: ErrorCodes.ACTION_INVALID,
    });
    // Credentials without RBAC: FORBIDDEN from the API server, nothing written.
    const nobody = new k8s.KubeConfig();
    nobody.loadFromOptions((cp as ControlPlane).kubeConfigFor((cp as ControlPlane).issueClient('nobody')));
    await assert.rejects(
      new KubernetesEnforcementClient({ kubeConfig: nobody }).create(quarantine('q-x'), { wait: false }),
      {
        code: ErrorCodes.FORBIDDEN,
      },
    );
    assert.deepEqual(await listNames(), before);
  });

  test('wait follows the status to its final phase', async (t) => {
    if (!need(t)) return;
    const client = new KubernetesEnforcementClient({ kubeConfig: runtimeConfig });
    const waiting = client.create(quarantine('q-wait'), { wait: true });
    let settled = false;
    void waiting.finally(() => (settled = true)).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    await setPhase('q-wait', 'Running');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(settled, false, 'Running is not final');
    await setPhase('q-wait', 'Succeeded');
    const done = await waiting;
    assert.equal(done.status?.phase, 'Succeeded');
    assert.equal(done.status?.message, 'now Succeeded');
    // Already final: a second wait returns at once.
    assert.equal((await client.create(quarantine('q-wait'), { wait: true })).status?.phase, 'Succeeded');
  });

  test('`containment functions --enforcement kubernetes`: a policy invocation creates the action through the API server', async (t) => {
    if (!need(t)) return;
    const c = cp as ControlPlane;
    const dir = mkdtempSync(join(tmpdir(), 'containment-functions-k8s-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const opts = c.kubeConfigFor(c.issueClient(RUNTIME_USER));
    const [cluster, user] = [opts.clusters[0], opts.users[0]];
    assert.ok(cluster && user);
    writeFileSync(
      join(dir, 'runtime.kubeconfig'),
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          { name: 'c', cluster: { server: cluster.server, 'certificate-authority-data': cluster.caData } },
        ],
        users: [
          { name: 'u', user: { 'client-certificate-data': user.certData, 'client-key-data': user.keyData } },
        ],
        contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'c',
      }),
    );
    writeFileSync(
      join(dir, 'sdk.yaml'),
      [
        'scanner: http://127.0.0.1:9',
        'namespaces:',
        '  guest: { cluster: sdk, scannerToken: unused-here, namespaces: [shop] }',
      ].join('\n'),
    );
    const auth = `${randomUUID()}:${randomBytes(24).toString('hex')}`;
    const child = spawn(
      process.execPath,
      [
        join(repoRoot, 'bin', 'containment.js'),
        ...['functions', '--port', '0', '--data-dir', join(dir, 'data')],
        ...['--sdk-config', join(dir, 'sdk.yaml'), '--enforcement', 'kubernetes'],
        ...['--kubeconfig', join(dir, 'runtime.kubeconfig')],
      ],
      {
        env: { ...process.env, CONTAINMENT_FUNCTIONS_AUTH: auth, CONTAINMENT_LOG_LEVEL: 'info' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const apihost = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /"apihost":"(http:\/\/[^"]+)".*function runtime listening/.exec(stderr);
        if (m?.[1]) resolve(m[1]);
      });
      void exited.then(() => reject(new Error(`exited early: ${stderr}`)));
    });
    t.after(() => child.kill('SIGTERM'));
    const call = async (method: string, path: string, body: unknown): Promise<Response> =>
      fetch(`${apihost}/api/v1/namespaces/guest/${path}`, {
        method,
        headers: {
          authorization: `Basic ${Buffer.from(auth).toString('base64')}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify(body),
      });
    const policy = `import { kubernetes } from '@containment/policy-sdk';
      export async function main(p: { pod: string }) {
        const done = await kubernetes.quarantine(p.pod, { reason: 'cli test' });
        return { name: done.name, phase: done.status?.phase ?? null };
      }`;
    // Invoked by hand, without a triggering event naming the pod: only a namespace-wide scope may act.
    const put = await call('PUT', 'actions/isolate?overwrite=true', {
      exec: { kind: 'typescript', code: policy },
      annotations: [{ key: 'containment.dev/enforcement-scope', value: 'namespace' }],
    });
    assert.equal(put.status, 200, await put.text());
    const invoked = await call('POST', 'actions/isolate?blocking=true&result=true', { pod: 'shop/web' });
    const result = (await invoked.json()) as { name?: string };
    assert.equal(invoked.status, 200, JSON.stringify(result));
    assert.match(result.name ?? '', /^quarantine-[0-9a-f]{24}$/);
    const made = (await must('GET', `${ACTIONS}/${result.name}`)) as {
      metadata: { labels: Record<string, string> };
      spec: { requestedBy: string; reason: string };
    };
    assert.equal(made.metadata.labels['containment.dev/node'], 'node-a');
    assert.equal(made.spec.reason, 'cli test');
    assert.match(made.spec.requestedBy, /^policy\/isolate@/);
    // Outside the namespaces the SDK config lists: the activation fails, nothing is created.
    const before = await listNames();
    const refused = await call('POST', 'actions/isolate?blocking=true&result=true', {
      pod: 'kube-system/web',
    });
    assert.notEqual(refused.status, 200);
    assert.match(await refused.text(), /outside the namespaces/);
    assert.deepEqual(await listNames(), before);
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
  });

  describe('kubernetes.label through the PolicySdkHost', () => {
    const credentials: NamespaceCredentials = {
      cluster: 'sdk',
      scannerToken: 'unused',
      enforcerToken: 'unused',
      namespaces: ['shop'],
    };
    /** Function namespace `team` may act in `shop` only; `calls` counts clients made (API use). */
    let calls = 0;
    const host = (): PolicySdkHost =>
      new PolicySdkHost({
        credentials: (ns) => (ns === 'team' ? credentials : undefined),
        findings: () => {
          throw new Error('unused');
        },
        enforcement: (c) => {
          calls++;
          return kubernetesEnforcement(() => runtimeConfig)(c);
        },
      });
    const label = (
      pod: JsonValue,
      labels: JsonValue,
      annotations: Record<string, JsonValue> = {},
    ): Promise<JsonValue> =>
      host().invokeSdk('team', 'pkg/labeller', 'kubernetes.label', [pod, labels], {
        activationId: 'a1',
        annotations,
        scope: { mode: 'namespace' },
      });
    const podLabels = async (name: string): Promise<Record<string, string>> =>
      ((await must('GET', `/api/v1/namespaces/shop/pods/${name}`)) as k8s.V1Pod).metadata?.labels ?? {};

    test('merge-patches the pod labels as the runtime; again changes nothing; a dry run stores nothing', async (t) => {
      if (!need(t)) return;
      const done = (await label('shop/web', { 'security.example.com/flag': 'suspicious', team: 'a' })) as {
        action: string;
        target: { uid: string };
        changed: string[];
        dryRun: boolean;
        status: { phase: string; message: string };
      };
      assert.equal(done.action, 'Label');
      assert.equal(done.target.uid, podUid);
      assert.equal(done.dryRun, false);
      assert.deepEqual(done.changed, ['security.example.com/flag', 'team']);
      assert.equal(done.status.phase, 'Succeeded');
      assert.deepEqual(await podLabels('web'), { 'security.example.com/flag': 'suspicious', team: 'a' });
      const again = (await label('shop/web', { team: 'a' })) as {
        changed: string[];
        status: { message: string };
      };
      assert.deepEqual(again.changed, []);
      assert.match(again.status.message, /already has these labels/);

      const dry = (await label('shop/web', { team: 'b', extra: 'x' }, { [DRY_RUN_ANNOTATION]: true })) as {
        dryRun: boolean;
        changed: string[];
        status: { message: string };
      };
      assert.equal(dry.dryRun, true);
      assert.deepEqual(dry.changed, ['extra', 'team']);
      assert.match(dry.status.message, /dry run: would set extra=x, team=b/);
      assert.deepEqual(await podLabels('web'), { 'security.example.com/flag': 'suspicious', team: 'a' });
    });

    test('refused before any API call: another namespace, containment.dev/ keys, bad syntax, a container', async (t) => {
      if (!need(t)) return;
      const before = await podLabels('web');
      calls = 0;
      await assert.rejects(label('kube-system/coredns', { a: 'b' }), {
        code: ErrorCodes.FORBIDDEN,
        message: /outside the namespaces function namespace team may use/,
      });
      for (const key of ['containment.dev/quarantine', 'node.containment.dev/x']) {
        await assert.rejects(label('shop/web', { [key]: podUid }), {
          code: ErrorCodes.SDK_CALL_INVALID,
          message: /belong to the Containment operator/,
        });
      }
      for (const bad of [
        { 'bad key!': 'v' } as Record<string, string>,
        { ok: 'spaces not allowed' },
        { ['a'.repeat(64)]: 'v' },
        { k: 'v'.repeat(64) },
      ]) {
        await assert.rejects(label('shop/web', bad), { code: ErrorCodes.SDK_CALL_INVALID });
      }
      await assert.rejects(label('shop/web', {}), {
        code: ErrorCodes.SDK_CALL_INVALID,
        message: /no labels/,
      });
      await assert.rejects(label({ namespace: 'shop', name: 'web', container: 'app' }, { a: 'b' }), {
        code: ErrorCodes.SDK_CALL_INVALID,
        message: /labels belong to the pod/,
      });
      assert.equal(calls, 0, 'no client was made: nothing reached the API server');
      assert.deepEqual(await podLabels('web'), before);
    });

    test('a missing pod, credentials without RBAC, and local mode are refused in one line', async (t) => {
      if (!need(t)) return;
      await assert.rejects(label('shop/nope', { a: 'b' }), {
        code: ErrorCodes.ACTION_INVALID,
        message: /target pod shop\/nope does not exist/,
      });
      const nobody = new k8s.KubeConfig();
      nobody.loadFromOptions((cp as ControlPlane).kubeConfigFor((cp as ControlPlane).issueClient('nobody')));
      await assert.rejects(
        new KubernetesEnforcementClient({ kubeConfig: nobody }).label(
          { namespace: 'shop', pod: 'web' },
          { a: 'b' },
          { dryRun: false },
        ),
        { code: ErrorCodes.FORBIDDEN },
      );
      const local = new PolicySdkHost({
        credentials: () => credentials,
        findings: () => {
          throw new Error('unused');
        },
        enforcement: httpEnforcement('http://127.0.0.1:1'),
      });
      await assert.rejects(
        local.invokeSdk('team', 'p', 'kubernetes.label', ['shop/web', { a: 'b' }], {
          activationId: 'a2',
          annotations: {},
          scope: { mode: 'namespace' },
        }),
        {
          code: ErrorCodes.ENFORCEMENT_FAILED,
          message: /labels cannot be changed through the local action API/,
        },
      );
    });
  });

  test('a wait that runs out says so', async (t) => {
    if (!need(t)) return;
    const client = new KubernetesEnforcementClient({ kubeConfig: runtimeConfig, waitTimeoutMs: 700 });
    await assert.rejects(client.create(quarantine('q-slow'), { wait: true }), {
      code: ErrorCodes.ENFORCEMENT_FAILED,
      message: /not finished within 1 s \(phase none yet\)/,
    });
  });
});
