import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ContainmentError } from '../errors.js';
import type { Action, Principal, Role, Scope } from './principal.js';
import { ACTIONS, assertCan, can, canIssue, covers, namespaceFilter, roleAllows } from './principal.js';

const everywhere: Scope = { cluster: '*', namespaces: '*' };

function who(role: Role, scope: Scope = everywhere): Principal {
  return { subject: `test-${role}`, role, scope, via: 'token' };
}

// The documented matrix, written out independently of the implementation's table.
const EXPECTED: Record<Role, Action[]> = {
  admin: [...ACTIONS],
  analyst: [
    'clusters:read',
    'findings:read',
    'triggers:read',
    'actions:read',
    'triggers:write',
    'actions:write',
  ],
  viewer: ['clusters:read', 'findings:read', 'triggers:read', 'actions:read'],
  agent: ['reports:write'],
  policy: ['findings:read', 'actions:read', 'actions:write'],
};

describe('role matrix', () => {
  for (const [role, allowed] of Object.entries(EXPECTED) as [Role, Action[]][]) {
    it(`${role} is granted exactly ${allowed.length} actions`, () => {
      for (const action of ACTIONS) {
        assert.equal(roleAllows(role, action), allowed.includes(action), `${role} ${action}`);
        // Within scope, can() agrees with the matrix (agents need a concrete cluster).
        const principal = who(role, role === 'agent' ? { cluster: 'prod', namespaces: '*' } : everywhere);
        assert.equal(
          can(principal, action, { cluster: 'prod', namespace: 'payments' }),
          allowed.includes(action),
        );
      }
    });
  }
});

describe('scope enforcement', () => {
  const payments = who('viewer', { cluster: 'prod', namespaces: ['payments'] });

  it('allows the namespace in scope', () => {
    assert.equal(can(payments, 'findings:read', { cluster: 'prod', namespace: 'payments' }), true);
  });

  it('denies another namespace of the same cluster', () => {
    assert.equal(can(payments, 'findings:read', { cluster: 'prod', namespace: 'billing' }), false);
  });

  it('denies the same namespace in another cluster', () => {
    assert.equal(can(payments, 'findings:read', { cluster: 'staging', namespace: 'payments' }), false);
  });

  it('denies a whole-cluster resource to a namespace-scoped principal', () => {
    assert.equal(can(payments, 'clusters:read', { cluster: 'prod' }), false);
    assert.equal(
      can(who('viewer', { cluster: 'prod', namespaces: '*' }), 'clusters:read', { cluster: 'prod' }),
      true,
    );
  });

  it('denies a resource-less (global) action to anyone without global scope', () => {
    const prodAdmin = who('admin', { cluster: 'prod', namespaces: '*' });
    assert.equal(can(prodAdmin, 'tokens:write'), false);
    assert.equal(can(prodAdmin, 'tokens:write', { cluster: 'prod' }), true);
    assert.equal(can(who('admin'), 'tokens:write'), true);
  });

  it('a scoped admin is still confined to its scope', () => {
    const admin = who('admin', { cluster: 'prod', namespaces: ['payments'] });
    assert.equal(can(admin, 'actions:write', { cluster: 'prod', namespace: 'payments' }), true);
    assert.equal(can(admin, 'actions:write', { cluster: 'prod', namespace: 'kube-system' }), false);
    assert.equal(can(admin, 'clusters:write', { cluster: 'staging' }), false);
  });

  it('an agent reports only for its own cluster and namespaces', () => {
    const agent = who('agent', { cluster: 'prod', namespaces: '*' });
    assert.equal(can(agent, 'reports:write', { cluster: 'prod', namespace: 'any' }), true);
    assert.equal(can(agent, 'reports:write', { cluster: 'staging', namespace: 'any' }), false);
    assert.equal(can(agent, 'findings:read', { cluster: 'prod', namespace: 'any' }), false);
    const nsAgent = who('agent', { cluster: 'prod', namespaces: ['a'] });
    assert.equal(can(nsAgent, 'reports:write', { cluster: 'prod', namespace: 'b' }), false);
  });

  it('an agent bound to every cluster can do nothing', () => {
    const agent = who('agent', everywhere);
    assert.equal(can(agent, 'reports:write', { cluster: 'prod', namespace: 'x' }), false);
  });

  it('a policy writes actions in scope only', () => {
    const policy = who('policy', { cluster: '*', namespaces: ['shop'] });
    assert.equal(can(policy, 'actions:write', { cluster: 'eu', namespace: 'shop' }), true);
    assert.equal(can(policy, 'actions:write', { cluster: 'eu', namespace: 'kube-system' }), false);
    assert.equal(can(policy, 'triggers:write', { cluster: 'eu', namespace: 'shop' }), false);
  });

  it('an empty namespace list grants nothing', () => {
    const none = who('analyst', { cluster: '*', namespaces: [] });
    assert.equal(can(none, 'findings:read', { cluster: 'prod', namespace: 'payments' }), false);
    assert.equal(namespaceFilter(none, 'prod'), 'none');
  });

  it('assertCan throws FORBIDDEN naming role and action', () => {
    assert.throws(
      () => assertCan(payments, 'triggers:write', { cluster: 'prod', namespace: 'payments' }),
      (e: unknown) =>
        e instanceof ContainmentError &&
        e.code === 'FORBIDDEN' &&
        /viewer may not triggers:write/.test(e.message),
    );
    assert.doesNotThrow(() =>
      assertCan(payments, 'findings:read', { cluster: 'prod', namespace: 'payments' }),
    );
  });
});

describe('namespaceFilter', () => {
  it('returns all, a list, or none', () => {
    assert.equal(namespaceFilter(who('viewer'), 'prod'), '*');
    assert.deepEqual(namespaceFilter(who('viewer', { cluster: 'prod', namespaces: ['a', 'b'] }), 'prod'), [
      'a',
      'b',
    ]);
    assert.equal(namespaceFilter(who('viewer', { cluster: 'prod', namespaces: ['a'] }), 'staging'), 'none');
    assert.deepEqual(namespaceFilter(who('viewer', { cluster: '*', namespaces: ['a'] }), 'staging'), ['a']);
  });
});

describe('covers and canIssue', () => {
  it('covers compares cluster and namespaces', () => {
    assert.equal(covers(everywhere, { cluster: 'x', namespaces: ['a'] }), true);
    assert.equal(covers({ cluster: 'x', namespaces: ['a', 'b'] }, { cluster: 'x', namespaces: ['b'] }), true);
    assert.equal(
      covers({ cluster: 'x', namespaces: ['a'] }, { cluster: 'x', namespaces: ['a', 'c'] }),
      false,
    );
    assert.equal(covers({ cluster: 'x', namespaces: ['a'] }, { cluster: 'x', namespaces: '*' }), false);
    assert.equal(covers({ cluster: 'x', namespaces: '*' }, { cluster: '*', namespaces: '*' }), false);
  });

  it('a scoped admin cannot issue a wider token; non-admins cannot issue at all', () => {
    const prodAdmin = who('admin', { cluster: 'prod', namespaces: '*' });
    assert.equal(canIssue(prodAdmin, 'agent', { cluster: 'prod', namespaces: '*' }), true);
    assert.equal(canIssue(prodAdmin, 'viewer', { cluster: '*', namespaces: '*' }), false);
    assert.equal(canIssue(who('analyst'), 'viewer', { cluster: 'prod', namespaces: ['a'] }), false);
    assert.equal(canIssue(who('admin'), 'agent', everywhere), false, 'agent tokens need one cluster');
  });
});
