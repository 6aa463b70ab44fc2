import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ContainmentError } from '../errors.js';
import { sign, verifySignature } from './signature.js';

test('matches the RFC 4231 HMAC-SHA256 test case 2', () => {
  assert.equal(
    sign('what do ya want for nothing?', 'Jefe'),
    'sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
  );
});

test('verifies the exact body only', () => {
  const body = '{"id":"1","data":{"a":"é"}}';
  const header = sign(body, 'trigger-secret');
  assert.equal(verifySignature(body, 'trigger-secret', header), true);
  assert.equal(verifySignature(Buffer.from(body), 'trigger-secret', header), true);
  assert.equal(verifySignature(body + ' ', 'trigger-secret', header), false);
  assert.equal(verifySignature(body.replace('é', 'e'), 'trigger-secret', header), false);
  assert.equal(verifySignature(body, 'other-secret', header), false);
});

test('rejects malformed headers without throwing', () => {
  const body = 'x';
  const hex = sign(body, 's').slice('sha256='.length);
  for (const header of [
    undefined,
    '',
    hex,
    `sha1=${hex}`,
    `sha256=${hex.slice(2)}`,
    `sha256=${hex}00`,
    'sha256=zz',
  ]) {
    assert.equal(verifySignature(body, 's', header), false, String(header));
  }
  assert.equal(verifySignature(body, 's', `SHA256=${hex.toUpperCase()}`), true);
});

test('an empty secret is refused', () => {
  assert.throws(() => sign('x', ''), ContainmentError);
});
