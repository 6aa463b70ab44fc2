import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  POLICY_NAME_PREFIX,
  QUARANTINE_LABEL,
  isQuarantinePolicyFor,
  quarantinePolicy,
  quarantinePolicyName,
} from './quarantine-policy.js';

const UID = '2f0a7c8e-1b2c-4d5e-8f90-a1b2c3d4e5f6';

describe('quarantine NetworkPolicy', () => {
  test('is named after the pod, and a name too long is truncated with a hash that keeps pods apart', () => {
    assert.equal(quarantinePolicyName('web-0'), 'containment-quarantine-web-0');
    const long = `${'a'.repeat(240)}-1`;
    const other = `${'a'.repeat(240)}-2`;
    const name = quarantinePolicyName(long);
    assert.equal(name.length <= 253, true);
    assert.ok(name.startsWith(POLICY_NAME_PREFIX));
    assert.match(name, /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'still a DNS subdomain');
    assert.notEqual(name, quarantinePolicyName(other));
    assert.equal(name, quarantinePolicyName(long), 'stable');
    // The cut never leaves a trailing '-' or '.' before the hash separator.
    const dotted = quarantinePolicyName(`${'b'.repeat(219)}.${'c'.repeat(30)}`);
    assert.doesNotMatch(dotted, /[-.]-[0-9a-f]{10}$/);
  });

  test('denies everything in and out of exactly the pod with that UID', () => {
    const policy = quarantinePolicy({ name: 'web-0', namespace: 'shop', uid: UID });
    assert.equal(policy.metadata?.namespace, 'shop');
    assert.deepEqual(policy.spec?.podSelector, { matchLabels: { [QUARANTINE_LABEL]: UID } });
    assert.deepEqual(policy.spec?.policyTypes, ['Ingress', 'Egress']);
    assert.equal(policy.spec?.ingress, undefined);
    assert.equal(policy.spec?.egress, undefined);
    assert.equal(isQuarantinePolicyFor(policy, UID), true);
  });

  test('a policy for another UID, with rules, or selecting more is not ours', () => {
    const ours = quarantinePolicy({ name: 'web-0', namespace: 'shop', uid: UID });
    assert.equal(isQuarantinePolicyFor(ours, 'another-uid'), false);
    const spec = ours.spec!;
    assert.equal(isQuarantinePolicyFor({ ...ours, spec: { ...spec, ingress: [{}] } }, UID), false);
    assert.equal(isQuarantinePolicyFor({ ...ours, spec: { ...spec, policyTypes: ['Ingress'] } }, UID), false);
    assert.equal(
      isQuarantinePolicyFor(
        { ...ours, spec: { ...spec, podSelector: { matchLabels: { [QUARANTINE_LABEL]: UID, app: 'web' } } } },
        UID,
      ),
      false,
    );
  });
});
