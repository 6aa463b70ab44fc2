/** `/api/v1/namespaces/{ns}/{packages,triggers,rules}`: CRUD, firing a trigger, a rule's status. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ruleStatusSchema } from '../entities.js';
import type { Collection, PackageDoc, RuleDoc, TriggerDoc } from '../entities.js';
import { WhiskError, WhiskMessages } from '../runtime.js';
import { listQuery, namespaceOf, parse, payloadOf, putQuery } from './common.js';
import type { RouteContext } from './common.js';

interface CollectionOps {
  get(ns: string, name: string): unknown;
  put(ns: string, name: string, body: unknown, overwrite: boolean): unknown;
  del(ns: string, name: string): unknown;
  list(ns: string, skip: number, limit: number): unknown[];
}

function simpleCollection(
  app: FastifyInstance,
  collection: Exclude<Collection, 'actions'>,
  ops: CollectionOps,
): void {
  const base = `/api/v1/namespaces/:ns/${collection}`;
  const nameOf = (request: FastifyRequest): string => (request.params as { name: string }).name;
  app.get(base, async (request) => {
    const q = parse(listQuery, request.query);
    return ops.list(namespaceOf(request), q.skip ?? 0, q.limit || 30);
  });
  app.get(`${base}/:name`, async (request) => ops.get(namespaceOf(request), nameOf(request)));
  app.put(`${base}/:name`, async (request) =>
    ops.put(namespaceOf(request), nameOf(request), request.body, parse(putQuery, request.query).overwrite),
  );
  app.delete(`${base}/:name`, async (request) => ops.del(namespaceOf(request), nameOf(request)));
}

export function registerEntityRoutes(app: FastifyInstance, { runtime }: RouteContext): void {
  simpleCollection(app, 'packages', {
    get: (ns, name) => runtime.getPackage(ns, name),
    put: (ns, name, body, overwrite) => runtime.putPackage(ns, name, body, overwrite),
    del: (ns, name) => runtime.deletePackage(ns, name),
    list: (ns, skip, limit) => runtime.list<PackageDoc>(ns, 'packages', skip, limit),
  });
  simpleCollection(app, 'triggers', {
    get: (ns, name) => runtime.getTrigger(ns, name),
    put: (ns, name, body, overwrite) => runtime.putTrigger(ns, name, body, overwrite),
    del: (ns, name) => runtime.delete<TriggerDoc>(ns, 'triggers', name),
    list: (ns, skip, limit) => runtime.list<TriggerDoc>(ns, 'triggers', skip, limit),
  });
  simpleCollection(app, 'rules', {
    get: (ns, name) => runtime.get<RuleDoc>(ns, 'rules', name),
    put: (ns, name, body, overwrite) => runtime.putRule(ns, name, body, overwrite),
    del: (ns, name) => runtime.delete<RuleDoc>(ns, 'rules', name),
    list: (ns, skip, limit) => runtime.list<RuleDoc>(ns, 'rules', skip, limit),
  });
  app.post('/api/v1/namespaces/:ns/triggers/:name', async (request, reply) => {
    const ns = namespaceOf(request);
    const { name } = request.params as { name: string };
    const activationId = runtime.fire(ns, name, payloadOf(request.body));
    if (activationId === undefined) return reply.code(204).send();
    reply.header('x-openwhisk-activation-id', activationId);
    return reply.code(202).send({ activationId });
  });
  app.post('/api/v1/namespaces/:ns/rules/:name', async (request) => {
    const ns = namespaceOf(request);
    const { name } = request.params as { name: string };
    const body = ruleStatusSchema.safeParse(request.body);
    if (!body.success)
      throw new WhiskError(400, WhiskMessages.malformed("status must be 'active' or 'inactive'"));
    return runtime.setRuleStatus(ns, name, body.data.status);
  });
}
