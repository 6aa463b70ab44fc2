/**
 * `GET /v1/workload-search`: the dashboard's workload list — the caller's visible workloads,
 * filtered and paged on the server, with the total that matched and the compliance verdicts of
 * the matches before the `compliance` filter (`{ passed, failed, unscanned }`).
 *
 * `q` matches a workload's namespace, pod, container, image or digest (substring, any case), a
 * package name (exact, any ecosystem) or an advisory id (exact, e.g. `CVE-2023-4911`); the package
 * and advisory look-ups go through the store's re-match index (`rematchCandidates`) and are then
 * narrowed to what the caller may see, like everything else (`visibilityFor`).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Principal } from '../../auth/principal.js';
import { roleAllows } from '../../auth/principal.js';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { SEVERITIES } from '../../inventory/types.js';
import type { Severity } from '../../inventory/types.js';
import { baseEcosystem, supportedEcosystems } from '../../versions/index.js';
import { ApiErrorCodes, ScannerApiError } from '../api-error.js';
import { advisoryKey, packageKey } from '../rematch-index.js';
import { nameSchema, pageSchema } from '../schemas.js';
import type { ScannerStore, Visibility, WorkloadRecord } from '../scanner-store.js';

export const workloadSearchQuerySchema = pageSchema.extend({
  q: z.string().trim().max(200).optional(),
  cluster: nameSchema.optional(),
  namespace: nameSchema.optional(),
  /** At least one vulnerability or insecure configuration of this severity or worse. */
  severity: z.enum(['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN']).optional(),
  compliance: z.enum(['passed', 'failed']).optional(),
});

const CHUNK = 5000;

async function visibleWorkloads(
  store: ScannerStore,
  visibility: Visibility,
  namespace: string | undefined,
): Promise<WorkloadRecord[]> {
  const all: WorkloadRecord[] = [];
  const filter = namespace === undefined ? {} : { namespace };
  for (let offset = 0; ; offset += CHUNK) {
    const page = await store.listWorkloads(visibility, filter, { limit: CHUNK, offset });
    all.push(...page);
    if (page.length < CHUNK) return all;
  }
}

const identityKey = (w: WorkloadRecord['workload']): string =>
  [w.cluster, w.namespace, w.pod, w.container ?? ''].join('\u0000');

/** Workloads (any namespace: the caller filters) whose latest inventory has the package or advisory. */
async function indexMatches(store: ScannerStore, q: string): Promise<Set<string>> {
  const ecosystems = [...new Set(supportedEcosystems().map(baseEcosystem))];
  const keys = [advisoryKey(q), ...ecosystems.map((e) => packageKey(e, q))];
  const ids = await store.rematchCandidates(keys);
  if (ids.length === 0) return new Set();
  const targets = await store.rematchTargets(ids.slice(0, 20_000));
  return new Set(targets.map((t) => identityKey(t.workload)));
}

function worstAtLeast(record: WorkloadRecord, severity: Severity): boolean {
  const summary = record.lastScan?.summary;
  if (!summary) return false;
  const rank = (s: Severity): number => SEVERITIES.indexOf(s);
  return SEVERITIES.some(
    (s) => rank(s) <= rank(severity) && summary.counts[s] + summary.configurationCounts[s] > 0,
  );
}

export function registerWorkloadSearch(
  v1: FastifyInstance,
  store: ScannerStore,
  principalOf: (request: FastifyRequest) => Principal,
  visibilityFor: (p: Principal, q: { cluster?: string; namespace?: string }) => Visibility | undefined,
): void {
  v1.get('/workload-search', async (request) => {
    const principal = principalOf(request);
    if (!roleAllows(principal.role, 'findings:read'))
      throw new ContainmentError(ErrorCodes.FORBIDDEN, `role ${principal.role} may not findings:read`);
    const parsed = workloadSearchQuerySchema.safeParse(request.query);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ScannerApiError(
        400,
        ApiErrorCodes.REQUEST_INVALID,
        `${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid query'}`,
      );
    }
    const { q, cluster, namespace, severity, compliance, limit, offset } = parsed.data;
    const visibility = visibilityFor(principal, { cluster, namespace });
    if (!visibility) return { total: 0, workloads: [] };
    let rows = await visibleWorkloads(store, visibility, namespace);
    if (q !== undefined && q !== '') {
      const needle = q.toLowerCase();
      const indexed = await indexMatches(store, q);
      rows = rows.filter((r) => {
        const w = r.workload;
        const text = [w.namespace, w.pod, w.container ?? '', w.image, w.imageDigest ?? ''];
        return text.some((t) => t.toLowerCase().includes(needle)) || indexed.has(identityKey(w));
      });
    }
    if (severity !== undefined) rows = rows.filter((r) => worstAtLeast(r, severity));
    // Verdict counts of what matched so far, so the overview needs no second request.
    const verdicts = { passed: 0, failed: 0, unscanned: 0 };
    for (const r of rows) {
      if (r.lastScan === undefined) verdicts.unscanned++;
      else if (r.lastScan.summary.compliance.passed) verdicts.passed++;
      else verdicts.failed++;
    }
    if (compliance !== undefined)
      rows = rows.filter(
        (r) => r.lastScan !== undefined && r.lastScan.summary.compliance.passed === (compliance === 'passed'),
      );
    return { total: rows.length, compliance: verdicts, workloads: rows.slice(offset, offset + limit) };
  });
}
