/** `/v1/tokens`: issue (within the caller's own scope), list and revoke API tokens. */
import { canIssue, covers } from '../../auth/principal.js';
import type { Scope } from '../../auth/principal.js';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { notFound } from '../api-error.js';
import { tokenBodySchema } from '../schemas.js';
import { parse, requireRole } from './context.js';
import type { V1Routes } from './context.js';

export const tokenRoutes: V1Routes = (v1, { tokens, principalOf }) => {
  v1.post('/tokens', async (request, reply) => {
    const principal = principalOf(request);
    requireRole(principal, 'tokens:write');
    const body = parse(tokenBodySchema, request.body);
    const scope: Scope = { cluster: body.cluster, namespaces: body.namespaces };
    if (!canIssue(principal, body.role, scope)) {
      throw new ContainmentError(ErrorCodes.FORBIDDEN, `may not issue a ${body.role} token with this scope`);
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
};
