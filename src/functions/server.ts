/**
 * OpenWhisk's REST API (`/api/v1/namespaces/{ns}/{actions,packages,triggers,rules,activations}`) over
 * the FunctionRuntime, with OpenWhisk's authentication: HTTP Basic `uuid:key`, the key scoped to one
 * namespace, `_` meaning the caller's own. Errors are `{ error, code }` as OpenWhisk sends them (plus
 * `errorCode`, a stable Containment code, where there is one).
 *
 * The security wrapper around it: per-source (IP) rate limits on the API and on web endpoints,
 * counted before authentication so key guessing is throttled too (429 with Retry-After); body-size
 * limits (action code up to 50 MB, every other body at OpenWhisk's 1 MB parameter limit); and the
 * security-event log of refused calls, readable at `/api/v1/namespaces/{ns}/security-events`.
 */
import fastifyRateLimit from '@fastify/rate-limit';
import Fastify from 'fastify';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { activationSummary, payloadSchema, ruleStatusSchema } from './entities.js';
import type {
  Activation,
  ActionDoc,
  Collection,
  PackageDoc,
  RuleDoc,
  StoredAction,
  TriggerDoc,
} from './entities.js';
import { MAX_BLOCKING_WAIT_MS, WhiskError, WhiskMessages } from './runtime.js';
import type { FunctionRuntime } from './runtime.js';
import type { JsonObject } from './sandbox/sandbox.js';
import { UNATTRIBUTED } from './security-events.js';
import type { SecurityEventKind, SecurityEventLog } from './security-events.js';
import { registerSecurityNotices } from './security-notices.js';
import type { FunctionStore } from './store.js';

export interface FunctionsAppOptions {
  runtime: FunctionRuntime;
  store: FunctionStore;
  logger: FastifyBaseLogger;
  /** Largest action PUT (its code); OpenWhisk allows 48 MB of code. */
  bodyLimit?: number;
  securityEvents: SecurityEventLog;
  /** The namespace whose key may read every namespace's security events (`?all=true`): `guest`. */
  adminNamespace?: string;
  /** Requests per source address and window; `false` turns a limit (or both) off. */
  rateLimit?: { api: RateLimitSetting | false; web: RateLimitSetting | false } | false;
}

export interface RateLimitSetting {
  max: number;
  windowMs: number;
}

/** Per source address: generous for automation on loopback, tight enough to stop guessing. */
export const DEFAULT_RATE_LIMITS = {
  api: { max: 6000, windowMs: 60_000 },
  web: { max: 1200, windowMs: 60_000 },
} as const;

declare module 'fastify' {
  interface FastifyRequest {
    /** The namespace the caller's key belongs to. */
    whiskNamespace?: string;
  }
}

const DEFAULT_BODY_LIMIT = 50 * 1024 * 1024;
/** Every body but action code: parameters are capped at 1 MB, plus room for JSON framing. */
const PARAMETER_BODY_LIMIT = 1024 * 1024 + 64 * 1024;

const flag = z
  .enum(['true', 'false'])
  .optional()
  .transform((v) => v === 'true');

function intParam(name: string, min: number, max: number) {
  return z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!/^-?\d+$/.test(v))
        ctx.addIssue({ code: 'custom', message: `The value '${v}' is not an integer for ${name}.` });
      else if (n < min || n > max)
        ctx.addIssue({
          code: 'custom',
          message: `The value '${v}' is not in the range of ${min} to ${max} for ${name}.`,
        });
      return n;
    });
}

const listQuery = z.object({
  skip: intParam('skip', 0, Number.MAX_SAFE_INTEGER),
  limit: intParam('limit', 0, 200),
});
const putQuery = z.object({ overwrite: flag });
const getActionQuery = z.object({ code: z.enum(['true', 'false']).optional() });
const invokeQuery = z.object({
  blocking: flag,
  result: flag,
  timeout: intParam('timeout', 1, MAX_BLOCKING_WAIT_MS),
});
const activationsQuery = z.object({
  name: z.string().optional(),
  skip: intParam('skip', 0, Number.MAX_SAFE_INTEGER),
  limit: intParam('limit', 0, 200),
  since: intParam('since', 0, Number.MAX_SAFE_INTEGER),
  upto: intParam('upto', 0, Number.MAX_SAFE_INTEGER),
  docs: flag,
});
const ACTIVATION_ID = /^[0-9a-f]{32}$/;

function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new WhiskError(400, result.error.issues[0]?.message ?? 'invalid request');
}

function payloadOf(body: unknown): JsonObject {
  const result = payloadSchema.safeParse(body);
  if (!result.success)
    throw new WhiskError(400, WhiskMessages.malformed('the payload must be a JSON object'));
  return (result.data ?? {}) as JsonObject;
}

/** `_` or the caller's own namespace; any other namespace is not the caller's to see. */
function namespaceOf(request: FastifyRequest, ns = (request.params as { ns: string }).ns): string {
  const own = request.whiskNamespace;
  if (own === undefined) throw new WhiskError(401, WhiskMessages.unauthorized);
  if (ns === '_' || ns === own) return own;
  throw new WhiskError(403, WhiskMessages.forbidden);
}

function withoutCode(doc: ActionDoc): Omit<ActionDoc, 'exec'> & { exec: { kind: string; binary: false } } {
  return { ...doc, exec: { kind: doc.exec.kind, binary: false } };
}

export async function buildFunctionsApp(options: FunctionsAppOptions): Promise<FastifyInstance> {
  const { runtime, store, securityEvents } = options;
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit: PARAMETER_BODY_LIMIT,
    // Behind a proxy the address is the proxy's; per-source limits then need its X-Forwarded-For.
    trustProxy: false,
  });
  const codeBodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;

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

  app.get('/api/v1', async () => ({
    api_paths: ['/api/v1'],
    description: 'OpenWhisk API',
    runtime: 'containment',
  }));
  app.get('/api/v1/namespaces', async (request) => [namespaceOf(request, '_')]);

  // ---- actions ----
  app.get('/api/v1/namespaces/:ns/actions', async (request) => {
    const ns = namespaceOf(request);
    const q = parse(listQuery, request.query);
    return runtime
      .list<StoredAction>(ns, 'actions', q.skip ?? 0, q.limit || 30)
      .map((a) => withoutCode(a.doc));
  });
  app.get('/api/v1/namespaces/:ns/actions/*', async (request) => {
    const ns = namespaceOf(request);
    const { doc } = runtime.getAction(ns, pathOf(request));
    return parse(getActionQuery, request.query).code === 'false' ? withoutCode(doc) : doc;
  });
  app.put('/api/v1/namespaces/:ns/actions/*', { bodyLimit: codeBodyLimit }, async (request) => {
    const ns = namespaceOf(request);
    return runtime.putAction(ns, pathOf(request), request.body, parse(putQuery, request.query).overwrite);
  });
  app.delete('/api/v1/namespaces/:ns/actions/*', async (request) => {
    const ns = namespaceOf(request);
    return runtime.delete<StoredAction>(ns, 'actions', pathOf(request)).doc;
  });
  app.post('/api/v1/namespaces/:ns/actions/*', async (request, reply) => {
    const ns = namespaceOf(request);
    const q = parse(invokeQuery, request.query);
    const outcome = await runtime.invoke(ns, pathOf(request), payloadOf(request.body), {
      blocking: q.blocking,
      source: request.ip,
      ...(q.timeout === undefined ? {} : { waitMs: q.timeout }),
    });
    reply.header('x-openwhisk-activation-id', outcome.activationId);
    const activation = outcome.activation;
    if (activation === undefined) return reply.code(202).send({ activationId: outcome.activationId });
    // As OpenWhisk: 200 on success, 502 for application and developer errors, 500 for internal ones.
    const status = activation.response.success ? 200 : activation.response.statusCode === 3 ? 500 : 502;
    return reply.code(status).send(q.result ? activation.response.result : activation);
  });

  // ---- packages, triggers, rules ----
  simpleCollection(app, 'packages', {
    get: (ns, name) => runtime.getPackage(ns, name),
    put: (ns, name, body, overwrite) => runtime.putPackage(ns, name, body, overwrite),
    del: (ns, name) => runtime.deletePackage(ns, name),
    list: (ns, skip, limit) => runtime.list<PackageDoc>(ns, 'packages', skip, limit),
  });
  simpleCollection(app, 'triggers', {
    get: (ns, name) => runtime.getTrigger(ns, name),
    put: (ns, name, body, overwrite) => runtime.putTrigger(ns, name, body, overwrite),
    del: (ns, name) => runtime.delete<TriggerDoc>(ns, 'triggers', name),
    list: (ns, skip, limit) => runtime.list<TriggerDoc>(ns, 'triggers', skip, limit),
  });
  simpleCollection(app, 'rules', {
    get: (ns, name) => runtime.get<RuleDoc>(ns, 'rules', name),
    put: (ns, name, body, overwrite) => runtime.putRule(ns, name, body, overwrite),
    del: (ns, name) => runtime.delete<RuleDoc>(ns, 'rules', name),
    list: (ns, skip, limit) => runtime.list<RuleDoc>(ns, 'rules', skip, limit),
  });
  app.post('/api/v1/namespaces/:ns/triggers/:name', async (request, reply) => {
    const ns = namespaceOf(request);
    const { name } = request.params as { name: string };
    const activationId = runtime.fire(ns, name, payloadOf(request.body));
    if (activationId === undefined) return reply.code(204).send();
    reply.header('x-openwhisk-activation-id', activationId);
    return reply.code(202).send({ activationId });
  });
  app.post('/api/v1/namespaces/:ns/rules/:name', async (request) => {
    const ns = namespaceOf(request);
    const { name } = request.params as { name: string };
    const body = ruleStatusSchema.safeParse(request.body);
    if (!body.success)
      throw new WhiskError(400, WhiskMessages.malformed("status must be 'active' or 'inactive'"));
    return runtime.setRuleStatus(ns, name, body.data.status);
  });

  // ---- activations ----
  app.get('/api/v1/namespaces/:ns/activations', async (request) => {
    const ns = namespaceOf(request);
    const q = parse(activationsQuery, request.query);
    const list = store.listActivations(ns, {
      ...(q.name === undefined ? {} : { name: q.name }),
      skip: q.skip ?? 0,
      limit: q.limit || 30,
      ...(q.since === undefined ? {} : { since: q.since }),
      ...(q.upto === undefined ? {} : { upto: q.upto }),
    });
    return q.docs ? list : list.map(activationSummary);
  });
  const activation = (request: FastifyRequest): Activation => {
    const ns = namespaceOf(request);
    const { id } = request.params as { id: string };
    if (!ACTIVATION_ID.test(id)) throw new WhiskError(400, 'The activation id is not valid.');
    const found = store.getActivation(ns, id);
    if (found === undefined) throw new WhiskError(404, WhiskMessages.notFound);
    return found;
  };
  app.get('/api/v1/namespaces/:ns/activations/:id', async (request) => activation(request));
  app.get('/api/v1/namespaces/:ns/activations/:id/logs', async (request) => ({
    logs: activation(request).logs,
  }));
  app.get('/api/v1/namespaces/:ns/activations/:id/result', async (request) => {
    const { response } = activation(request);
    return { ...response };
  });

  // ---- web endpoint of the security-notices package, and the security-event log ----
  const eventsQuery = z.object({
    limit: intParam('limit', 1, 1000),
    after: intParam('after', 0, Number.MAX_SAFE_INTEGER),
    all: flag,
  });
  app.get('/api/v1/namespaces/:ns/security-events', async (request) => {
    const own = namespaceOf(request);
    const q = parse(eventsQuery, request.query);
    // `all=true`: every namespace's events and the unattributed ones, for the admin namespace only.
    if (q.all && own !== options.adminNamespace) throw new WhiskError(403, WhiskMessages.forbidden);
    const ns = q.all ? undefined : own;
    return securityEvents.list(ns, {
      limit: q.limit ?? 200,
      ...(q.after === undefined ? {} : { after: q.after }),
    });
  });
  registerSecurityNotices(app, { runtime, log: securityEvents });

  return app;
}

function pathOf(request: FastifyRequest): string {
  return (request.params as { '*': string })['*'];
}

interface CollectionOps {
  get(ns: string, name: string): unknown;
  put(ns: string, name: string, body: unknown, overwrite: boolean): unknown;
  del(ns: string, name: string): unknown;
  list(ns: string, skip: number, limit: number): unknown[];
}

function simpleCollection(
  app: FastifyInstance,
  collection: Exclude<Collection, 'actions'>,
  ops: CollectionOps,
): void {
  const base = `/api/v1/namespaces/:ns/${collection}`;
  const nameOf = (request: FastifyRequest): string => (request.params as { name: string }).name;
  app.get(base, async (request) => {
    const q = parse(listQuery, request.query);
    return ops.list(namespaceOf(request), q.skip ?? 0, q.limit || 30);
  });
  app.get(`${base}/:name`, async (request) => ops.get(namespaceOf(request), nameOf(request)));
  app.put(`${base}/:name`, async (request) =>
    ops.put(namespaceOf(request), nameOf(request), request.body, parse(putQuery, request.query).overwrite),
  );
  app.delete(`${base}/:name`, async (request) => ops.del(namespaceOf(request), nameOf(request)));
}
