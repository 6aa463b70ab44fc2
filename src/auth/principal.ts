/**
 * Who is calling and what it may do: pure types and the permission model (no I/O).
 *
 * Role matrix (every role is further limited to its scope — a cluster or `*`, and a namespace list
 * or `*`; nobody ever acts outside its scope, not even an admin with a narrow scope):
 *
 * | action              | admin | analyst | viewer | agent | policy |
 * |---------------------|:-----:|:-------:|:------:|:-----:|:------:|
 * | clusters:read       |   x   |    x    |   x    |       |        |
 * | clusters:write      |   x   |         |        |       |        |
 * | reports:write       |   x   |         |        |  x¹   |        |
 * | findings:read       |   x   |    x    |   x    |       |   x    |
 * | triggers:read       |   x   |    x    |   x    |       |        |
 * | triggers:write      |   x   |    x    |        |       |        |
 * | actions:write       |   x   |    x    |        |       |   x    |
 * | tokens:read/write   |   x   |         |        |       |        |
 * | deadletters:read/w. |   x   |         |        |       |        |
 * | metrics:read        |   x   |         |        |       |        |
 * | baselines:write     |   x   |         |        |       |        |
 *
 * ¹ an agent must be bound to one cluster: an agent whose scope is every cluster is denied, so one
 *   leaked agent token cannot poison the inventories of all clusters.
 *
 * Resource semantics for `can()`:
 * - `{ cluster, namespace }` — one namespace: needs that cluster and that namespace in scope;
 * - `{ cluster }`            — the whole cluster: needs that cluster with every namespace (`*`);
 * - no resource              — everything: needs scope `*` / `*` (global admin operations).
 * Lists and counts are not checked with `can()`: check `roleAllows()` and then filter rows with
 * `namespaceFilter()`.
 */
import { ContainmentError, ErrorCodes } from '../errors.js';

export const ROLES = ['admin', 'analyst', 'viewer', 'agent', 'policy'] as const;
export type Role = (typeof ROLES)[number];

export const ACTIONS = [
  'clusters:read',
  'clusters:write',
  'reports:write',
  'findings:read',
  'triggers:read',
  'triggers:write',
  'actions:write',
  'tokens:read',
  'tokens:write',
  'deadletters:read',
  'deadletters:write',
  'metrics:read',
  'baselines:write',
] as const;
export type Action = (typeof ACTIONS)[number];

export interface Scope {
  cluster: string | '*';
  namespaces: readonly string[] | '*';
}

export interface Principal {
  /** `token:<id>` for API tokens, the `sub` claim for OIDC tokens. */
  subject: string;
  role: Role;
  scope: Scope;
  via: 'token' | 'oidc';
  tokenId?: string;
}

export interface Resource {
  cluster: string;
  namespace?: string;
}

const READ: readonly Action[] = ['clusters:read', 'findings:read', 'triggers:read'];

const ROLE_ACTIONS: Readonly<Record<Role, ReadonlySet<Action>>> = {
  admin: new Set(ACTIONS),
  analyst: new Set([...READ, 'triggers:write', 'actions:write']),
  viewer: new Set(READ),
  agent: new Set(['reports:write']),
  policy: new Set(['findings:read', 'actions:write']),
};

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** Whether the role grants the action somewhere (scope not considered). */
export function roleAllows(role: Role, action: Action): boolean {
  return ROLE_ACTIONS[role].has(action);
}

/** The actions a role grants, for documentation and for picking among several roles. */
export function roleActions(role: Role): ReadonlySet<Action> {
  return ROLE_ACTIONS[role];
}

/** Whether `outer` contains every cluster and namespace of `inner`. */
export function covers(outer: Scope, inner: Scope): boolean {
  if (outer.cluster !== '*' && outer.cluster !== inner.cluster) return false;
  if (outer.namespaces === '*') return true;
  if (inner.namespaces === '*') return false;
  const allowed = new Set(outer.namespaces);
  return inner.namespaces.every((ns) => allowed.has(ns));
}

/** Why a role cannot hold a scope, or undefined when it can. Used when issuing and mapping tokens. */
export function scopeProblem(role: Role, scope: Scope): string | undefined {
  if (role === 'agent' && scope.cluster === '*') return 'an agent token must be bound to one cluster';
  return undefined;
}

function resourceScope(resource: Resource | undefined): Scope {
  if (!resource) return { cluster: '*', namespaces: '*' };
  return {
    cluster: resource.cluster,
    namespaces: resource.namespace === undefined ? '*' : [resource.namespace],
  };
}

export function can(principal: Principal, action: Action, resource?: Resource): boolean {
  return (
    roleAllows(principal.role, action) &&
    scopeProblem(principal.role, principal.scope) === undefined &&
    covers(principal.scope, resourceScope(resource))
  );
}

/** Throws FORBIDDEN unless `can()` allows it. */
export function assertCan(principal: Principal, action: Action, resource?: Resource): void {
  if (can(principal, action, resource)) return;
  const where = resource ? ` in ${resource.cluster}/${resource.namespace ?? '*'}` : '';
  throw new ContainmentError(ErrorCodes.FORBIDDEN, `role ${principal.role} may not ${action}${where}`);
}

/** Whether the principal may issue a token with this role and scope (never wider than its own scope). */
export function canIssue(principal: Principal, role: Role, scope: Scope): boolean {
  return (
    roleAllows(principal.role, 'tokens:write') &&
    covers(principal.scope, scope) &&
    scopeProblem(role, scope) === undefined
  );
}

/**
 * Which namespaces of `cluster` the principal may see: `'*'` (all), a list, or `'none'`.
 * Servers filter rows and counts with it after checking `roleAllows()` for the read action.
 */
export function namespaceFilter(principal: Principal, cluster: string): '*' | readonly string[] | 'none' {
  const { scope } = principal;
  if (scope.cluster !== '*' && scope.cluster !== cluster) return 'none';
  if (scope.namespaces === '*') return '*';
  return scope.namespaces.length === 0 ? 'none' : scope.namespaces;
}
