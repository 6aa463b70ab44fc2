/**
 * The admission gate end to end: a real kube-apiserver calls `containment admission` (HTTPS, test
 * CA in the caBundle) registered by a ValidatingWebhookConfiguration, and the gate asks a real
 * scanner about the images. Also applies `containment harden`'s patch through the API server.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { hardenWorkload } from '../posture/harden.js';
import { insecureDeployment } from '../testing/harden-fixture.js';
import { checkPodSecurity } from '../posture/pod-security.js';
import { metadataPathOf, podTemplateOf } from '../posture/workload-pods.js';
import { binariesWhat, findBinaries } from '../testing/k8s/binaries.js';
import { createTestServingCertificate, startControlPlane } from '../testing/k8s/control-plane.js';
import type { ControlPlane, TestServingCertificate } from '../testing/k8s/control-plane.js';
import { repoRoot, requireOrSkip } from '../testing/shared-data.js';
import { DEFAULT_THRESHOLDS } from '../matching/types.js';
import { httpsCall } from '../testing/https-call.js';
import type { HttpsAnswer } from '../testing/https-call.js';
import { runAdmissionServer } from './run-admission.js';
import type { RunningAdmission } from './run-admission.js';
import {
  CLEAN_IMAGE,
  osvNpmDir,
  startScannerFixture,
  UNSCANNED_IMAGE,
  VULNERABLE_IMAGE,
} from './scanner-fixture.test-helper.js';
import type { ScannerFixture } from './scanner-fixture.test-helper.js';

const binaries = findBinaries();
const haveData = existsSync(osvNpmDir);
const what = `${binariesWhat} and OSV records in ${osvNpmDir}`;

const NAMESPACES = ['gate-deny', 'gate-warn', 'gate-down-fail', 'gate-down-ignore', 'harden'] as const;

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function podBody(name: string, image: string, extra: object = {}): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: { nodeName: 'node-1', containers: [{ name: 'app', image }], ...extra },
  };
}

function deploymentBody(name: string, image: string): object {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image }] } },
    },
  };
}

function statusMessage(answer: HttpsAnswer): string {
  return String((answer.json as { message?: unknown } | undefined)?.message ?? answer.text);
}

/** The `Warning: 299 - "…"` headers the API server relays from webhooks, as kubectl prints them. */
function warningsOf(answer: HttpsAnswer): string[] {
  const raw = answer.headers.warning;
  const text = raw === undefined ? '' : Array.isArray(raw) ? raw.join(', ') : raw;
  // Several warnings may share one header, comma-separated, each `299 - "<escaped text>"`.
  return [...text.matchAll(/\d{3} \S+ "((?:[^"\\]|\\.)*)"/g)].map((m) =>
    (m[1] ?? '').replace(/\\(.)/g, '$1'),
  );
}

describe('admission webhook against a real kube-apiserver', () => {
  let cp: ControlPlane;
  let scanner: ScannerFixture;
  let cert: TestServingCertificate;
  let deny: RunningAdmission;
  let warn: RunningAdmission;

  const api = (method: string, path: string, body?: unknown, contentType?: string): Promise<HttpsAnswer> =>
    httpsCall(new URL(path, cp.server).href, {
      method,
      ...(body === undefined ? {} : { body }),
      ...(contentType ? { contentType } : {}),
      ca: cp.caPem,
      cert: cp.admin.certPem,
      key: cp.admin.keyPem,
    });

  before(async () => {
    if (!binaries || !haveData) return;
    cert = createTestServingCertificate();
    [cp, scanner] = await Promise.all([
      startControlPlane({ binaries, name: 'admission' }),
      startScannerFixture(),
    ]);
    const common = {
      host: '127.0.0.1',
      port: 0,
      tls: { cert: cert.certPem, key: cert.keyPem },
      scanner: { server: scanner.url, token: scanner.viewerToken, thresholds: DEFAULT_THRESHOLDS },
    };
    const policy = {
      level: 'baseline' as const,
      denyUnknownImages: true,
      allowedRegistries: ['registry.local'],
    };
    [deny, warn] = await Promise.all([
      runAdmissionServer({ ...common, policy: { ...policy, mode: 'deny' } }),
      runAdmissionServer({ ...common, policy: { ...policy, mode: 'warn' } }),
    ]);
    for (const name of NAMESPACES) {
      const res = await api('POST', '/api/v1/namespaces', { metadata: { name } });
      assert.equal(res.status, 201, res.text);
    }
    const down = `https://127.0.0.1:${await closedPort()}/validate`;
    const webhook = (
      name: string,
      namespace: string,
      url: string,
      failurePolicy: 'Fail' | 'Ignore',
    ): object => ({
      name: `${name}.admission.containment.dev`,
      clientConfig: { url, caBundle: Buffer.from(cert.caPem).toString('base64') },
      rules: [
        {
          operations: ['CREATE', 'UPDATE'],
          apiGroups: ['', 'apps', 'batch'],
          apiVersions: ['v1'],
          resources: [
            'pods',
            'pods/ephemeralcontainers',
            'deployments',
            'replicasets',
            'statefulsets',
            'daemonsets',
            'jobs',
            'cronjobs',
            'replicationcontrollers',
          ],
          scope: 'Namespaced',
        },
      ],
      failurePolicy,
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      timeoutSeconds: 5,
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
    });
    const config = await api(
      'POST',
      '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations',
      {
        metadata: { name: 'containment-admission-test' },
        webhooks: [
          webhook('deny', 'gate-deny', `${deny.url}/validate`, 'Fail'),
          webhook('warn', 'gate-warn', `${warn.url}/validate`, 'Fail'),
          webhook('down-fail', 'gate-down-fail', down, 'Fail'),
          webhook('down-ignore', 'gate-down-ignore', down, 'Ignore'),
        ],
      },
    );
    assert.equal(config.status, 201, config.text);
    // The API server learns of webhook configurations through a watch: wait until it calls ours.
    for (let i = 0; i < 100; i++) {
      const probe = await api(
        'POST',
        '/api/v1/namespaces/gate-deny/pods?dryRun=All',
        podBody('probe', VULNERABLE_IMAGE),
      );
      if (probe.status === 403) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the API server never called the webhook');
  });

  after(async () => {
    await Promise.all([deny?.close(), warn?.close()]);
    await Promise.all([cp?.stop(), scanner?.close()]);
  });

  it('refuses a Pod with a vulnerable image, saying why; admits a clean one', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined && haveData, what)) return;
    const refused = await api(
      'POST',
      '/api/v1/namespaces/gate-deny/pods',
      podBody('vulnerable', VULNERABLE_IMAGE),
    );
    assert.equal(refused.status, 403, refused.text);
    const message = statusMessage(refused);
    assert.match(message, /admission webhook "deny\.admission\.containment\.dev" denied the request/);
    assert.match(
      message,
      /image "registry\.local\/shop\/vulnerable:1\.0": latest scan \(.+\) fails the compliance thresholds: 1 CRITICAL > 0 allowed/,
    );
    assert.equal(
      (await api('GET', '/api/v1/namespaces/gate-deny/pods/vulnerable')).status,
      404,
      'nothing was stored',
    );

    const admitted = await api('POST', '/api/v1/namespaces/gate-deny/pods', podBody('clean', CLEAN_IMAGE));
    assert.equal(admitted.status, 201, admitted.text);
    assert.deepEqual(warningsOf(admitted), []);
  });

  it('refuses a Deployment with a vulnerable image; admits it with a clean one', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined && haveData, what)) return;
    const path = '/apis/apps/v1/namespaces/gate-deny/deployments';
    const refused = await api('POST', path, deploymentBody('web-vulnerable', VULNERABLE_IMAGE));
    assert.equal(refused.status, 403, refused.text);
    assert.match(statusMessage(refused), /vulnerable:1\.0.*1 CRITICAL > 0 allowed/);
    const admitted = await api('POST', path, deploymentBody('web', CLEAN_IMAGE));
    assert.equal(admitted.status, 201, admitted.text);
    // Rolling the admitted Deployment to the vulnerable image is refused too.
    const rollout = await api(
      'PATCH',
      `${path}/web`,
      { spec: { template: { spec: { containers: [{ name: 'app', image: VULNERABLE_IMAGE }] } } } },
      'application/strategic-merge-patch+json',
    );
    assert.equal(rollout.status, 403, rollout.text);
  });

  it('attack: a vulnerable image slipped in as an ephemeral debug container is refused', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined && haveData, what)) return;
    const created = await api('POST', '/api/v1/namespaces/gate-deny/pods', podBody('target', CLEAN_IMAGE));
    assert.equal(created.status, 201, created.text);
    const debug = (image: string): object => ({
      spec: { ephemeralContainers: [{ name: `dbg-${image.length}`, image, targetContainerName: 'app' }] },
    });
    const path = '/api/v1/namespaces/gate-deny/pods/target/ephemeralcontainers';
    const refused = await api(
      'PATCH',
      path,
      debug(VULNERABLE_IMAGE),
      'application/strategic-merge-patch+json',
    );
    assert.equal(refused.status, 403, refused.text);
    assert.match(statusMessage(refused), /vulnerable:1\.0.*1 CRITICAL > 0 allowed/);
    const allowed = await api('PATCH', path, debug(CLEAN_IMAGE), 'application/strategic-merge-patch+json');
    assert.equal(allowed.status, 200, allowed.text);
  });

  it('refuses unscanned images, disallowed registries and Pod Security violations, one line per reason', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined && haveData, what)) return;
    const refused = await api(
      'POST',
      '/api/v1/namespaces/gate-deny/pods',
      podBody('many-problems', CLEAN_IMAGE, {
        hostPID: true,
        initContainers: [{ name: 'init', image: UNSCANNED_IMAGE }],
        containers: [
          { name: 'app', image: CLEAN_IMAGE },
          { name: 'proxy', image: 'docker.io/library/nginx:1.27', securityContext: { privileged: true } },
        ],
      }),
    );
    assert.equal(refused.status, 403, refused.text);
    const message = statusMessage(refused);
    for (const expected of [
      `image "${UNSCANNED_IMAGE}" has never been scanned (unknown images are denied)`,
      'image "docker.io/library/nginx:1.27": registry docker.io is not allowed (allowed: registry.local)',
      'Pod Security "baseline": spec.hostPID: pod must not set hostPID=true',
      'Pod Security "baseline": spec.containers[1].securityContext.privileged: container "proxy" must not set securityContext.privileged=true',
    ]) {
      assert.ok(message.includes(expected), `missing "${expected}" in:\n${message}`);
    }
    // A posture violation alone, with clean images, is enough.
    const privileged = await api(
      'POST',
      '/api/v1/namespaces/gate-deny/pods',
      podBody('privileged', CLEAN_IMAGE, {
        containers: [{ name: 'app', image: CLEAN_IMAGE, securityContext: { privileged: true } }],
      }),
    );
    assert.equal(privileged.status, 403, privileged.text);
    assert.match(statusMessage(privileged), /Pod Security "baseline".*privileged/);
  });

  it('warn mode admits the vulnerable Pod and the client sees the warnings', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined && haveData, what)) return;
    const admitted = await api(
      'POST',
      '/api/v1/namespaces/gate-warn/pods',
      podBody('vulnerable', VULNERABLE_IMAGE, { hostIPC: true }),
    );
    assert.equal(admitted.status, 201, admitted.text);
    const warnings = warningsOf(admitted);
    assert.equal(warnings.length, 2, JSON.stringify(admitted.headers.warning));
    assert.match(warnings[0] ?? '', /vulnerable:1\.0.*1 CRITICAL > 0 allowed/);
    assert.equal(warnings[1], 'Pod Security "baseline": spec.hostIPC: pod must not set hostIPC=true');
  });

  it('webhook down: failurePolicy Fail refuses, Ignore admits', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined && haveData, what)) return;
    const failed = await api('POST', '/api/v1/namespaces/gate-down-fail/pods', podBody('p', CLEAN_IMAGE));
    assert.equal(failed.status, 500, failed.text);
    assert.match(statusMessage(failed), /failed calling webhook "down-fail\.admission\.containment\.dev"/);
    const ignored = await api(
      'POST',
      '/api/v1/namespaces/gate-down-ignore/pods',
      podBody('p', VULNERABLE_IMAGE),
    );
    assert.equal(ignored.status, 201, ignored.text);
  });

  it('a stopped gate behaves as its failurePolicy says', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined && haveData, what)) return;
    // The warn gate (failurePolicy Fail) goes away: its namespace accepts nothing more.
    await warn.close();
    const refused = await api(
      'POST',
      '/api/v1/namespaces/gate-warn/pods',
      podBody('after-stop', CLEAN_IMAGE),
    );
    assert.equal(refused.status, 500, refused.text);
    assert.match(statusMessage(refused), /failed calling webhook "warn\.admission\.containment\.dev"/);
  });

  it('the gate itself: healthz, malformed reviews get 400 with a code, TLS from the test CA only', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined && haveData, what)) return;
    const health = await httpsCall(`${deny.url}/healthz`, { ca: cert.caPem });
    assert.deepEqual([health.status, health.json], [200, { status: 'ok' }]);
    for (const body of [
      '{not json',
      { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: {} },
      { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' },
      {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { uid: 'x', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'PATCH' },
      },
    ]) {
      const res = await httpsCall(`${deny.url}/validate`, { ca: cert.caPem, body });
      assert.equal(res.status, 400, res.text);
      assert.equal((res.json as { error: { code: string } }).error.code, 'ADMISSION_REVIEW_INVALID');
    }
    // A client trusting another CA (the API server's) refuses the gate's certificate.
    await assert.rejects(
      httpsCall(`${deny.url}/healthz`, { ca: cp.caPem }),
      /self[- ]signed|unable to verify|certificate/i,
    );
  });

  it('harden: the API server accepts the patch and the result passes restricted', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined && haveData, what)) return;
    const fixture = insecureDeployment('harden');
    const created = await api('POST', '/apis/apps/v1/namespaces/harden/deployments', fixture);
    assert.equal(created.status, 201, created.text);
    const { patch } = hardenWorkload(created.json);
    const patched = await api(
      'PATCH',
      '/apis/apps/v1/namespaces/harden/deployments/legacy-web',
      patch,
      'application/strategic-merge-patch+json',
    );
    assert.equal(patched.status, 200, patched.text);
    const template = podTemplateOf(patched.json);
    assert.ok(template);
    const violations = checkPodSecurity(
      'restricted',
      { ...(template.metadata ? { metadata: template.metadata } : {}), spec: template.spec },
      { specPath: template.specPath, metadataPath: metadataPathOf(template.specPath) },
    );
    assert.deepEqual(violations, []);
    // Volumes and mounts still line up, and NET_BIND_SERVICE stayed where it was added.
    const spec = template.spec as {
      containers: { name: string; securityContext: { capabilities: { add?: string[] } } }[];
      volumes: { name: string; emptyDir?: object }[];
    };
    assert.deepEqual(spec.volumes.find((v) => v.name === 'host-logs')?.emptyDir, {});
    assert.deepEqual(spec.containers.find((c) => c.name === 'web')?.securityContext.capabilities.add, [
      'NET_BIND_SERVICE',
    ]);
  });

  it('harden --kubeconfig reads the workload from the cluster', async (t) => {
    if (!requireOrSkip(t, binaries !== undefined && haveData, what)) return;
    const fixture = {
      ...insecureDeployment('harden'),
      metadata: { name: 'from-cluster', namespace: 'harden' },
    };
    assert.equal((await api('POST', '/apis/apps/v1/namespaces/harden/deployments', fixture)).status, 201);
    const run = (args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, [join(repoRoot, 'bin', 'containment.js'), ...args], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        child.once('close', (status) => resolve({ status, stdout, stderr }));
      });
    const [found, missing] = await Promise.all([
      run([
        'harden',
        '--kubeconfig',
        cp.kubeconfigPath,
        'harden/deployments/from-cluster',
        '--format',
        'json',
      ]),
      run(['harden', '--kubeconfig', cp.kubeconfigPath, 'harden/deployment/absent']),
    ]);
    assert.equal(found.status, 0, found.stderr);
    const [result] = JSON.parse(found.stdout) as {
      kind: string;
      name: string;
      namespace: string;
      patch: object;
    }[];
    assert.deepEqual(
      [result?.kind, result?.name, result?.namespace],
      ['Deployment', 'from-cluster', 'harden'],
    );
    assert.deepEqual(result?.patch, hardenWorkload(fixture).patch);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /^error\[TARGET_NOT_FOUND\]: Deployment harden\/absent not found\n$/);
  });
});
