/**
 * Where the SDK's enforcement calls create SecurityActions: the enforcer's action API
 * (ActionApiClient, single-machine mode) or a `SecurityAction` custom resource in the target
 * namespace, status watched (KubernetesEnforcementClient).
 */
import type { SecurityAction, SecurityActionInput } from '../../enforcement/security-action.js';

export interface EnforcementClient {
  /**
   * Creates the action; the same `metadata.name` again returns the stored action (the work is done
   * once). With `wait`, resolves once the action reached Succeeded or Failed.
   */
  create(action: SecurityActionInput, options: { wait: boolean }): Promise<SecurityAction>;
  /**
   * Sets labels on a pod (cluster mode only: a local container's labels cannot change after
   * start). Keys and values are checked by the caller. With `dryRun`, nothing is changed.
   */
  label?(
    target: { namespace: string; pod: string },
    labels: Record<string, string>,
    options: { dryRun: boolean },
  ): Promise<LabelOutcome>;
}

export interface LabelOutcome {
  /** The labelled pod's UID (the patch is pinned to it: a replaced pod is not touched). */
  uid: string;
  /** Keys whose value was set or changed (empty: the pod already had them all). */
  changed: string[];
  message: string;
}
