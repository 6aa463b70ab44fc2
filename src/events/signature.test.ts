import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { ContainmentError, ErrorCodes } from '../errors.js';
import {
  MemoryReplayGuard,
  WEBHOOK_SIGNATURE_HEADER,
  legacySign,
  newWebhookSecret,
  signDelivery,
  verifyDelivery,
  verifyLegacySignature,
} from './signature.js';

const body = JSON.stringify({ specversion: '1.0', id: 'e-1', type: 'dev.containment.scan.completed' });

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof ContainmentError) return e.code;
    throw e;
  }
  return undefined;
}

describe('Standard Webhooks delivery signatures', () => {
  it('signs so that the reference library verifies, and verifies what it accepts', () => {
    const secret = newWebhookSecret();
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    const headers = signDelivery(body, secret, 'e-1');
    // The reference implementation is the judge of the wire format.
    assert.deepEqual(new Webhook(secret).verify(body, headers), JSON.parse(body));
    const verified = verifyDelivery(body, headers, secret);
    assert.equal(verified.id, 'e-1');
    assert.equal(verified.timestamp, Number(headers['webhook-timestamp']));
  });

  it('refuses a changed body, id or timestamp, and another secret', () => {
    const secret = newWebhookSecret();
    const headers = signDelivery(body, secret, 'e-1');
    assert.equal(
      code(() => verifyDelivery(`${body} `, headers, secret)),
      ErrorCodes.SIGNATURE_INVALID,
    );
    assert.equal(
      code(() => verifyDelivery(body, { ...headers, 'webhook-id': 'e-2' }, secret)),
      ErrorCodes.SIGNATURE_INVALID,
    );
    const shifted = { ...headers, 'webhook-timestamp': String(Number(headers['webhook-timestamp']) - 1) };
    assert.equal(
      code(() => verifyDelivery(body, shifted, secret)),
      ErrorCodes.SIGNATURE_INVALID,
    );
    assert.equal(
      code(() => verifyDelivery(body, headers, newWebhookSecret())),
      ErrorCodes.SIGNATURE_INVALID,
    );
    const { [WEBHOOK_SIGNATURE_HEADER]: _dropped, ...unsigned } = headers;
    assert.equal(
      code(() => verifyDelivery(body, unsigned, secret)),
      ErrorCodes.SIGNATURE_INVALID,
    );
    assert.equal(
      code(() => verifyDelivery(body, { ...headers, 'webhook-timestamp': '1e9' }, secret)),
      ErrorCodes.SIGNATURE_INVALID,
    );
  });

  it('refuses stale and future timestamps outside the tolerance, and accepts inside it', () => {
    const secret = newWebhookSecret();
    const now = new Date('2026-12-07T12:00:00Z');
    const old = signDelivery(body, secret, 'e-1', new Date(now.getTime() - 301_000));
    assert.equal(
      code(() => verifyDelivery(body, old, secret, { now })),
      ErrorCodes.DELIVERY_STALE,
    );
    const future = signDelivery(body, secret, 'e-1', new Date(now.getTime() + 301_000));
    assert.equal(
      code(() => verifyDelivery(body, future, secret, { now })),
      ErrorCodes.DELIVERY_STALE,
    );
    const recent = signDelivery(body, secret, 'e-1', new Date(now.getTime() - 299_000));
    assert.equal(verifyDelivery(body, recent, secret, { now }).id, 'e-1');
    assert.equal(
      code(() => verifyDelivery(body, recent, secret, { now, toleranceSeconds: 60 })),
      ErrorCodes.DELIVERY_STALE,
    );
  });

  it('rotates: a sender with two secrets satisfies a receiver holding either one', () => {
    const [oldSecret, newSecret] = [newWebhookSecret(), newWebhookSecret()];
    const headers = signDelivery(body, `${oldSecret} ${newSecret}`, 'e-1');
    assert.equal(headers[WEBHOOK_SIGNATURE_HEADER]?.split(' ').length, 2);
    assert.equal(verifyDelivery(body, headers, oldSecret).id, 'e-1');
    assert.equal(verifyDelivery(body, headers, [newSecret]).id, 'e-1');
    const onlyOld = signDelivery(body, oldSecret, 'e-1');
    assert.equal(verifyDelivery(body, onlyOld, `${newSecret} ${oldSecret}`).id, 'e-1');
    assert.equal(
      code(() => verifyDelivery(body, onlyOld, newSecret)),
      ErrorCodes.SIGNATURE_INVALID,
    );
  });

  it('uses a secret without the whsec_ prefix as raw bytes on both ends', () => {
    const headers = signDelivery(body, 'trigger-secret', 'e-1');
    assert.equal(new Webhook('trigger-secret', { format: 'raw' }).verify(body, headers) !== undefined, true);
    assert.equal(verifyDelivery(body, headers, 'trigger-secret').id, 'e-1');
    assert.equal(
      code(() => verifyDelivery(body, headers, 'trigger-secreT')),
      ErrorCodes.SIGNATURE_INVALID,
    );
    assert.equal(
      code(() => signDelivery(body, '  ', 'e-1')),
      ErrorCodes.CONFIG_INVALID,
    );
  });

  it('keeps the deprecated header verifiable for one release', () => {
    assert.equal(verifyLegacySignature(body, 'k', legacySign(body, 'k')), true);
    assert.equal(verifyLegacySignature(body, ['x', 'k'], legacySign(body, 'k')), true);
    assert.equal(verifyLegacySignature(body, 'x', legacySign(body, 'k')), false);
    assert.equal(verifyLegacySignature(`${body} `, 'k', legacySign(body, 'k')), false);
  });
});

describe('MemoryReplayGuard', () => {
  it('claims an id once within its retention, again after it, and after a release', () => {
    const guard = new MemoryReplayGuard(1_000);
    const t0 = new Date(0);
    assert.equal(guard.claim('a', t0), true);
    assert.equal(guard.claim('a', new Date(999)), false);
    assert.equal(guard.claim('b', new Date(500)), true);
    assert.equal(guard.claim('a', new Date(1_001)), true);
    guard.release('b');
    assert.equal(guard.claim('b', new Date(1_002)), true);
  });

  it('stays bounded', () => {
    const guard = new MemoryReplayGuard(60_000, 100);
    for (let i = 0; i < 1_000; i++) guard.claim(`id-${i}`, new Date(i));
    assert.equal((guard as unknown as { seen: Map<string, number> }).seen.size <= 101, true);
    assert.equal(guard.claim('id-999', new Date(1_000)), false);
  });
});
