/**
 * The security-notices web endpoint on a real function runtime: scanner CloudEvents signed as
 * Standard Webhooks fire the trigger and reach the rule's action; replays, stale timestamps, forged
 * binary-mode attributes, unauthenticated and oversized calls are refused and land in the
 * namespace's security-event log; a restart does not reopen the replay window; the deprecated
 * schemes work only behind their flag. A trigger annotated with event types (deployed with
 * `eventTypes`) is fired only with events of those types; `security-notices` gets every event.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CloudEvent, HTTP } from 'cloudevents';
import { createEvent, structuredBody } from '../events/cloud-event.js';
import type { ScanCompletedData } from '../events/cloud-event.js';
import { legacySign, LEGACY_SIGNATURE_HEADER, signDelivery } from '../events/signature.js';
import { eventually, GUEST_AUTH, startHarness } from './functions-harness.test-helper.js';
import type { AnyJson, Harness } from './functions-harness.test-helper.js';
import { WhiskClient } from '../clients/whisk-client.js';
import { isContainmentError } from '../errors.js';
import { deployToOpenWhisk, deployToRuntime } from './adapters/openwhisk/policy-deploy.js';
import { DEFAULT_NOTICE_BODY_LIMIT, installSecurityNotices, securityNoticesUrl } from './security-notices.js';

const SECRET = 'whsec_bm90aWNlcy1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg==';
const NEXT_SECRET = 'whsec_bmV4dC1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZmdoaQ==';
const STRUCTURED = { 'content-type': 'application/cloudevents+json; charset=utf-8' };
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
  /** A scan event for `pod` with the headers a scanner delivery carries. */
  const delivery = (pod: string, options: { secret?: string; at?: Date } = {}) => {
    const event = createEvent('dev.containment.scan.completed', 'local', scanData(pod));
    const body = structuredBody(event);
    const headers: Record<string, string> = {
      ...STRUCTURED,
      ...signDelivery(body, options.secret ?? SECRET, event.id, options.at),
    };
    return { body, headers, id: event.id };
  };

  /** The echo activations for `pod` so far. */
  const echoes = async (pod: string): Promise<AnyJson[]> => {
    const { body } = await h.call('GET', '/api/v1/namespaces/_/activations?name=echo&docs=true&limit=200');
    return (body as AnyJson[]).filter((a) => a.response?.result?.pod === pod);
  };
  const echoed = (pod: string) => eventually(async () => (await echoes(pod))[0], `the activation for ${pod}`);
  const kinds = async (): Promise<string[]> =>
    ((await h.call('GET', '/api/v1/namespaces/_/security-events')).body as AnyJson[]).map((e) => e.kind);

  async function start(dataDir?: string): Promise<void> {
    h = await startHarness(dataDir === undefined ? {} : { dataDir });
    url = securityNoticesUrl(h.url, 'guest');
  }

  before(async () => {
    await start();
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
    const d = delivery('web-1');
    const res = await post(d.body, d.headers);
    assert.equal(res.status, 202);
    assert.match(((await res.json()) as { activationId: string }).activationId, /^[0-9a-f]{32}$/);
    const activation = await echoed('web-1');
    assert.equal(activation.response.result.type, 'dev.containment.scan.completed');
  });

  it('answers a replay with 200 and no new activation, also after a restart', async () => {
    const d = delivery('replayed');
    assert.equal((await post(d.body, d.headers)).status, 202);
    await echoed('replayed');
    for (let i = 0; i < 3; i++) {
      const again = await post(d.body, d.headers);
      assert.equal(again.status, 200);
      assert.deepEqual(await again.json(), { duplicate: true });
    }
    // The same event re-signed a moment later (a sender's retry) is the same delivery id.
    const retry = { ...d.headers, ...signDelivery(d.body, SECRET, d.id, new Date(Date.now() + 2000)) };
    assert.equal((await post(d.body, retry)).status, 200);
    // A restart in the middle of the window does not reopen it.
    const dataDir = h.dataDir;
    await h.running.close();
    await start(dataDir);
    assert.equal((await post(d.body, d.headers)).status, 200);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await echoes('replayed')).length, 1);
    assert.ok((await kinds()).includes('replayed-delivery'));
  });

  it('fires a trigger annotated with event types only with those types', async () => {
    const api = new WhiskClient({ apihost: h.url, auth: GUEST_AUTH, namespace: 'guest' });
    const typed = {
      filename: 'typed.js',
      loader: 'js' as const,
      contents:
        'export function main(params) { return { typed: params.type, pod: params.data.workload.pod }; }',
    };
    const deployed = await deployToRuntime(api, typed, {
      trigger: 'runtime-events',
      eventTypes: ['dev.containment.runtime.detected'],
    });
    assert.equal(deployed.rule, 'runtime-events-typed');
    const typedRuns = async (pod: string): Promise<AnyJson[]> => {
      const { body } = await h.call('GET', '/api/v1/namespaces/_/activations?name=typed&docs=true&limit=200');
      return (body as AnyJson[]).filter((a) => a.response?.result?.pod === pod);
    };

    // A scan event: security-notices only.
    const scan = delivery('routed-scan');
    const scanRes = await post(scan.body, scan.headers);
    assert.equal(scanRes.status, 202);
    assert.equal(((await scanRes.json()) as { activationIds: string[] }).activationIds.length, 1);
    await echoed('routed-scan');
    // A runtime detection: security-notices and the typed trigger, one activation each.
    const event = new CloudEvent({
      ...createEvent('dev.containment.scan.completed', 'local', scanData('routed-detection')),
      type: 'dev.containment.runtime.detected',
    });
    const body = structuredBody(event);
    const res = await post(body, { ...STRUCTURED, ...signDelivery(body, SECRET, event.id) });
    assert.equal(res.status, 202);
    const { activationId, activationIds } = (await res.json()) as {
      activationId: string;
      activationIds: string[];
    };
    assert.equal(activationIds.length, 2);
    assert.equal(activationIds[0], activationId);
    const run = await eventually(
      async () => (await typedRuns('routed-detection'))[0],
      'the typed activation',
    );
    assert.equal(run.response.result.typed, 'dev.containment.runtime.detected');
    assert.equal(run.cause, activationIds[1]);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await typedRuns('routed-scan'), [], 'the typed trigger was fired with a scan event');
    assert.equal((await typedRuns('routed-detection')).length, 1);

    // Types belong on a trigger of their own, and only this runtime routes by them.
    const refused = async (p: Promise<unknown>, pattern: RegExp) =>
      assert.rejects(
        p,
        (e: unknown) => isContainmentError(e) && e.code === 'USAGE' && pattern.test(e.message),
      );
    await refused(
      deployToRuntime(api, typed, { eventTypes: ['dev.containment.runtime.detected'] }),
      /a trigger of their own/,
    );
    await refused(deployToRuntime(api, typed, { trigger: 'x', eventTypes: [] }), /at least one type/);
    await refused(
      deployToOpenWhisk(api, typed, {
        trigger: 'x',
        eventTypes: ['dev.containment.runtime.detected'],
        sdk: {} as never,
      }),
      /runtime only/,
    );
    await h.call('DELETE', '/api/v1/namespaces/_/rules/runtime-events-typed');
  });

  it('refuses stale and future timestamps', async () => {
    const stale = delivery('stale', { at: new Date(Date.now() - 6 * 60_000) });
    const res = await post(stale.body, stale.headers);
    assert.equal(res.status, 401);
    assert.match(((await res.json()) as { error: string }).error, /tolerance/);
    const future = delivery('future', { at: new Date(Date.now() + 6 * 60_000) });
    assert.equal((await post(future.body, future.headers)).status, 401);
    assert.ok((await kinds()).filter((k) => k === 'stale-delivery').length >= 2);
    assert.deepEqual(await echoes('stale'), []);
  });

  it('takes every attribute from the signed body: forged ce-* headers change nothing, binary mode is refused', async () => {
    const d = delivery('attrs');
    // Structured mode plus forged binary attributes: the event comes from the body alone.
    const forged = { ...d.headers, 'ce-type': 'dev.containment.action.completed', 'ce-subject': 'victim' };
    assert.equal((await post(d.body, forged)).status, 202);
    assert.equal((await echoed('attrs')).response.result.type, 'dev.containment.scan.completed');
    // The same signed bytes sent as a binary-mode event whose attributes would come from headers.
    const other = delivery('binary');
    const binary = {
      ...other.headers,
      'content-type': 'application/json',
      'ce-specversion': '1.0',
      'ce-id': 'forged-1',
      'ce-source': '/containment/local',
      'ce-type': 'dev.containment.action.completed',
    };
    assert.equal((await post(other.body, binary)).status, 415);
    assert.deepEqual(await echoes('binary'), []);
  });

  it('accepts either secret during a rotation', async () => {
    const api = new WhiskClient({ apihost: h.url, auth: GUEST_AUTH, namespace: 'guest' });
    await installSecurityNotices(api, `${SECRET} ${NEXT_SECRET}`);
    try {
      const byNew = delivery('rotated-new', { secret: NEXT_SECRET });
      assert.equal((await post(byNew.body, byNew.headers)).status, 202);
      const byOld = delivery('rotated-old');
      assert.equal((await post(byOld.body, byOld.headers)).status, 202);
      const byBoth = delivery('rotated-both', { secret: `${SECRET} ${NEXT_SECRET}` });
      assert.equal((await post(byBoth.body, byBoth.headers)).status, 202);
      const byStranger = delivery('rotated-x', {
        secret: 'whsec_c3RyYW5nZXItc2VjcmV0LTAxMjM0NTY3ODlhYmNkZWY=',
      });
      assert.equal((await post(byStranger.body, byStranger.headers)).status, 401);
    } finally {
      await installSecurityNotices(api, SECRET);
    }
  });

  it('refuses forged, unauthenticated, deprecated and oversized calls and logs them', async () => {
    const before = (await kinds()).length;
    const d = delivery('evil');
    // Another secret; a valid signature of a different body; a changed id; nothing at all.
    const other = delivery('evil', { secret: NEXT_SECRET });
    assert.equal(
      (await post(d.body, { ...d.headers, 'webhook-signature': other.headers['webhook-signature']! })).status,
      401,
    );
    assert.equal((await post(`${d.body} `, d.headers)).status, 401);
    assert.equal((await post(d.body, { ...d.headers, 'webhook-id': 'another-id' })).status, 401);
    assert.equal((await post(d.body, STRUCTURED)).status, 401);
    // The deprecated schemes, valid as they are, without the flag.
    const legacy = await post(d.body, {
      ...STRUCTURED,
      [LEGACY_SIGNATURE_HEADER]: legacySign(d.body, SECRET),
    });
    assert.equal(legacy.status, 401);
    assert.match(((await legacy.json()) as { error: string }).error, /--accept-legacy-signature/);
    assert.equal((await post(d.body, { ...STRUCTURED, 'x-require-whisk-auth': SECRET })).status, 401);
    const huge = Buffer.alloc(DEFAULT_NOTICE_BODY_LIMIT + 1, 'a');
    assert.equal((await post(huge, { ...STRUCTURED, ...signDelivery(huge, SECRET, 'huge') })).status, 413);
    // Authentic but not a CloudEvent.
    const junk = JSON.stringify({ hello: 'world' });
    assert.equal((await post(junk, { ...STRUCTURED, ...signDelivery(junk, SECRET, 'junk') })).status, 400);

    assert.deepEqual((await kinds()).slice(before), [
      'authentication-failed',
      'authentication-failed',
      'authentication-failed',
      'authentication-failed',
      'authentication-failed',
      'authentication-failed',
      'body-too-large',
      'invalid-event',
    ]);
    assert.deepEqual(await echoes('evil'), []);
  });

  it('answers 404 where the package is not installed, and keeps logs to their namespace', async () => {
    const otherAuth = h.running.addNamespace('other');
    const d = delivery('x');
    const res = await post(d.body, d.headers, securityNoticesUrl(h.url, 'other'));
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

describe('security-notices with --accept-legacy-signature (deprecated)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ acceptLegacySignature: true });
    await installSecurityNotices(
      new WhiskClient({ apihost: h.url, auth: GUEST_AUTH, namespace: 'guest' }),
      SECRET,
    );
    await h.call('PUT', '/api/v1/namespaces/_/actions/echo', { exec: { kind: 'nodejs:20', code: ECHO } });
    await h.call('PUT', '/api/v1/namespaces/_/rules/notices-to-echo', {
      trigger: '/_/security-notices',
      action: '/_/echo',
    });
  });
  after(() => h.close());

  it('accepts the old header and X-Require-Whisk-Auth (binary mode too), and still refuses forgeries', async () => {
    const url = securityNoticesUrl(h.url, 'guest');
    const body = structuredBody(createEvent('dev.containment.scan.completed', 'local', scanData('old-1')));
    const signed = await fetch(url, {
      method: 'POST',
      headers: { ...STRUCTURED, [LEGACY_SIGNATURE_HEADER]: legacySign(body, SECRET) },
      body,
    });
    assert.equal(signed.status, 202);
    const event = new CloudEvent({
      specversion: '1.0',
      id: 'e-2',
      type: 'dev.containment.scan.completed',
      source: '/containment/local',
      datacontenttype: 'application/json',
      data: scanData('old-2'),
    });
    const message = HTTP.binary(event);
    const whisk = await fetch(url, {
      method: 'POST',
      headers: { ...(message.headers as Record<string, string>), 'x-require-whisk-auth': SECRET },
      body: message.body as string,
    });
    assert.equal(whisk.status, 202);
    const forged = await fetch(url, {
      method: 'POST',
      headers: { ...STRUCTURED, [LEGACY_SIGNATURE_HEADER]: legacySign(body, 'other-secret') },
      body,
    });
    assert.equal(forged.status, 401);
  });
});
