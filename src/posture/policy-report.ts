/**
 * Posture findings as `wgpolicyk8s.io/v1alpha2` PolicyReport (one per namespace) and
 * ClusterPolicyReport (cluster-scoped objects) objects, so existing report viewers show them.
 * Pure: `kubernetes/write-policy-reports.ts` writes them.
 */
import type { Severity } from '../inventory/types.js';
import type { PostureFinding, PostureReport } from './types.js';

export const POLICY_REPORT_GROUP = 'wgpolicyk8s.io';
export const POLICY_REPORT_VERSION = 'v1alpha2';
export const POLICY_REPORT_NAME = 'containment-posture';
export const POLICY_REPORT_SOURCE = 'containment';
/** Every report this tool writes carries these; stale parts are found (and deleted) by them. */
export const POLICY_REPORT_LABELS: Readonly<Record<string, string>> = {
  'app.kubernetes.io/managed-by': 'containment',
  'containment.dev/report': 'posture',
};

const SEVERITY: Record<Severity, string> = {
  CRITICAL: 'critical',
  HIGH: 'high',
  MEDIUM: 'medium',
  LOW: 'low',
  UNKNOWN: 'info',
};

export interface PolicyReportObject {
  apiVersion: string;
  kind: 'PolicyReport' | 'ClusterPolicyReport';
  metadata: { name: string; namespace?: string; labels: Record<string, string>; resourceVersion?: string };
  summary: { pass: number; fail: number; warn: number; error: number; skip: number };
  results: Record<string, unknown>[];
}

function resultOf(f: PostureFinding, seconds: number): Record<string, unknown> {
  const resource: Record<string, string> = { kind: f.object.kind, name: f.object.name };
  if (f.object.apiVersion) resource.apiVersion = f.object.apiVersion;
  if (f.object.namespace && f.object.kind !== 'Namespace') resource.namespace = f.object.namespace;
  if (f.object.uid) resource.uid = f.object.uid;
  return {
    source: POLICY_REPORT_SOURCE,
    policy: f.control,
    category: f.category,
    severity: SEVERITY[f.severity],
    result: 'fail',
    scored: true,
    message: f.message,
    timestamp: { seconds, nanos: 0 },
    resources: [resource],
    properties: { path: f.path, remediation: f.remediation, title: f.title },
  };
}

function reportOf(
  kind: PolicyReportObject['kind'],
  findings: PostureFinding[],
  seconds: number,
  name: string,
  namespace?: string,
): PolicyReportObject {
  return {
    apiVersion: `${POLICY_REPORT_GROUP}/${POLICY_REPORT_VERSION}`,
    kind,
    metadata: {
      name,
      ...(namespace !== undefined ? { namespace } : {}),
      labels: { ...POLICY_REPORT_LABELS },
    },
    summary: { pass: 0, fail: findings.length, warn: 0, error: 0, skip: 0 },
    results: findings.map((f) => resultOf(f, seconds)),
  };
}

/** Results per report object: etcd refuses objects over ~1.5 MB; a result is ~0.5 kB. */
export const MAX_RESULTS_PER_REPORT = 1000;

/** `containment-posture`, then `containment-posture-2`, … when one scope needs several objects. */
function partsOf(
  kind: PolicyReportObject['kind'],
  findings: PostureFinding[],
  seconds: number,
  max: number,
  namespace?: string,
): PolicyReportObject[] {
  const parts: PolicyReportObject[] = [];
  for (let i = 0; i === 0 || i < findings.length; i += max) {
    const name = i === 0 ? POLICY_REPORT_NAME : `${POLICY_REPORT_NAME}-${i / max + 1}`;
    parts.push(reportOf(kind, findings.slice(i, i + max), seconds, name, namespace));
  }
  return parts;
}

/**
 * One PolicyReport per scored namespace (an empty one for a clean namespace, so a fixed problem
 * disappears from viewers) and one ClusterPolicyReport for cluster-scoped objects, each split
 * into numbered parts past `maxResults`. Findings on local containers (no Kubernetes object) are
 * not reported.
 */
export function policyReportsOf(
  report: PostureReport,
  now: Date = new Date(),
  maxResults: number = MAX_RESULTS_PER_REPORT,
): PolicyReportObject[] {
  const seconds = Math.floor(now.getTime() / 1000);
  const byNamespace = new Map<string, PostureFinding[]>(report.namespaces.map((n) => [n.namespace, []]));
  const cluster: PostureFinding[] = [];
  for (const f of report.findings) {
    if (f.object.kind === 'Container') continue;
    const ns = f.object.namespace;
    if (ns === undefined) {
      cluster.push(f);
      continue;
    }
    const list = byNamespace.get(ns) ?? [];
    list.push(f);
    byNamespace.set(ns, list);
  }
  return [
    ...[...byNamespace.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .flatMap(([ns, list]) => partsOf('PolicyReport', list, seconds, maxResults, ns)),
    ...partsOf('ClusterPolicyReport', cluster, seconds, maxResults),
  ];
}
