/**
 * Global operations: `POST /v1/admin/rematch` (re-match now) and the event dead letters. Both
 * concern every namespace, so only callers whose scope covers everything may use them.
 */
import { assertCan, covers } from '../../auth/principal.js';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { notFound } from '../api-error.js';
import { deadLetterQuerySchema, replayBodySchema } from '../schemas.js';
import { parse } from './context.js';
import type { V1Routes } from './context.js';

export const adminRoutes: V1Routes = (v1, { store, deliverer, rematch, principalOf }) => {
  v1.post('/admin/rematch', async (request) => {
    const principal = principalOf(request);
    if (principal.role !== 'admin' || !covers(principal.scope, { cluster: '*', namespaces: '*' }))
      throw new ContainmentError(ErrorCodes.FORBIDDEN, 'only an admin of every cluster may start a re-match');
    if (!rematch) throw notFound('re-matching on this server');
    return await rematch.check();
  });

  v1.get('/deadletters', async (request) => {
    assertCan(principalOf(request), 'deadletters:read');
    const filter = parse(deadLetterQuerySchema, request.query);
    const dead = await store.listDeadLetters(filter);
    return {
      deadLetters: dead.map(({ body, ...rest }) => ({ ...rest, event: JSON.parse(body) as unknown })),
    };
  });

  v1.post('/deadletters/replay', async (request) => {
    assertCan(principalOf(request), 'deadletters:write');
    const filter = parse(replayBodySchema, request.body ?? {});
    const replayed = await store.replayDeadLetters(filter);
    if (replayed > 0) deliverer.notify();
    return { replayed };
  });
};
