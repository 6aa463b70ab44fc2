/**
 * The OpenWhisk notices web action with a webhook secret, attacked: unsigned, stale, forged
 * binary attributes, replay, and a rotated secret. Called as OpenWhisk calls it (raw-http params);
 * no OpenWhisk here, so an accepted delivery ends at the missing API key (500) — after verification.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newWebhookSecret, signDelivery } from '../../../events/signature.js';
import { main } from './notices-entry.js';

const OLD = newWebhookSecret();
const NEW = newWebhookSecret();
const event = (id: string) =>
  JSON.stringify({
    specversion: '1.0',
    id,
    source: '/scanner',
    type: 'dev.containment.finding.new',
    data: {},
  });
const STRUCTURED = { 'content-type': 'application/cloudevents+json' };
type Answer = { statusCode: number; body?: { error?: string; code?: string; duplicate?: boolean } };
const call = async (headers: Record<string, string>, body: string, secret = NEW) =>
  (await main({
    __ow_method: 'post',
    __ow_headers: headers,
    __ow_body: body,
    webhookSecret: secret,
  })) as Answer;

test('unsigned and stale deliveries are refused when a secret is bound', async () => {
  const body = event('e-unsigned');
  const unsigned = await call(STRUCTURED, body);
  assert.equal(unsigned.statusCode, 401);
  assert.equal(unsigned.body?.code, 'SIGNATURE_INVALID');
  const stale = await call(
    { ...STRUCTURED, ...signDelivery(body, NEW, 'e-stale', new Date(Date.now() - 10 * 60_000)) },
    body,
  );
  assert.equal(stale.statusCode, 401);
  assert.equal(stale.body?.code, 'DELIVERY_STALE');
  const forged = await call({ ...STRUCTURED, ...signDelivery(body, newWebhookSecret(), 'e-forged') }, body);
  assert.equal(forged.statusCode, 401);
});

test('binary mode (unsigned ce-* attributes) is refused even with a valid body signature', async () => {
  const body = JSON.stringify({ any: 'data' });
  const res = await call(
    {
      'content-type': 'application/json',
      'ce-specversion': '1.0',
      'ce-id': 'x',
      'ce-type': 'forged.type',
      'ce-source': '/attacker',
      ...signDelivery(body, NEW, 'e-binary'),
    },
    body,
  );
  assert.equal(res.statusCode, 415);
});

test('a replay is answered 200 duplicate; a secret in rotation (old and new) is accepted', async () => {
  const body = event('e-1');
  const headers = { ...STRUCTURED, ...signDelivery(body, [OLD, NEW], 'e-1') };
  const first = await call(headers, body, `${OLD} ${NEW}`);
  assert.equal(first.statusCode, 500, 'verified, then stopped at the missing API key');
  assert.match(first.body?.error ?? '', /API key/);
  const again = await call(headers, body, `${OLD} ${NEW}`);
  assert.equal(again.statusCode, 200);
  assert.equal(again.body?.duplicate, true);
  // Signed by the old secret only, received after the rotation finished: refused.
  const body2 = event('e-2');
  const old = await call({ ...STRUCTURED, ...signDelivery(body2, OLD, 'e-2') }, body2, NEW);
  assert.equal(old.statusCode, 401);
});
