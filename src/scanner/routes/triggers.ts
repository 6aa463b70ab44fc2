/** `/v1/triggers`: event subscriptions of a cluster's namespaces (CloudEvents or OpenWhisk). */
import { assertCan, covers } from '../../auth/principal.js';
import type { Scope } from '../../auth/principal.js';
import { notFound } from '../api-error.js';
import { triggerBodySchema } from '../schemas.js';
import { parse, requireRole } from './context.js';
import type { V1Routes } from './context.js';

const triggerScope = (t: { cluster: string; namespaces: Scope['namespaces'] }): Scope => ({
  cluster: t.cluster,
  namespaces: t.namespaces,
});

export const triggerRoutes: V1Routes = (v1, { store, guard, principalOf }) => {
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
};
