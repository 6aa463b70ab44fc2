/**
 * `containment-signature: sha256=<hex HMAC-SHA256 of the exact body>`, keyed with the trigger's
 * secret, so a receiver can tell our deliveries from forged ones.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ContainmentError, ErrorCodes } from '../errors.js';

export const SIGNATURE_HEADER = 'containment-signature';

const SIGNATURE_FORMAT = /^sha256=([0-9a-f]{64})$/;

function hmacHex(body: string | Uint8Array, secret: string): string {
  if (secret.length === 0) throw new ContainmentError(ErrorCodes.CONFIG_INVALID, 'trigger secret is empty');
  return createHmac('sha256', secret).update(body).digest('hex');
}

/** The header value for `body` (the exact bytes sent). */
export function sign(body: string | Uint8Array, secret: string): string {
  return `sha256=${hmacHex(body, secret)}`;
}

/** True when `header` is a well-formed signature of exactly `body` under `secret`. */
export function verifySignature(
  body: string | Uint8Array,
  secret: string,
  header: string | undefined,
): boolean {
  const match = SIGNATURE_FORMAT.exec(header?.trim().toLowerCase() ?? '');
  if (!match?.[1]) return false;
  // Both are 64 hex chars here, so the lengths match and the comparison is constant-time.
  return timingSafeEqual(Buffer.from(match[1], 'hex'), Buffer.from(hmacHex(body, secret), 'hex'));
}
