/**
 * Writes PolicyReport / ClusterPolicyReport objects: create, or replace the existing one carrying
 * its resourceVersion (a concurrent writer's 409 is retried once with the fresh version).
 */
import * as k8s from '@kubernetes/client-node';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import {
  POLICY_REPORT_GROUP,
  POLICY_REPORT_LABELS,
  POLICY_REPORT_NAME,
  POLICY_REPORT_VERSION,
} from '../policy-report.js';
import type { PolicyReportObject } from '../policy-report.js';

const codeOf = (e: unknown): number | undefined =>
  e instanceof k8s.ApiException ? (e as k8s.ApiException<unknown>).code : undefined;

async function upsert(api: k8s.CustomObjectsApi, report: PolicyReportObject, attempt = 0): Promise<void> {
  const group = POLICY_REPORT_GROUP;
  const version = POLICY_REPORT_VERSION;
  const name = report.metadata.name;
  const ns = report.metadata.namespace;
  const plural = report.kind === 'PolicyReport' ? 'policyreports' : 'clusterpolicyreports';
  let existing: { metadata?: { resourceVersion?: string } } | undefined;
  try {
    existing = (
      ns
        ? await api.getNamespacedCustomObject({ group, version, namespace: ns, plural, name })
        : await api.getClusterCustomObject({ group, version, plural, name })
    ) as typeof existing;
  } catch (e) {
    if (codeOf(e) !== 404) throw e;
  }
  try {
    if (!existing) {
      if (ns) await api.createNamespacedCustomObject({ group, version, namespace: ns, plural, body: report });
      else await api.createClusterCustomObject({ group, version, plural, body: report });
      return;
    }
    const body = {
      ...report,
      metadata: { ...report.metadata, resourceVersion: existing.metadata?.resourceVersion },
    };
    if (ns) await api.replaceNamespacedCustomObject({ group, version, namespace: ns, plural, name, body });
    else await api.replaceClusterCustomObject({ group, version, plural, name, body });
  } catch (e) {
    if (codeOf(e) === 409 && attempt === 0) return upsert(api, report, 1);
    throw e;
  }
}

/**
 * Writes every report, then deletes this tool's earlier parts (`containment-posture-<n>`) that the
 * new run no longer needs, in the scopes it wrote. The first failure stops with
 * KUBERNETES_UNAVAILABLE naming the report.
 */
export async function writePolicyReports(
  kc: k8s.KubeConfig,
  reports: readonly PolicyReportObject[],
  concurrency = 8,
): Promise<void> {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const failed = (what: string, e: unknown): ContainmentError => {
    const code = codeOf(e);
    const hint = code === 404 ? ' (is the wgpolicyk8s.io PolicyReport CRD installed?)' : '';
    return new ContainmentError(
      ErrorCodes.KUBERNETES_UNAVAILABLE,
      `${what} failed: ${code !== undefined ? `HTTP ${code}` : (e as Error).message.split('\n')[0]}${hint}`,
      { cause: e },
    );
  };
  const label = (r: PolicyReportObject): string =>
    `${r.kind} ${r.metadata.namespace ? `${r.metadata.namespace}/` : ''}${r.metadata.name}`;
  await pool([...reports], concurrency, async (r) => {
    try {
      await upsert(api, r);
    } catch (e) {
      throw failed(`writing ${label(r)}`, e);
    }
  });

  const written = new Set(reports.map((r) => `${r.kind}/${r.metadata.namespace ?? ''}/${r.metadata.name}`));
  const scopes = new Set(reports.map((r) => `${r.kind}/${r.metadata.namespace ?? ''}`));
  const labelSelector = Object.entries(POLICY_REPORT_LABELS)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const stale: PolicyReportObject[] = [];
  for (const [kind, plural] of [
    ['PolicyReport', 'policyreports'],
    ['ClusterPolicyReport', 'clusterpolicyreports'],
  ] as const) {
    let list: { items?: PolicyReportObject[] };
    try {
      list = (await api.listClusterCustomObject({
        group: POLICY_REPORT_GROUP,
        version: POLICY_REPORT_VERSION,
        plural,
        labelSelector,
      })) as typeof list;
    } catch (e) {
      throw failed(`listing ${plural}`, e);
    }
    for (const item of list.items ?? []) {
      const ns = item.metadata.namespace ?? '';
      const isPart = item.metadata.name.startsWith(`${POLICY_REPORT_NAME}-`);
      if (isPart && scopes.has(`${kind}/${ns}`) && !written.has(`${kind}/${ns}/${item.metadata.name}`)) {
        stale.push({ ...item, kind });
      }
    }
  }
  await pool(stale, concurrency, async (r) => {
    const name = r.metadata.name;
    const ns = r.metadata.namespace;
    try {
      if (ns) {
        await api.deleteNamespacedCustomObject({
          group: POLICY_REPORT_GROUP,
          version: POLICY_REPORT_VERSION,
          namespace: ns,
          plural: 'policyreports',
          name,
        });
      } else {
        await api.deleteClusterCustomObject({
          group: POLICY_REPORT_GROUP,
          version: POLICY_REPORT_VERSION,
          plural: 'clusterpolicyreports',
          name,
        });
      }
    } catch (e) {
      if (codeOf(e) !== 404) throw failed(`deleting stale ${label(r)}`, e);
    }
  });
}

async function pool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}
