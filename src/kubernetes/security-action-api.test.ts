/** What the SecurityAction watch keeps of an action (pure; the watch itself: list-watch.test.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SecurityActionObject } from './security-action-api.js';
import { NODE_LABEL, slimFinished } from './security-action-api.js';

const action = (phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed'): SecurityActionObject => ({
  apiVersion: 'containment.dev/v1alpha1',
  kind: 'SecurityAction',
  metadata: { name: 'a', namespace: 'ns', uid: 'u1', resourceVersion: '7', labels: { [NODE_LABEL]: 'n1' } },
  spec: { action: 'Snapshot', target: { namespace: 'ns', pod: 'p' } },
  status: {
    phase,
    message: 'x'.repeat(1000),
    evidence: [{ kind: 'manifest', uri: 'file:///e', sha256: '0'.repeat(64), bytes: 1 }],
    conditions: [],
  },
});

describe('slimFinished', () => {
  it('keeps an action that may still be acted on whole', () => {
    for (const phase of ['Pending', 'Running'] as const)
      assert.deepEqual(slimFinished(action(phase)), action(phase));
  });

  it('keeps only the identity, labels and phase of a finished one', () => {
    for (const phase of ['Succeeded', 'Failed'] as const) {
      const slim = slimFinished(action(phase));
      assert.deepEqual(slim.metadata, action(phase).metadata);
      assert.deepEqual(slim.status, { phase, evidence: [], conditions: [] });
      assert.deepEqual(slim.spec, {});
    }
  });
});
