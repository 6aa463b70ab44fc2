/** `/api/v1/namespaces/{ns}/actions[/{package/}name]`: list, get, put, delete, invoke. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ActionDoc, StoredAction } from '../entities.js';
import { MAX_BLOCKING_WAIT_MS } from '../runtime.js';
import { flag, intParam, listQuery, namespaceOf, parse, pathOf, payloadOf, putQuery } from './common.js';
import type { RouteContext } from './common.js';

const getActionQuery = z.object({ code: z.enum(['true', 'false']).optional() });
const invokeQuery = z.object({
  blocking: flag,
  result: flag,
  timeout: intParam('timeout', 1, MAX_BLOCKING_WAIT_MS),
});

function withoutCode(doc: ActionDoc): Omit<ActionDoc, 'exec'> & { exec: { kind: string; binary: false } } {
  return { ...doc, exec: { kind: doc.exec.kind, binary: false } };
}

export function registerActionRoutes(
  app: FastifyInstance,
  { runtime }: RouteContext,
  codeBodyLimit: number,
): void {
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
}
