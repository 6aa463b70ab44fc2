import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCodes } from './errors.js';
import { parseSecurityAction } from './enforcement/security-action.js';
import { podRefSchema } from './functions/host/pod-ref.js';
import { findingsQuerySchema, workloadQuerySchema } from './scanner/schemas.js';
import { isWorkloadName } from './workload-names.js';

const ATTACKS = [
  '../../x',
  '..',
  '.',
  '',
  'a/b',
  '/etc',
  'a..b',
  '-a',
  'a-',
  'a.',
  'x\u0000',
  '*',
  'a b',
  'x'.repeat(254),
];
const GOOD = [
  'web-1',
  'kube-system',
  'api.v2',
  'web_1',
  'containment-enf-1a2b_web.v2',
  'A1',
  'x'.repeat(253),
];

test('the workload-name rule: DNS-1123 names and engine names pass, paths and patterns do not', () => {
  for (const s of GOOD) assert.equal(isWorkloadName(s), true, s);
  for (const s of ATTACKS) assert.equal(isWorkloadName(s), false, JSON.stringify(s));
});

test('every entry point refuses a path-shaped name before any lookup', () => {
  for (const bad of ATTACKS) {
    for (const field of ['namespace', 'pod', 'container'] as const) {
      const target = { namespace: 'local', pod: 'web-1', [field]: bad };
      assert.throws(
        () => parseSecurityAction({ metadata: { name: 'n-1' }, spec: { target, action: 'Quarantine' } }),
        (e: Error & { code?: string }) =>
          e.code === ErrorCodes.ACTION_INVALID && e.message.includes(`spec.target.${field}`),
        `SecurityAction ${field}=${JSON.stringify(bad)}`,
      );
      const query = { cluster: 'local', namespace: 'local', pod: 'web-1', [field]: bad };
      assert.equal(findingsQuerySchema.safeParse(query).success, false, `findings ${field}`);
      assert.equal(workloadQuerySchema.safeParse(query).success, false, `workloads ${field}`);
    }
    assert.equal(podRefSchema.safeParse({ namespace: 'local', name: bad }).success, false, `sdk ${bad}`);
    assert.equal(podRefSchema.safeParse({ namespace: bad, name: 'web' }).success, false, `sdk ns ${bad}`);
  }
  assert.throws(
    () =>
      parseSecurityAction({
        metadata: { name: 'n-2' },
        spec: { target: { namespace: 'local', pod: 'web', uid: '../x' }, action: 'Quarantine' },
      }),
    /spec\.target\.uid/,
  );
  // Local mode: pod = container name, namespace `local`.
  assert.equal(
    parseSecurityAction({
      metadata: { name: 'n-3' },
      spec: { target: { namespace: 'local', pod: 'web_1.v2' }, action: 'Quarantine' },
    }).spec.target.pod,
    'web_1.v2',
  );
});
