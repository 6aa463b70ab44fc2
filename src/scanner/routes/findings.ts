/**
 * Reads of findings: `/v1/findings` (a pod's latest scans), `/v1/workloads`, `/v1/scans`,
 * `/v1/scans/:id`, `/v1/images` and `/v1/summary`. Every read is limited to the caller's
 * visibility before it reaches the store.
 */
import { assertCan } from '../../auth/principal.js';
import { SEVERITIES } from '../../inventory/types.js';
import type { Severity } from '../../inventory/types.js';
import { notFound } from '../api-error.js';
import {
  findingsQuerySchema,
  imagesQuerySchema,
  scanIdSchema,
  summaryQuerySchema,
  workloadQuerySchema,
} from '../schemas.js';
import type { ScanDetail, ScanRecord } from '../scanner-store.js';
import { parse, requireRole, visibilityFor } from './context.js';
import type { V1Routes } from './context.js';

/** Findings of a pod: one container's scan as is; several merged, each finding naming its container. */
function findingsResponse(scans: ScanDetail[]): object {
  const [only] = scans;
  if (scans.length === 1 && only) {
    return {
      workload: only.workload,
      scanId: only.id,
      scanTime: only.scanTime,
      summary: only.summary,
      vulnerablePackages: only.vulnerabilities,
      insecureConfigurations: only.insecureConfigurations,
    };
  }
  const first = scans[0] as ScanDetail;
  return {
    workload: {
      cluster: first.workload.cluster,
      namespace: first.workload.namespace,
      pod: first.workload.pod,
    },
    scanTime: scans
      .map((s) => s.scanTime)
      .sort()
      .at(-1),
    vulnerablePackages: scans.flatMap((s) =>
      s.vulnerabilities.map((v) => ({ ...v, container: s.workload.container })),
    ),
    insecureConfigurations: scans.flatMap((s) =>
      s.insecureConfigurations.map((c) => ({ ...c, container: s.workload.container })),
    ),
    containers: scans.map((s) => ({
      workload: s.workload,
      scanId: s.id,
      scanTime: s.scanTime,
      summary: s.summary,
    })),
  };
}

/**
 * One `/v1/images` entry: `severityCounts` adds vulnerabilities and insecure configurations per
 * severity, as the compliance verdict counts them (`matching/summary.ts`).
 */
function imageEntry(scan: ScanRecord): object {
  const { counts, configurationCounts } = scan.summary;
  const severityCounts = Object.fromEntries(
    SEVERITIES.map((s) => [s, counts[s] + configurationCounts[s]]),
  ) as Record<Severity, number>;
  return {
    image: scan.workload.image,
    ...(scan.workload.imageDigest === undefined ? {} : { imageDigest: scan.workload.imageDigest }),
    workload: scan.workload,
    scanId: scan.id,
    scanTime: scan.scanTime,
    severityCounts,
    // An incomplete scan (a package database unreadable) can never pass: see `complianceVerdict`.
    completeness: scan.summary.completeness ?? 'complete',
  };
}

export const findingRoutes: V1Routes = (v1, { store, principalOf }) => {
  v1.get('/findings', async (request) => {
    const principal = principalOf(request);
    const query = parse(findingsQuerySchema, request.query);
    assertCan(principal, 'findings:read', { cluster: query.cluster, namespace: query.namespace });
    const visibility = visibilityFor(principal, query);
    const at = query.at === undefined ? new Date() : new Date(query.at);
    const filter = {
      namespace: query.namespace,
      pod: query.pod,
      ...(query.container === undefined ? {} : { container: query.container }),
    };
    const scans = visibility ? await store.latestScans(query.cluster, visibility, filter, at) : [];
    if (scans.length === 0) throw notFound(`findings for ${query.cluster}/${query.namespace}/${query.pod}`);
    return findingsResponse(scans);
  });

  v1.get('/workloads', async (request) => {
    const principal = principalOf(request);
    requireRole(principal, 'findings:read');
    const { limit, offset, cluster, ...filter } = parse(workloadQuerySchema, request.query);
    const visibility = visibilityFor(principal, { cluster, namespace: filter.namespace });
    return {
      workloads: visibility ? await store.listWorkloads(visibility, filter, { limit, offset }) : [],
    };
  });

  v1.get('/scans', async (request) => {
    const principal = principalOf(request);
    requireRole(principal, 'findings:read');
    const { limit, offset, cluster, ...filter } = parse(workloadQuerySchema, request.query);
    const visibility = visibilityFor(principal, { cluster, namespace: filter.namespace });
    return { scans: visibility ? await store.listScans(visibility, filter, { limit, offset }) : [] };
  });

  v1.get('/scans/:id', async (request) => {
    const principal = principalOf(request);
    requireRole(principal, 'findings:read');
    const { id } = parse(scanIdSchema, request.params);
    const visibility = visibilityFor(principal, {});
    const scan = visibility ? await store.getScan(id, visibility) : undefined;
    // Invisible and missing look the same: no probing of other namespaces' scan ids.
    if (!scan) throw notFound(`scan ${id}`);
    return scan;
  });

  v1.get('/images', async (request) => {
    const principal = principalOf(request);
    requireRole(principal, 'findings:read');
    const { image, digest, cluster, limit } = parse(imagesQuerySchema, request.query);
    const visibility = visibilityFor(principal, { cluster });
    const query = digest === undefined ? { image } : { image, digest };
    const scans = visibility ? await store.imageScans(visibility, query, limit) : [];
    return { images: scans.map(imageEntry) };
  });

  v1.get('/summary', async (request) => {
    const principal = principalOf(request);
    requireRole(principal, 'findings:read');
    const query = parse(summaryQuerySchema, request.query);
    const visibility = visibilityFor(principal, query);
    const filter = query.namespace === undefined ? {} : { namespace: query.namespace };
    return { namespaces: visibility ? await store.summary(visibility, filter) : [] };
  });
};
