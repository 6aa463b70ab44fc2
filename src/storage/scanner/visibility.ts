/** What a read may cover: a cluster (or all) and namespaces (or all); and a page of a list. */
import type { SqlDb } from '../sql.js';

export interface Visibility {
  cluster: string | '*';
  namespaces: readonly string[] | '*';
}

export interface Page {
  limit: number;
  offset: number;
}

/** Workload columns a list may be narrowed to. */
export interface WorkloadFilter {
  namespace?: string;
  pod?: string;
  container?: string;
}

/** Positional parameters for a statement assembled from parts: `add` gives the next `$n`. */
export class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/**
 * SQL condition (over aliases `c` = cluster, `w` = workload) limiting rows to what a reader may
 * see, plus optional workload filters. Every read of workloads and scans goes through it.
 */
export function visibleWhere(
  db: SqlDb,
  p: Params,
  visibility: Visibility,
  filter: WorkloadFilter = {},
): string {
  const parts: string[] = [];
  if (visibility.cluster !== '*') parts.push(`c.name = ${p.add(visibility.cluster)}`);
  if (visibility.namespaces !== '*')
    parts.push(db.inArray('w.namespace', p.add(db.array(visibility.namespaces)), 'text'));
  for (const key of ['namespace', 'pod', 'container'] as const) {
    const value = filter[key];
    if (value !== undefined) parts.push(`w.${key} = ${p.add(value)}`);
  }
  return parts.length === 0 ? '1 = 1' : parts.join(' AND ');
}
