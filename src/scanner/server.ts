/**
 * The scanner service's HTTP API (Fastify): clusters, agent reports, findings, workloads, scans,
 * summaries, triggers, tokens and dead letters under `/v1`, plus `/healthz` and `/readyz`.
 * Every `/v1` call is authenticated; every read is limited to the caller's namespaces before it
 * reaches the store (`visibilityFor`), so nothing outside them shows up in results or counts.
 */
import fastifyRateLimit from '@fastify/rate-limit';
import Fastify from 'fastify';
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { ApiTokens } from '../auth/api-tokens.js';
import { authenticate } from '../auth/authenticate.js';
import type { OidcVerifier } from '../auth/oidc.js';
import { assertCan, canIssue, covers, namespaceFilter, roleAllows } from '../auth/principal.js';
import type { Action, Principal, Scope } from '../auth/principal.js';
import { ContainmentError, ErrorCodes, isContainmentError } from '../errors.js';
import { EventTypes } from '../events/cloud-event.js';
import { SEVERITIES } from '../inventory/types.js';
import type { Severity } from '../inventory/types.js';
import type { TargetGuard } from '../events/ssrf.js';
import type { AsyncAdvisoryStore } from '../vulndb/advisory-store.js';
import { ApiErrorCodes, ScannerApiError, httpStatusOf, notFound } from './api-error.js';
import { ingestReport } from './ingest.js';
import { PackageMatcher } from './package-matcher.js';
import type { RematchCheck } from './rematch.js';
import { ScannerMetrics } from './metrics.js';
import { buildOpenApiDocument } from './openapi.js';
import { registerEventStream } from './routes/events-stream.js';
import { registerUiOidc } from './routes/ui-oidc.js';
import type { WebOidcClient } from './routes/ui-oidc.js';
import type { EventStreamOptions } from './routes/events-stream.js';
import { registerUiSession } from './routes/ui-session.js';
import { registerWebAssets } from './routes/web-assets.js';
import { registerWorkloadSearch } from './routes/workload-search.js';
import {
  clusterBodySchema,
  deadLetterQuerySchema,
  findingsQuerySchema,
  imagesQuerySchema,
  replayBodySchema,
  reportSchema,
  scanIdSchema,
  summaryQuerySchema,
  tokenBodySchema,
  triggerBodySchema,
  workloadQuerySchema,
} from './schemas.js';
import type { ScanDetail, ScannerStore, ScanRecord, Visibility } from './store/scanner-store.js';

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
  /** `GET /v1/events/stream` timing (tests shorten it). */
  eventStream?: EventStreamOptions;
}

export interface RateLimit {
  max: number;
  windowMs: number;
}

function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  throw new ScannerApiError(
    400,
    ApiErrorCodes.REQUEST_INVALID,
    `${where}${issue?.message ?? 'invalid request'}`,
  );
}

/** Throws FORBIDDEN unless the role grants the action somewhere (lists then filter by scope). */
function requireRole(principal: Principal, action: Action): void {
  if (!roleAllows(principal.role, action)) {
    throw new ContainmentError(ErrorCodes.FORBIDDEN, `role ${principal.role} may not ${action}`);
  }
}

/**
 * What the caller may read, narrowed by the query's cluster and namespace; undefined when that is
 * nothing at all.
 */
export function visibilityFor(
  principal: Principal,
  query: { cluster?: string; namespace?: string },
): Visibility | undefined {
  const cluster = query.cluster ?? principal.scope.cluster;
  const namespaces = namespaceFilter(principal, cluster);
  if (namespaces === 'none') return undefined;
  if (query.namespace !== undefined && namespaces !== '*' && !namespaces.includes(query.namespace))
    return undefined;
  return { cluster, namespaces };
}

function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

const FASTIFY_ERRORS: Record<string, [number, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, ApiErrorCodes.PAYLOAD_TOO_LARGE],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, ApiErrorCodes.UNSUPPORTED_MEDIA_TYPE],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, ApiErrorCodes.INVALID_JSON],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, ApiErrorCodes.INVALID_JSON],
};

/** Findings of a pod: one container's scan as is; several merged, each finding naming its container. */
function findingsResponse(scans: ScanDetail[]): object {
  const [only] = scans;
  if (scans.length === 1 && only) {
    return {
      workload: only.workload,
      scanId: only.id,
      scanTime: only.scanTime,
      summary: only.summary,
      vulnerablePackages: only.vulnerabilities,
      insecureConfigurations: only.insecureConfigurations,
    };
  }
  const first = scans[0] as ScanDetail;
  return {
    workload: {
      cluster: first.workload.cluster,
      namespace: first.workload.namespace,
      pod: first.workload.pod,
    },
    scanTime: scans
      .map((s) => s.scanTime)
      .sort()
      .at(-1),
    vulnerablePackages: scans.flatMap((s) =>
      s.vulnerabilities.map((v) => ({ ...v, container: s.workload.container })),
    ),
    insecureConfigurations: scans.flatMap((s) =>
      s.insecureConfigurations.map((c) => ({ ...c, container: s.workload.container })),
    ),
    containers: scans.map((s) => ({
      workload: s.workload,
      scanId: s.id,
      scanTime: s.scanTime,
      summary: s.summary,
    })),
  };
}

/**
 * One `/v1/images` entry: `severityCounts` adds vulnerabilities and insecure configurations per
 * severity, as the compliance verdict counts them (`matching/summary.ts`).
 */
function imageEntry(scan: ScanRecord): object {
  const { counts, configurationCounts } = scan.summary;
  const severityCounts = Object.fromEntries(
    SEVERITIES.map((s) => [s, counts[s] + configurationCounts[s]]),
  ) as Record<Severity, number>;
  return {
    image: scan.workload.image,
    ...(scan.workload.imageDigest === undefined ? {} : { imageDigest: scan.workload.imageDigest }),
    workload: scan.workload,
    scanId: scan.id,
    scanTime: scan.scanTime,
    severityCounts,
  };
}

export async function buildScannerApp(options: ScannerAppOptions): Promise<FastifyInstance> {
  const { store, advisories, tokens, guard, deliverer } = options;
  const app = Fastify({
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
  }) as unknown as FastifyInstance;

  const metrics = options.metrics ?? new ScannerMetrics();
  // One per app: its per-package cache is what makes repeated packages cheap to match.
  const matcher = options.matcher ?? new PackageMatcher(advisories);
  app.addHook('onResponse', async (request, reply) => {
    // The route pattern, not the URL: unmatched paths share one label value.
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.requestDone(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
    if (route === '/v1/reports' && request.method === 'POST' && reply.statusCode >= 400)
      metrics.reportReceived('rejected');
  });

  const principals = new WeakMap<FastifyRequest, Principal>();
  const principalOf = (request: FastifyRequest): Principal => {
    const principal = principals.get(request);
    // The /v1 hook runs before every handler there; reaching this is a wiring bug.
    if (!principal) throw new Error('request reached a /v1 handler unauthenticated');
    return principal;
  };

  app.setErrorHandler((error: FastifyError | Error, request, reply: FastifyReply) => {
    if (error instanceof ScannerApiError) {
      return reply.status(error.status).send(errorBody(error.code, error.message));
    }
    if (isContainmentError(error)) {
      const status = httpStatusOf(error.code);
      if (status === 401) {
        void reply.header('www-authenticate', 'Bearer realm="containment", error="invalid_token"');
      }
      return reply.status(status).send(errorBody(error.code, error.message));
    }
    const code = (error as FastifyError).code;
    const known = code === undefined ? undefined : FASTIFY_ERRORS[code];
    if (known) return reply.status(known[0]).send(errorBody(known[1], error.message));
    const status = (error as FastifyError).statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      return reply.status(status).send(errorBody(ApiErrorCodes.REQUEST_INVALID, error.message));
    }
    request.log.error({ err: error }, 'request failed');
    return reply.status(500).send(errorBody(ApiErrorCodes.INTERNAL, 'internal error'));
  });

  app.setNotFoundHandler((request, reply) =>
    reply
      .status(404)
      .send(errorBody(ApiErrorCodes.NOT_FOUND, `no route ${request.method} ${request.url.split('?')[0]}`)),
  );

  registerUiSession(app, { tokens, ...(options.oidc ? { oidc: options.oidc } : {}) });
  registerUiOidc(app, options.webOidc, options.oidc);
  registerWebAssets(app, options.webDir);

  await app.register(fastifyRateLimit, { global: false });
  const rateLimit = options.rateLimit
    ? app.createRateLimit({
        max: options.rateLimit.max,
        timeWindow: options.rateLimit.windowMs,
        keyGenerator: (request) => {
          const principal = principals.get(request);
          return principal ? `${principal.via}:${principal.subject}` : `ip:${request.ip}`;
        },
      })
    : undefined;

  /**
   * Authenticates, then counts the request against the caller's limit. A failed authentication
   * still counts, against the caller's address, so token guessing is throttled too.
   */
  const authenticateRequest = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    let failure: unknown;
    try {
      principals.set(
        request,
        await authenticate(request.headers.authorization, {
          tokens,
          ...(options.oidc ? { oidc: options.oidc } : {}),
        }),
      );
    } catch (e) {
      failure = e;
    }
    const limit = await rateLimit?.(request);
    if (limit && !limit.isAllowed && limit.isExceeded) {
      void reply.header('retry-after', String(Math.max(1, limit.ttlInSeconds)));
      throw new ScannerApiError(
        429,
        ApiErrorCodes.RATE_LIMITED,
        `rate limit of ${limit.max} requests per ${limit.timeWindow / 1000} s exceeded`,
      );
    }
    if (failure !== undefined) throw failure;
  };

  const openApiDocument = buildOpenApiDocument();
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

  await app.register(
    async (v1) => {
      v1.addHook('onRequest', authenticateRequest);

      // --- clusters ---
      v1.post('/clusters', async (request, reply) => {
        const principal = principalOf(request);
        assertCan(principal, 'clusters:write');
        const { name } = parse(clusterBodySchema, request.body);
        const cluster = await store.createCluster(name);
        const agent = await tokens.issue({
          name: `agent:${name}`,
          role: 'agent',
          scope: { cluster: name, namespaces: '*' },
        });
        return reply.status(201).send({ cluster, agentToken: agent.token, agentTokenId: agent.info.id });
      });

      v1.get('/clusters', async (request) => {
        const principal = principalOf(request);
        requireRole(principal, 'clusters:read');
        const visibility = visibilityFor(principal, {});
        return { clusters: visibility ? await store.listClusters(visibility) : [] };
      });

      v1.delete('/clusters/:name', async (request, reply) => {
        const principal = principalOf(request);
        const { name } = parse(clusterBodySchema, request.params);
        assertCan(principal, 'clusters:write', { cluster: name });
        if (!(await store.deleteCluster(name))) throw notFound(`cluster ${name}`);
        // Tokens bound to a deleted cluster must not come back to life if the name is reused.
        for (const token of await tokens.list()) {
          if (token.scope.cluster === name && token.revokedAt === undefined) await tokens.revoke(token.id);
        }
        return reply.status(204).send();
      });

      // --- agent reports ---
      v1.post('/reports', async (request, reply) => {
        const principal = principalOf(request);
        requireRole(principal, 'reports:write');
        const report = parse(reportSchema, request.body);
        const { cluster, namespace } = report.workload;
        assertCan(principal, 'reports:write', { cluster, namespace });
        const result = await ingestReport(
          { store, advisories, matcher, onEvents: () => deliverer.notify() },
          { ...report, scanTime: new Date(report.scanTime).toISOString() },
        );
        metrics.reportReceived(result.duplicate ? 'duplicate' : result.kind);
        metrics.eventsEnqueued(EventTypes.SCAN_COMPLETED, result.events);
        return reply.status(result.duplicate ? 200 : 201).send(result);
      });

      // --- reads ---
      v1.get('/findings', async (request) => {
        const principal = principalOf(request);
        const query = parse(findingsQuerySchema, request.query);
        assertCan(principal, 'findings:read', { cluster: query.cluster, namespace: query.namespace });
        const visibility = visibilityFor(principal, query);
        const at = query.at === undefined ? new Date() : new Date(query.at);
        const scans = visibility
          ? await store.latestScans(
              query.cluster,
              visibility,
              {
                namespace: query.namespace,
                pod: query.pod,
                ...(query.container === undefined ? {} : { container: query.container }),
              },
              at,
            )
          : [];
        if (scans.length === 0)
          throw notFound(`findings for ${query.cluster}/${query.namespace}/${query.pod}`);
        return findingsResponse(scans);
      });

      v1.get('/workloads', async (request) => {
        const principal = principalOf(request);
        requireRole(principal, 'findings:read');
        const { limit, offset, cluster, ...filter } = parse(workloadQuerySchema, request.query);
        const visibility = visibilityFor(principal, { cluster, namespace: filter.namespace });
        return {
          workloads: visibility ? await store.listWorkloads(visibility, filter, { limit, offset }) : [],
        };
      });

      v1.get('/scans', async (request) => {
        const principal = principalOf(request);
        requireRole(principal, 'findings:read');
        const { limit, offset, cluster, ...filter } = parse(workloadQuerySchema, request.query);
        const visibility = visibilityFor(principal, { cluster, namespace: filter.namespace });
        return { scans: visibility ? await store.listScans(visibility, filter, { limit, offset }) : [] };
      });

      v1.get('/scans/:id', async (request) => {
        const principal = principalOf(request);
        requireRole(principal, 'findings:read');
        const { id } = parse(scanIdSchema, request.params);
        const visibility = visibilityFor(principal, {});
        const scan = visibility ? await store.getScan(id, visibility) : undefined;
        // Invisible and missing look the same: no probing of other namespaces' scan ids.
        if (!scan) throw notFound(`scan ${id}`);
        return scan;
      });

      v1.get('/images', async (request) => {
        const principal = principalOf(request);
        requireRole(principal, 'findings:read');
        const { image, digest, cluster, limit } = parse(imagesQuerySchema, request.query);
        const visibility = visibilityFor(principal, { cluster });
        const query = digest === undefined ? { image } : { image, digest };
        const scans = visibility ? await store.imageScans(visibility, query, limit) : [];
        return { images: scans.map(imageEntry) };
      });

      v1.get('/summary', async (request) => {
        const principal = principalOf(request);
        requireRole(principal, 'findings:read');
        const query = parse(summaryQuerySchema, request.query);
        const visibility = visibilityFor(principal, query);
        const filter = query.namespace === undefined ? {} : { namespace: query.namespace };
        return { namespaces: visibility ? await store.summary(visibility, filter) : [] };
      });

      registerWorkloadSearch(v1, store, principalOf, visibilityFor);
      registerEventStream(v1, store, principalOf, visibilityFor, options.eventStream);

      // --- triggers ---
      v1.post('/triggers', async (request, reply) => {
        const principal = principalOf(request);
        requireRole(principal, 'triggers:write');
        const body = parse(triggerBodySchema, request.body);
        if (body.namespaces === '*') assertCan(principal, 'triggers:write', { cluster: body.cluster });
        else
          for (const namespace of body.namespaces)
            assertCan(principal, 'triggers:write', { cluster: body.cluster, namespace });
        guard.checkUrl(body.url);
        const trigger = await store.createTrigger({
          cluster: body.cluster,
          namespaces: body.namespaces,
          url: body.url,
          kind: body.kind,
          secret: body.secret,
          ...(body.auth === undefined ? {} : { auth: body.auth }),
          everyScan: body.options.everyScan,
        });
        return reply.status(201).send(trigger);
      });

      const triggerScope = (t: { cluster: string; namespaces: Scope['namespaces'] }): Scope => ({
        cluster: t.cluster,
        namespaces: t.namespaces,
      });

      v1.get('/triggers', async (request) => {
        const principal = principalOf(request);
        requireRole(principal, 'triggers:read');
        const all = await store.listTriggers();
        return { triggers: all.filter((t) => covers(principal.scope, triggerScope(t))) };
      });

      v1.delete('/triggers/:id', async (request, reply) => {
        const principal = principalOf(request);
        requireRole(principal, 'triggers:write');
        const { id } = request.params as { id: string };
        const trigger = await store.getTrigger(id);
        if (!trigger || !covers(principal.scope, triggerScope(trigger))) throw notFound(`trigger ${id}`);
        await store.deleteTrigger(id);
        return reply.status(204).send();
      });

      // --- tokens ---
      v1.post('/tokens', async (request, reply) => {
        const principal = principalOf(request);
        requireRole(principal, 'tokens:write');
        const body = parse(tokenBodySchema, request.body);
        const scope: Scope = { cluster: body.cluster, namespaces: body.namespaces };
        if (!canIssue(principal, body.role, scope)) {
          throw new ContainmentError(
            ErrorCodes.FORBIDDEN,
            `may not issue a ${body.role} token with this scope`,
          );
        }
        const issued = await tokens.issue({
          name: body.name,
          role: body.role,
          scope,
          ...(body.expiresAt === undefined ? {} : { expiresAt: Date.parse(body.expiresAt) }),
        });
        return reply.status(201).send(issued);
      });

      v1.get('/tokens', async (request) => {
        const principal = principalOf(request);
        requireRole(principal, 'tokens:read');
        return { tokens: (await tokens.list()).filter((t) => covers(principal.scope, t.scope)) };
      });

      v1.delete('/tokens/:id', async (request, reply) => {
        const principal = principalOf(request);
        requireRole(principal, 'tokens:write');
        const { id } = request.params as { id: string };
        const token = (await tokens.list()).find((t) => t.id === id);
        if (!token || !covers(principal.scope, token.scope)) throw notFound(`token ${id}`);
        await tokens.revoke(id);
        return reply.status(204).send();
      });

      // --- re-match now (global admins: it concerns every namespace) ---
      v1.post('/admin/rematch', async (request) => {
        const principal = principalOf(request);
        if (principal.role !== 'admin' || !covers(principal.scope, { cluster: '*', namespaces: '*' }))
          throw new ContainmentError(
            ErrorCodes.FORBIDDEN,
            'only an admin of every cluster may start a re-match',
          );
        if (!options.rematch) throw notFound('re-matching on this server');
        return await options.rematch.check();
      });

      // --- dead letters (global: their bodies may concern any namespace) ---
      v1.get('/deadletters', async (request) => {
        assertCan(principalOf(request), 'deadletters:read');
        const filter = parse(deadLetterQuerySchema, request.query);
        const dead = await store.listDeadLetters(filter);
        return {
          deadLetters: dead.map(({ body, ...rest }) => ({ ...rest, event: JSON.parse(body) as unknown })),
        };
      });

      v1.post('/deadletters/replay', async (request) => {
        assertCan(principalOf(request), 'deadletters:write');
        const filter = parse(replayBodySchema, request.body ?? {});
        const replayed = await store.replayDeadLetters(filter);
        if (replayed > 0) deliverer.notify();
        return { replayed };
      });
    },
    { prefix: '/v1' },
  );

  return app;
}
