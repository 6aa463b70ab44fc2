/**
 * The audit join's own logic: a chain is complete only when every link is found and agrees with
 * the next; a manual action, a missing activation or an event about another scan than the one the
 * action cites are named as gaps, never papered over. (The whole chain on the real parts is
 * asserted in test/e2e/up-loop.test.ts.) The scanner and runtime answers here come from a small
 * loopback server that serves fixed JSON.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { SecurityAction } from '../enforcement/security-action.js';
import { auditTrail, httpAuditLookups } from './trail.js';
import type { AuditLookups } from './trail.js';

const POLICY_ACT = 'a'.repeat(32);
const TRIGGER_ACT = 'b'.repeat(32);
const DETECTION_POLICY_ACT = 'd'.repeat(32);
const DETECTION_TRIGGER_ACT = 'e'.repeat(32);
const answers: Record<string, unknown> = {
  [`/api/v1/namespaces/local/activations/${POLICY_ACT}`]: {
    activationId: POLICY_ACT,
    name: 'quarantine-or-terminate',
    start: 1,
    end: 2,
    cause: TRIGGER_ACT,
    logs: ['2026-01-01T00:00:00Z stdout: quarantining web'],
    response: { status: 'success', result: {} },
  },
  [`/api/v1/namespaces/local/activations/${TRIGGER_ACT}`]: {
    activationId: TRIGGER_ACT,
    name: 'security-notices',
    start: 1,
    end: 1,
    response: {
      status: 'success',
      result: { id: 'evt-1', type: 'dev.containment.scan.completed', data: { scanId: 7 } },
    },
  },
  [`/api/v1/namespaces/local/activations/${DETECTION_POLICY_ACT}`]: {
    activationId: DETECTION_POLICY_ACT,
    name: 'runtime-response',
    start: 3,
    end: 4,
    cause: DETECTION_TRIGGER_ACT,
    response: { status: 'success', result: {} },
  },
  [`/api/v1/namespaces/local/activations/${DETECTION_TRIGGER_ACT}`]: {
    activationId: DETECTION_TRIGGER_ACT,
    name: 'security-notices',
    start: 3,
    end: 3,
    response: {
      status: 'success',
      result: { id: 'evt-2', type: 'dev.containment.runtime.detected', data: { fingerprint: 'fp-1' } },
    },
  },
  '/v1/detections?namespace=local&pod=web&limit=1000': {
    detections: [
      { fingerprint: 'fp-0', ruleId: 'other', title: 'o', firstSeen: 't', lastSeen: 't', count: 1 },
      {
        fingerprint: 'fp-1',
        ruleId: 'shell_in_container',
        title: 'a shell',
        firstSeen: 't0',
        lastSeen: 't1',
        count: 3,
      },
    ],
  },
  '/v1/scans/7': { id: 7, kind: 'full', scanTime: 't', receivedAt: 't' },
  '/v1/scans/8': { id: 8, kind: 'full', scanTime: 't', receivedAt: 't' },
};
const seenAuth: string[] = [];
const server = createServer((req, res) => {
  seenAuth.push(req.headers.authorization ?? '');
  const body = answers[req.url ?? ''];
  res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body ?? { error: 'not found' }));
});
let sources: AuditLookups;

before(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  sources = httpAuditLookups({
    scanner: { url, token: 'scanner-token' },
    functions: { url, namespace: 'local', auth: 'uuid:key' },
  });
});
after(() => server.close());

function action(spec: Partial<SecurityAction['spec']>): SecurityAction {
  return {
    apiVersion: 'containment.dev/v1alpha1',
    kind: 'SecurityAction',
    metadata: { name: 'act-1' },
    spec: {
      target: { namespace: 'local', pod: 'web' },
      action: 'Quarantine',
      gracePeriodSeconds: 30,
      reason: 'r',
      dryRun: false,
      ...spec,
    },
    status: { phase: 'Succeeded', evidence: [], conditions: [] },
  };
}

test('a chain whose links all agree is complete', async () => {
  const [link] = await auditTrail(sources, [
    action({ requestedBy: `policy/quarantine-or-terminate@${POLICY_ACT}`, findingsRef: 'scan/7' }),
  ]);
  assert.deepEqual(link?.gaps, []);
  assert.equal(link?.complete, true);
  assert.equal(link?.event?.id, 'evt-1');
  assert.equal(link?.event?.triggerActivationId, TRIGGER_ACT);
  assert.equal(link?.event?.trigger, 'security-notices');
  assert.deepEqual(link?.activation?.logs, ['2026-01-01T00:00:00Z stdout: quarantining web']);
  assert.equal(link?.scan?.id, 7);
  assert.ok(seenAuth.includes(`Basic ${Buffer.from('uuid:key').toString('base64')}`));
  assert.ok(seenAuth.includes('Bearer scanner-token'));
});

test('an event about another scan than the cited one is a gap', async () => {
  const [link] = await auditTrail(sources, [
    action({ requestedBy: `policy/quarantine-or-terminate@${POLICY_ACT}`, findingsRef: 'scan/8' }),
  ]);
  assert.equal(link?.complete, false);
  assert.match(link?.gaps.join('; ') ?? '', /event evt-1 is about scan 7, the action cites scan 8/);
});

test('a manual action and a missing activation are named, not hidden', async () => {
  const [manual, lost] = await auditTrail(sources, [
    action({}),
    action({ requestedBy: `policy/x@${'c'.repeat(32)}`, findingsRef: 'scan/99' }),
  ]);
  assert.equal(manual?.complete, false);
  assert.match(manual?.gaps[0] ?? '', /requestedBy "" names no policy activation/);
  assert.match(manual?.gaps[1] ?? '', /findingsRef "" names no scan or detection/);
  assert.equal(lost?.complete, false);
  assert.deepEqual(lost?.gaps, [`activation ${'c'.repeat(32)}: HTTP 404`, 'scan 99: HTTP 404']);
});

test('an action on a runtime detection links the detection its event is about', async () => {
  const [link, other] = await auditTrail(sources, [
    action({ requestedBy: `policy/runtime-response@${DETECTION_POLICY_ACT}`, findingsRef: 'detection/fp-1' }),
    action({ requestedBy: `policy/runtime-response@${DETECTION_POLICY_ACT}`, findingsRef: 'detection/fp-0' }),
  ]);
  assert.deepEqual(link?.gaps, []);
  assert.equal(link?.complete, true);
  assert.equal(link?.event?.fingerprint, 'fp-1');
  assert.deepEqual(link?.detection, {
    fingerprint: 'fp-1',
    ruleId: 'shell_in_container',
    title: 'a shell',
    firstSeen: 't0',
    lastSeen: 't1',
    count: 3,
  });
  assert.equal(link?.scan, undefined);
  assert.equal(other?.complete, false);
  assert.deepEqual(other?.gaps, ['event evt-2 is not about detection fp-0, which the action cites']);
});
