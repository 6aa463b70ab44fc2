/**
 * The Kubernetes half of a quarantine (pure): a label unique to the pod (its UID, so another
 * replica carrying the same app labels is never selected) and a deny-all NetworkPolicy that
 * selects exactly that label. No rules under both policy types means nothing in, nothing out.
 */
import { createHash } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';

export const QUARANTINE_LABEL = 'containment.dev/quarantine';
export const POLICY_NAME_PREFIX = 'containment-quarantine-';
const MAX_NAME = 253;

/** `containment-quarantine-<pod>`; a name too long for that is truncated and suffixed with a hash. */
export function quarantinePolicyName(podName: string): string {
  const name = `${POLICY_NAME_PREFIX}${podName}`;
  if (name.length <= MAX_NAME) return name;
  const hash = createHash('sha256').update(podName).digest('hex').slice(0, 10);
  // A DNS subdomain may not end in '-' or '.', so trim those before the hash separator.
  return `${name.slice(0, MAX_NAME - hash.length - 1).replace(/[-.]+$/, '')}-${hash}`;
}

export function quarantinePolicy(pod: { name: string; namespace: string; uid: string }): k8s.V1NetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: quarantinePolicyName(pod.name),
      namespace: pod.namespace,
      labels: { 'app.kubernetes.io/managed-by': 'containment' },
      annotations: { 'containment.dev/pod': pod.name },
    },
    spec: {
      podSelector: { matchLabels: { [QUARANTINE_LABEL]: pod.uid } },
      policyTypes: ['Ingress', 'Egress'],
    },
  };
}

/** True when `policy` is the quarantine of the pod with this UID (and nothing wider). */
export function isQuarantinePolicyFor(policy: k8s.V1NetworkPolicy, podUid: string): boolean {
  const spec = policy.spec;
  const labels = spec?.podSelector?.matchLabels ?? {};
  return (
    Object.keys(labels).length === 1 &&
    labels[QUARANTINE_LABEL] === podUid &&
    (spec?.podSelector?.matchExpressions ?? []).length === 0 &&
    (spec?.ingress ?? []).length === 0 &&
    (spec?.egress ?? []).length === 0 &&
    ['Ingress', 'Egress'].every((t) => spec?.policyTypes?.includes(t))
  );
}
