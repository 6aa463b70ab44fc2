/**
 * The security-notices package: installed in a namespace it is a package `security-notices` (its
 * `require-whisk-auth` annotation holds the namespace's secret) and a trigger `security-notices`.
 * The web endpoint `POST /api/v1/web/{ns}/security-notices/events` takes the scanner's CloudEvents
 * signed as Standard Webhooks (../events/signature.ts) under that secret, in structured mode only:
 * every attribute the policy sees must come from the signed body, and binary mode's `ce-*` headers
 * are not signed. A timestamp outside the tolerance is refused; an id already accepted is answered
 * 200 `{ duplicate: true }` without firing again (ids are remembered past the tolerance, in a store
 * that survives restarts). The older `containment-signature` header and OpenWhisk's static
 * `X-Require-Whisk-Auth` secret (both replayable) are accepted only with `acceptLegacySignature`,
 * deprecated, for one release. Rejected calls are answered 401/413/415/400 and kept in the
 * namespace's security-event log (security-events.ts).
 *
 * Routing by event type: an accepted event fires the trigger `security-notices` (every event, as
 * in OpenWhisk) and every other trigger of the namespace whose `event-types` annotation lists the
 * event's type, so a policy on such a trigger is fired only by its own events (`containment up`
 * puts the scan policy on one and the runtime policy on another). The answer carries the first
 * trigger activation's id (`activationIds`: all of them); 204 when no trigger had an active rule.
 */
import { timingSafeEqual } from 'node:crypto';
import { CloudEvent, HTTP } from 'cloudevents';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WhiskApi } from '../clients/whisk-client.js';
import { isContainmentError } from '../errors.js';
import {
  DEFAULT_TOLERANCE_SECONDS,
  LEGACY_SIGNATURE_HEADER,
  MemoryReplayGuard,
  hasWebhookHeaders,
  verifyDelivery,
  verifyLegacySignature,
} from '../events/signature.js';
import type { ReplayGuard } from '../events/signature.js';
import type { TriggerDoc } from './entities.js';
import type { FunctionRuntime } from './runtime.js';
import type { SecurityEventKind, SecurityEventLog } from './security-events.js';
import { WhiskError } from './runtime.js';
import type { JsonObject } from './sandbox/sandbox.js';

export const SECURITY_NOTICES = 'security-notices';
export const SECRET_ANNOTATION = 'require-whisk-auth';
export const WHISK_AUTH_HEADER = 'x-require-whisk-auth';
/** A trigger annotation: the CloudEvent types (a JSON array) the endpoint also fires it with. */
export const EVENT_TYPES_ANNOTATION = 'event-types';
/** A scan event is a few KB; 1 MB is OpenWhisk's parameter limit. */
export const DEFAULT_NOTICE_BODY_LIMIT = 1024 * 1024;

export type { SecurityEvent, SecurityEventKind } from './security-events.js';

export interface SecurityNoticesOptions {
  runtime: FunctionRuntime;
  log: SecurityEventLog;
  bodyLimit?: number;
  /** Remembers accepted delivery ids; persisted in production (SqliteReplayGuard). */
  replayGuard?: ReplayGuard;
  /** Seconds a `webhook-timestamp` may be away from now (default 300). */
  toleranceSeconds?: number;
  /** @deprecated Also accept `containment-signature` and `X-Require-Whisk-Auth` (replayable). */
  acceptLegacySignature?: boolean;
}

const STRUCTURED = 'application/cloudevents+json';

function secretOf(runtime: FunctionRuntime, ns: string): string | undefined {
  let value: unknown;
  try {
    value = runtime
      .getPackage(ns, SECURITY_NOTICES)
      .annotations.find((a) => a.key === SECRET_ANNOTATION)?.value;
  } catch (e) {
    if (e instanceof WhiskError && e.statusCode === 404) return undefined;
    throw e;
  }
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function sameSecret(given: string, secrets: string): boolean {
  const a = Buffer.from(given);
  return secrets.split(/\s+/).some((secret) => {
    const b = Buffer.from(secret);
    return a.length === b.length && timingSafeEqual(a, b);
  });
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export function registerSecurityNotices(app: FastifyInstance, options: SecurityNoticesOptions): void {
  const { runtime } = options;
  const { log } = options;
  const bodyLimit = options.bodyLimit ?? DEFAULT_NOTICE_BODY_LIMIT;
  const replayGuard = options.replayGuard ?? new MemoryReplayGuard();
  const toleranceSeconds = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const endpoint = `/api/v1/web/:ns/${SECURITY_NOTICES}/events`;

  void app.register(async (scope) => {
    // The signature covers the exact bytes, so the body stays raw whatever its content type.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_req, body, done) => done(null, body));
    scope.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
      const ns = (request.params as { ns?: string }).ns ?? '';
      if (error.statusCode === 413) {
        log.record({
          namespace: ns,
          kind: 'body-too-large',
          endpoint: request.url,
          source: request.ip,
          reason: `body over ${bodyLimit} bytes`,
        });
        return reply.code(413).send({ error: 'The request content was malformed: request body too large' });
      }
      if (error instanceof WhiskError) return reply.code(error.statusCode).send({ error: error.message });
      const status = error.statusCode ?? 500;
      if (status >= 500) request.log.error({ err: error }, 'security notice failed');
      return reply.code(status).send({ error: status >= 500 ? 'Internal server error' : error.message });
    });

    scope.post(endpoint, async (request, reply) => {
      const { ns } = request.params as { ns: string };
      const reject = (status: number, kind: SecurityEventKind, reason: string) => {
        log.record({ namespace: ns, kind, endpoint: request.url, source: request.ip, reason });
        return reply.code(status).send({ error: reason });
      };
      const secret = secretOf(runtime, ns);
      // Not installed (or no such namespace): the same answer as any unknown resource.
      if (secret === undefined)
        return reply.code(404).send({ error: 'The requested resource does not exist.' });
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      let deliveryId: string | undefined;
      if (hasWebhookHeaders(request.headers)) {
        try {
          deliveryId = verifyDelivery(body, request.headers, secret, { toleranceSeconds }).id;
        } catch (e) {
          if (!isContainmentError(e)) throw e;
          return reject(
            401,
            e.code === 'DELIVERY_STALE' ? 'stale-delivery' : 'authentication-failed',
            e.message,
          );
        }
        if (!(header(request, 'content-type') ?? '').startsWith(STRUCTURED))
          return reject(
            415,
            'invalid-event',
            `signed deliveries must be structured-mode CloudEvents (${STRUCTURED}): ce-* headers are not signed`,
          );
      } else {
        const refusal = legacyRefusal(request, body, secret, options.acceptLegacySignature === true);
        if (refusal !== undefined) return reject(401, 'authentication-failed', refusal);
      }
      let event: JsonObject;
      try {
        // Signed: the event is read from the body alone, whatever ce-* headers came along.
        const headers =
          deliveryId === undefined
            ? (request.headers as Record<string, string>)
            : { 'content-type': header(request, 'content-type') ?? STRUCTURED };
        const received = HTTP.toEvent({ headers, body: body.toString('utf8') });
        if (Array.isArray(received)) throw new Error('batched events are not accepted');
        // toEvent does not validate; the strict constructor refuses a body without type or source.
        event = JSON.parse(JSON.stringify(new CloudEvent({ ...received }))) as JsonObject;
      } catch (e) {
        return reject(400, 'invalid-event', `not a CloudEvent: ${(e as Error).message.split('\n')[0]}`);
      }
      if (deliveryId !== undefined && !(await replayGuard.claim(`${ns}/${deliveryId}`))) {
        log.record({
          namespace: ns,
          kind: 'replayed-delivery',
          endpoint: request.url,
          source: request.ip,
          reason: `delivery ${deliveryId} was already accepted; not fired again`,
        });
        return reply.code(200).send({ duplicate: true });
      }
      const activationIds: string[] = [];
      try {
        for (const trigger of triggersFor(runtime, ns, String(event.type))) {
          const id = runtime.fire(ns, trigger, event);
          if (id !== undefined) activationIds.push(id);
        }
      } catch (e) {
        // Not processed: the sender's retry of the same id must not be taken for a replay.
        if (deliveryId !== undefined && activationIds.length === 0)
          await replayGuard.release(`${ns}/${deliveryId}`);
        throw e;
      }
      const [activationId] = activationIds;
      if (activationId === undefined) return reply.code(204).send();
      reply.header('x-openwhisk-activation-id', activationId);
      return reply.code(202).send({ activationId, activationIds });
    });
  });
}

/** `security-notices`, then the namespace's triggers annotated with `type` (sorted by name). */
export function triggersFor(runtime: FunctionRuntime, ns: string, type: string): string[] {
  const typed = runtime
    .list<TriggerDoc>(ns, 'triggers', 0, -1) // -1: no limit
    .filter((t) => t.name !== SECURITY_NOTICES && eventTypesOf(t).includes(type))
    .map((t) => t.name)
    .sort();
  return [SECURITY_NOTICES, ...typed];
}

/** The trigger's `event-types` annotation; anything but an array of strings is none. */
export function eventTypesOf(trigger: { annotations: { key: string; value: unknown }[] }): string[] {
  const value = trigger.annotations.find((a) => a.key === EVENT_TYPES_ANNOTATION)?.value;
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/**
 * The deprecated schemes (no id, no time: replayable), accepted only when asked for. Returns why a
 * request is refused, or undefined when it is authentic under one of them.
 */
function legacyRefusal(
  request: FastifyRequest,
  body: Buffer,
  secret: string,
  accept: boolean,
): string | undefined {
  const signature = header(request, LEGACY_SIGNATURE_HEADER);
  const whiskAuth = header(request, WHISK_AUTH_HEADER);
  if (signature === undefined && whiskAuth === undefined)
    return 'no webhook-signature (Standard Webhooks) on the delivery';
  if (!accept)
    return `${signature !== undefined ? LEGACY_SIGNATURE_HEADER : WHISK_AUTH_HEADER} is no longer accepted (replayable); sign deliveries as Standard Webhooks, or start the runtime with --accept-legacy-signature (deprecated)`;
  request.log.warn('accepted a delivery under a deprecated, replayable signature scheme');
  if (signature !== undefined)
    return verifyLegacySignature(body, secret, signature)
      ? undefined
      : 'the signature does not match the body';
  return sameSecret(whiskAuth!, secret) ? undefined : 'the X-Require-Whisk-Auth secret is wrong';
}

/** Installs the package and its trigger in `ns` through the runtime's REST API (idempotent). */
export async function installSecurityNotices(api: WhiskApi, secret: string): Promise<void> {
  await api.put('packages', SECURITY_NOTICES, {
    annotations: [
      { key: SECRET_ANNOTATION, value: secret },
      { key: 'description', value: 'Scanner CloudEvents in, trigger security-notices fired' },
    ],
  });
  await api.put('triggers', SECURITY_NOTICES, {});
}

/** The web endpoint URL for `ns` on a runtime at `apiUrl`. */
export function securityNoticesUrl(apiUrl: string, ns: string): string {
  return `${apiUrl}/api/v1/web/${encodeURIComponent(ns)}/${SECURITY_NOTICES}/events`;
}
