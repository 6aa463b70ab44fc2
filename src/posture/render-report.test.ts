import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evaluateObjects } from './evaluate-objects.js';
import { policyReportsOf } from './policy-report.js';
import { renderPostureReport } from './render-report.js';
import { buildReport } from './score.js';
import type { PostureInput } from './types.js';

function sample() {
  const inputs: PostureInput[] = [
    {
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'p\u001b[2Jwned', namespace: 'a', uid: 'u1' },
        spec: { containers: [{ name: 'c', image: 'nginx', securityContext: { privileged: true } }] },
      },
      source: 'k8s/pod.yaml#0',
    },
    {
      object: {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: 'admins' },
        roleRef: { kind: 'ClusterRole', name: 'cluster-admin' },
        subjects: [{ kind: 'Group', name: 'ops' }],
      },
      source: 'cluster',
    },
  ];
  const findings = evaluateObjects(inputs, { level: 'baseline' });
  return buildReport({ level: 'baseline', findings, namespaces: ['a', 'b'], evaluated: inputs.length });
}

test('json carries the scores and every finding', () => {
  const report = sample();
  const json = JSON.parse(renderPostureReport(report, 'json')) as typeof report;
  assert.equal(json.score, report.score);
  assert.ok(json.score < 100);
  assert.deepEqual(
    json.namespaces.map((n) => n.namespace),
    ['a', 'b'],
  );
  assert.equal(json.findings.length, report.findings.length);
  assert.equal(json.findings[0]!.severity, 'CRITICAL');
});

test('table: terminal control characters from object names are neutralised', () => {
  const table = renderPostureReport(sample(), 'table');
  assert.match(table, /^Posture score: \d+\/100 \(level baseline/);
  assert.ok(!table.includes('\u001b'), 'no raw ESC in the table');
  assert.match(table, /PSS-privileged/);
});

test('sarif: one rule per control, results located at the manifest file or the object', () => {
  const sarif = JSON.parse(renderPostureReport(sample(), 'sarif', '1.2.3')) as {
    version: string;
    runs: {
      tool: { driver: { rules: { id: string }[] } };
      results: {
        ruleId: string;
        ruleIndex: number;
        locations: {
          physicalLocation?: { artifactLocation: { uri: string } };
          logicalLocations: { fullyQualifiedName: string }[];
        }[];
      }[];
    }[];
  };
  assert.equal(sarif.version, '2.1.0');
  const run = sarif.runs[0]!;
  const ids = run.tool.driver.rules.map((r) => r.id);
  assert.equal(new Set(ids).size, ids.length);
  for (const r of run.results) assert.equal(ids[r.ruleIndex], r.ruleId);
  const priv = run.results.find((r) => r.ruleId === 'PSS-privileged')!;
  assert.equal(priv.locations[0]!.physicalLocation?.artifactLocation.uri, 'k8s/pod.yaml');
  const admin = run.results.find((r) => r.ruleId === 'RBAC-CLUSTER-ADMIN-BINDING')!;
  assert.equal(admin.locations[0]!.physicalLocation, undefined);
  assert.equal(
    admin.locations[0]!.logicalLocations[0]!.fullyQualifiedName,
    'ClusterRoleBinding/admins:roleRef.name',
  );
});

test('policy reports: one per namespace (clean ones empty) plus a ClusterPolicyReport', () => {
  const reports = policyReportsOf(sample(), new Date('2026-01-01T00:00:00Z'));
  assert.deepEqual(
    reports.map((r) => `${r.kind} ${r.metadata.namespace ?? '-'} ${r.summary.fail}`),
    ['PolicyReport a ' + reports[0]!.results.length, 'PolicyReport b 0', 'ClusterPolicyReport - 1'],
  );
  const result = reports[0]!.results.find((r) => r.policy === 'PSS-privileged')!;
  assert.equal(result.severity, 'critical');
  assert.equal(result.result, 'fail');
  assert.deepEqual(result.resources, [
    { kind: 'Pod', name: 'p\u001b[2Jwned', apiVersion: 'v1', namespace: 'a', uid: 'u1' },
  ]);
  assert.deepEqual(result.timestamp, { seconds: 1767225600, nanos: 0 });
});

test('streamed json and sarif are exactly JSON.stringify(…, null, 2) of the whole document', () => {
  const report = sample();
  assert.equal(renderPostureReport(report, 'json'), `${JSON.stringify(report, null, 2)}\n`);
  const empty = { ...report, findings: [] };
  assert.equal(renderPostureReport(empty, 'json'), `${JSON.stringify(empty, null, 2)}\n`);
  const sarif = JSON.parse(renderPostureReport(report, 'sarif')) as { runs: { results: unknown[] }[] };
  assert.equal(sarif.runs[0]!.results.length, report.findings.length);
});

test('policy reports split into numbered parts past the per-object limit', () => {
  const report = sample();
  const inA = report.findings.filter((f) => f.object.namespace === 'a').length;
  assert.ok(inA >= 3, `${inA} findings in a`);
  const parts = policyReportsOf(report, new Date(), 2).filter((r) => r.metadata.namespace === 'a');
  assert.deepEqual(
    parts.map((r) => r.metadata.name),
    Array.from({ length: Math.ceil(inA / 2) }, (_, i) =>
      i === 0 ? 'containment-posture' : `containment-posture-${i + 1}`,
    ),
  );
  assert.equal(
    parts.reduce((n, r) => n + r.results.length, 0),
    inA,
  );
  for (const r of parts) assert.equal(r.summary.fail, r.results.length);
});
