/** Checks a received delivery's Standard Webhooks signature in tests, as a receiver would. */
import type { IncomingHttpHeaders } from 'node:http';
import { verifyDelivery } from '../events/signature.js';

export function signedBy(body: string | Uint8Array, headers: IncomingHttpHeaders, secret: string): boolean {
  try {
    verifyDelivery(body, headers, secret);
    return true;
  } catch {
    return false;
  }
}
