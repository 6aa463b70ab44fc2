/** `/v1/clusters`: register (with its agent token), list, delete (revoking its tokens). */
import { assertCan } from '../../auth/principal.js';
import { notFound } from '../api-error.js';
import { clusterBodySchema } from '../schemas.js';
import { parse, requireRole, visibilityFor } from './context.js';
import type { V1Routes } from './context.js';

export const clusterRoutes: V1Routes = (v1, { store, tokens, principalOf }) => {
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
};
