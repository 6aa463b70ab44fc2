/**
 * Runtime detections: `POST /v1/detections` (agents), `GET /v1/detections` (readers, limited to
 * their namespaces like findings) and Falco's alerts at `POST /v1/falco/alerts`
 * (`runtime/falco/`), which become the same detections. A request's detections are stored
 * together or not at all.
 */
import type { FastifyRequest } from 'fastify';
import { assertCan } from '../../auth/principal.js';
import { EventTypes } from '../../events/cloud-event.js';
import type { RuntimeDetection } from '../../runtime/contracts.js';
import { registerFalcoRoute } from '../../runtime/falco/falco-route.js';
import { detectionQuerySchema, detectionsBodySchema, scanIdSchema as idSchema } from '../schemas.js';
import { notFound } from '../api-error.js';
import { parse, requireRole, visibilityFor } from './context.js';
import type { RouteContext, V1Routes } from './context.js';

async function store(context: RouteContext, detections: readonly RuntimeDetection[]): Promise<object> {
  const recorded = await context.store.detections.record(detections);
  context.metrics.eventsEnqueued(EventTypes.RUNTIME_DETECTED, recorded.events);
  if (recorded.events > 0) context.deliverer.notify();
  return recorded;
}

export const detectionRoutes: V1Routes = (v1, context) => {
  const { principalOf } = context;

  v1.post('/detections', async (request, reply) => {
    const principal = principalOf(request);
    requireRole(principal, 'reports:write');
    const { detections } = parse(detectionsBodySchema, request.body);
    // Every detection is checked before any is stored.
    for (const d of detections)
      assertCan(principal, 'reports:write', { cluster: d.workload.cluster, namespace: d.workload.namespace });
    return reply.status(201).send(await store(context, detections));
  });

  v1.get('/detections', async (request) => {
    const principal = principalOf(request);
    requireRole(principal, 'findings:read');
    const { limit, offset, cluster, since, ...filter } = parse(detectionQuerySchema, request.query);
    const visibility = visibilityFor(principal, { cluster, namespace: filter.namespace });
    return {
      detections: visibility
        ? await context.store.detections.list(
            visibility,
            { ...filter, ...(since === undefined ? {} : { since: new Date(since) }) },
            { limit, offset },
          )
        : [],
    };
  });

  v1.get('/detections/:id', async (request) => {
    const principal = principalOf(request);
    requireRole(principal, 'findings:read');
    const { id } = parse(idSchema, request.params);
    const visibility = visibilityFor(principal, {});
    const found = visibility ? await context.store.detections.get(visibility, id) : undefined;
    // Invisible and missing look the same: no probing of other namespaces' ids.
    if (!found) throw notFound(`detection ${id}`);
    return found;
  });

  // Falco sees a whole node: the sender needs an agent token over its whole cluster, whose
  // cluster the alerts belong to (never the payload's).
  const clusterOf = (request: FastifyRequest): string => principalOf(request).scope.cluster;
  registerFalcoRoute(v1, {
    path: '/falco/alerts',
    preHandler: async (request) => {
      const principal = principalOf(request);
      requireRole(principal, 'reports:write');
      assertCan(principal, 'reports:write', { cluster: clusterOf(request) });
    },
    clusterOf,
    sink: async (detections) => void (await store(context, detections)),
  });
};
