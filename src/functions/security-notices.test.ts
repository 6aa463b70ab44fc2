/**
 * The security-notices web endpoint on a real function runtime: scanner CloudEvents in structured
 * and binary mode fire the trigger and reach the rule's action; forged, unauthenticated and
 * oversized calls are refused and land in the namespace's security-event log.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CloudEvent, HTTP } from 'cloudevents';
import { createEvent, structuredBody } from '../events/cloud-event.js';
import type { ScanCompletedData } from '../events/cloud-event.js';
import { SIGNATURE_HEADER, sign } from '../events/signature.js';
import { eventually, GUEST_AUTH, startHarness } from './functions-harness.test-helper.js';
import type { AnyJson, Harness } from './functions-harness.test-helper.js';
import { WhiskClient } from '../clients/whisk-client.js';
import { DEFAULT_NOTICE_BODY_LIMIT, installSecurityNotices, securityNoticesUrl } from './security-notices.js';

const SECRET = 'notices-secret-0123456789';
const ECHO = 'export function main(params) { return { type: params.type, pod: params.data.workload.pod }; }';

const scanData = (pod: string): ScanCompletedData => ({
  workload: { cluster: 'local', namespace: 'guest', pod, node: 'n1', image: 'localhost/x:1' },
  scanTime: '2026-01-01T00:00:00.000Z',
  summary: { CRITICAL: 0, HIGH: 1, MEDIUM: 0, LOW: 0, UNKNOWN: 0 } as ScanCompletedData['summary'],
  newFindings: ['GHSA-xvch-5gv4-984h'],
  insecureConfigurations: [],
});

describe('security-notices package', () => {
  let h: Harness;
  let url: string;

  const post = (body: string | Buffer, headers: Record<string, string>, target = url) =>
    fetch(target, { method: 'POST', headers, body });

  /** The echo activation for `pod`, once the rule ran. */
  const echoed = (pod: string) =>
    eventually(async () => {
      const { body } = await h.call('GET', '/api/v1/namespaces/_/activations?name=echo&docs=true&limit=50');
      return (body as AnyJson[]).find((a) => a.response?.result?.pod === pod);
    }, `the activation for ${pod}`);

  before(async () => {
    h = await startHarness();
    url = securityNoticesUrl(h.url, 'guest');
    await installSecurityNotices(
      new WhiskClient({ apihost: h.url, auth: GUEST_AUTH, namespace: 'guest' }),
      SECRET,
    );
    assert.equal(
      (await h.call('PUT', '/api/v1/namespaces/_/actions/echo', { exec: { kind: 'nodejs:20', code: ECHO } }))
        .status,
      200,
    );
    const rule = await h.call('PUT', '/api/v1/namespaces/_/rules/notices-to-echo', {
      trigger: '/_/security-notices',
      action: '/_/echo',
    });
    assert.equal(rule.status, 200);
  });
  after(() => h.close());

  it('installs a trigger and keeps the secret on the package', async () => {
    const trigger = await h.call('GET', '/api/v1/namespaces/_/triggers/security-notices');
    assert.equal(trigger.status, 200);
    // Installing again (up restarts) keeps working.
    await installSecurityNotices(
      new WhiskClient({ apihost: h.url, auth: GUEST_AUTH, namespace: 'guest' }),
      SECRET,
    );
  });

  it('fires the trigger for a signed structured-mode event', async () => {
    const body = structuredBody(createEvent('dev.containment.scan.completed', 'local', scanData('web-1')));
    const res = await post(body, {
      'content-type': 'application/cloudevents+json; charset=utf-8',
      [SIGNATURE_HEADER]: sign(body, SECRET),
    });
    assert.equal(res.status, 202);
    assert.match(((await res.json()) as { activationId: string }).activationId, /^[0-9a-f]{32}$/);
    const activation = await echoed('web-1');
    assert.equal(activation.response.result.type, 'dev.containment.scan.completed');
  });

  it('fires the trigger for a binary-mode event with X-Require-Whisk-Auth', async () => {
    const event = new CloudEvent({
      specversion: '1.0',
      id: 'e-2',
      type: 'dev.containment.scan.completed',
      source: '/containment/local',
      datacontenttype: 'application/json',
      data: scanData('web-2'),
    });
    const message = HTTP.binary(event);
    const res = await post(message.body as string, {
      ...(message.headers as Record<string, string>),
      'x-require-whisk-auth': SECRET,
    });
    assert.equal(res.status, 202);
    assert.equal((await echoed('web-2')).response.result.type, 'dev.containment.scan.completed');
  });

  it('refuses forged, unauthenticated and oversized calls and logs them', async () => {
    const body = structuredBody(createEvent('dev.containment.scan.completed', 'local', scanData('evil')));
    const ce = { 'content-type': 'application/cloudevents+json' };
    // Signed with another secret; a valid signature of a different body; a wrong whisk-auth; nothing.
    assert.equal((await post(body, { ...ce, [SIGNATURE_HEADER]: sign(body, 'other-secret') })).status, 401);
    assert.equal((await post(body, { ...ce, [SIGNATURE_HEADER]: sign(`${body} `, SECRET) })).status, 401);
    assert.equal((await post(body, { ...ce, 'x-require-whisk-auth': `${SECRET}x` })).status, 401);
    assert.equal((await post(body, ce)).status, 401);
    const huge = Buffer.alloc(DEFAULT_NOTICE_BODY_LIMIT + 1, 'a');
    assert.equal((await post(huge, { ...ce, [SIGNATURE_HEADER]: sign(huge, SECRET) })).status, 413);
    // Authentic but not a CloudEvent.
    const junk = JSON.stringify({ hello: 'world' });
    assert.equal((await post(junk, { ...ce, [SIGNATURE_HEADER]: sign(junk, SECRET) })).status, 400);

    const events = await h.call('GET', '/api/v1/namespaces/_/security-events');
    assert.equal(events.status, 200);
    const kinds = (events.body as AnyJson[]).map((e) => e.kind);
    assert.deepEqual(kinds, [
      'authentication-failed',
      'authentication-failed',
      'authentication-failed',
      'authentication-failed',
      'body-too-large',
      'invalid-event',
    ]);
    // None of them ran the policy.
    const { body: acts } = await h.call(
      'GET',
      '/api/v1/namespaces/_/activations?name=echo&docs=true&limit=50',
    );
    assert.ok(!(acts as AnyJson[]).some((a) => a.response?.result?.pod === 'evil'));
  });

  it('answers 404 where the package is not installed, and keeps logs to their namespace', async () => {
    const otherAuth = h.running.addNamespace('other');
    const body = structuredBody(createEvent('dev.containment.scan.completed', 'local', scanData('x')));
    const res = await post(
      body,
      { 'content-type': 'application/cloudevents+json', [SIGNATURE_HEADER]: sign(body, SECRET) },
      securityNoticesUrl(h.url, 'other'),
    );
    assert.equal(res.status, 404);
    assert.equal(
      (await h.call('GET', '/api/v1/namespaces/guest/security-events', undefined, otherAuth)).status,
      403,
    );
    const own = await h.call('GET', '/api/v1/namespaces/_/security-events', undefined, otherAuth);
    assert.deepEqual(own.body, []);
    assert.equal((await h.call('GET', '/api/v1/namespaces/_/security-events', undefined, null)).status, 401);
  });
});
