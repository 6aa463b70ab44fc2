/** `POST /v1/reports`: an agent's report, matched and recorded (`ingest.ts`). */
import { assertCan } from '../../auth/principal.js';
import { EventTypes } from '../../events/cloud-event.js';
import { ingestReport } from '../ingest.js';
import { reportSchema } from '../schemas.js';
import { parse, requireRole } from './context.js';
import type { V1Routes } from './context.js';

export const reportRoutes: V1Routes = (
  v1,
  { store, advisories, matcher, metrics, deliverer, principalOf },
) => {
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
};
