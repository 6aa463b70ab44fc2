/** `/api/v1/namespaces/{ns}/activations[/{id}[/logs|/result]]`. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { activationSummary } from '../entities.js';
import type { Activation } from '../entities.js';
import { WhiskError, WhiskMessages } from '../runtime.js';
import { flag, intParam, namespaceOf, parse } from './common.js';
import type { RouteContext } from './common.js';

const activationsQuery = z.object({
  name: z.string().optional(),
  skip: intParam('skip', 0, Number.MAX_SAFE_INTEGER),
  limit: intParam('limit', 0, 200),
  since: intParam('since', 0, Number.MAX_SAFE_INTEGER),
  upto: intParam('upto', 0, Number.MAX_SAFE_INTEGER),
  docs: flag,
});
const ACTIVATION_ID = /^[0-9a-f]{32}$/;

export function registerActivationRoutes(app: FastifyInstance, { store }: RouteContext): void {
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
}
