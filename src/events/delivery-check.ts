/**
 * The receiving side of a signed delivery, for the deployed policy handlers (Knative, OpenWhisk):
 * Standard Webhooks headers required (an unsigned delivery is refused when a secret is
 * configured), the timestamp within the tolerance, structured mode only (binary mode's `ce-*`
 * headers are not signed), and the id claimed in a replay guard — a duplicate is answered 200
 * without running the policy. The caller reads the event from the body alone.
 */
import { isContainmentError } from '../errors.js';
import { hasWebhookHeaders, verifyDelivery } from './signature.js';
import type { ReplayGuard } from './signature.js';

export const STRUCTURED_CONTENT_TYPE = 'application/cloudevents+json';

export type DeliveryVerdict =
  { ok: true; id: string; duplicate: boolean } | { ok: false; status: number; code: string; message: string };

export async function checkSignedDelivery(
  body: string | Uint8Array,
  headers: Record<string, string | string[] | undefined>,
  secrets: string,
  guard: ReplayGuard,
  options: { toleranceSeconds?: number; now?: Date } = {},
): Promise<DeliveryVerdict> {
  if (!hasWebhookHeaders(headers))
    return {
      ok: false,
      status: 401,
      code: 'SIGNATURE_INVALID',
      message: 'unsigned delivery refused: this handler requires Standard Webhooks signatures',
    };
  let id: string;
  try {
    id = verifyDelivery(body, headers, secrets, options).id;
  } catch (e) {
    if (!isContainmentError(e)) throw e;
    return { ok: false, status: 401, code: e.code, message: e.message };
  }
  const type = Object.entries(headers).find(([k]) => k.toLowerCase() === 'content-type')?.[1];
  if (!String(type ?? '').startsWith(STRUCTURED_CONTENT_TYPE))
    return {
      ok: false,
      status: 415,
      code: 'SIGNATURE_INVALID',
      message: `signed deliveries must be structured-mode CloudEvents (${STRUCTURED_CONTENT_TYPE}): ce-* headers are not signed`,
    };
  return { ok: true, id, duplicate: !(await guard.claim(id, options.now)) };
}
