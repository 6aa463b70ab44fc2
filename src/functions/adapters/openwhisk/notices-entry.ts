/**
 * Entry of the security-notices web action deployed to Apache OpenWhisk (`security-notices/events`,
 * annotations `web-export`, `raw-http`, `require-whisk-auth` and `provide-api-key`): OpenWhisk checks
 * the `X-Require-Whisk-Auth` secret before this runs; it reads the CloudEvent (structured or binary
 * mode), refuses anything else with 400, and fires the trigger `security-notices` with the event as
 * parameters through OpenWhisk's own API (the whisk client). Runs on Node 20 globals only (fetch), so the bundle has no
 * `require` (see ../bundled-host.ts).
 *
 * With the `webhookSecret` parameter (bound to the package by `policy deploy`), every delivery
 * must be signed as Standard Webhooks (../../../events/delivery-check.ts): unsigned, stale,
 * forged or binary-mode deliveries are refused, and a replayed id is answered 200 without firing.
 * Accepted ids are remembered in memory per warm container only: a replay that reaches another
 * (or a fresh) container inside the tolerance is not recognised there — the limit of a stateless
 * action; the runtime's own endpoint persists them (SQLite).
 */
import { z } from 'zod';
import { WhiskClient } from '../../../clients/whisk-client.js';
import type { JsonObject } from '../../sandbox/sandbox.js';
import { checkSignedDelivery, STRUCTURED_CONTENT_TYPE } from '../../../events/delivery-check.js';
import { MemoryReplayGuard } from '../../../events/signature.js';
import { CONFIG_PARAM } from '../bundled-config.js';

/** Per warm container (see the file comment). */
const replayGuard = new MemoryReplayGuard();

export const NOTICES_TRIGGER = 'security-notices';

const attributes = z.looseObject({
  specversion: z.literal('1.0'),
  id: z.string().min(1),
  source: z.string().min(1),
  type: z.string().min(1),
});

interface WebParams {
  __ow_method?: string;
  __ow_headers?: Record<string, string>;
  /** raw-http: the body as text, or base64 when OpenWhisk considers the content type binary. */
  __ow_body?: string;
  /** Bound at deploy (package parameter): `whsec_…`, several separated by spaces during a rotation. */
  webhookSecret?: string;
  webhookToleranceSeconds?: number;
}

const reply = (statusCode: number, body: unknown) => ({
  statusCode,
  headers: { 'content-type': 'application/json' },
  body,
});

/**
 * raw-http hands over the body as text, or base64-encoded when OpenWhisk deems the content type
 * binary — which versions disagree on for `application/cloudevents+json`. A JSON body starts with
 * `{` or `[` and base64 never does, so that decides.
 */
export function bodyText(raw: string): string {
  const trimmed = raw.trim();
  if (trimmed === '' || trimmed.startsWith('{') || trimmed.startsWith('[')) return raw;
  if (trimmed.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(trimmed))
    return Buffer.from(trimmed, 'base64').toString('utf8');
  return raw;
}

/** The event as parameters, like the runtime's own security-notices endpoint gives them. */
export function cloudEventOf(headers: Record<string, string>, text: string): Record<string, unknown> {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const contentType = lower['content-type'] ?? '';
  let event: Record<string, unknown>;
  if (contentType.startsWith('application/cloudevents+json')) {
    event = JSON.parse(text) as Record<string, unknown>;
  } else {
    event = {};
    for (const [key, value] of Object.entries(lower)) if (key.startsWith('ce-')) event[key.slice(3)] = value;
    if (contentType !== '') event.datacontenttype = contentType;
    if (text !== '') event.data = /json/.test(contentType) ? JSON.parse(text) : text;
  }
  const parsed = attributes.safeParse(event);
  if (!parsed.success)
    throw new Error(
      `not a CloudEvent: ${parsed.error.issues[0]?.path.join('.') ?? ''} ${parsed.error.issues[0]?.message ?? ''}`,
    );
  const { [CONFIG_PARAM]: _dropped, ...clean } = parsed.data;
  return clean;
}

export async function main(params: WebParams): Promise<unknown> {
  if ((params.__ow_method ?? 'post').toLowerCase() !== 'post')
    return reply(405, { error: 'POST a CloudEvent' });
  let headers = params.__ow_headers ?? {};
  const text = bodyText(params.__ow_body ?? '');
  const secret = params.webhookSecret?.trim();
  let deliveryId: string | undefined;
  if (secret) {
    const verdict = await checkSignedDelivery(text, headers, secret, replayGuard, {
      ...(params.webhookToleranceSeconds === undefined
        ? {}
        : { toleranceSeconds: params.webhookToleranceSeconds }),
    });
    if (!verdict.ok) return reply(verdict.status, { error: verdict.message, code: verdict.code });
    if (verdict.duplicate) return reply(200, { duplicate: true });
    deliveryId = verdict.id;
    // Signed: every attribute comes from the body alone.
    headers = { 'content-type': STRUCTURED_CONTENT_TYPE };
  }
  let event: Record<string, unknown>;
  try {
    event = cloudEventOf(headers, text);
  } catch (e) {
    if (deliveryId !== undefined) replayGuard.release(deliveryId);
    return reply(400, { error: (e as Error).message.split('\n')[0] });
  }
  const apiHost = process.env.__OW_API_HOST;
  const apiKey = process.env.__OW_API_KEY;
  if (!apiHost || !apiKey)
    return reply(500, { error: 'no API key: the web action needs the provide-api-key annotation' });
  let activationId: string | undefined;
  try {
    activationId = await new WhiskClient({ apihost: apiHost, auth: apiKey, namespace: '_' }).fire(
      NOTICES_TRIGGER,
      event as JsonObject,
    );
  } catch (e) {
    if (deliveryId !== undefined) replayGuard.release(deliveryId);
    return reply(502, { error: (e as Error).message.split('\n')[0] });
  }
  if (activationId === undefined) return { statusCode: 204 };
  return reply(202, { activationId });
}
