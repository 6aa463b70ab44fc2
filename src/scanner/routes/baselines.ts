/**
 * Behaviour baselines per cluster and image (`storage/scanner/baselines.ts`):
 * - `POST /v1/baselines/sync` (agents): push what they learned, get the cluster's baselines back —
 *   a restarted agent keeps its baselines and every node of a cluster shares one per image;
 * - `GET /v1/baselines?cluster=&image=` (readers over the whole cluster: a baseline belongs to an
 *   image wherever it runs, so a reader limited to some namespaces may not see it);
 * - `POST /v1/baselines/lock` and `/reset` (`baselines:write`, admins): end learning, or start over.
 */
import type { FastifyRequest } from 'fastify';
import { assertCan } from '../../auth/principal.js';
import type { Action, Principal } from '../../auth/principal.js';
import { ApiErrorCodes, ScannerApiError } from '../api-error.js';
import { baselinesOf } from '../scanner-sql.js';
import {
  baselineLockBodySchema,
  baselineQuerySchema,
  baselineResetBodySchema,
  baselineSyncBodySchema,
} from '../schemas.js';
import { parse, requireRole } from './context.js';
import type { V1Routes } from './context.js';

/** The request's cluster, else the caller's own; checked for `action` over the whole cluster. */
function clusterFor(principal: Principal, action: Action, cluster: string | undefined): string {
  const name = cluster ?? principal.scope.cluster;
  if (name === '*')
    throw new ScannerApiError(
      400,
      ApiErrorCodes.REQUEST_INVALID,
      'cluster: required for a token of every cluster',
    );
  assertCan(principal, action, { cluster: name });
  return name;
}

export const baselineRoutes: V1Routes = (v1, context) => {
  const { principalOf } = context;
  const baselines = (): ReturnType<typeof baselinesOf> => baselinesOf(context.store);
  const who = (request: FastifyRequest): string => principalOf(request).subject;

  v1.post('/baselines/sync', async (request) => {
    requireRole(principalOf(request), 'reports:write');
    const body = parse(baselineSyncBodySchema, request.body);
    const cluster = clusterFor(principalOf(request), 'reports:write', body.cluster);
    return { baselines: await baselines().sync(cluster, body.baselines) };
  });

  v1.get('/baselines', async (request) => {
    requireRole(principalOf(request), 'findings:read');
    const query = parse(baselineQuerySchema, request.query);
    const cluster = clusterFor(principalOf(request), 'findings:read', query.cluster);
    return { baselines: await baselines().list(cluster, query.image) };
  });

  v1.post('/baselines/lock', async (request) => {
    requireRole(principalOf(request), 'baselines:write');
    const body = parse(baselineLockBodySchema, request.body);
    const cluster = clusterFor(principalOf(request), 'baselines:write', body.cluster);
    const baseline = await baselines().lock(cluster, body.image, body.state);
    request.log.info(
      { cluster, image: baseline.image, state: baseline.state, by: who(request) },
      'baseline locked',
    );
    return { baseline };
  });

  v1.post('/baselines/reset', async (request) => {
    requireRole(principalOf(request), 'baselines:write');
    const body = parse(baselineResetBodySchema, request.body);
    const cluster = clusterFor(principalOf(request), 'baselines:write', body.cluster);
    const baseline = await baselines().reset(cluster, body.image);
    request.log.info({ cluster, image: baseline.image, by: who(request) }, 'baseline reset');
    return { baseline };
  });
};
