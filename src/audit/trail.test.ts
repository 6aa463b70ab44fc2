/**
 * The audit join's own logic: a chain is complete only when every link is found and agrees with
 * the next, for a scan and for a runtime detection alike; a manual action, a missing activation or
 * an event about another scan or detection than the one the action cites are named as gaps, never
 * papered over. (The whole chain on the real parts is
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
const RUNTIME_POLICY_ACT = 'd'.repeat(32);
const DETECTION_TRIGGER_ACT = 'e'.repeat(32);
const detection = (id: number) => ({
  id,
  ruleId: 'reverse_shell',
  severity: 'CRITICAL',
  title: 'reverse shell',
  count: 1,
  firstSeen: 't',
  lastSeen: 't',
});
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
  [`/api/v1/namespaces/local/activations/${RUNTIME_POLICY_ACT}`]: {
    activationId: RUNTIME_POLICY_ACT,
    name: 'runtime-response',
    start: 1,
    end: 2,
    cause: DETECTION_TRIGGER_ACT,
    response: { status: 'success', result: {} },
  },
  [`/api/v1/namespaces/local/activations/${DETECTION_TRIGGER_ACT}`]: {
    activationId: DETECTION_TRIGGER_ACT,
    name: 'runtime-detections',
    start: 1,
    end: 1,
    response: {
      status: 'success',
      result: { id: 'evt-2', type: 'dev.containment.runtime.detected', data: { detectionId: 3 } },
    },
  },
  '/v1/detections/3': detection(3),
  '/v1/detections/4': detection(4),
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
  assert.match(manual?.gaps[1] ?? '', /findingsRef "" names no scan/);
  assert.equal(lost?.complete, false);
  assert.deepEqual(lost?.gaps, [`activation ${'c'.repeat(32)}: HTTP 404`, 'scan 99: HTTP 404']);
});

test('a runtime detection chain joins detection → event → activation → action', async () => {
  const [link] = await auditTrail(sources, [
    action({ requestedBy: `policy/runtime-response@${RUNTIME_POLICY_ACT}`, findingsRef: 'detection/3' }),
  ]);
  assert.deepEqual(link?.gaps, []);
  assert.equal(link?.complete, true);
  assert.equal(link?.event?.type, 'dev.containment.runtime.detected');
  assert.equal(link?.event?.detectionId, 3);
  assert.equal(link?.event?.trigger, 'runtime-detections');
  assert.equal(link?.detection?.id, 3);
  assert.equal(link?.detection?.ruleId, 'reverse_shell');
  assert.equal(link?.scan, undefined);
});

test('a detection gap: another detection cited, or one that is not there, or a fingerprint', async () => {
  const requestedBy = `policy/runtime-response@${RUNTIME_POLICY_ACT}`;
  const [other, missing, fingerprint] = await auditTrail(sources, [
    action({ requestedBy, findingsRef: 'detection/4' }),
    action({ requestedBy, findingsRef: 'detection/5' }),
    action({ requestedBy, findingsRef: 'detection/9f86d081884c7d65' }),
  ]);
  assert.equal(other?.complete, false);
  assert.deepEqual(other?.gaps, ['event evt-2 is about detection 3, the action cites detection 4']);
  assert.deepEqual(missing?.gaps, ['detection 5: HTTP 404']);
  assert.deepEqual(fingerprint?.gaps, [
    'findingsRef "detection/9f86d081884c7d65" names no scan or detection',
  ]);
});
