/**
 * The security wrapper around the OpenWhisk REST API: per-source (IP) rate limits on the API and on
 * web endpoints, counted before authentication so key guessing is throttled too (429 with
 * Retry-After); Basic `uuid:key` authentication of every `/api/v1/namespaces` route; OpenWhisk's
 * error bodies; and the security-event log of refused calls.
 */
import fastifyRateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { WhiskError, WhiskMessages } from '../runtime.js';
import { UNATTRIBUTED } from '../security-events.js';
import type { SecurityEventKind, SecurityEventLog } from '../security-events.js';
import type { FunctionStore } from '../store.js';

export interface RateLimitSetting {
  max: number;
  windowMs: number;
}

/** Per source address: generous for automation on loopback, tight enough to stop guessing. */
export const DEFAULT_RATE_LIMITS = {
  api: { max: 6000, windowMs: 60_000 },
  web: { max: 1200, windowMs: 60_000 },
} as const;

export interface SecurityWrapperOptions {
  store: FunctionStore;
  securityEvents: SecurityEventLog;
  /** Requests per source address and window; `false` turns a limit (or both) off. */
  rateLimit?: { api: RateLimitSetting | false; web: RateLimitSetting | false } | false;
}

export async function installSecurityWrapper(
  app: FastifyInstance,
  options: SecurityWrapperOptions,
): Promise<void> {
  const { store, securityEvents } = options;
  /** The namespace an event about `request` belongs to: the caller's, else the URL's if it exists. */
  const eventNamespace = (request: FastifyRequest): string | undefined => {
    if (request.whiskNamespace !== undefined) return request.whiskNamespace;
    const ns = (request.params as { ns?: string } | undefined)?.ns;
    return ns !== undefined && ns !== '_' && store.hasNamespace(ns) ? ns : undefined;
  };
  const recordEvent = (request: FastifyRequest, kind: SecurityEventKind, reason: string): void => {
    const namespace = eventNamespace(request);
    const event = { kind, endpoint: request.url.split('?')[0] ?? '', source: request.ip, reason };
    // Nothing to attribute it to (an unknown namespace or `_` without a key): only the admin sees it.
    securityEvents.record({ namespace: namespace ?? UNATTRIBUTED, ...event });
  };

  await app.register(fastifyRateLimit, { global: false });
  const limits =
    options.rateLimit === false
      ? { api: false as const, web: false as const }
      : (options.rateLimit ?? DEFAULT_RATE_LIMITS);
  const limiter = (setting: RateLimitSetting | false, scope: string) =>
    setting === false
      ? undefined
      : app.createRateLimit({
          max: setting.max,
          timeWindow: setting.windowMs,
          keyGenerator: (request) => `${scope}:${request.ip}`,
        });
  const apiLimiter = limiter(limits.api, 'api');
  const webLimiter = limiter(limits.web, 'web');
  /** One event per source and window, not one per refused request: a flood must not flood the log. */
  const throttledUntil = new Map<string, number>();
  const throttle = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const route = request.routeOptions.url ?? '';
    const check = route.startsWith('/api/v1/web/')
      ? webLimiter
      : route.startsWith('/api/v1/namespaces')
        ? apiLimiter
        : undefined;
    const result = await check?.(request);
    if (!result || result.isAllowed || !result.isExceeded) return;
    const retryAfter = Math.max(1, result.ttlInSeconds);
    const key = `${result.key}`;
    if ((throttledUntil.get(key) ?? 0) <= Date.now()) {
      throttledUntil.set(key, Date.now() + retryAfter * 1000);
      if (throttledUntil.size > 10_000) throttledUntil.clear();
      recordEvent(
        request,
        'rate-limited',
        `more than ${result.max} requests in ${result.timeWindow / 1000} s from ${request.ip}`,
      );
    }
    void reply.header('retry-after', String(retryAfter));
    throw new WhiskError(
      429,
      `Too many requests from this address: at most ${result.max} per ${result.timeWindow / 1000} s.`,
    );
  };

  // OpenWhisk accepts a POST without a body (fire, invoke): an empty JSON body means no payload.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new WhiskError(400, WhiskMessages.malformed('the body is not valid JSON')), undefined);
    }
  });

  app.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
    if (error instanceof WhiskError) {
      return reply.code(error.statusCode).send({
        error: error.message,
        code: request.id,
        ...(error.errorCode === undefined ? {} : { errorCode: error.errorCode }),
      });
    }
    const status = error.statusCode ?? 500;
    if (status === 413) recordEvent(request, 'body-too-large', 'request body over the limit');
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    const message =
      status === 413
        ? 'The request content was malformed: request body too large'
        : status >= 500
          ? 'Internal server error'
          : error.message;
    return reply.code(status).send({ error: message, code: request.id });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: WhiskMessages.notFound, code: request.id }),
  );

  app.addHook('onRequest', async (request, reply) => {
    await throttle(request, reply);
    // The matched route, not the raw URL: percent-encoding must not route around the check.
    if (!request.routeOptions.url?.startsWith('/api/v1/namespaces')) return;
    const header = request.headers.authorization ?? '';
    const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header);
    const decoded = match ? Buffer.from(match[1]!, 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    const namespace =
      colon > 0 ? store.authenticate(decoded.slice(0, colon), decoded.slice(colon + 1)) : undefined;
    if (namespace === undefined) {
      recordEvent(request, 'authentication-failed', match ? 'invalid key' : 'no Basic credentials');
      throw new WhiskError(401, WhiskMessages.unauthorized);
    }
    request.whiskNamespace = namespace;
  });
}
