/**
 * The hardened reference Deployment scores 100, and every control in the catalogue fires on a
 * minimal bad change of it (or a minimal bad object), at the path it names.
 */
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CONTROLS } from './controls.js';
import { evaluateContainer } from './evaluate-containers.js';
import { evaluateObjects } from './evaluate-objects.js';
import type { ImageVerdict } from './image-scan-verdict.js';
import { loadManifests } from './manifests/load-manifests.js';
import type { PodSecurityLevel } from './pod-security.js';
import { buildReport } from './score.js';
import type { PostureFinding, PostureInput } from './types.js';

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'hardened-deployment.yaml');
const ALLOWED = ['registry.example.com/acme'];
const DIGEST = 'sha256:3f1e5b0c4d2a6e8f9a7b1c3d5e7f9a0b2c4d6e8f0a1b3c5d7e9f1a2b3c4d5e6f';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function hardened(): PostureInput[] {
  return loadManifests([FIXTURE]);
}
function find(inputs: PostureInput[], kind: string, name?: string): Any {
  const hit = inputs.find(
    (i) => i.object.kind === kind && (name === undefined || (i.object.metadata as Any).name === name),
  );
  assert.ok(hit, `${kind} ${name ?? ''} in fixture`);
  return hit.object as Any;
}
const podSpec = (inputs: PostureInput[]): Any => find(inputs, 'Deployment').spec.template.spec;
const web = (inputs: PostureInput[]): Any => podSpec(inputs).containers[0];

function evaluate(
  inputs: PostureInput[],
  level: PodSecurityLevel = 'restricted',
  verdicts?: Map<string, ImageVerdict>,
): PostureFinding[] {
  return evaluateObjects(inputs, {
    level,
    allowedRegistries: ALLOWED,
    ...(verdicts ? { imageVerdicts: verdicts } : {}),
  });
}

test('the hardened reference Deployment scores 100 with no findings', () => {
  const inputs = hardened();
  assert.equal(inputs.length, 7);
  const findings = evaluate(inputs);
  assert.deepEqual(
    findings.map((f) => `${f.control} ${f.path}`),
    [],
  );
  const report = buildReport({
    level: 'restricted',
    findings,
    namespaces: ['shop'],
    evaluated: inputs.length,
  });
  assert.equal(report.score, 100);
  assert.deepEqual(report.namespaces, [{ namespace: 'shop', score: 100, findings: 0 }]);
});

interface Case {
  control: string;
  path?: string;
  level?: PodSecurityLevel;
  change?: (inputs: PostureInput[]) => void;
  verdict?: ImageVerdict;
  container?: (doc: Any) => void;
}

const bindingTo = (kind: 'ClusterRoleBinding' | 'RoleBinding', role: string): Any => ({
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind,
  metadata: { name: `to-${role}`, ...(kind === 'RoleBinding' ? { namespace: 'shop' } : {}) },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
  subjects: [{ kind: 'User', name: 'mallory' }],
});
const add = (object: Any) => (inputs: PostureInput[]) => void inputs.push({ object });
const scan = {
  image: 'x',
  scanId: 1,
  scanTime: '2026-01-01T00:00:00Z',
  severityCounts: { CRITICAL: 3, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 },
};

const T = 'spec.template.spec';
const C0 = `${T}.containers[0]`;
const CASES: Case[] = [
  {
    control: 'PSS-privileged',
    path: `${C0}.securityContext.privileged`,
    change: (i) => (web(i).securityContext.privileged = true),
  },
  { control: 'PSS-hostNamespaces', path: `${T}.hostPID`, change: (i) => (podSpec(i).hostPID = true) },
  {
    control: 'PSS-hostPathVolumes',
    level: 'baseline',
    path: `${T}.volumes[1].hostPath`,
    change: (i) => podSpec(i).volumes.push({ name: 'h', hostPath: { path: '/' } }),
  },
  {
    control: 'PSS-hostPorts',
    path: `${C0}.ports[0].hostPort`,
    change: (i) => (web(i).ports[0].hostPort = 8080),
  },
  {
    control: 'PSS-capabilities_baseline',
    level: 'baseline',
    path: `${C0}.securityContext.capabilities.add[0]`,
    change: (i) => (web(i).securityContext.capabilities.add = ['SYS_ADMIN']),
  },
  {
    control: 'PSS-appArmorProfile',
    path: `${C0}.securityContext.appArmorProfile.type`,
    change: (i) => (web(i).securityContext.appArmorProfile = { type: 'Unconfined' }),
  },
  {
    control: 'PSS-seLinuxOptions',
    path: `${T}.securityContext.seLinuxOptions.user`,
    change: (i) => (podSpec(i).securityContext.seLinuxOptions = { user: 'system_u' }),
  },
  {
    control: 'PSS-procMount',
    level: 'baseline',
    path: `${C0}.securityContext.procMount`,
    change: (i) => (web(i).securityContext.procMount = 'Unmasked'),
  },
  {
    control: 'PSS-seccompProfile_baseline',
    level: 'baseline',
    path: `${T}.securityContext.seccompProfile.type`,
    change: (i) => (podSpec(i).securityContext.seccompProfile.type = 'Unconfined'),
  },
  {
    control: 'PSS-sysctls',
    path: `${T}.securityContext.sysctls[0].name`,
    change: (i) => (podSpec(i).securityContext.sysctls = [{ name: 'kernel.msgmax', value: '1' }]),
  },
  {
    control: 'PSS-windowsHostProcess',
    path: `${C0}.securityContext.windowsOptions.hostProcess`,
    change: (i) => (web(i).securityContext.windowsOptions = { hostProcess: true }),
  },
  {
    control: 'PSS-hostProbesAndHostLifecycle',
    path: `${C0}.livenessProbe.httpGet.host`,
    change: (i) => (web(i).livenessProbe = { httpGet: { host: '169.254.169.254', port: 80 } }),
  },
  {
    control: 'PSS-restrictedVolumes',
    path: `${T}.volumes[1].nfs`,
    change: (i) => podSpec(i).volumes.push({ name: 'n', nfs: { server: 'x', path: '/' } }),
  },
  {
    control: 'PSS-allowPrivilegeEscalation',
    path: `${C0}.securityContext.allowPrivilegeEscalation`,
    change: (i) => delete web(i).securityContext.allowPrivilegeEscalation,
  },
  {
    control: 'PSS-capabilities_restricted',
    path: `${C0}.securityContext.capabilities.drop`,
    change: (i) => (web(i).securityContext.capabilities.drop = []),
  },
  {
    control: 'PSS-runAsNonRoot',
    path: `${T}.securityContext.runAsNonRoot`,
    change: (i) => (podSpec(i).securityContext.runAsNonRoot = false),
  },
  {
    control: 'PSS-runAsUser',
    path: `${C0}.securityContext.runAsUser`,
    change: (i) => (web(i).securityContext.runAsUser = 0),
  },
  {
    control: 'PSS-seccompProfile_restricted',
    path: `${C0}.securityContext.seccompProfile`,
    change: (i) => delete podSpec(i).securityContext.seccompProfile,
  },
  {
    control: 'PSS-procMount_restricted',
    path: `${C0}.securityContext.procMount`,
    change: (i) => (web(i).securityContext.procMount = 'Unmasked'),
  },
  {
    control: 'RES-NO-CPU-LIMIT',
    path: `${C0}.resources.limits.cpu`,
    change: (i) => delete web(i).resources.limits.cpu,
  },
  {
    control: 'RES-NO-MEMORY-LIMIT',
    path: `${T}.initContainers[0].resources.limits.memory`,
    change: (i) => delete podSpec(i).initContainers[0].resources.limits,
  },
  {
    control: 'NS-NO-RESOURCEQUOTA',
    path: '',
    change: (i) =>
      i.splice(
        i.findIndex((x) => x.object.kind === 'ResourceQuota'),
        1,
      ),
  },
  {
    control: 'NS-NO-NETWORKPOLICY',
    path: '',
    change: (i) => {
      for (let n = 0; n < 2; n++)
        i.splice(
          i.findIndex((x) => x.object.kind === 'NetworkPolicy'),
          1,
        );
    },
  },
  {
    control: 'NET-NODEPORT-SERVICE',
    path: 'spec.type',
    change: (i) => (find(i, 'Service').spec.type = 'NodePort'),
  },
  {
    control: 'NET-LOADBALANCER-SERVICE',
    path: 'spec.type',
    change: (i) => (find(i, 'Service').spec.type = 'LoadBalancer'),
  },
  {
    control: 'RBAC-WILDCARD-VERB',
    path: 'rules[0].verbs',
    change: add({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'r', namespace: 'shop' },
      rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['*'] }],
    }),
  },
  {
    control: 'RBAC-WILDCARD-RESOURCE',
    path: 'rules[0].resources',
    change: add({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'r' },
      rules: [{ apiGroups: ['apps'], resources: ['*'], verbs: ['get'] }],
    }),
  },
  {
    control: 'RBAC-CLUSTER-ADMIN-BINDING',
    path: 'roleRef.name',
    change: add(bindingTo('RoleBinding', 'cluster-admin')),
  },
  {
    control: 'RBAC-SECRETS-CLUSTER-WIDE',
    path: 'roleRef.name',
    change: (i) => {
      i.push({
        object: {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRole',
          metadata: { name: 'secret-reader' },
          rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['list'] }],
        },
      });
      i.push({ object: bindingTo('ClusterRoleBinding', 'secret-reader') });
    },
  },
  {
    control: 'RBAC-DEFAULT-SA-TOKEN',
    path: `${T}.automountServiceAccountToken`,
    change: (i) => {
      delete podSpec(i).serviceAccountName;
      delete podSpec(i).automountServiceAccountToken;
    },
  },
  {
    control: 'IMG-INVALID-REFERENCE',
    path: `${C0}.image`,
    change: (i) => (web(i).image = 'Registry.Example.com/ACME/web::1'),
  },
  {
    control: 'IMG-LATEST-TAG',
    path: `${C0}.image`,
    change: (i) => (web(i).image = 'registry.example.com/acme/web:latest'),
  },
  {
    control: 'IMG-NO-TAG-OR-DIGEST',
    path: `${C0}.image`,
    change: (i) => (web(i).image = 'registry.example.com/acme/web'),
  },
  {
    control: 'IMG-REGISTRY-NOT-ALLOWED',
    path: `${C0}.image`,
    change: (i) => (web(i).image = `nginx:1.27@${DIGEST}`),
  },
  {
    control: 'IMG-NOT-DIGEST-PINNED',
    path: `${C0}.image`,
    change: (i) => (web(i).image = 'registry.example.com/acme/web:1.4.2'),
  },
  {
    control: 'IMG-SCAN-FAILED',
    path: `${C0}.image`,
    verdict: { status: 'fail', image: 'x', scan, reasons: ['3 CRITICAL > 0 allowed'] },
  },
  {
    control: 'IMG-NOT-SCANNED',
    path: `${C0}.image`,
    verdict: { status: 'unknown', image: 'x', unreachable: false, reason: 'never scanned' },
  },
  {
    control: 'CTR-PRIVILEGED',
    path: 'HostConfig.Privileged',
    container: (d) => (d.HostConfig.Privileged = true),
  },
  {
    control: 'CTR-ADDED-CAPABILITIES',
    path: 'HostConfig.CapAdd',
    container: (d) => (d.HostConfig.CapAdd = ['CAP_NET_ADMIN']),
  },
  {
    control: 'CTR-NO-SECCOMP',
    path: 'HostConfig.SecurityOpt',
    container: (d) => (d.HostConfig.SecurityOpt = ['seccomp=unconfined']),
  },
  {
    control: 'CTR-NO-USERNS',
    path: 'HostConfig.UsernsMode',
    container: (d) => (d.HostConfig.UsernsMode = 'host'),
  },
  {
    control: 'CTR-WRITABLE-ROOTFS',
    path: 'HostConfig.ReadonlyRootfs',
    container: (d) => (d.HostConfig.ReadonlyRootfs = false),
  },
  { control: 'CTR-NO-MEMORY-LIMIT', path: 'HostConfig.Memory', container: (d) => (d.HostConfig.Memory = 0) },
  {
    control: 'CTR-NO-PIDS-LIMIT',
    path: 'HostConfig.PidsLimit',
    container: (d) => delete d.HostConfig.PidsLimit,
  },
];

function hardenedContainer(): Any {
  return {
    Id: 'a'.repeat(64),
    Name: '/web',
    HostConfig: {
      Privileged: false,
      CapAdd: null,
      SecurityOpt: [],
      UsernsMode: 'auto',
      ReadonlyRootfs: true,
      Memory: 268435456,
      PidsLimit: 512,
    },
  };
}

test('every control in the catalogue has a case below', () => {
  assert.deepEqual(
    Object.keys(CONTROLS).filter((id) => !CASES.some((c) => c.control === id)),
    [],
  );
});

for (const c of CASES) {
  test(`${c.control} fires on a minimal bad object`, () => {
    let findings: PostureFinding[];
    if (c.container) {
      assert.deepEqual(evaluateContainer(hardenedContainer(), { userNamespaceByDefault: false }), []);
      const doc = hardenedContainer();
      c.container(doc);
      findings = evaluateContainer(doc, { userNamespaceByDefault: false });
    } else {
      const inputs = hardened();
      assert.deepEqual(evaluate(inputs, c.level), [], 'hardened baseline is clean at this level');
      c.change?.(inputs);
      const verdicts = c.verdict ? new Map([[web(inputs).image as string, c.verdict]]) : undefined;
      findings = evaluate(inputs, c.level, verdicts);
    }
    const hits = findings.filter((f) => f.control === c.control);
    assert.ok(
      hits.length > 0,
      `${c.control} did not fire; got ${findings.map((f) => f.control).join(', ') || 'nothing'}`,
    );
    if (c.path !== undefined)
      assert.ok(
        hits.some((f) => f.path === c.path),
        `${c.control} paths: ${hits.map((f) => f.path).join(', ')}`,
      );
    const def = CONTROLS[c.control]!;
    for (const f of hits) {
      assert.equal(f.severity, def.severity);
      assert.equal(f.remediation, def.remediation);
      assert.ok(f.message.length > 0 && !f.message.includes('\n'));
      assert.ok(f.object.kind && f.object.name !== undefined);
    }
  });
}

test('built-in RBAC defaults (kubernetes.io/bootstrapping) are not findings, user bindings of them are', () => {
  const bootstrap = { labels: { 'kubernetes.io/bootstrapping': 'rbac-defaults' } };
  const inputs = hardened();
  inputs.push({
    object: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'cluster-admin', ...bootstrap },
      rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
    },
  });
  inputs.push({
    object: {
      ...bindingTo('ClusterRoleBinding', 'cluster-admin'),
      metadata: { name: 'cluster-admin', ...bootstrap },
    },
  });
  assert.deepEqual(evaluate(inputs), []);
  inputs.push({ object: bindingTo('ClusterRoleBinding', 'edit') }); // built-in `edit` reads secrets
  assert.deepEqual(
    evaluate(inputs).map((f) => f.control),
    ['RBAC-SECRETS-CLUSTER-WIDE'],
  );
});

test('pods owned by a listed workload are judged once, through the workload', () => {
  const inputs = hardened();
  const deployment = find(inputs, 'Deployment');
  deployment.metadata.uid = 'dep-uid';
  web(inputs).securityContext.privileged = true;
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'web-1',
      namespace: 'shop',
      ownerReferences: [{ controller: true, uid: 'dep-uid', kind: 'Deployment', name: 'web' }],
    },
    spec: structuredClone(podSpec(inputs)),
  };
  inputs.push({ object: pod });
  assert.equal(evaluate(inputs).filter((f) => f.control === 'PSS-privileged').length, 1);
  pod.metadata.ownerReferences[0]!.uid = 'someone-else';
  assert.equal(evaluate(inputs).filter((f) => f.control === 'PSS-privileged').length, 2);
});

test('score: 100 minus RISK_WEIGHTS per finding, per namespace and overall, never below 0', () => {
  const inputs = hardened();
  web(inputs).securityContext.privileged = true; // CRITICAL 10
  find(inputs, 'Service').spec.type = 'NodePort'; // LOW 1
  inputs.push({ object: bindingTo('ClusterRoleBinding', 'cluster-admin') }); // CRITICAL 10, cluster-scoped
  const findings = evaluate(inputs);
  const report = buildReport({
    level: 'restricted',
    findings,
    namespaces: ['shop', 'empty'],
    evaluated: inputs.length,
  });
  assert.equal(report.score, 100 - 21);
  assert.deepEqual(report.namespaces, [
    { namespace: 'shop', score: 89, findings: 2 },
    { namespace: 'empty', score: 100, findings: 0 },
  ]);
  assert.equal(report.counts.CRITICAL, 2);
  const many = Array.from({ length: 20 }, () => findings[0]!);
  assert.equal(buildReport({ level: 'restricted', findings: many, namespaces: [], evaluated: 1 }).score, 0);
});

test('malformed pod specs never throw', () => {
  for (const spec of [
    null,
    3,
    'x',
    [],
    { containers: 'x' },
    { containers: [null, 1, { securityContext: 'x', ports: [null] }] },
    { volumes: [null, {}], securityContext: { sysctls: [null] } },
  ]) {
    const object = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'x' }, spec };
    assert.doesNotThrow(() => evaluateObjects([{ object }], { level: 'restricted' }));
  }
});
