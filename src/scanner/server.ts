/**
 * The scanner service's HTTP API (Fastify): clusters, agent reports, findings, workloads, scans,
 * summaries, triggers, tokens and dead letters under `/v1` (one module per resource in `routes/`),
 * plus `/healthz`, `/readyz`, `/metrics` and the OpenAPI document. Every `/v1` call is
 * authenticated; every read is limited to the caller's namespaces before it reaches the store
 * (`visibilityFor`), so nothing outside them shows up in results or counts.
 */
import fastifyRateLimit from '@fastify/rate-limit';
import Fastify from 'fastify';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiTokens } from '../auth/api-tokens.js';
import { authenticate } from '../auth/authenticate.js';
import type { OidcVerifier } from '../auth/oidc.js';
import { assertCan } from '../auth/principal.js';
import type { Principal } from '../auth/principal.js';
import type { TargetGuard } from '../events/ssrf.js';
import type { AsyncAdvisoryStore } from '../vulndb/advisory-store.js';
import { ApiErrorCodes, ScannerApiError } from './api-error.js';
import { PackageMatcher } from './package-matcher.js';
import type { RematchCheck } from './rematch.js';
import { ScannerMetrics } from './metrics.js';
import { actionRoutes, buildOpenApiDocument, ROUTES } from './openapi.js';
import type { RouteContext } from './routes/context.js';
import { visibilityFor } from './routes/context.js';
import { registerEventStream } from './routes/events-stream.js';
import type { ActionSource, EventStreamOptions } from './routes/events-stream.js';
import { registerLinkedParts } from './routes/linked-parts.js';
import type { LinkedParts } from './routes/linked-parts.js';
import { registerUiOidc } from './routes/ui-oidc.js';
import type { WebOidcClient } from './routes/ui-oidc.js';
import { actionApiPlugin } from '../enforcement/action-api.js';
import type { ActionApiOptions } from '../enforcement/action-api.js';
import { registerUiSession } from './routes/ui-session.js';
import { registerWebAssets } from './routes/web-assets.js';
import { registerWorkloadSearch } from './routes/workload-search.js';
import { errorBody, registerErrorHandlers } from './routes/errors.js';
import { V1_ROUTES } from './routes/index.js';
import type { ScannerStore } from './scanner-store.js';

export { visibilityFor } from './routes/context.js';

export const DEFAULT_BODY_LIMIT = 8 * 1024 * 1024;

export interface ScannerAppOptions {
  store: ScannerStore;
  advisories: AsyncAdvisoryStore;
  tokens: ApiTokens;
  oidc?: OidcVerifier;
  /** Woken after a transaction that wrote events commits, and after a dead-letter replay. */
  deliverer: { notify(): void };
  /** Checks trigger URLs when they are registered (the deliverer checks again at connection time). */
  guard: TargetGuard;
  /** A pino logger, or false/undefined for none. */
  logger?: FastifyBaseLogger | false;
  /** Largest request body in bytes (reports included); larger ones get 413. */
  bodyLimit?: number;
  /** Re-matching after advisory updates (`Rematcher`); `POST /v1/admin/rematch` runs a check now. */
  rematch?: { check(): Promise<RematchCheck> };
  /** Requests per principal (per address when unauthenticated) and window; none when undefined. */
  rateLimit?: RateLimit;
  /** Counters served at /metrics; pass one to also feed it the deliverer's outcomes. */
  metrics?: ScannerMetrics;
  /** Matches report inventories (e.g. with a worker thread); default: one on the event loop. */
  matcher?: PackageMatcher;
  /** The dashboard's built assets served at `/ui/` (default `dist/web/`). */
  webDir?: string;
  /** The dashboard's OIDC client (authorization code + PKCE against `oidc`'s issuer). */
  webOidc?: WebOidcClient;
  /**
   * The enforcer and policy runtime `containment up` runs beside the scanner (`/v1/audit`,
   * `/v1/policies`); read on each request, since up starts them after the scanner.
   */
  linkedParts?: () => LinkedParts | undefined;
  /** `POST /ui/session` attempts per client address and window (sign-in guessing); none when undefined. */
  signInRateLimit?: RateLimit;
  /** `GET /v1/events/stream` timing (tests shorten it). */
  eventStream?: EventStreamOptions;
  /**
   * The enforcer's action API on this origin too (`containment up`), so the dashboard reaches it
   * with its session cookie; API tokens and OIDC are checked by this server's verifiers.
   */
  actions?: Omit<ActionApiOptions, 'verifier' | 'oidc'>;
}

export interface RateLimit {
  max: number;
  windowMs: number;
}

/**
 * A limit of `limit.max` requests per window and key: over it, 429 `RATE_LIMITED` with
 * Retry-After. Needs @fastify/rate-limit registered on `app`.
 */
function rateLimiter(
  app: FastifyInstance,
  limit: RateLimit,
  key: (request: FastifyRequest) => string,
): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const check = app.createRateLimit({ max: limit.max, timeWindow: limit.windowMs, keyGenerator: key });
  return async (request, reply) => {
    const state = await check(request);
    if (!state.isAllowed && state.isExceeded) {
      void reply.header('retry-after', String(Math.max(1, state.ttlInSeconds)));
      throw new ScannerApiError(
        429,
        ApiErrorCodes.RATE_LIMITED,
        `rate limit of ${state.max} requests per ${state.timeWindow / 1000} s exceeded`,
      );
    }
  };
}

/**
 * The rate limiter and the `/v1` authentication hook. A failed authentication still counts,
 * against the caller's address, so token guessing is throttled too.
 */
async function authentication(
  app: FastifyInstance,
  options: ScannerAppOptions,
): Promise<{
  authenticateRequest: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  principalOf: (request: FastifyRequest) => Principal;
}> {
  const principals = new WeakMap<FastifyRequest, Principal>();
  const rateLimit = options.rateLimit
    ? rateLimiter(app, options.rateLimit, (request) => {
        const principal = principals.get(request);
        return principal ? `${principal.via}:${principal.subject}` : `ip:${request.ip}`;
      })
    : undefined;

  const authenticateRequest = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    let failure: unknown;
    try {
      principals.set(
        request,
        await authenticate(request.headers.authorization, {
          tokens: options.tokens,
          ...(options.oidc ? { oidc: options.oidc } : {}),
        }),
      );
    } catch (e) {
      failure = e;
    }
    await rateLimit?.(request, reply);
    if (failure !== undefined) throw failure;
  };
  const principalOf = (request: FastifyRequest): Principal => {
    const principal = principals.get(request);
    // The /v1 hook runs before every handler there; reaching this is a wiring bug.
    if (!principal) throw new Error('request reached a /v1 handler unauthenticated');
    return principal;
  };
  return { authenticateRequest, principalOf };
}

/** The mounted action API's actions, for the event stream. */
function actionSource(actions: ScannerAppOptions['actions']): ActionSource | undefined {
  if (actions === undefined) return undefined;
  const { enforcer } = actions;
  return { cluster: actions.cluster ?? 'local', list: (filter) => enforcer.list(filter) };
}

export async function buildScannerApp(options: ScannerAppOptions): Promise<FastifyInstance> {
  const { store, advisories } = options;
  const app = Fastify({
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
  }) as unknown as FastifyInstance;

  const metrics = options.metrics ?? new ScannerMetrics();
  app.addHook('onResponse', async (request, reply) => {
    // The route pattern, not the URL: unmatched paths share one label value.
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.requestDone(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
    if (route === '/v1/reports' && request.method === 'POST' && reply.statusCode >= 400)
      metrics.reportReceived('rejected');
  });
  registerErrorHandlers(app);
  // The dashboard: its session cookie is turned into credentials before /v1 authenticates.
  await app.register(fastifyRateLimit, { global: false });
  registerUiSession(
    app,
    { tokens: options.tokens, ...(options.oidc ? { oidc: options.oidc } : {}) },
    // Per client address, apart from the API's budget: guessing tokens at the sign-in form.
    options.signInRateLimit
      ? rateLimiter(app, options.signInRateLimit, (request) => `signin:${request.ip}`)
      : undefined,
  );
  registerUiOidc(app, options.webOidc, options.oidc);
  registerWebAssets(app, options.webDir);
  const { authenticateRequest, principalOf } = await authentication(app, options);

  if (options.actions !== undefined)
    await app.register(actionApiPlugin, {
      ...options.actions,
      // The scanner answers /v1/audit itself (linked parts, checked against the caller's visibility).
      audit: undefined,
      verifier: options.tokens,
      ...(options.oidc ? { oidc: options.oidc } : {}),
    });

  const openApiDocument = buildOpenApiDocument(
    options.actions === undefined
      ? ROUTES
      : [...ROUTES, ...actionRoutes({ evidence: options.actions.evidenceDir !== undefined })],
  );
  app.get('/v1/openapi.json', async () => openApiDocument);

  app.get('/metrics', { onRequest: authenticateRequest }, async (request, reply) => {
    assertCan(principalOf(request), 'metrics:read');
    return reply.type(metrics.contentType()).send(await metrics.exposition());
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    try {
      await store.ping();
      await advisories.count();
      return { status: 'ready' };
    } catch (e) {
      return reply
        .status(503)
        .send(errorBody(ApiErrorCodes.NOT_READY, e instanceof Error ? e.message : 'not ready'));
    }
  });

  const context: RouteContext = {
    store,
    advisories,
    tokens: options.tokens,
    // One per app: its per-package cache is what makes repeated packages cheap to match.
    matcher: options.matcher ?? new PackageMatcher(advisories),
    metrics,
    deliverer: options.deliverer,
    guard: options.guard,
    rematch: options.rematch,
    principalOf,
  };
  await app.register(
    async (v1) => {
      v1.addHook('onRequest', authenticateRequest);
      for (const routes of V1_ROUTES) routes(v1, context);
      registerWorkloadSearch(v1, store, principalOf, visibilityFor);
      registerEventStream(
        v1,
        store,
        principalOf,
        visibilityFor,
        options.eventStream,
        actionSource(options.actions),
      );
      registerLinkedParts(v1, store, principalOf, visibilityFor, options.linkedParts ?? (() => undefined));
    },
    { prefix: '/v1' },
  );
  return app;
}
