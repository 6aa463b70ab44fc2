/**
 * The scanner API's OpenAPI 3.1 document, served at `GET /v1/openapi.json`. Request schemas come
 * from the zod schemas the server validates with (`z.toJSONSchema`), so the two cannot drift; the
 * route table below adds what zod does not know (method, path, required permission, status).
 * A test checks that every route the server registers is in this table and vice versa.
 */
import { z } from 'zod';
import type { Action } from '../auth/principal.js';
import {
  baselineLockBodySchema,
  baselineQuerySchema,
  baselineResetBodySchema,
  baselineSyncBodySchema,
  clusterBodySchema,
  deadLetterQuerySchema,
  detectionQuerySchema,
  detectionsBodySchema,
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
import { workloadSearchQuerySchema } from './routes/workload-search.js';
import { listQuerySchema, postQuerySchema } from '../enforcement/action-api.js';
import { securityActionSchema } from '../enforcement/security-action.js';
import {
  auditQuerySchema,
  policiesQuerySchema,
  ruleParamsSchema,
  ruleStatusBodySchema,
} from './routes/linked-parts.js';

export interface RouteDoc {
  method: 'GET' | 'POST' | 'DELETE';
  /** Fastify pattern: `/v1/scans/:id`. */
  path: string;
  summary: string;
  /**
   * The permission the route checks; `global-admin`: the admin role over every cluster; `signed-in`:
   * any valid credential; `none`: no token.
   */
  auth: Action | 'global-admin' | 'signed-in' | 'none';
  body?: z.ZodType;
  query?: z.ZodType;
  params?: z.ZodType;
  /** Success status. */
  status: number;
  /** Media type of the success body when not JSON. */
  produces?: string;
}

export const ROUTES: readonly RouteDoc[] = [
  { method: 'GET', path: '/healthz', summary: 'Liveness', auth: 'none', status: 200 },
  {
    method: 'GET',
    path: '/readyz',
    summary: 'Readiness (scanner and advisory databases reachable)',
    auth: 'none',
    status: 200,
  },
  {
    method: 'GET',
    path: '/metrics',
    summary: 'Prometheus metrics (global admin token)',
    auth: 'metrics:read',
    status: 200,
    produces: 'text/plain; version=0.0.4',
  },
  { method: 'GET', path: '/v1/openapi.json', summary: 'This document', auth: 'none', status: 200 },
  { method: 'GET', path: '/ui', summary: 'Redirects to /ui/', auth: 'none', status: 308 },
  {
    method: 'GET',
    path: '/ui/*',
    summary: 'The web dashboard (static assets; unknown paths answer its index.html)',
    auth: 'none',
    status: 200,
    produces: 'text/html',
  },
  {
    method: 'GET',
    path: '/ui/oidc',
    summary: 'Whether dashboard sign-in through the OIDC issuer is configured: {"enabled"}',
    auth: 'none',
    status: 200,
  },
  {
    method: 'GET',
    path: '/ui/oidc/login',
    summary: 'Starts OIDC sign-in (authorization code + PKCE): redirects to the issuer; query next=/ui/…',
    auth: 'none',
    status: 302,
  },
  {
    method: 'GET',
    path: '/ui/oidc/callback',
    summary: 'OIDC redirect URI: exchanges the code, sets the session cookie, redirects to next',
    auth: 'none',
    status: 303,
  },
  {
    method: 'GET',
    path: '/ui/session',
    summary: 'Who the session cookie (or bearer token) signs in: subject, role, scope',
    auth: 'signed-in',
    status: 200,
  },
  {
    method: 'POST',
    path: '/ui/session',
    summary:
      'Dashboard sign-in: body {"token"}; sets the HttpOnly SameSite=Strict ctm_session cookie (needs header X-Containment-CSRF: 1)',
    auth: 'none',
    status: 200,
  },
  {
    method: 'DELETE',
    path: '/ui/session',
    summary: 'Sign out: clears the session cookie (needs header X-Containment-CSRF: 1)',
    auth: 'none',
    status: 204,
  },
  {
    method: 'POST',
    path: '/v1/clusters',
    summary: 'Register a cluster; returns its agent token',
    auth: 'clusters:write',
    body: clusterBodySchema,
    status: 201,
  },
  { method: 'GET', path: '/v1/clusters', summary: 'List clusters', auth: 'clusters:read', status: 200 },
  {
    method: 'DELETE',
    path: '/v1/clusters/:name',
    summary: 'Remove a cluster (revokes its tokens)',
    auth: 'clusters:write',
    params: clusterBodySchema,
    status: 204,
  },
  {
    method: 'POST',
    path: '/v1/reports',
    summary:
      "Submit one container's inventory, or only its hash when unchanged (idempotent by reportId; 409 INVENTORY_REQUIRED: resend with the inventory)",
    auth: 'reports:write',
    body: reportSchema,
    status: 201,
  },
  {
    method: 'GET',
    path: '/v1/findings',
    summary: 'Findings of the latest scan of a pod at or before `at`',
    auth: 'findings:read',
    query: findingsQuerySchema,
    status: 200,
  },
  {
    method: 'GET',
    path: '/v1/workloads',
    summary: 'List workloads',
    auth: 'findings:read',
    query: workloadQuerySchema,
    status: 200,
  },
  {
    method: 'GET',
    path: '/v1/workload-search',
    summary:
      'Visible workloads filtered on the server (q: namespace, pod, container, image or digest substring, package name or advisory id; severity at least; compliance), paged, with the total that matched',
    auth: 'findings:read',
    query: workloadSearchQuerySchema,
    status: 200,
  },
  {
    method: 'GET',
    path: '/v1/events/stream',
    summary:
      'Server-Sent Events for what the caller may see: new scans (event: scan), new or re-seen runtime detections (event: detection), and, with the action API mounted, actions created or changing phase in namespaces with actions:read (event: action). Each id is the cursor s<scan>-d<detection id>-t<last-seen ms>-a<action ms>; reconnecting with Last-Event-ID sends what is newer per kind. The stream ends after 5 minutes and the client reconnects',
    auth: 'findings:read',
    status: 200,
    produces: 'text/event-stream',
  },
  {
    method: 'GET',
    path: '/v1/scans',
    summary: 'List scans',
    auth: 'findings:read',
    query: workloadQuerySchema,
    status: 200,
  },
  {
    method: 'GET',
    path: '/v1/scans/:id',
    summary: 'One scan with its findings',
    auth: 'findings:read',
    params: scanIdSchema,
    status: 200,
  },
  {
    method: 'GET',
    path: '/v1/images',
    summary:
      'Latest scan of each workload running an image (exact reference, or digest), newest first, with counts per severity (vulnerabilities + insecure configurations)',
    auth: 'findings:read',
    query: imagesQuerySchema,
    status: 200,
  },
  {
    method: 'GET',
    path: '/v1/summary',
    summary:
      'Counts per cluster and namespace: workloads (scanned), vulnerable and compliant workloads, findings per severity',
    auth: 'findings:read',
    query: summaryQuerySchema,
    status: 200,
  },
  {
    method: 'POST',
    path: '/v1/detections',
    summary:
      'Submit runtime detections (all or none); identical ones are aggregated and only a new aggregate queues a dev.containment.runtime.detected event',
    auth: 'reports:write',
    body: detectionsBodySchema,
    status: 201,
  },
  {
    method: 'GET',
    path: '/v1/detections',
    summary: 'Runtime detections (aggregates: count, first and last seen), most recently seen first',
    auth: 'findings:read',
    query: detectionQuerySchema,
    status: 200,
  },
  {
    method: 'GET',
    path: '/v1/detections/:id',
    summary:
      'One detection aggregate (the detectionId of its dev.containment.runtime.detected event); 404 when missing or not visible',
    auth: 'findings:read',
    params: scanIdSchema,
    status: 200,
  },
  {
    method: 'POST',
    path: '/v1/falco/alerts',
    summary:
      'Falco http_output / falcosidekick webhook alerts, mapped to runtime detections (rule id falco:<rule>); an agent token over its whole cluster; 400 FALCO_ALERT_INVALID stores nothing',
    auth: 'reports:write',
    status: 202,
  },
  {
    method: 'GET',
    path: '/v1/audit',
    summary:
      "Audit trail of a workload (cluster, namespace, pod) or of one action: per SecurityAction the chain scan → event → trigger → policy activation (with logs) → action, and the gaps where a link is missing; needs findings:read on the namespace (another namespace's workload: 403, another namespace's action: 404); 501 PARTS_NOT_LINKED on a scanner without `containment up`'s enforcer and runtime",
    auth: 'findings:read',
    query: auditQuerySchema,
    status: 200,
  },
  {
    method: 'GET',
    path: '/v1/policies',
    summary:
      'Deployed policies (source, dry-run), triggers, rules and the newest activations with logs and results, per policy-runtime namespace the caller may read (triggers:read on the namespace of the same name); mayChangeRules says whether the caller may switch rules',
    auth: 'triggers:read',
    query: policiesQuerySchema,
    status: 200,
  },
  {
    method: 'POST',
    path: '/v1/policies/:namespace/rules/:rule',
    summary:
      'Enable (active) or disable (inactive) a rule of a policy-runtime namespace (triggers:write on it)',
    auth: 'triggers:write',
    params: ruleParamsSchema,
    body: ruleStatusBodySchema,
    status: 200,
  },
  {
    method: 'POST',
    path: '/v1/baselines/sync',
    summary:
      "An agent's behaviour baselines merged into its cluster's (items join while learning, the state only moves forward; a push based on an older generation than an operator's lock/reset is ignored); answers every baseline of the cluster",
    auth: 'reports:write',
    body: baselineSyncBodySchema,
    status: 200,
  },
  {
    method: 'GET',
    path: '/v1/baselines',
    summary:
      "Behaviour baselines of a cluster (the caller's by default), or of one image (digest key or reference); needs read access to the whole cluster",
    auth: 'findings:read',
    query: baselineQuerySchema,
    status: 200,
  },
  {
    method: 'POST',
    path: '/v1/baselines/lock',
    summary:
      "End an image's learning: protect (default) or monitor; agents apply it on their next sync. 404 BASELINE_NOT_FOUND when nothing was learned",
    auth: 'baselines:write',
    body: baselineLockBodySchema,
    status: 200,
  },
  {
    method: 'POST',
    path: '/v1/baselines/reset',
    summary: "Empty an image's baseline: it learns again from now; agents apply it on their next sync",
    auth: 'baselines:write',
    body: baselineResetBodySchema,
    status: 200,
  },
  {
    method: 'POST',
    path: '/v1/triggers',
    summary: 'Register an event target',
    auth: 'triggers:write',
    body: triggerBodySchema,
    status: 201,
  },
  { method: 'GET', path: '/v1/triggers', summary: 'List triggers', auth: 'triggers:read', status: 200 },
  {
    method: 'DELETE',
    path: '/v1/triggers/:id',
    summary: 'Remove a trigger',
    auth: 'triggers:write',
    status: 204,
  },
  {
    method: 'POST',
    path: '/v1/tokens',
    summary: 'Issue an API token (shown once)',
    auth: 'tokens:write',
    body: tokenBodySchema,
    status: 201,
  },
  { method: 'GET', path: '/v1/tokens', summary: 'List API tokens', auth: 'tokens:read', status: 200 },
  {
    method: 'DELETE',
    path: '/v1/tokens/:id',
    summary: 'Revoke an API token',
    auth: 'tokens:write',
    status: 204,
  },
  {
    method: 'POST',
    path: '/v1/admin/rematch',
    summary: 'Re-match stored inventories against advisory changes now',
    auth: 'global-admin',
    status: 200,
  },
  {
    method: 'GET',
    path: '/v1/deadletters',
    summary: 'List dead-lettered deliveries',
    auth: 'deadletters:read',
    query: deadLetterQuerySchema,
    status: 200,
  },
  {
    method: 'POST',
    path: '/v1/deadletters/replay',
    summary: 'Queue dead letters for delivery again',
    auth: 'deadletters:write',
    body: replayBodySchema,
    status: 200,
  },
];

/**
 * The enforcer's action API when this server mounts it (`containment up`), its evidence routes
 * only when an evidence directory is configured (`/v1/audit` here is the scanner's own).
 */
export function actionRoutes(has: { evidence: boolean }): RouteDoc[] {
  return [
    {
      method: 'POST',
      path: '/v1/actions',
      summary:
        'Submit a SecurityAction (202 while it runs, 200 when final or with wait=true; 409 CONFLICT for a known id with another spec)',
      auth: 'actions:write',
      body: securityActionSchema,
      query: postQuerySchema,
      status: 202,
    },
    {
      method: 'POST',
      path: '/v1/actions/preview',
      summary:
        'Dry-run preview: the same checks as submitting, then what would be done to which container; stores and changes nothing',
      auth: 'actions:write',
      body: securityActionSchema,
      status: 200,
    },
    {
      method: 'GET',
      path: '/v1/actions',
      summary: 'SecurityActions in the caller’s namespaces, newest first',
      auth: 'actions:read',
      query: listQuerySchema,
      status: 200,
    },
    {
      method: 'GET',
      path: '/v1/actions/:id',
      summary: 'One SecurityAction with its status (phase, timings, evidence with SHA-256)',
      auth: 'actions:read',
      status: 200,
    },
    ...(has.evidence
      ? (['/v1/actions/:id/evidence/:entry', '/v1/actions/:id/evidence/:entry/:file'] as const).map(
          (path): RouteDoc => ({
            method: 'GET',
            path,
            summary:
              'One file of the action’s evidence bundle by its path in the bundle (`inspect.json`, `logs/stdout.log`; only files its status lists); Repr-Digest carries the SHA-256 recorded at capture',
            auth: 'actions:read',
            status: 200,
            produces: 'application/octet-stream',
          }),
        )
      : []),
  ];
}

type JsonSchema = Record<string, unknown>;

/** JSON Schema of what a request may send (input side: defaults optional, coercions as their target type). */
export function requestJsonSchema(schema: z.ZodType): JsonSchema {
  // The document declares the 2020-12 dialect once (jsonSchemaDialect); embedded schemas need no $schema.
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io: 'input',
  }) as JsonSchema;
  return rest;
}

function parameters(schema: z.ZodType, where: 'query' | 'path'): JsonSchema[] {
  const json = requestJsonSchema(schema) as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, property]) => ({
    name,
    in: where,
    required: where === 'path' || (json.required ?? []).includes(name),
    schema: property,
  }));
}

const ERROR_REF = { $ref: '#/components/schemas/Error' };
const errorResponse = (description: string): JsonSchema => ({
  description,
  content: { 'application/json': { schema: ERROR_REF } },
});

/** `GET /v1/scans/:id` → `getV1ScansId`. */
function operationId(route: RouteDoc): string {
  const words = route.path.split(/[^A-Za-z0-9]+/).filter((w) => w !== '');
  return route.method.toLowerCase() + words.map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('');
}

function operation(route: RouteDoc): JsonSchema {
  const pathNames = [...route.path.matchAll(/:(\w+)/g)].map((m) => m[1] as string);
  const params = route.params
    ? parameters(route.params, 'path')
    : pathNames.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } }));
  const authenticated = route.auth !== 'none';
  const responses: Record<string, JsonSchema> = {
    [String(route.status)]:
      route.status === 204
        ? { description: 'Done' }
        : {
            description: 'OK',
            content: {
              [route.produces ?? 'application/json']: { schema: route.produces ? { type: 'string' } : {} },
            },
          },
  };
  if (route.body || route.query || route.params) responses['400'] = errorResponse('Invalid request');
  if (authenticated) {
    responses['401'] = errorResponse('Missing, invalid or expired bearer token');
    responses['403'] = errorResponse('Role or scope does not allow this');
    responses['429'] = errorResponse('Rate limited (see Retry-After)');
  }
  if (route.path.includes(':')) responses['404'] = errorResponse('Not found (or not visible to the caller)');
  return {
    operationId: operationId(route),
    summary: route.summary,
    ...(authenticated ? { 'x-containment-permission': route.auth } : {}),
    security: authenticated ? [{ bearer: [] }] : [],
    ...(params.length + (route.query ? 1 : 0) > 0
      ? { parameters: [...params, ...(route.query ? parameters(route.query, 'query') : [])] }
      : {}),
    ...(route.body
      ? {
          requestBody: {
            required: true,
            content: { 'application/json': { schema: requestJsonSchema(route.body) } },
          },
        }
      : {}),
    responses,
  };
}

/** `/v1/scans/:id` → `/v1/scans/{id}`. */
export function openApiPath(path: string): string {
  return path.replace(/:(\w+)/g, '{$1}');
}

export function buildOpenApiDocument(routes: readonly RouteDoc[] = ROUTES): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of routes) {
    const path = openApiPath(route.path);
    paths[path] = { ...paths[path], [route.method.toLowerCase()]: operation(route) };
  }
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'Containment scanner API',
      version: '1.0.0',
      description:
        'Clusters, agent reports, findings, triggers and tokens. Every route except /healthz, /readyz, /ui and this document needs a bearer token (an API token or an OIDC JWT) or the dashboard’s session cookie (`ctm_session`, set by POST /ui/session; state-changing calls with the cookie need the header `X-Containment-CSRF: 1`); reads are limited to the caller’s namespaces.',
    },
    paths,
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer' },
        session: { type: 'apiKey', in: 'cookie', name: 'ctm_session' },
      },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: { code: { type: 'string' }, message: { type: 'string' } },
            },
          },
        },
      },
    },
  };
}
