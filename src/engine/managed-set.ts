/**
 * The managed set on one machine: the containers the agent scans and the enforcer may act on.
 * One filter for both (`containment up --label k=v`, the agent's `--label`): a container carries
 * every selector label with its exact value. Pod infra (pause) containers are never managed.
 */
import type { ContainerInfo } from './container-engine.js';

/** Label selector: a container must carry all of these (empty or undefined: every container). */
export type LabelSelector = Readonly<Record<string, string>>;

export function selectedBy(selector: LabelSelector | undefined, c: Pick<ContainerInfo, 'labels'>): boolean {
  return Object.entries(selector ?? {}).every(([k, v]) => c.labels[k] === v);
}

/** `k=v,k2=v2` for messages; `(none)` for the empty selector. */
export function describeSelector(selector: LabelSelector | undefined): string {
  const pairs = Object.entries(selector ?? {}).map(([k, v]) => `${k}=${v}`);
  return pairs.length === 0 ? '(none)' : pairs.join(',');
}
