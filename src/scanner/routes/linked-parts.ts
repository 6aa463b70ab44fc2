/**
 * What the scanner shows of the parts `containment up` runs beside it — the enforcer's action API
 * and the policy runtime — so the dashboard, which talks only to this server, can draw the audit
 * trail and the policies page under the caller's own authorization:
 *
 * - `GET /v1/audit?cluster=&namespace=&pod=` or `?action=<id>`: the workload's (or one action's)
 *   chain scan → event → trigger → activation (with logs) → action, joined by the one audit join
 *   (`src/audit/trail.ts`). Needs `findings:read` on the namespace; scans are read with the caller's
 *   visibility, activations in the runtime namespace of the same name.
 * - `GET /v1/policies?namespace=&activations=`: per runtime namespace the caller may read
 *   (`triggers:read` on the linked cluster's namespace of the same name): policies with their
 *   source, triggers, rules, and the newest activations with logs and results.
 * - `POST /v1/policies/:namespace/rules/:rule` `{ status: 'active' | 'inactive' }`: enables or
 *   disables a rule (`triggers:write` on that namespace: admin and analyst).
 *
 * The scanner reaches the parts with credentials `up` hands it (`LinkedParts`); the caller's
 * permissions are checked here first, so those credentials never widen what a caller sees.
 * Without linked parts the routes answer `PARTS_NOT_LINKED` (501).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { can, roleAllows } from '../../auth/principal.js';
import type { Principal } from '../../auth/principal.js';
import { auditTrail } from '../../audit/trail.js';
import type { AuditLink } from '../../audit/trail.js';
import { ActionApiClient } from '../../clients/action-client.js';
import { ApiError } from '../../clients/http.js';
import { WhiskClient } from '../../clients/whisk-client.js';
import { actionIdSchema } from '../../enforcement/security-action.js';
import { ContainmentError, ErrorCodes, isContainmentError } from '../../errors.js';
import { ApiErrorCodes, notFound, ScannerApiError } from '../api-error.js';
import { nameSchema } from '../schemas.js';
import type { ScannerStore, Visibility } from '../scanner-store.js';
import { parse, requireRole } from './context.js';

export interface LinkedParts {
  /** The cluster whose workloads the enforcer and the runtime's policies act on. */
  cluster: string;
  /** The action API and a token that may read every action of `cluster`. */
  actions: { url: string; token: string };
  /**
   * The policy runtime and the `uuid:key` of each namespace holding policies; runtime namespace N
   * holds the policies for the cluster's namespace N.
   */
  functions: { url: string; namespaces: Readonly<Record<string, string>> };
}

export const auditQuerySchema = z
  .strictObject({
    /** One action's trail (instead of a workload's). */
    action: actionIdSchema.optional(),
    cluster: nameSchema.optional(),
    namespace: nameSchema.optional(),
    pod: nameSchema.optional(),
    limit: z.coerce.number().int().min(1).max(100).default(20),
  })
  .refine(
    (q) =>
      q.action === undefined
        ? q.namespace !== undefined && q.pod !== undefined
        : q.cluster === undefined && q.namespace === undefined && q.pod === undefined,
    { message: 'give either action, or namespace and pod (and cluster)' },
  );
export const policiesQuerySchema = z.strictObject({
  namespace: nameSchema.optional(),
  activations: z.coerce.number().int().min(0).max(200).default(20),
});
export const ruleParamsSchema = z.strictObject({ namespace: nameSchema, rule: z.string().min(1).max(256) });
export const ruleStatusBodySchema = z.strictObject({ status: z.enum(['active', 'inactive']) });

const annotations = z.array(z.looseObject({ key: z.string(), value: z.unknown() })).default([]);
const actionDoc = z.looseObject({
  name: z.string(),
  version: z.string().optional(),
  annotations,
  exec: z.looseObject({ kind: z.string(), code: z.string().optional() }).optional(),
});
const ruleDoc = z.looseObject({
  name: z.string(),
  status: z.string().optional(),
  trigger: z.looseObject({ name: z.string() }),
  action: z.looseObject({ name: z.string() }),
});
const activationDoc = z.looseObject({
  activationId: z.string(),
  name: z.string(),
  start: z.number(),
  end: z.number().optional(),
  cause: z.string().optional(),
  logs: z.array(z.string()).default([]),
  response: z.looseObject({ status: z.string(), result: z.unknown() }).optional(),
});

// The annotations `policy deploy` writes (POLICY_ANNOTATION, DRY_RUN_ANNOTATION); importing them
// would pull the policy compiler into the scanner.
const POLICY = 'containment-policy';
const DRY_RUN = 'containment-dry-run';

const annotation = (doc: z.infer<typeof actionDoc>, key: string): unknown =>
  doc.annotations.find((a) => a.key === key)?.value;

/** A linked part's failure as this API's answer (502), not an INTERNAL error. */
async function fromPart<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    // An error answer (ApiError) or no answer at all (SERVER_UNREACHABLE, or an unreadable body).
    if (e instanceof ApiError || (isContainmentError(e) && e.code === ErrorCodes.SERVER_UNREACHABLE))
      throw new ScannerApiError(502, ApiErrorCodes.LINKED_PART_FAILED, `${what}: ${e.message}`);
    throw e;
  }
}

function notLinked(): ScannerApiError {
  return new ScannerApiError(
    501,
    ApiErrorCodes.PARTS_NOT_LINKED,
    'this scanner has no linked enforcer and policy runtime (they are linked by `containment up`)',
  );
}

export function registerLinkedParts(
  v1: FastifyInstance,
  store: ScannerStore,
  principalOf: (request: FastifyRequest) => Principal,
  visibilityFor: (p: Principal, q: { cluster?: string; namespace?: string }) => Visibility | undefined,
  linked: () => LinkedParts | undefined,
): void {
  const parts = (): LinkedParts => {
    const found = linked();
    if (found === undefined) throw notLinked();
    return found;
  };
  const whisk = (p: LinkedParts, namespace: string): WhiskClient | undefined => {
    const auth = p.functions.namespaces[namespace];
    return auth === undefined
      ? undefined
      : new WhiskClient({ apihost: p.functions.url, auth, namespace }, 10_000);
  };

  const routes: LinkedRoutes = { v1, store, principalOf, visibilityFor, parts, whisk };
  registerAuditRoute(routes);
  registerPoliciesRoute(routes);
  registerRuleStatusRoute(routes);
}

/** What the linked-parts routes share. */
interface LinkedRoutes {
  v1: FastifyInstance;
  store: ScannerStore;
  principalOf: (request: FastifyRequest) => Principal;
  visibilityFor: (p: Principal, q: { cluster?: string; namespace?: string }) => Visibility | undefined;
  /** The linked parts; NOT_LINKED when this scanner has none. */
  parts: () => LinkedParts;
  whisk: (p: LinkedParts, namespace: string) => WhiskClient | undefined;
}

/** `GET /v1/audit`: the audit trail across the scanner, the policy runtime and the enforcer. */
function registerAuditRoute(routes: LinkedRoutes): void {
  const { v1, store, principalOf, visibilityFor, parts, whisk } = routes;
  v1.get('/audit', async (request) => {
    const principal = principalOf(request);
    requireRole(principal, 'findings:read');
    const query = parse(auditQuerySchema, request.query);
    const p = parts();
    const actions = new ActionApiClient({ url: p.actions.url, token: p.actions.token, timeoutMs: 10_000 });
    let workload: { cluster: string; namespace: string; pod: string };
    let list;
    if (query.action !== undefined) {
      const id = query.action;
      const action = await fromPart('the action API', () => actions.get(id));
      // Another namespace's action answers exactly as a missing one: ids cannot be probed.
      if (
        action === undefined ||
        !can(principal, 'findings:read', { cluster: p.cluster, namespace: action.spec.target.namespace })
      )
        throw notFound(`action ${id}`);
      workload = { cluster: p.cluster, namespace: action.spec.target.namespace, pod: action.spec.target.pod };
      list = [action];
    } else {
      workload = {
        cluster: query.cluster ?? p.cluster,
        namespace: query.namespace as string,
        pod: query.pod as string,
      };
      if (!can(principal, 'findings:read', workload))
        throw new ContainmentError(
          ErrorCodes.FORBIDDEN,
          `no access to ${workload.cluster}/${workload.namespace}`,
        );
      list =
        workload.cluster === p.cluster
          ? (await fromPart('the action API', () => actions.list(workload.namespace)))
              .filter((a) => a.spec.target.pod === workload.pod)
              .slice(0, query.limit)
          : [];
    }
    const runtime = whisk(p, workload.namespace);
    const visibility = visibilityFor(principal, workload);
    const trail: AuditLink[] = await auditTrail(
      {
        scan: async (id) => {
          const scan = visibility ? await store.getScan(Number(id), visibility) : undefined;
          if (!scan) throw notFound(`scan ${id}`);
          return scan;
        },
        detection: async (id) => {
          const found = visibility ? await store.detections.get(visibility, Number(id)) : undefined;
          if (!found) throw notFound(`detection ${id}`);
          return found;
        },
        activation: async (id) => {
          if (runtime === undefined) throw notFound(`policy runtime namespace ${workload.namespace}`);
          return runtime.activation(id);
        },
      },
      list,
    );
    return { workload, trail };
  });
}

/** `GET /v1/policies`: the policies deployed in the runtime namespaces the reader may see. */
function registerPoliciesRoute(routes: LinkedRoutes): void {
  const { v1, principalOf, parts, whisk } = routes;
  v1.get('/policies', async (request) => {
    const principal = principalOf(request);
    requireRole(principal, 'triggers:read');
    const query = parse(policiesQuerySchema, request.query);
    const p = parts();
    const namespaces = Object.keys(p.functions.namespaces)
      .filter((ns) => query.namespace === undefined || ns === query.namespace)
      .filter((ns) => can(principal, 'triggers:read', { cluster: p.cluster, namespace: ns }))
      .sort();
    const mayWrite = (ns: string): boolean =>
      roleAllows(principal.role, 'triggers:write') &&
      can(principal, 'triggers:write', { cluster: p.cluster, namespace: ns });
    return {
      cluster: p.cluster,
      namespaces: await Promise.all(
        namespaces.map(async (namespace) => {
          const api = whisk(p, namespace) as WhiskClient;
          const [actions, triggers, rules, activations] = await fromPart('the policy runtime', () =>
            Promise.all([
              api.list('actions'),
              api.list('triggers'),
              api.list('rules'),
              query.activations === 0 ? Promise.resolve([]) : api.activations(query.activations),
            ]),
          );
          const policies = await fromPart('the policy runtime', () =>
            Promise.all(
              z
                .array(actionDoc)
                .parse(actions)
                .filter((a) => annotation(a, POLICY) === true)
                .map(async (a) => {
                  const full = actionDoc.parse(await api.get('actions', a.name));
                  return {
                    name: a.name,
                    ...(a.version === undefined ? {} : { version: a.version }),
                    kind: full.exec?.kind ?? 'unknown',
                    source: full.exec?.code ?? '',
                    dryRun: annotation(a, DRY_RUN) === true,
                  };
                }),
            ),
          );
          return {
            namespace,
            mayChangeRules: mayWrite(namespace),
            policies,
            triggers: z
              .array(z.looseObject({ name: z.string() }))
              .parse(triggers)
              .map((t) => ({ name: t.name })),
            rules: z
              .array(ruleDoc)
              .parse(rules)
              .map((r) => ({
                name: r.name,
                trigger: r.trigger.name,
                action: r.action.name,
                status: r.status ?? 'active',
              })),
            activations: z
              .array(activationDoc)
              .parse(activations)
              .map((a) => ({
                id: a.activationId,
                name: a.name,
                start: a.start,
                ...(a.end === undefined ? {} : { end: a.end }),
                ...(a.cause === undefined ? {} : { cause: a.cause }),
                status: a.response?.status ?? 'unknown',
                logs: a.logs,
                result: a.response?.result ?? null,
              })),
          };
        }),
      ),
    };
  });
}

/** `POST /v1/policies/:namespace/rules/:rule`: turn a rule on or off. */
function registerRuleStatusRoute(routes: LinkedRoutes): void {
  const { v1, principalOf, parts, whisk } = routes;
  v1.post('/policies/:namespace/rules/:rule', async (request) => {
    const principal = principalOf(request);
    requireRole(principal, 'triggers:write');
    const { namespace, rule } = parse(ruleParamsSchema, request.params);
    const { status } = parse(ruleStatusBodySchema, request.body);
    const p = parts();
    if (!can(principal, 'triggers:write', { cluster: p.cluster, namespace }))
      throw new ContainmentError(ErrorCodes.FORBIDDEN, `no access to ${p.cluster}/${namespace}`);
    const api = whisk(p, namespace);
    if (api === undefined) throw notFound(`policy runtime namespace ${namespace}`);
    if ((await fromPart('the policy runtime', () => api.get('rules', rule))) === undefined)
      throw notFound(`rule ${rule}`);
    await fromPart('the policy runtime', () => api.setRuleStatus(rule, status));
    request.log.info({ namespace, rule, status, subject: principal.subject }, 'rule status changed');
    return { namespace, rule, status };
  });
}
