import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { actionSpecSchema } from '../enforcement/security-action.js';
import { isFinal, plan, resolvedPodUid, targetResolved } from './outcomes.js';

const now = new Date('2026-01-01T00:00:00Z');
const pod = { namespace: 'shop', name: 'web-0', uid: '2f0a7c8e-1b2c-4d5e-8f90-a1b2c3d4e5f6' };

describe('operator outcomes', () => {
  test('the pod UID recorded at start is read back, and nothing else passes for it', () => {
    const c = targetResolved({ ...pod, node: 'n1' }, now);
    assert.equal(resolvedPodUid({ phase: 'Running', evidence: [], conditions: [c] }), pod.uid);
    assert.equal(resolvedPodUid({ phase: 'Running', evidence: [], conditions: [] }), undefined);
    assert.equal(resolvedPodUid(undefined), undefined);
    assert.equal(
      resolvedPodUid({ phase: 'Running', evidence: [], conditions: [{ ...c, status: 'False' }] }),
      undefined,
    );
  });

  test('final phases', () => {
    assert.equal(isFinal({ phase: 'Succeeded', evidence: [], conditions: [] }), true);
    assert.equal(isFinal({ phase: 'Failed', evidence: [], conditions: [] }), true);
    assert.equal(isFinal({ phase: 'Running', evidence: [], conditions: [] }), false);
    assert.equal(isFinal(undefined), false);
  });

  test('the dry-run plan names what each action would touch', () => {
    const spec = (action: string, extra = {}) =>
      actionSpecSchema.parse({ target: { namespace: 'shop', pod: 'web-0' }, action, ...extra });
    assert.match(
      plan(spec('Quarantine'), pod, 0, '/ev'),
      /containment-quarantine-web-0.*nothing at node level/,
    );
    assert.match(plan(spec('Quarantine'), pod, 2, '/ev'), /2 container\(s\) on this node/);
    assert.match(
      plan(spec('TerminateGraceful', { gracePeriodSeconds: 12 }), pod, 0, '/ev'),
      /\/ev.*12 s grace/,
    );
    assert.match(plan(spec('Terminate'), pod, 1, '/ev'), /SIGKILL.*grace period 0/);
    assert.match(plan(spec('Release'), pod, 0, '/ev'), /remove the label/);
    assert.match(plan(spec('Snapshot'), pod, 0, '/ev'), /evidence bundle .* to \/ev/);
  });
});
