/** `/api/v1/namespaces/{ns}/security-events`: the refused calls of a namespace (all of them for the admin). */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { WhiskError, WhiskMessages } from '../runtime.js';
import type { SecurityEventLog } from '../security-events.js';
import { flag, intParam, namespaceOf, parse } from './common.js';

const eventsQuery = z.object({
  limit: intParam('limit', 1, 1000),
  after: intParam('after', 0, Number.MAX_SAFE_INTEGER),
  all: flag,
});

export function registerSecurityEventRoutes(
  app: FastifyInstance,
  securityEvents: SecurityEventLog,
  adminNamespace: string | undefined,
): void {
  app.get('/api/v1/namespaces/:ns/security-events', async (request) => {
    const own = namespaceOf(request);
    const q = parse(eventsQuery, request.query);
    // `all=true`: every namespace's events and the unattributed ones, for the admin namespace only.
    if (q.all && own !== adminNamespace) throw new WhiskError(403, WhiskMessages.forbidden);
    const ns = q.all ? undefined : own;
    return securityEvents.list(ns, {
      limit: q.limit ?? 200,
      ...(q.after === undefined ? {} : { after: q.after }),
    });
  });
}
