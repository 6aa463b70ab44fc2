import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCodes } from '../errors.js';
import { parseSecurityAction, validateActionId } from './security-action.js';

const minimal = {
  metadata: { name: 'quarantine-web-1' },
  spec: { target: { namespace: 'local', pod: 'web-1' }, action: 'Quarantine' },
};

test('defaults are filled in as the design brief states', () => {
  const a = parseSecurityAction(minimal);
  assert.equal(a.apiVersion, 'containment.dev/v1alpha1');
  assert.equal(a.kind, 'SecurityAction');
  assert.equal(a.spec.gracePeriodSeconds, 30);
  assert.equal(a.spec.dryRun, false);
  assert.equal(a.spec.reason, '');
  assert.equal(a.status, undefined);
});

test('a full Kubernetes object with status round-trips; extra metadata is kept', () => {
  const input = {
    apiVersion: 'containment.dev/v1alpha1',
    kind: 'SecurityAction',
    metadata: { name: 'tg-1', namespace: 'shop', uid: 'c0ffee', labels: { a: 'b' } },
    spec: {
      target: { namespace: 'shop', pod: 'web-1', container: 'app', uid: 'abc' },
      action: 'TerminateGraceful',
      gracePeriodSeconds: 5,
      reason: 'critical CVE',
      findingsRef: 'scan/42',
      requestedBy: 'policy/ref@act-9',
      dryRun: true,
    },
    status: {
      phase: 'Succeeded',
      node: 'n1',
      startedAt: '2026-01-01T00:00:00.000Z',
      completedAt: '2026-01-01T00:00:01.000Z',
      message: 'ok',
      evidence: [
        { kind: 'manifest', uri: 'file:///e/tg-1/manifest.json', sha256: 'a'.repeat(64), bytes: 10 },
      ],
      conditions: [
        {
          type: 'Terminated',
          status: 'True',
          reason: 'Graceful',
          lastTransitionTime: '2026-01-01T00:00:01.000Z',
        },
      ],
    },
  };
  assert.deepEqual(parseSecurityAction(JSON.parse(JSON.stringify(input))), input);
});

test('bad input is refused in one line naming the field', () => {
  const cases: [unknown, RegExp][] = [
    [{ ...minimal, spec: { ...minimal.spec, action: 'Nuke' } }, /spec\.action/],
    [{ ...minimal, spec: { ...minimal.spec, gracePeriod: 3 } }, /gracePeriod/],
    [{ ...minimal, spec: { ...minimal.spec, gracePeriodSeconds: -1 } }, /spec\.gracePeriodSeconds/],
    [{ ...minimal, spec: { ...minimal.spec, gracePeriodSeconds: 1.5 } }, /spec\.gracePeriodSeconds/],
    [{ ...minimal, spec: { ...minimal.spec, target: { namespace: 'local', pod: '' } } }, /spec\.target\.pod/],
    [{ ...minimal, metadata: { name: '../etc' } }, /metadata\.name/],
    [{ ...minimal, status: { phase: 'Done' } }, /status\.phase/],
    [[], /expected object/],
  ];
  for (const [input, field] of cases) {
    assert.throws(
      () => parseSecurityAction(input),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, ErrorCodes.ACTION_INVALID);
        assert.match(e.message, field);
        assert.doesNotMatch(e.message, /\n/);
        return true;
      },
    );
  }
});

test('action ids: names and UUIDs pass, anything path-like does not', () => {
  for (const ok of [
    'a',
    'quarantine-web-1',
    '6f1c1f0e-8d1e-4c1e-9f0e-1c1e8d1e4c1e',
    'A_b.c-9',
    'x'.repeat(128),
  ]) {
    assert.equal(validateActionId(ok), ok);
  }
  for (const bad of [
    '',
    '.',
    '..',
    '../x',
    'x/..',
    'a/b',
    'a\\b',
    '/x',
    '.hidden',
    '-x',
    'x'.repeat(129),
    'a\nb',
    'ä',
  ]) {
    assert.throws(() => validateActionId(bad), { code: ErrorCodes.ACTION_INVALID }, JSON.stringify(bad));
  }
});
