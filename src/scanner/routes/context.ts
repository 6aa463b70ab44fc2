/**
 * What every scanner route module receives (`RouteContext`), and the request helpers they share:
 * body/query validation, role checks and the caller's visibility. A route module is a function
 * `(v1, context) => void` registered in `index.ts`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { ApiTokens } from '../../auth/api-tokens.js';
import { namespaceFilter, roleAllows } from '../../auth/principal.js';
import type { Action, Principal } from '../../auth/principal.js';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import type { TargetGuard } from '../../events/ssrf.js';
import type { AsyncAdvisoryStore } from '../../vulndb/advisory-store.js';
import { ApiErrorCodes, ScannerApiError } from '../api-error.js';
import type { ScannerMetrics } from '../metrics.js';
import type { PackageMatcher } from '../package-matcher.js';
import type { RematchCheck } from '../rematch.js';
import type { ScannerStore, Visibility } from '../scanner-store.js';

export interface RouteContext {
  store: ScannerStore;
  advisories: AsyncAdvisoryStore;
  tokens: ApiTokens;
  matcher: PackageMatcher;
  metrics: ScannerMetrics;
  deliverer: { notify(): void };
  guard: TargetGuard;
  rematch?: { check(): Promise<RematchCheck> } | undefined;
  /** The authenticated caller; the `/v1` hook sets it before any handler runs. */
  principalOf(request: FastifyRequest): Principal;
}

/** Adds one resource's routes under `/v1` (the prefix and authentication are already in place). */
export type V1Routes = (v1: FastifyInstance, context: RouteContext) => void;

export function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  throw new ScannerApiError(
    400,
    ApiErrorCodes.REQUEST_INVALID,
    `${where}${issue?.message ?? 'invalid request'}`,
  );
}

/** Throws FORBIDDEN unless the role grants the action somewhere (lists then filter by scope). */
export function requireRole(principal: Principal, action: Action): void {
  if (!roleAllows(principal.role, action)) {
    throw new ContainmentError(ErrorCodes.FORBIDDEN, `role ${principal.role} may not ${action}`);
  }
}

/**
 * What the caller may read, narrowed by the query's cluster and namespace; undefined when that is
 * nothing at all.
 */
export function visibilityFor(
  principal: Principal,
  query: { cluster?: string; namespace?: string },
): Visibility | undefined {
  const cluster = query.cluster ?? principal.scope.cluster;
  const namespaces = namespaceFilter(principal, cluster);
  if (namespaces === 'none') return undefined;
  if (query.namespace !== undefined && namespaces !== '*' && !namespaces.includes(query.namespace))
    return undefined;
  return { cluster, namespaces };
}
